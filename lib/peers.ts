/**
 * The links to neighbours as a whole: which exist (one per neighbour; of two, the one
 * dialled by the name that sorts first, and of two dialled by the same end the newer), the
 * dialling (again whenever a link is down, with lib/backoff.ts), the handshake (hellos, the
 * version check, with TLS the certificate's names, and with HERD_SECRET the challenge and
 * proofs of lib/peer_auth.ts), and the flood of an accepted update to every link but the
 * one it came from.
 *
 * What happens on a link once it is up — reading, catch-up, watermarks, heartbeats — is
 * lib/peer_link.ts's; the line format is lib/peer_protocol.ts's. Knows nothing of clients.
 *
 * The handshake: the dialler sends `PEER <name> <version>`, the acceptor answers with its
 * own; with a secret each hello is followed by `CHALLENGE <nonce>`, the acceptor proves the
 * secret first (`PROOF <hmac>`) and the dialler proves it only once the acceptor has. Until
 * the link is registered no line of the connection reaches the store; any other line, or
 * one cut at a line limit, fails the handshake. With TLS the dialler has checked the
 * acceptor's certificate before any line, and the acceptor takes a hello only on a
 * connection whose certificate names the hello's server.
 */
import { type Deadline, raceAbort, type WaitClock } from "./abortable.ts";
import { backoffDelayMs } from "./backoff.ts";
import type { ServerAddress } from "./config.ts";
import {
  type ByteConn,
  DenoConnChunks,
  LineConnection,
  type LineConnectionOptions,
  type PeerCertificateCheck,
} from "./connection.ts";
import type { Counters } from "./counters.ts";
import { encodeWireText, type Line } from "./lines.ts";
import { type Logger, showWireText } from "./log.ts";
import type { HerdMetrics } from "./metrics.ts";
import { newNonce, type PeerRole, type PeerSecret } from "./peer_auth.ts";
import { type CatchUpProgress, PeerLink, peerLinkLimits, type Watermark } from "./peer_link.ts";
import {
  EPOCH_BYTES,
  formatPeerLine,
  parsePeerLine,
  PEER_PROTOCOL_VERSION,
  type PeerHello,
  type PeerMessage,
} from "./peer_protocol.ts";
import type { LinkState } from "./server_status.ts";
import type { ClientStore, StoredUpdate } from "./store.ts";
import type { TlsFiles } from "./tls_files.ts";

/** Dial backoff: the first retry within 50 ms, then doubling up to 1.6 s (contract: ≤ 2 s). */
const DIAL_BACKOFF = { firstMs: 50, maxMs: 1600 };
/** From dialling (or accepting) to a registered link: hellos, and proofs with a secret. */
const HANDSHAKE_TIMEOUT_MS = 2000;
/** A link that falls sooner than this is redialled with backoff, not at once. */
const LINK_SHORT_LIVED_MS = 5000;

export interface PeerLinksOptions {
  serverName: string;
  neighbours: readonly string[];
  /** Every server of the config: where to dial a neighbour, and the longest name. */
  addresses: ReadonlyMap<string, ServerAddress>;
  store: ClientStore;
  /** The client line limit, from which the peer line limit follows. */
  lineBytesMax: number;
  /** An idle link sends a heartbeat this often; one silent for 3× this is closed. */
  heartbeatMs: number;
  logger: Logger;
  counters: Counters;
  /** HERD_SECRET: when given, both ends of every link must prove they know it. */
  secret?: PeerSecret;
  /**
   * With TLS: an accepted hello counts only on a connection whose certificate is valid for
   * the CA and names the neighbour it says it is (contract §7).
   */
  certificateRequired?: boolean;
  /** Opens a connection to a neighbour ({@link dialTcp} in a server). */
  dial: (address: ServerAddress) => Promise<ByteConn>;
  /** Timeouts, heartbeats and backoff waits. */
  clock: WaitClock;
  /** Jitter of the dial backoff, in [0, 1). */
  random: () => number;
  /** See PeerLinkOptions.readGate: links are not read while it holds them. */
  readGate?: () => Promise<void> | undefined;
  /** With a monitor: see PeerLinkOptions.metrics. */
  metrics?: HerdMetrics;
}

/** The link to one configured neighbour as a monitor shows it (times on the wall clock). */
export interface PeerLinkReport {
  peer: string;
  state: LinkState;
  /** When the link entered `state`, in ms since the epoch. */
  sinceMs: number;
  /** Who dialled the current (or last) link; null before any came up. */
  dialledBy: string | null;
  /** Totals over every link to this neighbour since this server started. */
  updatesSent: number;
  updatesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** The current link's catch-up; nothing sent or received without one. */
  catchUp: CatchUpProgress;
  /** Why the link last went down or failed to come up; null when it never did. */
  lastError: string | null;
}

/** What is known of one neighbour's links; outlives each of them. */
interface NeighbourRecord {
  state: LinkState;
  sinceMs: number;
  dialledBy: string | null;
  lastError: string | null;
  /** The totals of this neighbour's links that have closed. */
  closed: {
    updatesSent: number;
    updatesReceived: number;
    bytesSent: number;
    bytesReceived: number;
  };
}

const NO_CATCH_UP: CatchUpProgress = { updatesSent: 0, sentAll: false, receivedAll: false };

/** Dials a neighbour over TCP. */
export async function dialTcp(address: ServerAddress): Promise<ByteConn> {
  return new DenoConnChunks(await Deno.connect({ hostname: address.host, port: address.port }));
}

/**
 * A dialler for mutual TLS: presents this server's certificate and checks the neighbour's
 * against the CA and the `host` it is dialled at (an IP or a DNS name). The handshake is
 * finished here, so a refused certificate is the dial's failure, with Deno's reason.
 */
export function tlsDialer(files: TlsFiles): (address: ServerAddress) => Promise<ByteConn> {
  return async (address) => {
    const conn = await Deno.connectTls({
      hostname: address.host,
      port: address.port,
      caCerts: [files.ca],
      cert: files.cert,
      key: files.key,
    });
    try {
      await conn.handshake();
    } catch (error) {
      conn.close();
      throw error;
    }
    return new DenoConnChunks(conn);
  };
}

/** A registered link and the server that dialled it, which decides which of two survives. */
interface Registered {
  link: PeerLink;
  dialledBy: string;
}

export class PeerLinks {
  readonly #options: PeerLinksOptions;
  readonly #epoch = crypto.getRandomValues(new Uint8Array(EPOCH_BYTES)).toHex();
  readonly #links = new Map<string, Registered>();
  readonly #watermarks = new Map<string, Watermark>();
  /** One per configured neighbour, for the monitor. */
  readonly #neighbourRecords = new Map<string, NeighbourRecord>();
  readonly #stopped = new AbortController();
  /** The line and output limits of every link, dialled or accepted. */
  readonly #linkLimits: LineConnectionOptions;

  constructor(options: PeerLinksOptions) {
    this.#options = options;
    const encoder = new TextEncoder();
    const serverNameBytesMax = Math.max(
      ...[...options.addresses.keys()].map((name) => encoder.encode(name).length),
    );
    this.#linkLimits = peerLinkLimits({ lineBytesMax: options.lineBytesMax, serverNameBytesMax });
    for (const peer of options.neighbours) {
      this.#neighbourRecords.set(peer, {
        state: "down",
        sinceMs: Date.now(),
        dialledBy: null,
        lastError: null,
        closed: { updatesSent: 0, updatesReceived: 0, bytesSent: 0, bytesReceived: 0 },
      });
    }
  }

  /** Starts dialling every neighbour; returns at once. */
  start(): void {
    for (const peer of this.#options.neighbours) this.#keepDialling(peer);
  }

  /** Names of the neighbours with a live link. */
  get linkedPeers(): string[] {
    return [...this.#links.keys()];
  }

  /** Every configured neighbour's link, sorted by name. */
  linkReports(): PeerLinkReport[] {
    return [...this.#neighbourRecords.entries()]
      .sort(([a], [b]) => a < b ? -1 : 1)
      .map(([peer, record]) => {
        const live = this.#links.get(peer)?.link;
        const { closed } = record;
        return {
          peer,
          state: record.state,
          sinceMs: record.sinceMs,
          dialledBy: record.dialledBy,
          updatesSent: closed.updatesSent + (live?.updatesSent ?? 0),
          updatesReceived: closed.updatesReceived + (live?.updatesReceived ?? 0),
          bytesSent: closed.bytesSent + (live?.connection.sentBytes ?? 0),
          bytesReceived: closed.bytesReceived + (live?.connection.receivedBytes ?? 0),
          catchUp: live?.catchUp ?? NO_CATCH_UP,
          lastError: record.lastError,
        };
      });
  }

  /** True when `line`, as a connection's first, is a well-formed hello from a neighbour. */
  isNeighbourHello(line: Line): boolean {
    return helloOf([line], this.#options.neighbours).kind === "PEER";
  }

  /**
   * Takes an accepted connection whose first line was a hello (`firstLines`: what the first
   * read brought, under the client limits); resolves once it is a link, or has been closed
   * because the hello, the version or the proof failed.
   */
  async accept(connection: LineConnection, firstLines: Line[]): Promise<void> {
    const { neighbours, logger, counters } = this.#options;
    connection.setLimits(this.#linkLimits);
    const [first, ...rest] = firstLines;
    const hello = helloOf(firstLines, neighbours);
    if (hello.kind === "refused") {
      counters.add("peer_hello_refused");
      logger.warn("refused peer hello {hello} from {remote}: {why}", {
        hello: showWireText(first.text),
        remote: connection.remote,
        why: hello.why,
      });
      connection.close("bad hello");
      return;
    }
    const peer = hello.name;
    const refusal = this.#options.certificateRequired
      ? certificateRefusal(connection.peerCertificate, peer)
      : undefined;
    if (refusal !== undefined) {
      connection.close("authentication failed");
      this.#authenticationFailed({ peer, connection, role: "acceptor", failure: refusal });
      return;
    }
    if (hello.version !== PEER_PROTOCOL_VERSION) {
      // Our hello tells the other end our version, so that its warning names both too.
      connection.sendText(formatPeerLine(this.#hello()));
      this.#refuseVersion(connection, peer, hello.version);
      await connection.drained();
      connection.close("protocol version");
      return;
    }
    if (!this.#shouldKeep(peer, peer)) {
      connection.close("duplicate link");
      return;
    }
    const handshake = new Handshake({
      connection,
      role: "acceptor",
      peer,
      pending: rest,
      deadline: this.#handshakeDeadline(),
    });
    this.#markAttempt(peer, "authenticating");
    this.#sayHello(handshake);
    const failure = await this.#finishHandshake(handshake);
    if (failure !== undefined) this.#markFailed(peer, failure);
  }

  /** Hands an accepted update to every live link but the one it came from. */
  flood(update: StoredUpdate): void {
    const { logger, counters } = this.#options;
    // The same line goes to every link: encoded once, and shown once for the log.
    let message: Uint8Array | undefined;
    let shown: string | undefined;
    for (const { link } of this.#links.values()) {
      if (link.peer === update.fromPeer) continue;
      message ??= encodeWireText(
        formatPeerLine({ kind: "U", seq: update.seq, atLine: update.atLine }),
      );
      link.sendUpdate(message);
      counters.add("floods_sent");
      if (logger.isEnabledFor("info")) {
        shown ??= showWireText(update.atLine);
        logger.info("flood to {peer}: {update}", { peer: link.peer, update: shown });
      }
    }
  }

  /**
   * Stops dialling and closes every link after flushing what was queued for it; a caller
   * that cannot wait for a neighbour that does not read calls `closeAll` after its deadline.
   */
  async stop(): Promise<void> {
    this.#stopped.abort();
    await Promise.all([...this.#links.values()].map(({ link }) => link.connection.drained()));
    this.closeAll();
  }

  /** Closes every link at once. */
  closeAll(): void {
    for (const { link } of this.#links.values()) link.close("server stopping");
  }

  async #keepDialling(peer: string): Promise<void> {
    const { logger, clock, random } = this.#options;
    let retry = 0;
    while (!this.#stopped.signal.aborted) {
      let failure: string | undefined;
      const registered = this.#links.get(peer);
      if (registered !== undefined) {
        const upAtMs = clock.nowMs();
        await registered.link.closed;
        const livedLong = clock.nowMs() - upAtMs >= LINK_SHORT_LIVED_MS;
        if (livedLong) retry = 0;
        // Replaced by a newer link: wait on that one, keeping the backoff unless this lived.
        if (livedLong || this.#links.has(peer)) continue;
        // Down as soon as it was up (e.g. the other end wants a proof this end cannot give):
        // redialling at once would only repeat that, as fast as the network allows.
        failure = "link fell right after it came up";
      } else {
        failure = await this.#dialOnce(peer);
        if (failure === undefined) continue;
        this.#markFailed(peer, failure);
      }
      retry += 1;
      const delayMs = Math.round(backoffDelayMs(retry, random(), DIAL_BACKOFF));
      logger.info("link to {peer} down ({failure}); retry in {delayMs} ms", {
        peer,
        failure,
        delayMs,
      });
      await clock.sleep(delayMs, this.#stopped.signal);
    }
  }

  /** Dials and shakes hands; returns why it failed, or undefined when the link is up. */
  async #dialOnce(peer: string): Promise<string | undefined> {
    const { addresses, dial } = this.#options;
    const deadline = this.#handshakeDeadline();
    this.#markAttempt(peer, "connecting");
    let failure = "connect timed out";
    const conn = await raceAbort(
      dial(addresses.get(peer)!).catch((error) => {
        failure = error instanceof Error ? error.message : String(error);
        throw error;
      }),
      deadline.signal,
      () => undefined,
      (late) => late.close(),
    );
    if (conn === undefined) {
      deadline.clear();
      return failure;
    }
    const connection = new LineConnection(conn, this.#linkLimits);
    this.#markAttempt(peer, "authenticating");
    const handshake = new Handshake({ connection, role: "dialler", peer, pending: [], deadline });
    this.#sayHello(handshake);
    let reply: PeerHello;
    try {
      reply = await handshake.next("PEER");
    } catch (error) {
      if (!(error instanceof HandshakeFailure)) throw error;
      connection.close("bad hello reply");
      return error.message;
    }
    if (reply.name !== peer) {
      connection.close("bad hello reply");
      return "unexpected hello reply";
    }
    if (reply.version !== PEER_PROTOCOL_VERSION) {
      this.#refuseVersion(connection, peer, reply.version);
      connection.close("protocol version");
      return `protocol version ${reply.version}`;
    }
    return await this.#finishHandshake(handshake);
  }

  /** A dial or handshake under way: shown unless a link to `peer` is up meanwhile. */
  #markAttempt(peer: string, state: "connecting" | "authenticating"): void {
    if (!this.#links.has(peer)) this.#setState(peer, state);
  }

  /** A dial or handshake failed: the link is down for `why`, unless another is up. */
  #markFailed(peer: string, why: string): void {
    if (this.#links.has(peer)) return;
    this.#neighbourRecords.get(peer)!.lastError = why;
    this.#setState(peer, "down");
  }

  #setState(peer: string, state: LinkState): void {
    const record = this.#neighbourRecords.get(peer)!;
    if (record.state === state) return;
    record.state = state;
    record.sinceMs = Date.now();
  }

  #hello(): PeerHello {
    return { kind: "PEER", name: this.#options.serverName, version: PEER_PROTOCOL_VERSION };
  }

  #refuseVersion(connection: LineConnection, peer: string, version: string): void {
    this.#options.counters.add("peer_version_refused");
    this.#options.logger.warn(
      "no link with {peer} at {remote}: it speaks peer protocol version {theirs}, this " +
        "server version {ours}",
      { peer, remote: connection.remote, theirs: version, ours: PEER_PROTOCOL_VERSION },
    );
  }

  /**
   * Aborts when a handshake started now has taken too long, or the server stops; cleared
   * when the handshake ends, so no wait outlives it.
   */
  #handshakeDeadline(): Deadline {
    const expired = new AbortController();
    const ended = new AbortController();
    const waitOver = AbortSignal.any([ended.signal, this.#stopped.signal]);
    this.#options.clock.sleep(HANDSHAKE_TIMEOUT_MS, waitOver).then(() => {
      if (!ended.signal.aborted) expired.abort();
    });
    return { signal: expired.signal, clear: () => ended.abort() };
  }

  /** Sends our hello, and with a secret our challenge with it. */
  #sayHello(handshake: Handshake): void {
    const challenge = this.#options.secret === undefined
      ? ""
      : formatPeerLine({ kind: "CHALLENGE", nonce: handshake.selfNonce });
    handshake.connection.sendText(formatPeerLine(this.#hello()) + challenge);
  }

  /**
   * After the hellos: with a secret, the proofs both ways; then the link is registered
   * unless a better one to the same peer is up. Returns why it failed, or undefined.
   */
  async #finishHandshake(handshake: Handshake): Promise<string | undefined> {
    const { serverName, secret } = this.#options;
    const { connection, role, peer } = handshake;
    try {
      if (secret !== undefined) await this.#authenticate(handshake, secret);
      if (connection.isClosed) throw new HandshakeFailure(handshake.endedWhy);
    } catch (error) {
      if (!(error instanceof HandshakeFailure)) throw error;
      connection.close("authentication failed");
      if (this.#stopped.signal.aborted) return "server stopping";
      this.#authenticationFailed({
        peer,
        connection,
        role,
        failure: error.message,
        advice: "do both ends have the same HERD_SECRET?",
      });
      return `authentication failed: ${error.message}`;
    }
    const rest = handshake.finish();
    const dialledBy = role === "dialler" ? serverName : peer;
    if (!this.#shouldKeep(peer, dialledBy)) {
      connection.close("duplicate link");
      return undefined;
    }
    this.#register({ peer, connection, dialledBy, pendingLines: rest });
    return undefined;
  }

  /** Counts and logs a neighbour that did not prove who it is (by proof or certificate). */
  #authenticationFailed(
    failed: {
      peer: string;
      connection: LineConnection;
      role: PeerRole;
      failure: string;
      advice?: string;
    },
  ): void {
    const { peer, connection, role, failure, advice } = failed;
    this.#options.counters.add("peer_auth_failed");
    this.#options.logger.warn(
      `authentication of {peer} at {remote} failed ({role} side): {failure}${
        advice === undefined ? "" : `; ${advice}`
      }`,
      { peer, remote: connection.remote, role, failure },
    );
  }

  /**
   * Exchanges proofs of the secret; throws HandshakeFailure when the peer's is missing or
   * wrong. The acceptor proves first; the dialler proves only once the acceptor has, so a
   * dialler never hands a proof to an end that has not shown it knows the secret.
   */
  async #authenticate(handshake: Handshake, secret: PeerSecret): Promise<void> {
    const challenge = await handshake.next("CHALLENGE");
    const exchange = {
      role: handshake.role,
      selfName: this.#options.serverName,
      peerName: handshake.peer,
      selfNonce: handshake.selfNonce,
      peerNonce: challenge.nonce,
    };
    const sendProof = async () => {
      const proof = await secret.prove(exchange);
      handshake.connection.sendText(formatPeerLine({ kind: "PROOF", proof }));
    };
    if (exchange.role === "acceptor") await sendProof();
    const proof = await handshake.next("PROOF");
    if (!(await secret.verify(exchange, proof.proof))) throw new HandshakeFailure("wrong proof");
    if (exchange.role === "dialler") await sendProof();
  }

  /**
   * Whether a new link to `peer` dialled by `dialledBy` should be kept. With a live link
   * already there, both ends keep the one dialled by the name that sorts first; of two
   * dialled by the same end, the newer wins (the older one is stale).
   */
  #shouldKeep(peer: string, dialledBy: string): boolean {
    const existing = this.#links.get(peer);
    if (existing === undefined || existing.link.connection.isClosed) return true;
    if (existing.dialledBy === dialledBy) return true;
    const firstName = [this.#options.serverName, peer].sort()[0];
    return dialledBy === firstName;
  }

  #register(
    registration: {
      peer: string;
      connection: LineConnection;
      dialledBy: string;
      pendingLines: Line[];
    },
  ): void {
    const { peer, connection, dialledBy, pendingLines } = registration;
    const { store, heartbeatMs, clock, readGate, logger, counters } = this.#options;
    this.#links.get(peer)?.link.close("replaced by a newer link");
    const link = new PeerLink({
      peer,
      connection,
      pendingLines,
      store,
      epoch: this.#epoch,
      watermarks: this.#watermarks,
      heartbeatMs,
      clock,
      readGate,
      onStored: (update) => this.flood(update),
      logger,
      counters,
      metrics: this.#options.metrics,
    });
    const registered = { link, dialledBy };
    this.#links.set(peer, registered);
    const record = this.#neighbourRecords.get(peer)!;
    record.dialledBy = dialledBy;
    this.#setState(peer, "up");
    counters.add("peer_links_up");
    logger.info("link to {peer} up ({remote}, dialled by {dialledBy})", {
      peer,
      remote: connection.remote,
      dialledBy,
    });
    link.closed.then((reason) => {
      const { closed } = record;
      closed.updatesSent += link.updatesSent;
      closed.updatesReceived += link.updatesReceived;
      closed.bytesSent += link.connection.sentBytes;
      closed.bytesReceived += link.connection.receivedBytes;
      if (this.#links.get(peer) !== registered) return;
      this.#links.delete(peer);
      record.lastError = reason;
      this.#setState(peer, "down");
      logger.info("link to {peer} down: {reason}", { peer, reason });
    });
    link.start();
  }
}

/** Why a handshake failed, for the log; the message never holds the secret or a proof. */
class HandshakeFailure extends Error {}

/** The messages a handshake waits for, and each one's type. */
type HandshakeKind = "PEER" | "CHALLENGE" | "PROOF";
type HandshakeMessage<Kind extends HandshakeKind> = Extract<PeerMessage, { kind: Kind }>;

interface HandshakeOptions {
  connection: LineConnection;
  role: PeerRole;
  /** The neighbour the other end says it is (proven only once its proof is checked). */
  peer: string;
  /** Lines already read beyond the hello. */
  pending: Line[];
  /** Closes the connection when it aborts; cleared when the handshake ends. */
  deadline: Deadline;
}

/**
 * One connection from its hello to its registration as a link: its messages one at a time,
 * and a deadline that closes it when the handshake takes too long.
 */
class Handshake {
  readonly connection: LineConnection;
  readonly role: PeerRole;
  readonly peer: string;
  /** Our challenge; sent only when links are authenticated. */
  readonly selfNonce = newNonce();
  readonly #deadline: Deadline;
  readonly #closeOnDeadline = () => this.connection.close("handshake timed out");
  #pending: Line[];

  constructor(options: HandshakeOptions) {
    this.connection = options.connection;
    this.role = options.role;
    this.peer = options.peer;
    this.#pending = options.pending;
    this.#deadline = options.deadline;
    const { signal } = this.#deadline;
    if (signal.aborted) this.#closeOnDeadline();
    else signal.addEventListener("abort", this.#closeOnDeadline, { once: true });
    this.connection.onClose(() => this.#deadline.clear());
  }

  /** Why the connection ended before the handshake did. */
  get endedWhy(): string {
    return this.#deadline.signal.aborted ? "handshake timed out" : "closed during handshake";
  }

  /** The next message, which must be a `kind` message; else throws HandshakeFailure. */
  async next<Kind extends HandshakeKind>(kind: Kind): Promise<HandshakeMessage<Kind>> {
    while (this.#pending.length === 0) {
      const lines = this.connection.isClosed ? null : await this.connection.readLines();
      if (lines === null) throw new HandshakeFailure(`${this.endedWhy} before ${kind}`);
      this.#pending = lines;
    }
    const line = this.#pending.shift()!;
    if (line.tooLong) throw new HandshakeFailure(`expected ${kind}, got a line over the limit`);
    const message = parsePeerLine(line.text);
    if (message.kind === kind) return message as HandshakeMessage<Kind>;
    // Only the kind is shown: the rest might be a proof, which a log must not hold.
    const got = message.kind === "invalid"
      ? `an invalid line (${message.reason})`
      : `"${message.kind}"`;
    throw new HandshakeFailure(`expected ${kind}, got ${got}`);
  }

  /** Stops the deadline; returns the lines already read beyond the handshake. */
  finish(): Line[] {
    this.#deadline.signal.removeEventListener("abort", this.#closeOnDeadline);
    this.#deadline.clear();
    return this.#pending;
  }
}

/** The hello of a connection's first read, or why it is refused. */
function helloOf(
  firstLines: Line[],
  neighbours: readonly string[],
): PeerHello | { kind: "refused"; why: string } {
  // A real peer sends nothing long before the handshake ends: a cut line is not one.
  if (firstLines.some((line) => line.tooLong)) {
    return { kind: "refused", why: "a line cut at the client line limit" };
  }
  const hello = parsePeerLine(firstLines[0].text);
  if (hello.kind === "invalid") return { kind: "refused", why: `malformed (${hello.reason})` };
  if (hello.kind !== "PEER") return { kind: "refused", why: `${hello.kind} is not a hello` };
  if (!neighbours.includes(hello.name)) return { kind: "refused", why: "not a neighbour" };
  return hello;
}

/**
 * Why an accepted connection's certificate does not let it be `peer`, or undefined when it
 * does: it must be valid for the CA and carry `peer` as its CN or a DNS alternative name.
 */
export function certificateRefusal(
  check: PeerCertificateCheck | undefined,
  peer: string,
): string | undefined {
  if (check === undefined) return "the connection is not TLS";
  if ("refused" in check) return `TLS ${check.refused}`;
  if (check.names.includes(peer)) return undefined;
  return `its certificate names ${check.names.join(", ") || "nothing"}, not ${peer}`;
}
