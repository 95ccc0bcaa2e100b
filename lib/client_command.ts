/**
 * `herd client [--tls-ca FILE] HOST:PORT [LINE ...]`: a line client (over TLS, trusting only
 * the CA in FILE and checking the server's certificate names HOST, with `--tls-ca`). With LINEs, or lines on a stdin that is
 * not a terminal, it sends them, half-closes and copies the replies to stdout byte for byte
 * until the server closes — for scripts. On a terminal it is interactive. Owns the socket,
 * stdin and stdout; what a typed line means and how a reply is shown is
 * lib/client_format.ts's.
 */
import { UsageError } from "./cli.ts";
import { readTypedLine, ReplyFramer } from "./client_format.ts";
import { ConfigError, formatAddress, parseMonitorAddress, type ServerAddress } from "./config.ts";
import { networkErrorReason, OneLineError } from "./errors.ts";
import { encodeWireText, LineSplitter } from "./lines.ts";
import { systemClockNs } from "./server.ts";

export const CLIENT_USAGE = "usage: herd client [--tls-ca FILE] HOST:PORT [LINE ...]";
const TLS_CA_FLAG = "--tls-ca";

/** A plain or TLS connection: both half-close, which the one-shot mode needs. */
type ClientConn = Deno.TcpConn | Deno.TlsConn;

/** The longest typed line read from a terminal; a longer one is cut (and the server says `?`). */
const TYPED_LINE_BYTES_MAX = 64 * 1024;
const READ_CHUNK_BYTES = 64 * 1024;

export interface ClientCommandOptions {
  /** POSIX time in nanoseconds, for the `iamat` helper; default the system clock. */
  clockNs?: () => bigint;
}

/** The server could not be reached; one line, exit 1. */
export class ClientConnectError extends OneLineError {
  override name = "ClientConnectError";
}

/**
 * Runs `herd client` with the arguments after `client`; returns the exit code (0 once the
 * server has closed, or the user quit). Throws UsageError for a missing or bad address and
 * ClientConnectError when nothing answers there.
 */
export async function runClientCommand(
  args: string[],
  options: ClientCommandOptions = {},
): Promise<number> {
  // Only before HOST:PORT: what follows it are lines to send, whatever they look like.
  const caPath = args[0] === TLS_CA_FLAG ? args[1] : undefined;
  if (args[0] === TLS_CA_FLAG && caPath === undefined) {
    throw new UsageError(`${TLS_CA_FLAG} needs a FILE; ${CLIENT_USAGE}`);
  }
  const [addressText, ...lines] = caPath === undefined ? args : args.slice(2);
  if (addressText === undefined) throw new UsageError(`HOST:PORT is required; ${CLIENT_USAGE}`);
  const address = parseServerAddress(addressText);
  const caPem = caPath === undefined ? undefined : await readCa(caPath);
  const conn = await connect(address, caPem);
  try {
    if (lines.length > 0) {
      await exchange(conn, new Blob(lines.map((line) => `${line}\n`)).stream());
    } else if (!Deno.stdin.isTerminal()) {
      await exchange(conn, Deno.stdin.readable);
    } else {
      await converse(conn, address, options.clockNs ?? systemClockNs);
    }
  } finally {
    conn.close();
  }
  return 0;
}

/** `HOST:PORT` (an IPv6 host in brackets), as herd.json writes addresses. */
function parseServerAddress(text: string): ServerAddress {
  try {
    return parseMonitorAddress(text, "");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new UsageError(`${JSON.stringify(text)} is not HOST:PORT; ${CLIENT_USAGE}`);
  }
}

async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`${TLS_CA_FLAG} ${path}: cannot read: ${(error as Error).name}`);
  }
}

/** Connects, and with `caPem` finishes the TLS handshake here so its failure is one line. */
async function connect(address: ServerAddress, caPem: string | undefined): Promise<ClientConn> {
  const { host: hostname, port } = address;
  try {
    if (caPem === undefined) return await Deno.connect({ hostname, port, transport: "tcp" });
    const conn = await Deno.connectTls({ hostname, port, caCerts: [caPem] });
    try {
      await conn.handshake();
    } catch (error) {
      conn.close();
      throw error;
    }
    return conn;
  } catch (error) {
    throw new ClientConnectError(
      `cannot connect to ${formatAddress(address)}: ${networkErrorReason(error)}`,
    );
  }
}

/**
 * Sends `input` while copying every reply byte to stdout, half-closes at its end, and returns
 * once the server has closed. Reading while writing keeps a long input from stalling on
 * replies the server cannot send.
 */
async function exchange(conn: ClientConn, input: ReadableStream<Uint8Array>): Promise<void> {
  const stdout = Deno.stdout.writable.getWriter();
  const copying = forEachChunk(conn, (chunk) => stdout.write(chunk));
  try {
    for await (const chunk of input) await writeAll(conn, chunk);
    await conn.closeWrite();
  } catch (error) {
    // A server that closed before taking every line still sent replies worth printing.
    if (!isClosedByPeer(error)) throw error;
  }
  await copying;
  stdout.releaseLock();
}

/**
 * The interactive session: each typed line is read by readTypedLine and sent, replies are
 * shown as they come; `quit` or end of input half-closes and waits for the last replies; the
 * server closing ends it too.
 */
async function converse(
  conn: ClientConn,
  address: ServerAddress,
  clockNs: () => bigint,
): Promise<void> {
  const stdout = Deno.stdout.writable.getWriter();
  const show = (text: string) => stdout.write(new TextEncoder().encode(text));
  await show(
    `connected to ${formatAddress(address)}; iamat ID LAT LNG, whatsat ID RADIUS_KM BOUND, ` +
      "any protocol line, quit\n",
  );
  const framer = new ReplyFramer();
  const decoder = new TextDecoder();
  const showing = forEachChunk(conn, async (chunk) => {
    for (const reply of framer.receive(decoder.decode(chunk, { stream: true }))) await show(reply);
  }).then(() => show(`${framer.rest()}${decoder.decode()}`));
  const typedDecoder = new TextDecoder();
  /** Acts on one typed line; false once the user quits. */
  const act = async (typed: string): Promise<boolean> => {
    // The splitter keeps bytes as wire text; a terminal types UTF-8.
    const command = readTypedLine(typedDecoder.decode(encodeWireText(typed)), clockNs());
    if (command.kind === "quit") return false;
    if (command.kind === "mistake") console.error(command.message);
    else {
      framer.expect(command.line, command.readable);
      await writeAll(conn, new TextEncoder().encode(`${command.line}\n`));
    }
    return true;
  };
  const typing = async () => {
    const splitter = new LineSplitter(TYPED_LINE_BYTES_MAX);
    for await (const chunk of Deno.stdin.readable) {
      for (const typed of splitter.push(chunk)) if (!await act(typed.text)) return;
    }
    const last = splitter.end();
    if (last !== undefined) await act(last.text);
  };
  const serverClosedFirst = await Promise.race([
    typing().then(() => false),
    showing.then(() => true),
  ]);
  if (serverClosedFirst) {
    await show("(connection closed by the server)\n");
  } else {
    await conn.closeWrite();
    await showing;
  }
  stdout.releaseLock();
}

/** Reads `conn` until the server closes, handing each chunk to `use` before the next read. */
async function forEachChunk(
  conn: ClientConn,
  use: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const buffer = new Uint8Array(READ_CHUNK_BYTES);
  while (true) {
    const count = await conn.read(buffer);
    if (count === null) return;
    await use(buffer.slice(0, count));
  }
}

function isClosedByPeer(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.NotConnected;
}

async function writeAll(conn: ClientConn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}
