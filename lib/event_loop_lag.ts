/**
 * How late the event loop runs: a timer every {@link EVENT_LOOP_PROBE_INTERVAL_MS} that
 * measures how long after its due time it fired. A server whose loop is busy answers every
 * client that late. Knows nothing of what keeps the loop busy, nor of HTTP or metrics: each
 * lag is handed to `onLag`, and the recent and largest ones are kept for the status.
 *
 * Every 10 ms: a stall of 10 ms or more is always seen (the timer due during it fires after
 * it), a shorter one with the chance of its length over 10 ms — fine enough for a 5 ms target
 * (at 100 ms a 20 ms stall was seen one time in five). The cost is up to 100 timers a second,
 * each two clock reads, a ring write and a histogram observation; what costs is waking an idle
 * process for them: about 2 % of one core when idle (0.5 % at 100 ms) on a busy 2-core host
 * with Deno 2.9, and next to nothing under load, when the loop is awake anyway.
 */

/** How often the probe fires: every stall of this long or longer is seen. */
export const EVENT_LOOP_PROBE_INTERVAL_MS = 10;
/** The "recent" lag is the largest of the samples of this long (one second's worth). */
export const EVENT_LOOP_RECENT_WINDOW_MS = 1000;

export interface EventLoopLagProbeOptions {
  /** Hears of every sample, in milliseconds (e.g. to put it into a histogram). */
  onLagMs?: (lagMs: number) => void;
  /** Default {@link EVENT_LOOP_PROBE_INTERVAL_MS}. */
  intervalMs?: number;
}

export class EventLoopLagProbe {
  readonly #onLagMs: (lagMs: number) => void;
  readonly #intervalMs: number;
  /** The latest samples, a ring of a second's worth (1000 / interval), oldest overwritten. */
  readonly #recentMs: Float64Array;
  #samples = 0;
  #maxMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: EventLoopLagProbeOptions = {}) {
    this.#onLagMs = options.onLagMs ?? (() => {});
    this.#intervalMs = options.intervalMs ?? EVENT_LOOP_PROBE_INTERVAL_MS;
    this.#recentMs = new Float64Array(
      Math.max(1, Math.round(EVENT_LOOP_RECENT_WINDOW_MS / this.#intervalMs)),
    );
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

  /** The largest lag of the last second of samples, in milliseconds. Allocates nothing. */
  get recentMs(): number {
    const ring = this.#recentMs;
    let largest = 0;
    for (let i = 0; i < ring.length; i++) if (ring[i] > largest) largest = ring[i];
    return largest;
  }

  /** The largest lag since the probe started, in milliseconds. */
  get maxMs(): number {
    return this.#maxMs;
  }

  /** Takes one sample, as if the timer due at `dueMs` fired at `firedMs`. */
  record(dueMs: number, firedMs: number): void {
    const lagMs = Math.max(0, firedMs - dueMs);
    this.#recentMs[this.#samples % this.#recentMs.length] = lagMs;
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
