/**
 * Waiting that an AbortSignal can cut short — the two shapes herd needs on top of the
 * platform's AbortSignal.timeout / AbortSignal.any.
 */

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * `promise`'s value, or `fallback()` the moment `signal` aborts — whichever comes first.
 * A rejection also gives `fallback()`. A value that arrives after the abort is passed to
 * `discard` (e.g. to close a connection nobody will use).
 */
export function raceAbort<T, F>(
  promise: Promise<T>,
  signal: AbortSignal,
  fallback: () => F,
  discard: (late: T) => void = () => {},
): Promise<T | F> {
  if (signal.aborted) {
    promise.then(discard, () => {});
    return Promise.resolve(fallback());
  }
  return new Promise((resolve) => {
    const onAbort = () => resolve(fallback());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (signal.aborted ? discard(value) : resolve(value)),
      () => resolve(fallback()),
    ).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** An AbortSignal that aborts after `ms`, with the timer to clear once nothing waits for it. */
export interface Deadline {
  signal: AbortSignal;
  clear(): void;
}

/**
 * Like `AbortSignal.timeout(ms)`, but clearable: where thousands of operations a second each
 * need a deadline, those that finish early should not leave timers to fire seconds later.
 */
export function deadlineAfter(ms: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Monotonic time and waiting, injected where tests must not really wait. */
export interface WaitClock {
  /** Milliseconds on a monotonic clock (the default is `performance.now()`). */
  nowMs(): number;
  /** Resolves after `ms`, or as soon as `signal` aborts; never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The real clock: `performance.now()` and an abortable timer. */
export const systemWaitClock: WaitClock = { nowMs: () => performance.now(), sleep };
