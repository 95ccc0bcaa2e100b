/**
 * Named event counters a person can read: incremented on the hot path for almost nothing,
 * written to the log every minute and at stop as one `name=value` line.
 */

export class Counters {
  readonly #values = new Map<string, number>();

  /** Adds `by` (default 1) to the counter `name`. */
  add(name: string, by = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  /** Every counter by name, as `GET /status` shows them. */
  toRecord(): Record<string, number> {
    return Object.fromEntries(this.#values);
  }

  /** `a=1 b=2 …`, sorted by name so successive lines line up. */
  format(): string {
    return [...this.#values.entries()]
      .sort(([a], [b]) => a < b ? -1 : 1)
      .map(([name, value]) => `${name}=${value}`)
      .join(" ");
  }
}
