/**
 * A WaitClock that moves only when a test says, for heartbeats, timeouts and backoff without
 * sleeping: `advance` moves time in steps and lets the work each step wakes run before the
 * next, as a real clock's timers would.
 */
import type { WaitClock } from "../../lib/abortable.ts";

/** Event-loop turns `settle` lets pass: enough for a chain of memory writes and reads. */
const SETTLE_TURNS = 8;

interface Sleeper {
  untilMs: number;
  wake: () => void;
}

export class ManualClock implements WaitClock {
  #nowMs = 0;
  #sleepers: Sleeper[] = [];

  nowMs(): number {
    return this.#nowMs;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const sleeper = { untilMs: this.#nowMs + ms, wake: resolve };
      this.#sleepers.push(sleeper);
      signal.addEventListener("abort", () => {
        this.#sleepers = this.#sleepers.filter((other) => other !== sleeper);
        resolve();
      }, { once: true });
    });
  }

  /** Moves time forward `ms` in steps of at most `stepMs`, settling after each step. */
  async advance(ms: number, stepMs = ms): Promise<void> {
    const untilMs = this.#nowMs + ms;
    while (this.#nowMs < untilMs) {
      this.#nowMs = Math.min(untilMs, this.#nowMs + stepMs);
      const due = this.#sleepers.filter((sleeper) => sleeper.untilMs <= this.#nowMs);
      this.#sleepers = this.#sleepers.filter((sleeper) => sleeper.untilMs > this.#nowMs);
      for (const sleeper of due) sleeper.wake();
      await settle();
    }
  }
}

/** Lets promise chains and zero-delay timers (memory connections, yields) run their course. */
export async function settle(): Promise<void> {
  for (let turn = 0; turn < SETTLE_TURNS; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
