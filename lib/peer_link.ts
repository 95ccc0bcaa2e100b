/**
 * One registered link to a neighbour, from its `HAVE` to its close: reads the link's lines
 * (under the peer limits, which it also defines), stores the updates that arrive and hands
 * each stored one on to be flooded, streams the catch-up the neighbour lacks, keeps the
 * watermark of the neighbour's change stream, and sends and expects heartbeats.
 *
 * Knows the store, the peer line format (lib/peer_protocol.ts) and one connection; nothing
 * of dialling, handshakes, secrets or the other links — lib/peers.ts decides which links
 * exist and where floods go.
 *
 * Any line it cannot act on — malformed, over the peer line limit, a second HAVE, a
 * handshake line — closes the link with a warning: never a crash, and never a stored update
 * that was not checked whole.
 */
import { raceAbort, sleep, type WaitClock } from "./abortable.ts";
import type { CloseReason, LineConnection, LineConnectionOptions } from "./connection.ts";
import type { Counters } from "./counters.ts";
import { encodeWireText, type Line } from "./lines.ts";
import { type Logger, showWireText } from "./log.ts";
import { type HerdMetrics, wallClockSeconds } from "./metrics.ts";
import {
  formatPeerLine,
  parsePeerLine,
  type PeerHave,
  peerLineBytesMax,
  type ReceivedPeerUpdate,
} from "./peer_protocol.ts";
import { type ClientStore, STORE_LIMIT_COUNTERS, type StoredUpdate } from "./store.ts";

/**
 * A catch-up batch is sent once it holds this many bytes (or at the end), then waits for
 * the socket to drain and yields: memory per link stays near this plus one line, whatever
 * the ids' length, and clients of this server are served between batches.
 */
export const CATCH_UP_BATCH_BYTES = 1024 * 1024;
/**
 * Room in a link's output for live floods queued while a catch-up batch drains (they are
 * never held back): a neighbour that reads slower than this server floods is closed and
 * caught up again, not buffered for without bound.
 */
const FLOOD_BACKLOG_BYTES_MAX = 64 * 1024 * 1024;
/** A link that has received nothing for this many heartbeat intervals is dead. */
const HEARTBEATS_MISSED_MAX = 3;
/** Checks per heartbeat interval: a dead link is found within 3¼ intervals. */
const HEARTBEAT_CHECKS_PER_INTERVAL = 4;
const HEARTBEAT_BYTES = encodeWireText(formatPeerLine({ kind: "HB" }));

/**
 * The limits of a peer link, the same at both ends whoever dialled: a line limit that takes
 * every update a client line within `lineBytesMax` can make (see `peerLineBytesMax`), and an
 * output limit that holds a whole catch-up batch — at most {@link CATCH_UP_BATCH_BYTES} plus
 * one line — besides the floods queued meanwhile.
 */
export function peerLinkLimits(
  limits: { lineBytesMax: number; serverNameBytesMax: number },
): LineConnectionOptions {
  const lineBytesMax = peerLineBytesMax(limits.lineBytesMax, limits.serverNameBytesMax);
  return {
    lineBytesMax,
    outputBytesMax: CATCH_UP_BATCH_BYTES + lineBytesMax + FLOOD_BACKLOG_BYTES_MAX,
  };
}

/** How far this server has a neighbour's change stream, within one neighbour epoch. */
export interface Watermark {
  epoch: string;
  seq: number;
}

export interface PeerLinkOptions {
  /** The neighbour's name, proven by the handshake. */
  peer: string;
  /** The link's connection, its limits already the peer limits. */
  connection: LineConnection;
  /** Lines the handshake read beyond its own, to act on first. */
  pendingLines: Line[];
  store: ClientStore;
  /** This server's epoch (one run of it): a neighbour that knows another has none of ours. */
  epoch: string;
  /** Per neighbour, how far this server has its change stream; outlives links. */
  watermarks: Map<string, Watermark>;
  /** Send a heartbeat after this long without sending; give up after 3× without receiving. */
  heartbeatMs: number;
  clock: WaitClock;
  /**
   * Asked before each line is read: a promise means "stop reading until it resolves" (the
   * data dir cannot keep up); that time does not count as silence.
   */
  readGate?: () => Promise<void> | undefined;
  /** Hears of every update this link stored, to flood it to the other links. */
  onStored: (update: StoredUpdate) => void;
  logger: Logger;
  counters: Counters;
  /** With a monitor: the flood-age histogram of live floods (after SYNCED). */
  metrics?: HerdMetrics;
}

/** How far the catch-up of one link's connection got, each way. */
export interface CatchUpProgress {
  /** Updates this end sent in its catch-up so far. */
  updatesSent: number;
  /** This end sent SYNCED: the neighbour has everything it lacked. */
  sentAll: boolean;
  /** The neighbour sent SYNCED: this end has everything it lacked. */
  receivedAll: boolean;
}

export class PeerLink {
  readonly peer: string;
  readonly connection: LineConnection;
  /** Resolves with the reason once the link's connection has closed. */
  readonly closed: Promise<CloseReason>;
  readonly #options: PeerLinkOptions;
  /** Aborts when the connection closes: ends the heartbeat loop and a catch-up's waits. */
  readonly #closedSignal: AbortSignal;
  #sentAtMs: number;
  #receivedAtMs: number;
  /** True while reading waits on the read gate: silence then is not the neighbour's fault. */
  #readPaused = false;
  #sawHave = false;
  /** True once the neighbour said SYNCED: from then on its `U` lines advance the watermark. */
  #receivedSynced = false;
  /**
   * The highest sequence number of a `U` line received on this link. Live floods can come
   * before SYNCED, past the catch-up's end; SYNCED makes the watermark this, if higher.
   */
  #seqReceivedMax = 0;
  #updatesSent = 0;
  #updatesReceived = 0;
  #catchUpUpdatesSent = 0;
  #sentSynced = false;
  /** Wall-clock time of the latest read, for the flood age of the lines it brought. */
  #readAtSeconds = 0;

  constructor(options: PeerLinkOptions) {
    this.#options = options;
    this.peer = options.peer;
    this.connection = options.connection;
    const closing = new AbortController();
    this.#closedSignal = closing.signal;
    this.closed = new Promise((resolve) =>
      options.connection.onClose((reason) => {
        closing.abort();
        resolve(reason);
      })
    );
    this.#sentAtMs = this.#receivedAtMs = options.clock.nowMs();
  }

  /** Tells the neighbour what this server has of it, then reads and keeps the link alive. */
  start(): void {
    const { watermarks, epoch } = this.#options;
    const known = watermarks.get(this.peer);
    this.#sendText(formatPeerLine({
      kind: "HAVE",
      epoch,
      epochKnownOfYou: known?.epoch,
      seqKnownOfYou: known?.seq ?? 0,
    }));
    this.#read();
    this.#keepAlive();
  }

  /** Updates (`U` lines) sent and received on this link's connection. */
  get updatesSent(): number {
    return this.#updatesSent;
  }

  get updatesReceived(): number {
    return this.#updatesReceived;
  }

  get catchUp(): CatchUpProgress {
    return {
      updatesSent: this.#catchUpUpdatesSent,
      sentAll: this.#sentSynced,
      receivedAll: this.#receivedSynced,
    };
  }

  /** Queues one flooded update's `U` line, encoded once by the caller for every link. */
  sendUpdate(bytes: Uint8Array): void {
    this.#updatesSent += 1;
    this.send(bytes);
  }

  /** Queues bytes of whole peer lines. */
  send(bytes: Uint8Array): void {
    this.connection.send(bytes);
    this.#sentAtMs = this.#options.clock.nowMs();
  }

  close(reason: CloseReason): void {
    this.connection.close(reason);
  }

  #sendText(text: string): void {
    this.send(encodeWireText(text));
  }

  async #read(): Promise<void> {
    const { connection } = this;
    // HAVE goes out before any line is acted on: a line that closes the link (say a
    // CHALLENGE from an end that wants a secret this one lacks) then shows the other end why.
    await connection.drained();
    let lines: Line[] | null = this.#options.pendingLines;
    if (this.#options.metrics) this.#readAtSeconds = wallClockSeconds();
    while (lines !== null) {
      for (const line of lines) {
        const gate = this.#options.readGate?.();
        if (gate !== undefined) await this.#waitForGate(gate);
        if (connection.isClosed) return;
        this.#onLine(line);
      }
      const gate = this.#options.readGate?.();
      if (gate !== undefined) await this.#waitForGate(gate);
      if (connection.isClosed) return;
      lines = await connection.readLines();
      this.#receivedAtMs = this.#options.clock.nowMs();
      // Once per read, not per line: the lines of one read all arrived then.
      if (this.#options.metrics) this.#readAtSeconds = wallClockSeconds();
    }
    connection.close("closed by peer");
  }

  /** Reads nothing until `gate` resolves; the silence meanwhile is not held against the link. */
  async #waitForGate(gate: Promise<void>): Promise<void> {
    this.#readPaused = true;
    try {
      await raceAbort(gate, this.#closedSignal, () => undefined);
    } finally {
      this.#readPaused = false;
      this.#receivedAtMs = this.#options.clock.nowMs();
    }
  }

  /**
   * Sends a heartbeat when nothing was sent for a heartbeat interval, and closes the link
   * when nothing was received for {@link HEARTBEATS_MISSED_MAX} intervals: a neighbour whose
   * host vanished without closing the connection is found out.
   */
  async #keepAlive(): Promise<void> {
    const { clock, heartbeatMs, logger, counters } = this.#options;
    const checkMs = heartbeatMs / HEARTBEAT_CHECKS_PER_INTERVAL;
    const silenceMsMax = HEARTBEATS_MISSED_MAX * heartbeatMs;
    while (true) {
      await clock.sleep(checkMs, this.#closedSignal);
      if (this.connection.isClosed) return;
      const nowMs = clock.nowMs();
      if (!this.#readPaused && nowMs - this.#receivedAtMs >= silenceMsMax) {
        counters.add("peer_heartbeats_missed");
        logger.warn("link to {peer}: nothing received for {silenceMs} ms; closing it", {
          peer: this.peer,
          silenceMs: Math.round(nowMs - this.#receivedAtMs),
        });
        this.close("no heartbeat");
        return;
      }
      if (nowMs - this.#sentAtMs >= heartbeatMs) this.send(HEARTBEAT_BYTES);
    }
  }

  #onLine(line: Line): void {
    if (line.tooLong) {
      this.#refuse("a line over the peer line limit", line.text);
      return;
    }
    const message = parsePeerLine(line.text);
    if (message.kind === "invalid") {
      this.#refuse(`a malformed line (${message.reason})`, line.text);
    } else if (!this.#sawHave && message.kind !== "HAVE") {
      this.#refuse(`${message.kind} before HAVE`, line.text);
    } else if (message.kind === "U") {
      this.#onUpdate(message);
    } else if (message.kind === "HAVE") {
      if (this.#sawHave) this.#refuse("a second HAVE", line.text);
      else this.#onHave(message);
    } else if (message.kind === "SYNCED") {
      this.#onSynced(message.seq);
    } else if (message.kind !== "HB") {
      this.#refuse(`${message.kind} after the handshake`, line.text);
    }
  }

  /** Closes the link over a line it cannot act on, with a warning that shows the line. */
  #refuse(why: string, line: string): void {
    const { logger, counters } = this.#options;
    counters.add("peer_lines_refused");
    logger.warn("link to {peer} closed: {why}: {line}", {
      peer: this.peer,
      why,
      line: showWireText(line),
    });
    this.close(why);
  }

  #onUpdate(update: ReceivedPeerUpdate): void {
    const { store, counters, logger, watermarks, onStored, metrics } = this.#options;
    counters.add("floods_received");
    this.#updatesReceived += 1;
    if (this.#receivedSynced) metrics?.observeFloodAge(update.atLine, this.#readAtSeconds);
    if (logger.isEnabledFor("info")) {
      logger.info("flood from {peer}: {update}", {
        peer: this.peer,
        update: showWireText(update.atLine),
      });
    }
    this.#seqReceivedMax = Math.max(this.#seqReceivedMax, update.seq);
    const watermark = watermarks.get(this.peer);
    if (this.#receivedSynced && watermark !== undefined) watermark.seq = this.#seqReceivedMax;
    const { clientId, atLine } = update;
    const result = store.offer({ clientId, atLine }, { fromPeer: this.peer });
    // Stored as given, with the latest sequence number: no lookup needed to hand it on.
    if (result === "stored") {
      onStored({ clientId, atLine, seq: store.lastSeq, fromPeer: this.peer });
    } else if (result !== "stale") {
      // Out of capacity: the update is dropped here, and the operator must hear of it.
      counters.add(STORE_LIMIT_COUNTERS[result]);
      logger.warn("{limit} reached: dropped update from {peer}", {
        limit: result,
        peer: this.peer,
      });
    }
  }

  #onHave(have: PeerHave): void {
    const { watermarks, epoch } = this.#options;
    this.#sawHave = true;
    const known = watermarks.get(this.peer);
    const peerRestarted = known === undefined || known.epoch !== have.epoch;
    if (peerRestarted) watermarks.set(this.peer, { epoch: have.epoch, seq: 0 });
    const afterSeq = have.epochKnownOfYou === epoch ? have.seqKnownOfYou : 0;
    this.#catchUp(afterSeq, !peerRestarted);
  }

  #onSynced(seq: number): void {
    const watermark = this.#options.watermarks.get(this.peer);
    // The catch-up brought every change up to `seq`; live floods brought the later ones.
    if (watermark !== undefined) watermark.seq = Math.max(seq, this.#seqReceivedMax);
    this.#receivedSynced = true;
  }

  /**
   * Sends the neighbour every update changed after `afterSeq` in batches of about
   * {@link CATCH_UP_BATCH_BYTES} that wait for the socket and yield, then `SYNCED`. A
   * neighbour that did not restart already has what it sent us, so those are skipped.
   */
  async #catchUp(afterSeq: number, skipItsOwn: boolean): Promise<void> {
    const { store, logger, counters } = this.#options;
    const untilSeq = store.lastSeq;
    let batch: string[] = [];
    let batchBytes = 0;
    let sentUpdates = 0;
    for (const update of store.changesAfter(afterSeq)) {
      if (update.seq > untilSeq) break;
      if (skipItsOwn && update.fromPeer === this.peer) continue;
      const line = formatPeerLine({ kind: "U", seq: update.seq, atLine: update.atLine });
      batch.push(line);
      batchBytes += line.length;
      if (batchBytes < CATCH_UP_BATCH_BYTES) continue;
      this.#sendText(batch.join(""));
      sentUpdates += batch.length;
      this.#countCatchUp(batch.length);
      batch = [];
      batchBytes = 0;
      await this.connection.drained();
      await sleep(0, this.#closedSignal);
      if (this.connection.isClosed) return;
    }
    batch.push(formatPeerLine({ kind: "SYNCED", seq: untilSeq }));
    this.#sendText(batch.join(""));
    sentUpdates += batch.length - 1;
    this.#countCatchUp(batch.length - 1);
    this.#sentSynced = true;
    counters.add("catch_up_updates_sent", sentUpdates);
    logger.info("catch-up to {peer}: sent {sentUpdates} updates after seq {afterSeq}", {
      peer: this.peer,
      sentUpdates,
      afterSeq,
    });
  }

  #countCatchUp(updates: number): void {
    this.#catchUpUpdatesSent += updates;
    this.#updatesSent += updates;
  }
}
