/**
 * Formatted WHATSAT bodies of answers that never change (an immediate provider's, the offline
 * data set's), kept by query so that a repeated WHATSAT is answered without a search and
 * without formatting 20 results again — those were ~90 % of a loaded offline WHATSAT's cost.
 *
 * Bounded in bytes (each entry counted as its body's bytes — wire text, one byte a code unit —
 * its key's and a fixed overhead); past the bound the oldest entries go first. An attacker who
 * varies every query only cycles the cache: each of its WHATSATs costs what it would without one.
 */

/** What each entry costs beyond its bytes and its key: the map entry and the array object. */
const ENTRY_OVERHEAD_BYTES = 128;

export interface AnswerCacheOptions {
  /** Bytes held at most, entries counted as described above. */
  bytesMax: number;
}

export class AnswerCache {
  readonly #bytesMax: number;
  /** In insertion order, oldest first: the order entries are dropped in. */
  readonly #entries = new Map<string, string>();
  #bytes = 0;

  constructor(options: AnswerCacheOptions) {
    this.#bytesMax = options.bytesMax;
  }

  /** Bytes held, as counted toward `bytesMax`. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): string | undefined {
    return this.#entries.get(key);
  }

  /** Keeps `body` for `key`, dropping the oldest entries as needed; one past the bound alone is not kept. */
  set(key: string, body: string): void {
    const cost = entryCost(key, body);
    if (cost > this.#bytesMax || this.#entries.has(key)) return;
    for (const [oldKey, oldBody] of this.#entries) {
      if (this.#bytes + cost <= this.#bytesMax) break;
      this.#entries.delete(oldKey);
      this.#bytes -= entryCost(oldKey, oldBody);
    }
    this.#entries.set(key, body);
    this.#bytes += cost;
  }
}

function entryCost(key: string, body: string): number {
  return body.length + key.length * 2 + ENTRY_OVERHEAD_BYTES;
}
