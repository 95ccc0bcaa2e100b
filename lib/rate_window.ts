/**
 * Per-second rates of growing totals over the last few seconds: the totals are sampled once
 * a second into a fixed ring, and a rate is the growth from the oldest sample to the value
 * now. Bounded by {@link RATE_SAMPLES_MAX} samples per key and a fixed set of keys (the
 * caller's: commands and configured neighbours). Knows nothing of what the totals count.
 */

/** Samples kept per key: rates cover the last five seconds. */
export const RATE_SAMPLES_MAX = 5;

interface Sample {
  atMs: number;
  total: number;
}

export class RateWindow {
  readonly #samples = new Map<string, Sample[]>();

  /** Records `total` for `key` at `atMs` (monotonic), dropping the oldest past the bound. */
  sample(key: string, total: number, atMs: number): void {
    let samples = this.#samples.get(key);
    if (samples === undefined) this.#samples.set(key, samples = []);
    samples.push({ atMs, total });
    if (samples.length > RATE_SAMPLES_MAX) samples.shift();
  }

  /** How fast `key` grew per second from its oldest sample to `total` at `nowMs`; 0 unknown. */
  perSecond(key: string, total: number, nowMs: number): number {
    const oldest = this.#samples.get(key)?.[0];
    if (oldest === undefined || nowMs - oldest.atMs <= 0) return 0;
    return Math.max(0, (total - oldest.total) * 1000 / (nowMs - oldest.atMs));
  }
}
