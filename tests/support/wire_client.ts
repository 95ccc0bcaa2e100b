/**
 * A raw TCP client for tests that speak herd's line protocol byte for byte. Text is "wire
 * text" (latin1: one UTF-16 code unit 0–255 per byte) both ways, so any byte a test sends
 * or receives survives unchanged. Every read has a deadline; nothing here waits forever.
 */

/** How long a read waits for bytes unless told otherwise. */
export const READ_TIMEOUT_MS_DEFAULT = 10_000;
/** Bytes held unread before the client refuses to buffer more (a runaway server). */
const RECEIVED_BYTES_MAX = 64 * 1024 * 1024;
const READ_CHUNK_BYTES = 64 * 1024;

/** Wire text → bytes; throws on a code unit above 255 (a test bug, not a wire byte). */
export function wireBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code > 0xff) throw new RangeError(`not wire text: code unit ${code} at ${index}`);
    bytes[index] = code;
  }
  return bytes;
}

/** Bytes → wire text, one code unit per byte. */
export function wireText(bytes: Uint8Array): string {
  let text = "";
  const step = 8192;
  for (let start = 0; start < bytes.length; start += step) {
    text += String.fromCharCode(...bytes.subarray(start, start + step));
  }
  return text;
}

/** A WHATSAT reply split into its parts. */
export interface WhatsatReply {
  /** The stored AT line, without its `\n`. */
  atLine: string;
  /** The body line as sent (UTF-8 bytes shown as wire text), without its `\n`. */
  bodyText: string;
  /** The body parsed as JSON (decoded as UTF-8). */
  body: PlacesBodyJson;
  /** The whole reply as received, ending in `\n\n`. */
  raw: string;
}

/** The legacy Nearby Search shape, as loosely as a test needs it. */
export interface PlacesBodyJson {
  html_attributions: unknown[];
  results: Array<Record<string, unknown>>;
  status: string;
  next_page_token?: string;
  [field: string]: unknown;
}

/** Thrown when a read's deadline passes; carries what had arrived so far. */
export class ReadTimeoutError extends Error {
  override name = "ReadTimeoutError";
}

export interface ReadOptions {
  timeoutMs?: number;
}

/**
 * One client connection. Reads are served from a buffer filled by a single background
 * reader, so a read that times out loses nothing.
 *
 * @example
 * ```ts
 * await using client = await WireClient.connect(port);
 * await client.write("IAMAT kiwi +34-118 1700000000\n");
 * const at = await client.readLine();
 * ```
 */
export class WireClient implements AsyncDisposable {
  readonly #conn: Deno.TcpConn | Deno.TlsConn;
  #received = new Uint8Array(0);
  #eof = false;
  #readError: unknown = undefined;
  #wake: (() => void) | undefined;
  readonly #pump: Promise<void>;
  #closed = false;

  private constructor(conn: Deno.TcpConn | Deno.TlsConn) {
    this.#conn = conn;
    this.#pump = this.#readLoop();
  }

  /** Connects to a loopback port (or `host`); rejects if nothing listens there. */
  static async connect(port: number, host = "127.0.0.1"): Promise<WireClient> {
    const conn = await Deno.connect({ hostname: host, port, transport: "tcp" });
    conn.setNoDelay(true);
    return new WireClient(conn);
  }

  /**
   * Connects over TLS to a loopback port (or `host`), trusting only `caCert` (PEM) and
   * checking the server's certificate names the host, presenting `cert` and `key` when
   * given (as a neighbour does); rejects if the handshake fails.
   */
  static async connectTls(
    port: number,
    options: { caCert: string; host?: string; cert?: string; key?: string },
  ): Promise<WireClient> {
    const { caCert, host, cert, key } = options;
    const conn = await Deno.connectTls({
      hostname: host ?? "127.0.0.1",
      port,
      caCerts: [caCert],
      ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
    });
    await conn.handshake();
    return new WireClient(conn);
  }

  /**
   * Takes the next connection on `listener`, for a test that poses as a server (e.g. a
   * neighbour a server dials); rejects if none comes before the deadline.
   */
  static async accept(listener: Deno.TcpListener, options: ReadOptions = {}): Promise<WireClient> {
    const timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS_DEFAULT;
    const accepted = listener.accept();
    accepted.catch(() => {}); // after a timeout, closing the listener rejects it: expected
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ReadTimeoutError(`no connection within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const conn = await Promise.race([accepted, timedOut]);
      conn.setNoDelay(true);
      return new WireClient(conn);
    } finally {
      clearTimeout(timer);
    }
  }

  /** True once the server closed its side and every byte has been read from the buffer. */
  get isAtEof(): boolean {
    return this.#eof && this.#received.length === 0;
  }

  /** True once the server closed its side (bytes may still be buffered). */
  get serverClosed(): boolean {
    return this.#eof;
  }

  /** Writes wire text or bytes, all of it. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? wireBytes(data) : data;
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  /** Half-closes: the server sees end of input; replies can still be read. */
  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  /** Reads one line, without its `\n`. */
  async readLine(options: ReadOptions = {}): Promise<string> {
    const bytes = await this.#readThrough(
      (buffer) => indexOfSequence(buffer, NEWLINE_BYTES),
      1,
      options,
      "a line",
    );
    return wireText(bytes.subarray(0, bytes.length - 1));
  }

  /** Reads one line and checks it is an AT reply (`AT ` …); returns it without `\n`. */
  async readAtReply(options: ReadOptions = {}): Promise<string> {
    const line = await this.readLine(options);
    if (!line.startsWith("AT ")) {
      throw new Error(`expected an AT line, got ${JSON.stringify(line)}`);
    }
    return line;
  }

  /** Reads a whole WHATSAT reply: AT line, JSON body line, empty line (ends in `\n\n`). */
  async readWhatsatReply(options: ReadOptions = {}): Promise<WhatsatReply> {
    const bytes = await this.#readThrough(
      (buffer) => indexOfSequence(buffer, EMPTY_LINE_BYTES),
      2,
      options,
      "a WHATSAT reply",
    );
    const raw = wireText(bytes);
    const firstNewline = raw.indexOf("\n");
    const atLine = raw.slice(0, firstNewline);
    const bodyText = raw.slice(firstNewline + 1, raw.length - 2);
    if (!atLine.startsWith("AT ")) {
      throw new Error(`WHATSAT reply does not start with an AT line: ${JSON.stringify(raw)}`);
    }
    const bodyBytes = bytes.subarray(firstNewline + 1, bytes.length - 2);
    let body: PlacesBodyJson;
    try {
      body = JSON.parse(new TextDecoder().decode(bodyBytes));
    } catch (error) {
      throw new Error(`WHATSAT body is not JSON (${error}): ${JSON.stringify(raw.slice(0, 500))}`);
    }
    return { atLine, bodyText, body, raw };
  }

  /** Reads exactly `count` bytes as wire text. */
  async readBytes(count: number, options: ReadOptions = {}): Promise<string> {
    const bytes = await this.#readThrough(
      (buffer) => (buffer.length >= count ? count - 1 : -1),
      1,
      options,
      `${count} bytes`,
    );
    return wireText(bytes);
  }

  /** Reads everything until the server closes; rejects if it has not closed by the deadline. */
  async readUntilEof(options: ReadOptions = {}): Promise<string> {
    await this.#waitFor(() => this.#eof, options, "end of stream");
    const rest = this.#received;
    this.#received = new Uint8Array(0);
    return wireText(rest);
  }

  /** Whatever has arrived so far, without waiting or consuming it. */
  peekBuffered(): string {
    return wireText(this.#received);
  }

  /** Closes the connection (both directions) and waits for the reader to stop. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by a failed write or read: nothing left to release.
    }
    await this.#pump;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #readLoop(): Promise<void> {
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    try {
      while (true) {
        const count = await this.#conn.read(chunk);
        if (count === null) break;
        if (this.#received.length + count > RECEIVED_BYTES_MAX) {
          throw new Error(`more than ${RECEIVED_BYTES_MAX} bytes unread`);
        }
        const grown = new Uint8Array(this.#received.length + count);
        grown.set(this.#received);
        grown.set(chunk.subarray(0, count), this.#received.length);
        this.#received = grown;
        this.#wake?.();
      }
    } catch (error) {
      // A reset from the server reads as end of stream; a close by us is not an error.
      if (!this.#closed && !(error instanceof Deno.errors.ConnectionReset)) {
        this.#readError = error;
      }
    }
    this.#eof = true;
    this.#wake?.();
  }

  /** Consumes bytes through the match `find` reports (index of its first byte; `length`). */
  async #readThrough(
    find: (buffer: Uint8Array) => number,
    matchLength: number,
    options: ReadOptions,
    what: string,
  ): Promise<Uint8Array> {
    let at = -1;
    await this.#waitFor(
      () => {
        at = find(this.#received);
        return at !== -1;
      },
      options,
      what,
    );
    const end = at + matchLength;
    const taken = this.#received.slice(0, end);
    this.#received = this.#received.slice(end);
    return taken;
  }

  async #waitFor(ready: () => boolean, options: ReadOptions, what: string): Promise<void> {
    const timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS_DEFAULT;
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.#readError !== undefined) throw this.#readError;
      if (this.#eof) {
        throw new Error(
          `connection closed while waiting for ${what}; buffered: ${
            JSON.stringify(this.peekBuffered().slice(0, 500))
          }`,
        );
      }
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) {
        throw new ReadTimeoutError(
          `no ${what} within ${timeoutMs} ms; buffered: ${
            JSON.stringify(this.peekBuffered().slice(0, 500))
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

const NEWLINE_BYTES = new Uint8Array([0x0a]);
const EMPTY_LINE_BYTES = new Uint8Array([0x0a, 0x0a]);

function indexOfSequence(buffer: Uint8Array, sequence: Uint8Array): number {
  outer: for (let start = 0; start + sequence.length <= buffer.length; start++) {
    for (let offset = 0; offset < sequence.length; offset++) {
      if (buffer[start + offset] !== sequence[offset]) continue outer;
    }
    return start;
  }
  return -1;
}

/** Lines per write when a helper below sends many. */
const LINES_PER_WRITE = 1000;
/** WHATSATs per write when reading what a server holds: bounds the replies buffered. */
const LOOKUPS_PER_WRITE = 100;

/**
 * Sends `lines` (each without `\n`; each must get a one-line reply, as IAMAT does) on a new
 * connection, writing while it reads, and returns the replies in order. Built for bulk
 * loads of many thousand lines, which WireClient's line-at-a-time reads would make slow.
 * Rejects if the server closes or `timeoutMs` (default 60 s) passes first.
 */
export async function exchangeOneLineReplies(
  port: number,
  lines: readonly string[],
  options: ReadOptions = {},
): Promise<string[]> {
  const replies: string[] = [];
  await streamOneLineReplies(port, {
    count: lines.length,
    lineOf: (index) => lines[index],
    onReply: (_, reply) => void replies.push(reply),
    timeoutMs: options.timeoutMs,
  });
  return replies;
}

/**
 * {@link exchangeOneLineReplies} for loads too big to hold: line `index` is `lineOf(index)`,
 * and each reply goes to `onReply` (which may throw to fail the exchange) and is not kept.
 */
export async function streamOneLineReplies(
  port: number,
  options: {
    count: number;
    lineOf: (index: number) => string;
    onReply: (index: number, reply: string) => void;
    timeoutMs?: number;
  },
): Promise<void> {
  const { count, lineOf, onReply } = options;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  let replies = 0;
  const writing = (async () => {
    for (let start = 0; start < count; start += LINES_PER_WRITE) {
      let text = "";
      for (let index = start; index < Math.min(count, start + LINES_PER_WRITE); index++) {
        text += `${lineOf(index)}\n`;
      }
      const bytes = wireBytes(text);
      for (let written = 0; written < bytes.length;) {
        written += await conn.write(bytes.subarray(written));
      }
    }
  })();
  writing.catch(() => {}); // a failed write also ends the reads below, which report it
  try {
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    let partial = "";
    while (replies < count) {
      const read = await conn.read(chunk);
      if (read === null) throw new Error("the server closed the connection");
      const parts = (partial + wireText(chunk.subarray(0, read))).split("\n");
      partial = parts.pop()!;
      for (const part of parts) onReply(replies++, part);
    }
    if (partial !== "") throw new Error(`bytes after the last reply: ${partial.slice(0, 200)}`);
    await writing;
  } catch (error) {
    const why = timedOut ? `not done within ${timeoutMs} ms` : String(error);
    throw new Error(`${replies} of ${count} replies, then ${why}`);
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}

/**
 * The AT line the server on `port` (of `host`, default loopback) holds for each of
 * `clientIds` (undefined where it answers `?`): the first line of a WHATSAT reply (1 km, one
 * result), pipelined in writes of a hundred lookups.
 */
export async function heldAtLines(
  port: number,
  clientIds: readonly string[],
  host = "127.0.0.1",
): Promise<Array<string | undefined>> {
  await using client = await WireClient.connect(port, host);
  return await readHeldAtLines(client, clientIds);
}

/** {@link heldAtLines} on a connection the caller made (e.g. over TLS). */
export async function readHeldAtLines(
  client: WireClient,
  clientIds: readonly string[],
): Promise<Array<string | undefined>> {
  const held: Array<string | undefined> = [];
  for (let start = 0; start < clientIds.length; start += LOOKUPS_PER_WRITE) {
    const ids = clientIds.slice(start, start + LOOKUPS_PER_WRITE);
    await client.write(ids.map((id) => `WHATSAT ${id} 1 1\n`).join(""));
    for (const _ of ids) {
      const first = await client.readLine();
      if (first.startsWith("? ")) {
        held.push(undefined);
        continue;
      }
      await client.readLine(); // the body
      const end = await client.readLine();
      if (end !== "") throw new Error(`WHATSAT reply does not end in an empty line: ${end}`);
      held.push(first);
    }
  }
  return held;
}
