/**
 * One client connection: reads lines, has the service act on each as it is read, and sends
 * the replies in the order the lines came, each whole. A slow lookup holds back only later
 * replies on this connection. A line waits its turn (and reading pauses) while
 * `linesInFlightMax` replies are pending, and while the replies the client has not taken —
 * unsent, or ready but held behind a slow one — pass half of `outputBytesMax`. A session
 * always ends: at end of input or on stop, every line read is answered, then it closes.
 */
import { systemWaitClock, type WaitClock } from "./abortable.ts";
import type { LineConnection } from "./connection.ts";
import type { Line } from "./lines.ts";
import { type Logger, showWireText } from "./log.ts";
import { ReadExchanges } from "./read_log.ts";
import type { Counters } from "./counters.ts";
import { type HerdMetrics, replyCommandSeries } from "./metrics.ts";
import type { HandleLineOptions, HerdService, Reply } from "./service.ts";

export interface ClientSessionOptions {
  service: Pick<HerdService, "handleLine">;
  linesInFlightMax: number;
  logger: Logger;
  counters: Counters;
  /** Current time in ms, for the idle timeout. */
  clockMs: () => number;
  /**
   * Wall-clock time in integer nanoseconds: read once per read, as the receive time of its
   * lines (their skews). Without it the service reads its own clock for each line.
   */
  clockNs?: () => bigint;
  /** Aborts every pending lookup (the server is stopping and their grace is over). */
  stopSignal: AbortSignal;
  /**
   * Times each line's handling and how long a backed-up client may take none of its replies;
   * default the real clock.
   */
  waitClock?: WaitClock;
  /** With a monitor: reply latency by command, from the clock reads this loop takes anyway. */
  metrics?: HerdMetrics;
}

/**
 * How long one connection may keep the server busy, its input always there already, before it
 * rests for a timer tick.
 */
const BUSY_MS_MAX = 2;
/** How long a client whose replies back up may take none of them before it counts as not reading. */
const READER_STALL_MS = 1000;

/**
 * The options a session's lines are handled with. The signal that aborts its pending lookups
 * (the client gone, or the server's stop) is made only when a lookup asks for it: most
 * connections never wait on one, and an `AbortSignal.any` per connection was a fifth of an
 * idle connection's memory.
 */
class LineHandling implements HandleLineOptions {
  tooLong = false;
  readonly #stopSignal: AbortSignal;
  readonly #clockNs: (() => bigint) | undefined;
  /** Aborted when the client goes; made with the signal, or by the going if that comes first. */
  #gone: AbortController | undefined;
  #signal: AbortSignal | undefined;
  /** The current read's receive time, read on first use. */
  #receivedNs: bigint | undefined;

  constructor(stopSignal: AbortSignal, clockNs: (() => bigint) | undefined) {
    this.#stopSignal = stopSignal;
    this.#clockNs = clockNs;
  }

  /** When the lines of the current read were received: the clock read once for all of them. */
  get receivedNs(): bigint | undefined {
    this.#receivedNs ??= this.#clockNs?.();
    return this.#receivedNs;
  }

  /** The lines acted on from now on came in another read. */
  nextRead(): void {
    this.#receivedNs = undefined;
  }

  get signal(): AbortSignal {
    this.#gone ??= new AbortController();
    this.#signal ??= AbortSignal.any([this.#gone.signal, this.#stopSignal]);
    return this.#signal;
  }

  clientGone(): void {
    (this.#gone ??= new AbortController()).abort();
  }
}

/**
 * With metrics: the command series of each immediate reply of the current batch. A batch is
 * acted on without a wait from start to end, so one array serves every session.
 */
const batchReplySeries: number[] = [];

/** A reply's place in the connection's order; `text` is set once it is ready. */
interface ReplySlot {
  text: string | undefined;
}

/** A wait on the session's state, woken once `isOver()` holds or the connection closes. */
interface StateWaiter {
  isOver: () => boolean;
  wake: () => void;
}

export class ClientSession {
  readonly connection: LineConnection;
  readonly #options: ClientSessionOptions;
  readonly #waitClock: WaitClock;
  /** Replies not yet handed to the connection, in line order; the first is not ready yet. */
  readonly #unsentReplies: ReplySlot[] = [];
  /** Bytes of the ready replies in `#unsentReplies`: they wait behind a slow one. */
  #heldBytes = 0;
  /** Re-checked after every change of `#unsentReplies` and when the connection closes. */
  #waiters: StateWaiter[] = [];
  /** How each line is handled: one object per session, its lookup signal made on first use. */
  readonly #lineHandling: LineHandling;
  #serving = false;
  /** Set once the client took none of its replies while they backed up. */
  #readsNothing = false;
  /** Time spent acting on this connection's lines since it last rested or waited for input. */
  #busyMs = 0;
  /** When the current batch of lines (those of one read up to a wait) began to be acted on. */
  #batchFromMs = 0;

  /** True while held replies wait for the connection to drain before they are handed on. */
  #releaseScheduled = false;
  /** The lines acted on in the current read, for its one log record. */
  #readLogged: ReadExchanges | undefined;
  /** Whether lines and replies are logged (level `info`), asked once: the level is fixed. */
  readonly #logsLines: boolean;
  lastReadMs: number;

  constructor(connection: LineConnection, options: ClientSessionOptions) {
    this.connection = connection;
    this.#options = options;
    this.#waitClock = options.waitClock ?? systemWaitClock;
    this.lastReadMs = options.clockMs();
    this.#lineHandling = new LineHandling(options.stopSignal, options.clockNs);
    this.#logsLines = options.logger.isEnabledFor("info");
    connection.onClose(() => {
      this.#lineHandling.clientGone();
      this.#wakeWaiters();
    });
  }

  /** Serves until the client is done or the connection closes; `firstLines` are already read. */
  async serve(firstLines: Line[]): Promise<void> {
    this.#serving = true;
    const { connection } = this;
    let lines: Line[] | null = firstLines;
    while (lines !== null) {
      this.#startBatch();
      for (const line of lines) {
        // One read may bring many lines: each waits its turn. The waits are awaited only
        // when needed, so that the replies of one read go out in one write.
        // The lines before a wait end a batch first, so their record precedes the wait's.
        if (this.#linesInFlightFull) {
          this.#endBatch();
          await this.#pauseReading();
          this.#startBatch();
        }
        if (this.#isBackedUp && !this.#readsNothing) {
          this.#endBatch();
          await this.#waitForSlowReader();
          this.#startBatch();
        }
        if (connection.isClosed) {
          this.#endBatch();
          return;
        }
        this.#handle(line);
      }
      this.#endBatch();
      if (this.#linesInFlightFull) await this.#pauseReading();
      if (connection.isClosed) return;
      if (this.#busyMs >= BUSY_MS_MAX) await this.#rest();
      lines = await connection.readLines();
      this.#lineHandling.nextRead();
      this.lastReadMs = this.#options.clockMs();
      // Waiting for the client let every other connection in: its busy run starts again.
      if (connection.lastReadWaited) this.#busyMs = 0;
    }
    // Half-closed by the client, or the server is stopping: answer what was read, then close.
    await this.#waitUntil(() => this.#unsentReplies.length === 0);
    await connection.drained();
    connection.close();
  }

  /** Lines are acted on from now, in one run: two clock reads time all of them. */
  #startBatch(): void {
    this.#batchFromMs = this.#waitClock.nowMs();
  }

  /**
   * Ends a run of lines acted on without waiting: its time counts as busy, its immediate
   * replies (all sent together, once it ends) are observed with it, and its lines are logged.
   */
  #endBatch(): void {
    const handledMs = this.#waitClock.nowMs() - this.#batchFromMs;
    this.#busyMs += handledMs;
    const { metrics } = this.#options;
    if (metrics !== undefined) {
      for (const series of batchReplySeries) metrics.observeReply(series, handledMs / 1000);
      batchReplySeries.length = 0;
    }
    this.#logRead();
  }

  /**
   * Stops reading: lines already read are still answered, then the connection closes.
   * A read already waiting returns nothing more to act on.
   */
  stop(): void {
    this.connection.stopReading();
    // Not serving yet: no line of this client was read, so none is owed a reply.
    if (!this.#serving) this.connection.close();
  }

  /**
   * Lets other connections in. Bytes already received are read and acted on in one run of
   * promise callbacks, and while some connection always has such bytes, the runtime looks for
   * other sockets' input only every few dozen of its reads: a client sending long lines at
   * full speed kept every other client waiting 15–30 ms. So a connection that has kept the
   * server busy for {@link BUSY_MS_MAX} rests for a timer tick; its unread input backs up
   * meanwhile and pauses its socket, and the others' input is seen at once. A connection whose
   * reads wait for its client (one line in flight) is not kept running by its own input: a rest
   * would only add a timer tick (1–2 ms here) to its replies every couple of hundred lines.
   */
  async #rest(): Promise<void> {
    this.#busyMs = 0;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  get #linesInFlightFull(): boolean {
    return this.#unsentReplies.length >= this.#options.linesInFlightMax;
  }

  /** More than half of `outputBytesMax` of replies wait for the client to take them, sent or held. */
  get #isBackedUp(): boolean {
    return this.connection.isBackedUpWith(this.#heldBytes);
  }

  /** Stops acting on lines (and reading) until fewer than linesInFlightMax replies wait. */
  async #pauseReading(): Promise<void> {
    this.#options.counters.add("limit_lines_in_flight");
    this.#options.logger.info("linesInFlightMax reached on {remote}: reading paused", {
      remote: this.connection.remote,
    });
    await this.#waitUntil(() => !this.#linesInFlightFull);
  }

  /**
   * Acts on no more lines until the client has taken enough of its replies. Replies held
   * behind a slow lookup cannot be taken yet: they are waited for without judging the client
   * (the lookup's deadline bounds that wait). Replies handed to the connection can be: a client
   * that takes none of them for {@link READER_STALL_MS} does not read at all — its lines are
   * acted on again, and `outputBytesMax` ends the connection.
   */
  async #waitForSlowReader(): Promise<void> {
    const { counters, logger } = this.#options;
    counters.add("slow_reader_pauses");
    logger.info("{remote} reads slowly: its lines wait until replies drain", {
      remote: this.connection.remote,
    });
    while (this.#isBackedUp && !this.connection.isClosed) {
      if (this.connection.unsentBytes === 0) {
        await this.#waitUntil(() => this.connection.unsentBytes > 0 || !this.#isBackedUp);
        continue;
      }
      const sentBefore = this.connection.sentBytes;
      if (await this.#drainedWithin(READER_STALL_MS)) continue;
      if (this.connection.sentBytes === sentBefore) {
        this.#readsNothing = true;
        this.#sendReady(); // what was held for it goes out: outputBytesMax decides now
        logger.info("{remote} read nothing for {ms} ms: its lines are acted on again", {
          remote: this.connection.remote,
          ms: READER_STALL_MS,
        });
        return;
      }
    }
  }

  /** True if everything queued on the connection is handed to the kernel within `ms`. */
  async #drainedWithin(ms: number): Promise<boolean> {
    const stallOver = new AbortController();
    try {
      return await Promise.race([
        this.connection.drained().then(() => true),
        this.#waitClock.sleep(ms, stallOver.signal).then(() => false),
      ]);
    } finally {
      stallOver.abort(); // clears the stall timer once the drain won
    }
  }

  /** Acts on `line` and queues its reply. */
  #handle(line: Line): void {
    const { service, counters } = this.#options;
    counters.add("lines_received");
    this.#lineHandling.tooLong = line.tooLong;
    const reply = service.handleLine(line.text, this.#lineHandling);
    if (this.#logsLines) {
      this.#readLogged ??= new ReadExchanges(); // made per read, so an idle client holds none
      const full = this.#readLogged.add(line.text, typeof reply === "string" ? reply : undefined);
      if (full) this.#logRead();
    }
    this.#enqueue(reply, line);
  }

  #enqueue(reply: Reply, line: Line): void {
    const { metrics } = this.#options;
    if (typeof reply === "string") {
      if (metrics) batchReplySeries.push(replyCommandSeries(line.text, reply.charCodeAt(0)));
      if (this.#unsentReplies.length === 0) {
        this.connection.sendText(reply);
      } else {
        this.#unsentReplies.push({ text: reply });
        this.#heldBytes += reply.length;
      }
      return;
    }
    const slot: ReplySlot = { text: undefined };
    this.#unsentReplies.push(slot);
    const handledFromMs = this.#batchFromMs;
    reply.then((text) => {
      if (metrics !== undefined) {
        // One clock read, when the reply is ready; the line's text is read only for its command.
        const seconds = (this.#waitClock.nowMs() - handledFromMs) / 1000;
        metrics.observeReply(replyCommandSeries(line.text, text.charCodeAt(0)), seconds);
      }
      slot.text = text;
      this.#heldBytes += text.length;
      this.#logReply(text);
      this.#sendReady();
    });
  }

  /**
   * Hands the connection every ready reply at the front of the order — for a client that
   * reads, only while less than half of `outputBytesMax` waits unsent, and the rest once that
   * drains: replies held behind a slow lookup, released at once, could otherwise pass
   * `outputBytesMax` and close a client that does nothing wrong.
   */
  #sendReady(): void {
    while (this.#unsentReplies.length > 0 && this.#unsentReplies[0].text !== undefined) {
      if (!this.#readsNothing && this.connection.isBackedUpWith(0)) {
        this.#sendReadyWhenDrained();
        break;
      }
      const text = this.#unsentReplies.shift()!.text!;
      this.#heldBytes -= text.length;
      this.connection.sendText(text);
    }
    this.#wakeWaiters();
  }

  #sendReadyWhenDrained(): void {
    if (this.#releaseScheduled) return;
    this.#releaseScheduled = true;
    this.connection.drained().then(() => {
      this.#releaseScheduled = false;
      this.#sendReady();
    });
  }

  /**
   * Logs the lines acted on since the last call (those of one read, or of its part before a
   * wait or up to a record's size) as one record.
   */
  #logRead(): void {
    if (this.#readLogged === undefined) return;
    this.#options.logger.info("client {remote}: {lines}", {
      remote: this.connection.remote,
      lines: this.#readLogged,
    });
    this.#readLogged = undefined;
  }

  #logReply(text: string): void {
    if (this.#logsLines) {
      this.#options.logger.info("reply to {remote}: {reply}", {
        remote: this.connection.remote,
        reply: showWireText(text),
      });
    }
  }

  /** Resolves once `isOver()` holds — checked now and after every reply sent — or on close. */
  #waitUntil(isOver: () => boolean): Promise<void> {
    if (isOver() || this.connection.isClosed) return Promise.resolve();
    return new Promise((wake) => this.#waiters.push({ isOver, wake }));
  }

  #wakeWaiters(): void {
    const closed = this.connection.isClosed;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (closed || waiter.isOver()) waiter.wake();
      else this.#waiters.push(waiter);
    }
  }
}
