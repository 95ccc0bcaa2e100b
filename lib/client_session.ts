/**
 * One client connection: reads lines, has the service act on each as it is read, and sends
 * the replies in the order the lines came, each whole. A slow lookup holds back only later
 * replies on this connection. Reading pauses while `linesInFlightMax` replies are pending,
 * and while half of `outputBytesMax` waits unsent for a client that reads slower than it asks.
 */
import { deadlineAfter, raceAbort } from "./abortable.ts";
import type { LineConnection } from "./connection.ts";
import type { Line } from "./lines.ts";
import { type Logger, showWireBytes, showWireText } from "./log.ts";
import type { Counters } from "./counters.ts";
import type { HerdService, Reply } from "./service.ts";

export interface ClientSessionOptions {
  service: HerdService;
  linesInFlightMax: number;
  logger: Logger;
  counters: Counters;
  /** Current time in ms, for the idle timeout. */
  clockMs: () => number;
  /** Aborts every pending lookup (the server is stopping and their grace is over). */
  stopSignal: AbortSignal;
}

/** How long a client whose replies back up may take none of them before it counts as not reading. */
const READER_STALL_MS = 1000;

/** A reply's place in the connection's order; `bytes` is set once it is ready. */
interface ReplySlot {
  bytes: Uint8Array | undefined;
}

export class ClientSession {
  readonly connection: LineConnection;
  readonly #options: ClientSessionOptions;
  readonly #pending: ReplySlot[] = [];
  /** Aborts lookups still pending when the client goes away. */
  readonly #gone = new AbortController();
  readonly #lookupSignal: AbortSignal;
  #onRepliesSent: (() => void) | undefined;
  #stopping = false;
  /** Set once the client took none of its replies while they backed up. */
  #readsNothing = false;
  lastReadMs: number;

  constructor(connection: LineConnection, options: ClientSessionOptions) {
    this.connection = connection;
    this.#options = options;
    this.lastReadMs = options.clockMs();
    this.#lookupSignal = AbortSignal.any([this.#gone.signal, options.stopSignal]);
    connection.onClose(() => this.#gone.abort());
  }

  /** Serves until the client is done or the connection closes; `firstLines` are already read. */
  async serve(firstLines: Line[]): Promise<void> {
    const { connection } = this;
    let lines: Line[] | null = firstLines;
    while (lines !== null && !this.#stopping) {
      for (const line of lines) {
        // One read may bring many lines: each waits its turn under linesInFlightMax, and
        // while the client reads its replies slower than it asks, until they drain.
        if (this.#pending.length >= this.#options.linesInFlightMax) await this.#pauseReading();
        if (connection.isBackedUp && !this.#readsNothing) await this.#waitForSlowReader();
        if (connection.isClosed) return;
        this.#handle(line);
      }
      if (this.#pending.length >= this.#options.linesInFlightMax) await this.#pauseReading();
      if (connection.isClosed) return;
      lines = await connection.readLines();
      this.lastReadMs = this.#options.clockMs();
    }
    // Half-closed by the client, or the server is stopping: answer what was read, then close.
    await this.#repliesSent();
    await connection.drained();
    connection.close();
  }

  /**
   * Stops reading: lines already read are still answered, then the connection closes.
   * A read already waiting returns nothing more to act on.
   */
  stop(): void {
    this.#stopping = true;
    if (this.#pending.length === 0) {
      this.connection.drained().then(() => this.connection.close());
    }
  }

  /** Stops acting on lines (and reading) until fewer than linesInFlightMax replies wait. */
  async #pauseReading(): Promise<void> {
    this.#options.counters.add("limit_lines_in_flight");
    this.#options.logger.info("linesInFlightMax reached on {remote}: reading paused", {
      remote: this.connection.remote,
    });
    await this.#repliesSent();
  }

  /**
   * Acts on no more lines until the replies already sent have reached the client. A client
   * that takes none of them for {@link READER_STALL_MS} does not read at all: its lines are
   * acted on again, and `outputBytesMax` ends the connection.
   */
  async #waitForSlowReader(): Promise<void> {
    const { counters, logger } = this.#options;
    counters.add("slow_reader_pauses");
    logger.info("{remote} reads slowly: its lines wait until replies drain", {
      remote: this.connection.remote,
    });
    const sentBefore = this.connection.sentBytes;
    const stall = deadlineAfter(READER_STALL_MS);
    await raceAbort(this.connection.drained(), stall.signal, () => undefined);
    stall.clear();
    if (this.connection.isBackedUp && this.connection.sentBytes === sentBefore) {
      this.#readsNothing = true;
      logger.info("{remote} read nothing for {ms} ms: its lines are acted on again", {
        remote: this.connection.remote,
        ms: READER_STALL_MS,
      });
    }
  }

  #handle(line: Line): void {
    if (this.#stopping) return;
    const { logger, service, counters } = this.#options;
    counters.add("lines_received");
    const reply = service.handleLine(line.text, line.tooLong, this.#lookupSignal);
    if (logger.isEnabledFor("info")) {
      // An immediate reply is logged with its line: one event, half the logging cost.
      const shownLine = showWireText(line.text);
      logger.info(
        reply instanceof Uint8Array
          ? `client ${this.connection.remote}: ${shownLine} -> ${
            showWireBytes(withoutNewline(reply))
          }`
          : `client ${this.connection.remote} sent ${shownLine}`,
      );
    }
    this.#enqueue(reply);
  }

  #enqueue(reply: Reply): void {
    if (reply instanceof Uint8Array && this.#pending.length === 0) {
      this.connection.send(reply);
      return;
    }
    const slot: ReplySlot = { bytes: reply instanceof Uint8Array ? reply : undefined };
    this.#pending.push(slot);
    if (reply instanceof Promise) {
      reply.then((bytes) => {
        slot.bytes = bytes;
        this.#logReply(bytes);
        this.#sendReady();
      });
    }
  }

  #sendReady(): void {
    while (this.#pending.length > 0 && this.#pending[0].bytes !== undefined) {
      this.connection.send(this.#pending.shift()!.bytes!);
    }
    if (this.#pending.length < this.#options.linesInFlightMax && this.#onRepliesSent) {
      this.#onRepliesSent();
      this.#onRepliesSent = undefined;
    }
    if (this.#stopping && this.#pending.length === 0) {
      this.connection.drained().then(() => this.connection.close());
    }
  }

  #logReply(bytes: Uint8Array): void {
    const { logger } = this.#options;
    if (logger.isEnabledFor("info")) {
      logger.info(`reply to ${this.connection.remote}: ${showWireBytes(bytes)}`);
    }
  }

  /** Resolves once fewer than `linesInFlightMax` replies are pending — or none, when stopping. */
  #repliesSent(): Promise<void> {
    const done = () =>
      this.#pending.length === 0 ||
      (!this.#stopping && !this.connection.sawEnd &&
        this.#pending.length < this.#options.linesInFlightMax);
    if (done() || this.connection.isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (done() || this.connection.isClosed) resolve();
        else this.#onRepliesSent = check;
      };
      this.#onRepliesSent = check;
      this.connection.onClose(() => resolve());
    });
  }
}

/** A one-line reply without its `\n`, as the log shows it beside its line. */
function withoutNewline(reply: Uint8Array): Uint8Array {
  return reply.at(-1) === 0x0a ? reply.subarray(0, -1) : reply;
}
