/**
 * Links to neighbours: dial each one and keep dialling while it is down (exponential backoff
 * with jitter), take links they dial, flood accepted updates, and catch a neighbour up when a
 * link comes (back) up. Knows the store and its own small line protocol; nothing of clients.
 *
 * After `PEER <name> 1` each way, each end sends `HAVE <its epoch> <the epoch it knows of the
 * other> <the other's last sequence number it holds>`. The other end then streams what
 * changed since — `U <seq> <AT line>` in batches that yield — and `SYNCED <seq>`; live floods
 * are `U` lines too. An epoch is one run of a server, so a restarted end gets everything.
 *
 * With HERD_SECRET each hello is followed by `CHALLENGE <nonce>`, and both ends prove the
 * secret (`PROOF <hmac>`, see peer_auth.ts) before the link is registered: until then no line
 * of the connection reaches the store, and any other line fails the handshake.
 */
import { raceAbort, sleep } from "./abortable.ts";
import type { ServerAddress } from "./config.ts";
import { DenoConnChunks, LineConnection } from "./connection.ts";
import type { Counters } from "./counters.ts";
import { encodeWireText, type Line } from "./lines.ts";
import { type Logger, showWireText } from "./log.ts";
import { isNonce, newNonce, type PeerRole, type PeerSecret } from "./peer_auth.ts";
import { parseAtLine, splitFields } from "./protocol.ts";
import type { ClientStore, StoredUpdate } from "./store.ts";

export const PEER_PROTOCOL_VERSION = "1";
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1600;
/** From dialling (or accepting) to a registered link: hellos, and proofs with a secret. */
const HANDSHAKE_TIMEOUT_MS = 2000;
/** A link that falls sooner than this is redialled with backoff, not at once. */
const LINK_SHORT_LIVED_MS = 5000;
const CATCH_UP_BATCH_UPDATES = 512;
const PEER_OUTPUT_BYTES_MAX = 64 * 1024 * 1024;
/** Room beyond a client line for the AT line's server, skew and sequence number. */
const PEER_LINE_BYTES_EXTRA = 512;

export interface PeerLinksOptions {
  serverName: string;
  neighbours: readonly string[];
  addresses: ReadonlyMap<string, ServerAddress>;
  store: ClientStore;
  lineBytesMax: number;
  logger: Logger;
  counters: Counters;
  /** HERD_SECRET: when given, both ends of every link must prove they know it. */
  secret?: PeerSecret;
  /** Opens a TCP connection; tests may pass their own. */
  dial?: (address: ServerAddress) => Promise<Deno.Conn>;
  random?: () => number;
}

/** One live link to a neighbour. */
interface PeerLink {
  peer: string;
  connection: LineConnection;
  /** The server that dialled this connection: decides which of two links survives. */
  dialledBy: string;
  /** True once the neighbour said SYNCED: from then on its `U` lines advance the watermark. */
  receivedSynced: boolean;
  /**
   * The highest sequence number of a `U` line received on this link. Live floods can come
   * before SYNCED, past the catch-up's end; SYNCED makes the watermark this, if higher.
   */
  seqReceivedMax: number;
}

/** How far this server has the neighbour's change stream, within one neighbour epoch. */
interface Watermark {
  epoch: string;
  seq: number;
}

export class PeerLinks {
  readonly #options: PeerLinksOptions;
  readonly #epoch = crypto.randomUUID().slice(0, 8);
  readonly #links = new Map<string, PeerLink>();
  readonly #watermarks = new Map<string, Watermark>();
  readonly #linkDownWaiters = new Map<string, () => void>();
  readonly #stopped = new AbortController();

  constructor(options: PeerLinksOptions) {
    this.#options = options;
  }

  /** Starts dialling every neighbour; returns at once. */
  start(): void {
    for (const peer of this.#options.neighbours) this.#keepDialling(peer);
  }

  /** Names of the neighbours with a live link. */
  get linkedPeers(): string[] {
    return [...this.#links.keys()];
  }

  /** True when a connection's first line is a peer hello rather than a client line. */
  static isHello(line: string): boolean {
    return splitFields(line)[0] === "PEER";
  }

  /**
   * Takes an accepted connection whose first line was a hello; resolves once it is a link,
   * or has been closed because the hello or the proof failed.
   */
  async accept(connection: LineConnection, hello: string, rest: Line[]): Promise<void> {
    const { neighbours, logger, counters } = this.#options;
    const [, peer, version, ...extra] = splitFields(hello);
    if (!neighbours.includes(peer) || version !== PEER_PROTOCOL_VERSION || extra.length > 0) {
      counters.add("peer_hello_refused");
      logger.warn("refused peer hello {hello} from {remote}: not a neighbour or version", {
        hello: showWireText(hello),
        remote: connection.remote,
      });
      connection.close("bad hello");
      return;
    }
    if (!this.#shouldKeep(peer, peer)) {
      connection.close("duplicate link");
      return;
    }
    const handshake = new Handshake(connection, "acceptor", peer, rest, this.#handshakeDeadline());
    this.#sayHello(handshake);
    await this.#finishHandshake(handshake);
  }

  /** Hands an accepted update to every live link but the one it came from. */
  flood(update: StoredUpdate): void {
    const { logger, counters } = this.#options;
    // The same line goes to every link: encoded once, and shown once for the log.
    let message: Uint8Array | undefined;
    let shown: string | undefined;
    for (const link of this.#links.values()) {
      if (link.peer === update.fromPeer) continue;
      message ??= encodeWireText(`U ${update.seq} ${update.atLine}\n`);
      link.connection.send(message);
      counters.add("floods_sent");
      if (logger.isEnabledFor("info")) {
        shown ??= showWireText(update.atLine);
        logger.info(`flood to ${link.peer}: ${shown}`);
      }
    }
  }

  /**
   * Stops dialling and closes every link after flushing what was queued for it; a caller
   * that cannot wait for a neighbour that does not read calls `closeAll` after its deadline.
   */
  async stop(): Promise<void> {
    this.#stopped.abort();
    await Promise.all([...this.#links.values()].map((link) => link.connection.drained()));
    this.closeAll();
  }

  /** Closes every link at once. */
  closeAll(): void {
    for (const link of this.#links.values()) link.connection.close("server stopping");
  }

  async #keepDialling(peer: string): Promise<void> {
    const { logger, random = Math.random } = this.#options;
    let backoffMs = BACKOFF_FIRST_MS;
    while (!this.#stopped.signal.aborted) {
      let failure: string | undefined;
      if (this.#links.has(peer)) {
        const upAtMs = performance.now();
        await new Promise<void>((resolve) => this.#linkDownWaiters.set(peer, resolve));
        if (this.#links.has(peer) || performance.now() - upAtMs >= LINK_SHORT_LIVED_MS) {
          backoffMs = BACKOFF_FIRST_MS;
          continue;
        }
        // Down as soon as it was up (e.g. the other end wants a proof this end cannot give):
        // redialling at once would only repeat that, as fast as the network allows.
        failure = "link fell right after it came up";
      } else {
        failure = await this.#dialOnce(peer);
        if (failure === undefined) continue;
      }
      // Full jitter over the upper half keeps neighbours from dialling in lock-step.
      const delayMs = Math.round(backoffMs / 2 + (random() * backoffMs) / 2);
      logger.info("link to {peer} down ({failure}); retry in {delayMs} ms", {
        peer,
        failure,
        delayMs,
      });
      await sleep(delayMs, this.#stopped.signal);
      backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
    }
  }

  /** Dials and shakes hands; returns why it failed, or undefined when the link is up. */
  async #dialOnce(peer: string): Promise<string | undefined> {
    const { addresses, lineBytesMax } = this.#options;
    const dial = this.#options.dial ??
      ((address: ServerAddress) => Deno.connect({ hostname: address.host, port: address.port }));
    const deadline = this.#handshakeDeadline();
    let failure = "connect timed out";
    const conn = await raceAbort(
      dial(addresses.get(peer)!).catch((error) => {
        failure = error instanceof Error ? error.message : String(error);
        throw error;
      }),
      deadline,
      () => undefined,
      (late) => late.close(),
    );
    if (conn === undefined) return failure;
    const connection = new LineConnection(new DenoConnChunks(conn), {
      lineBytesMax: lineBytesMax + PEER_LINE_BYTES_EXTRA,
      outputBytesMax: PEER_OUTPUT_BYTES_MAX,
    });
    const handshake = new Handshake(connection, "dialler", peer, [], deadline);
    this.#sayHello(handshake);
    const reply = await handshake.nextLine();
    if (reply !== `PEER ${peer} ${PEER_PROTOCOL_VERSION}`) {
      connection.close("bad hello reply");
      return reply === undefined ? handshake.endedWhy : "unexpected hello reply";
    }
    return await this.#finishHandshake(handshake);
  }

  /** Aborts when a handshake started now has taken too long, or the server stops. */
  #handshakeDeadline(): AbortSignal {
    return AbortSignal.any([AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS), this.#stopped.signal]);
  }

  /** Sends our hello, and with a secret our challenge with it. */
  #sayHello(handshake: Handshake): void {
    const { serverName, secret } = this.#options;
    const challenge = secret === undefined ? "" : `CHALLENGE ${handshake.selfNonce}\n`;
    handshake.connection.sendText(`PEER ${serverName} ${PEER_PROTOCOL_VERSION}\n${challenge}`);
  }

  /**
   * After the hellos: with a secret, the proofs both ways; then the link is registered
   * unless a better one to the same peer is up. Returns why it failed, or undefined.
   */
  async #finishHandshake(handshake: Handshake): Promise<string | undefined> {
    const { serverName, secret, logger, counters } = this.#options;
    const { connection, role, peer } = handshake;
    try {
      if (secret !== undefined) await this.#authenticate(handshake, secret);
    } catch (error) {
      if (!(error instanceof HandshakeFailure)) throw error;
      connection.close("authentication failed");
      if (this.#stopped.signal.aborted) return "server stopping";
      counters.add("peer_auth_failed");
      logger.warn(
        "authentication of {peer} at {remote} failed ({role} side): {failure}; " +
          "do both ends have the same HERD_SECRET?",
        { peer, remote: connection.remote, role, failure: error.message },
      );
      return `authentication failed: ${error.message}`;
    }
    const rest = handshake.finish();
    const dialledBy = role === "dialler" ? serverName : peer;
    if (!this.#shouldKeep(peer, dialledBy)) {
      connection.close("duplicate link");
      return undefined;
    }
    this.#register(peer, connection, dialledBy, rest);
    return undefined;
  }

  /**
   * Exchanges proofs of the secret; throws HandshakeFailure when the peer's is missing or
   * wrong. The acceptor proves first; the dialler proves only once the acceptor has, so a
   * dialler never hands a proof to an end that has not shown it knows the secret.
   */
  async #authenticate(handshake: Handshake, secret: PeerSecret): Promise<void> {
    const peerNonce = await handshake.expect("CHALLENGE");
    if (!isNonce(peerNonce)) throw new HandshakeFailure("malformed CHALLENGE");
    const exchange = {
      role: handshake.role,
      selfName: this.#options.serverName,
      peerName: handshake.peer,
      selfNonce: handshake.selfNonce,
      peerNonce,
    };
    const sendProof = async () => {
      handshake.connection.sendText(`PROOF ${await secret.prove(exchange)}\n`);
    };
    if (exchange.role === "acceptor") await sendProof();
    const proof = await handshake.expect("PROOF");
    if (!(await secret.verify(exchange, proof))) throw new HandshakeFailure("wrong proof");
    if (exchange.role === "dialler") await sendProof();
    // The deadline may have closed the connection while the proofs were being computed.
    if (handshake.connection.isClosed) throw new HandshakeFailure(handshake.endedWhy);
  }

  /**
   * Whether a new link to `peer` dialled by `dialledBy` should be kept. With a live link
   * already there, both ends keep the one dialled by the name that sorts first; of two
   * dialled by the same end, the newer wins (the older one is stale).
   */
  #shouldKeep(peer: string, dialledBy: string): boolean {
    const existing = this.#links.get(peer);
    if (existing === undefined || existing.connection.isClosed) return true;
    if (existing.dialledBy === dialledBy) return true;
    const firstName = [this.#options.serverName, peer].sort()[0];
    return dialledBy === firstName;
  }

  #register(peer: string, connection: LineConnection, dialledBy: string, rest: Line[]): void {
    const { logger, counters } = this.#options;
    this.#links.get(peer)?.connection.close("replaced by a newer link");
    const link: PeerLink = {
      peer,
      connection,
      dialledBy,
      receivedSynced: false,
      seqReceivedMax: 0,
    };
    this.#links.set(peer, link);
    counters.add("peer_links_up");
    logger.info("link to {peer} up ({remote}, dialled by {dialledBy})", {
      peer,
      remote: connection.remote,
      dialledBy,
    });
    connection.onClose((reason) => {
      if (this.#links.get(peer) !== link) return;
      this.#links.delete(peer);
      logger.info("link to {peer} down: {reason}", { peer, reason });
      this.#linkDownWaiters.get(peer)?.();
      this.#linkDownWaiters.delete(peer);
    });
    const known = this.#watermarks.get(peer);
    connection.sendText(`HAVE ${this.#epoch} ${known?.epoch ?? "-"} ${known?.seq ?? 0}\n`);
    this.#readLink(link, rest);
  }

  async #readLink(link: PeerLink, rest: Line[]): Promise<void> {
    let lines: Line[] | null = rest;
    while (lines !== null) {
      for (const line of lines) this.#onPeerLine(link, line.text);
      lines = await link.connection.readLines();
    }
    link.connection.close("closed by peer");
  }

  #onPeerLine(link: PeerLink, line: string): void {
    const space = line.indexOf(" ");
    const command = space === -1 ? line : line.slice(0, space);
    if (command === "U") this.#onUpdate(link, line.slice(space + 1));
    else if (command === "HAVE") this.#onHave(link, splitFields(line));
    else if (command === "SYNCED") this.#onSynced(link, Number(line.slice(space + 1)));
    else {
      this.#options.logger.warn("ignored peer line from {peer}: {line}", {
        peer: link.peer,
        line: showWireText(line),
      });
    }
  }

  #onUpdate(link: PeerLink, payload: string): void {
    const { store, counters, logger } = this.#options;
    const space = payload.indexOf(" ");
    const seq = Number(payload.slice(0, space));
    const atLine = payload.slice(space + 1);
    const fields = parseAtLine(atLine);
    if (space === -1 || !Number.isSafeInteger(seq) || fields === undefined) {
      logger.warn("ignored malformed update from {peer}", { peer: link.peer });
      return;
    }
    counters.add("floods_received");
    if (logger.isEnabledFor("info")) {
      logger.info(`flood from ${link.peer}: ${showWireText(atLine)}`);
    }
    link.seqReceivedMax = Math.max(link.seqReceivedMax, seq);
    const watermark = this.#watermarks.get(link.peer);
    if (link.receivedSynced && watermark !== undefined) watermark.seq = link.seqReceivedMax;
    const result = store.offer(
      { clientId: fields.clientId, atLine },
      link.peer,
    );
    if (result === "stored") this.flood(store.get(fields.clientId)!);
    else if (result === "full") {
      counters.add("limit_clients_max");
      logger.warn("clientsMax reached: dropped update from {peer}", { peer: link.peer });
    }
  }

  #onHave(link: PeerLink, fields: string[]): void {
    const [, peerEpoch, epochKnownOfMe, seqText] = fields;
    const known = this.#watermarks.get(link.peer);
    const peerRestarted = known === undefined || known.epoch !== peerEpoch;
    if (peerRestarted) this.#watermarks.set(link.peer, { epoch: peerEpoch, seq: 0 });
    const afterSeq = epochKnownOfMe === this.#epoch ? Number(seqText) || 0 : 0;
    this.#catchUp(link, afterSeq, !peerRestarted);
  }

  #onSynced(link: PeerLink, seq: number): void {
    const watermark = this.#watermarks.get(link.peer);
    if (watermark !== undefined && Number.isSafeInteger(seq)) {
      // The catch-up brought every change up to `seq`; live floods brought the later ones.
      watermark.seq = Math.max(seq, link.seqReceivedMax);
    }
    link.receivedSynced = true;
  }

  /**
   * Sends the neighbour every update changed after `afterSeq`, in batches that wait for the
   * socket and yield, then `SYNCED`. A neighbour that did not restart already has what it
   * sent us, so those are skipped.
   */
  async #catchUp(link: PeerLink, afterSeq: number, skipItsOwn: boolean): Promise<void> {
    const { store, logger, counters } = this.#options;
    const untilSeq = store.lastSeq;
    let batch = "";
    let batchUpdates = 0;
    let sentUpdates = 0;
    for (const update of store.changesAfter(afterSeq)) {
      if (update.seq > untilSeq) break;
      if (skipItsOwn && update.fromPeer === link.peer) continue;
      batch += `U ${update.seq} ${update.atLine}\n`;
      batchUpdates += 1;
      if (batchUpdates === CATCH_UP_BATCH_UPDATES) {
        link.connection.sendText(batch);
        sentUpdates += batchUpdates;
        batch = "";
        batchUpdates = 0;
        await link.connection.drained();
        await sleep(0, this.#stopped.signal);
        if (link.connection.isClosed) return;
      }
    }
    link.connection.sendText(`${batch}SYNCED ${untilSeq}\n`);
    sentUpdates += batchUpdates;
    counters.add("catch_up_updates_sent", sentUpdates);
    logger.info("catch-up to {peer}: sent {sentUpdates} updates after seq {afterSeq}", {
      peer: link.peer,
      sentUpdates,
      afterSeq,
    });
  }
}

/** Why a handshake failed, for the log; the message never holds the secret or a proof. */
class HandshakeFailure extends Error {}

/**
 * One connection from its hello to its registration as a link: its lines one at a time, and
 * a deadline that closes it when the handshake takes too long.
 */
class Handshake {
  readonly connection: LineConnection;
  readonly role: PeerRole;
  /** The neighbour the other end says it is (proven only once its proof is checked). */
  readonly peer: string;
  /** Our challenge; sent only when links are authenticated. */
  readonly selfNonce = newNonce();
  readonly #deadline: AbortSignal;
  readonly #closeOnDeadline = () => this.connection.close("handshake timed out");
  #pending: Line[];

  constructor(
    connection: LineConnection,
    role: PeerRole,
    peer: string,
    pending: Line[],
    deadline: AbortSignal,
  ) {
    this.connection = connection;
    this.role = role;
    this.peer = peer;
    this.#pending = pending;
    this.#deadline = deadline;
    deadline.addEventListener("abort", this.#closeOnDeadline, { once: true });
  }

  /** Why the connection ended before the handshake did. */
  get endedWhy(): string {
    return this.#deadline.aborted ? "handshake timed out" : "closed during handshake";
  }

  /** The next line's text, or undefined when the connection ends first. */
  async nextLine(): Promise<string | undefined> {
    while (this.#pending.length === 0) {
      const lines = await this.connection.readLines();
      if (lines === null) return undefined;
      this.#pending = lines;
    }
    return this.#pending.shift()!.text;
  }

  /** The argument of the next line, which must be `command <argument>`; else throws. */
  async expect(command: string): Promise<string> {
    const line = await this.nextLine();
    if (line === undefined) throw new HandshakeFailure(`${this.endedWhy} before ${command}`);
    const fields = splitFields(line);
    if (fields[0] === command && fields.length === 2) return fields[1];
    // Only the first word is shown: the rest might be a proof, which a log must not hold.
    const got = fields.length === 0 ? "an empty line" : `"${showWireText(fields[0].slice(0, 16))}"`;
    throw new HandshakeFailure(`expected ${command}, got ${got}`);
  }

  /** Stops the deadline; returns the lines already read beyond the handshake. */
  finish(): Line[] {
    this.#deadline.removeEventListener("abort", this.#closeOnDeadline);
    return this.#pending;
  }
}
