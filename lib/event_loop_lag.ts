/**
 * How late the event loop runs: a timer every {@link EVENT_LOOP_PROBE_INTERVAL_MS} that
 * measures how long after its due time it fired. A server whose loop is busy answers every
 * client that late. Knows nothing of what keeps the loop busy, nor of HTTP or metrics: each
 * lag is handed to `onLag`, and the recent and largest ones are kept for the status.
 */

/** How often the probe fires: often enough to see a 100 ms stall, rare enough to cost nothing. */
export const EVENT_LOOP_PROBE_INTERVAL_MS = 100;
/** The "recent" lag is the largest of this many latest samples (one second of them). */
const RECENT_SAMPLES = 10;

export interface EventLoopLagProbeOptions {
  /** Hears of every sample, in milliseconds (e.g. to put it into a histogram). */
  onLagMs?: (lagMs: number) => void;
  /** Default {@link EVENT_LOOP_PROBE_INTERVAL_MS}. */
  intervalMs?: number;
}

export class EventLoopLagProbe {
  readonly #onLagMs: (lagMs: number) => void;
  readonly #intervalMs: number;
  readonly #recentMs = new Float64Array(RECENT_SAMPLES);
  #samples = 0;
  #maxMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: EventLoopLagProbeOptions = {}) {
    this.#onLagMs = options.onLagMs ?? (() => {});
    this.#intervalMs = options.intervalMs ?? EVENT_LOOP_PROBE_INTERVAL_MS;
  }

  /** Starts sampling; the timer never keeps the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#schedule();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The largest lag of the last second of samples, in milliseconds. */
  get recentMs(): number {
    return Math.max(...this.#recentMs);
  }

  /** The largest lag since the probe started, in milliseconds. */
  get maxMs(): number {
    return this.#maxMs;
  }

  /** Takes one sample, as if the timer due at `dueMs` fired at `firedMs`. */
  record(dueMs: number, firedMs: number): void {
    const lagMs = Math.max(0, firedMs - dueMs);
    this.#recentMs[this.#samples % RECENT_SAMPLES] = lagMs;
    this.#samples += 1;
    if (lagMs > this.#maxMs) this.#maxMs = lagMs;
    this.#onLagMs(lagMs);
  }

  #schedule(): void {
    const dueMs = performance.now() + this.#intervalMs;
    const timer = setTimeout(() => {
      this.record(dueMs, performance.now());
      if (this.#timer !== undefined) this.#schedule();
    }, this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
