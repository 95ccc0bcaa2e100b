/**
 * Links to neighbours: dial each one and keep dialling while it is down (exponential backoff
 * with jitter), take links they dial, flood accepted updates, and catch a neighbour up when a
 * link comes (back) up. Knows the store and its own small line protocol; nothing of clients.
 *
 * After `PEER <name> 1` each way, each end sends `HAVE <its epoch> <the epoch it knows of the
 * other> <the other's last sequence number it holds>`. The other end then streams what
 * changed since — `U <seq> <AT line>` in batches that yield — and `SYNCED <seq>`; live floods
 * are `U` lines too. An epoch is one run of a server, so a restarted end gets everything.
 */
import { raceAbort, sleep } from "./abortable.ts";
import type { ServerAddress } from "./config.ts";
import { DenoConnChunks, LineConnection } from "./connection.ts";
import type { Counters } from "./counters.ts";
import type { Line } from "./lines.ts";
import { type Logger, showWireText } from "./log.ts";
import { parseAtLine, splitFields } from "./protocol.ts";
import type { ClientStore, StoredUpdate } from "./store.ts";

export const PEER_PROTOCOL_VERSION = "1";
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1600;
const HELLO_TIMEOUT_MS = 2000;
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

  /** Takes an accepted connection whose first line was a hello; closes it if it fails. */
  accept(connection: LineConnection, hello: string, rest: Line[]): void {
    const { serverName, neighbours, logger, counters } = this.#options;
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
    connection.sendText(`PEER ${serverName} ${PEER_PROTOCOL_VERSION}\n`);
    this.#register(peer, connection, peer, rest);
  }

  /** Hands an accepted update to every live link but the one it came from. */
  flood(update: StoredUpdate): void {
    const { logger, counters } = this.#options;
    for (const link of this.#links.values()) {
      if (link.peer === update.fromPeer) continue;
      link.connection.sendText(`U ${update.seq} ${update.atLine}\n`);
      counters.add("floods_sent");
      if (logger.isEnabledFor("info")) {
        logger.info(`flood to ${link.peer}: ${showWireText(update.atLine)}`);
      }
    }
  }

  /** Stops dialling and closes every link after flushing what was queued for it. */
  async stop(): Promise<void> {
    this.#stopped.abort();
    const links = [...this.#links.values()];
    await Promise.all(links.map((link) => link.connection.drained()));
    for (const link of links) link.connection.close("server stopping");
  }

  async #keepDialling(peer: string): Promise<void> {
    const { logger, random = Math.random } = this.#options;
    let backoffMs = BACKOFF_FIRST_MS;
    while (!this.#stopped.signal.aborted) {
      if (this.#links.has(peer)) {
        await new Promise<void>((resolve) => this.#linkDownWaiters.set(peer, resolve));
        backoffMs = BACKOFF_FIRST_MS;
        continue;
      }
      const failure = await this.#dialOnce(peer);
      if (failure === undefined) continue;
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

  /** Dials and says hello; returns why it failed, or undefined when the link is up. */
  async #dialOnce(peer: string): Promise<string | undefined> {
    const { serverName, addresses, lineBytesMax } = this.#options;
    const dial = this.#options.dial ??
      ((address: ServerAddress) => Deno.connect({ hostname: address.host, port: address.port }));
    const deadline = AbortSignal.any([AbortSignal.timeout(HELLO_TIMEOUT_MS), this.#stopped.signal]);
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
    connection.sendText(`PEER ${serverName} ${PEER_PROTOCOL_VERSION}\n`);
    const closeOnDeadline = () => connection.close("hello timed out");
    deadline.addEventListener("abort", closeOnDeadline, { once: true });
    let lines: Line[] | null = [];
    while (lines !== null && lines.length === 0) lines = await connection.readLines();
    deadline.removeEventListener("abort", closeOnDeadline);
    const expected = `PEER ${peer} ${PEER_PROTOCOL_VERSION}`;
    if (lines === null || lines[0].text !== expected) {
      connection.close("bad hello reply");
      return lines === null ? "closed during hello" : "unexpected hello reply";
    }
    if (!this.#shouldKeep(peer, serverName)) {
      connection.close("duplicate link");
      return undefined;
    }
    this.#register(peer, connection, serverName, lines.slice(1));
    return undefined;
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
    const link: PeerLink = { peer, connection, dialledBy, receivedSynced: false };
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
    const watermark = this.#watermarks.get(link.peer);
    if (link.receivedSynced && watermark !== undefined) watermark.seq = seq;
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
    if (watermark !== undefined && Number.isSafeInteger(seq)) watermark.seq = seq;
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
