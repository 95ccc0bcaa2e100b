/**
 * The one backoff rule every retry loop in herd uses (peer dialling, Places retries,
 * data-dir writes): a ceiling that starts at `firstMs` and doubles per retry up to `maxMs`,
 * and "equal jitter" — half the ceiling plus `random` × half — so retries from many servers
 * or connections do not fall into lock-step. Pure: the caller passes the random number.
 */

/** Where a retry loop's ceiling starts and where it stops growing. */
export interface BackoffOptions {
  firstMs: number;
  maxMs: number;
}

/**
 * The wait before retry number `retry` (1 for the first retry); `random` is in [0, 1) and is
 * clamped into it. With `random` 1 it is the ceiling itself, so `random: () => 1` turns the
 * jitter off.
 *
 * @example
 * ```ts
 * backoffDelayMs(1, 0, { firstMs: 100, maxMs: 1000 }); // 50
 * backoffDelayMs(3, 0.5, { firstMs: 100, maxMs: 1000 }); // 300 (ceiling 400)
 * backoffDelayMs(9, 1, { firstMs: 100, maxMs: 1000 }); // 1000
 * ```
 */
export function backoffDelayMs(retry: number, random: number, options: BackoffOptions): number {
  const doublings = Math.min(Math.max(0, retry - 1), 52);
  const ceilingMs = Math.min(options.maxMs, options.firstMs * 2 ** doublings);
  return ceilingMs / 2 + (ceilingMs / 2) * Math.min(Math.max(random, 0), 1);
}
