/**
 * Slots 0, 1, 2, … found by a 32-bit hash and the caller's test of whether a slot holds the
 * key sought: open addressing with linear probing in an `Int32Array` (slot + 1 per entry, 0
 * when empty), and the hash of every slot kept beside it so a probe tests keys only on equal
 * hashes. The caller makes the hashes (seeded, so keys chosen to collide cannot be known).
 *
 * Growing never stops the world. A table past half full is replaced by one twice its size,
 * and the slots move over {@link MOVED_PER_LOOKUP} at a time with each lookup after, lookups
 * probing the new table and then the old until every slot has moved. Doubling the index of a
 * quarter of a million clients at once stalled a server for 15 ms, most of it the first touch
 * of the new table's pages. The next doubling is half a table of additions away, and each
 * addition follows a lookup: the move is over long before.
 */
import { NumberChunks, released } from "./number_chunks.ts";

/** Entries of the table at first (a power of two, as every size after it). */
const ENTRIES_MIN = 1024;
/** The table doubles once this share of it is in use: linear probe runs stay short. */
const LOAD_MAX = 0.5;
/** Slots moved from the old table to the new with each lookup while a doubling is under way. */
const MOVED_PER_LOOKUP = 4;

export class SlotIndex<Key> {
  readonly #matches: (slot: number, key: Key) => boolean;
  /** Per slot: its hash. */
  readonly #hashes = new NumberChunks((length) => new Int32Array(length));
  #size = 0;
  /** The table lookups probe first and additions go to. */
  #table: Int32Array<ArrayBuffer> = new Int32Array(ENTRIES_MIN);
  /** While a doubling is under way, the table it replaces; slots below `#moved` have moved. */
  #oldTable: Int32Array<ArrayBuffer> | undefined;
  #moved = 0;
  /** Slots in the old table when the doubling started: those are the ones to move. */
  #toMove = 0;

  /** `matches(slot, key)`: whether `slot` holds `key` (called only on equal hashes). */
  constructor(options: { matches: (slot: number, key: Key) => boolean }) {
    this.#matches = options.matches;
  }

  /** Slots added so far: the next one added is this. */
  get size(): number {
    return this.#size;
  }

  /** Slots there is room for before a table or chunk has to be added. */
  get room(): number {
    return Math.min(this.#hashes.capacity, this.#table.length * LOAD_MAX);
  }

  /**
   * The slot holding `key`, or, when none does, `-1 - entry` of the entry where {@link add}
   * puts it — valid until the next call.
   */
  find(anyHash: number, key: Key): number {
    const hash = anyHash | 0; // as the hashes are kept
    if (this.#oldTable !== undefined) this.#moveSome(MOVED_PER_LOOKUP);
    const found = this.#probe(this.#table, hash, key);
    if (found >= 0 || this.#oldTable === undefined) return found;
    const old = this.#probe(this.#oldTable, hash, key);
    return old >= 0 ? old : found;
  }

  /** Adds the next slot, with `hash`, at the free `entry` the last {@link find} gave. */
  add(hash: number, entry: number): number {
    const slot = this.#size;
    this.#hashes.reserve(slot + 1);
    this.#hashes.set(slot, hash | 0);
    this.#table[entry] = slot + 1;
    this.#size += 1;
    if (this.#size > this.#table.length * LOAD_MAX) this.#startDoubling();
    return slot;
  }

  /**
   * Makes room at once for `slots` slots in all: a restart that knows how many it is about to
   * add sizes the table once instead of doubling it several times on the way.
   */
  reserve(slots: number): void {
    this.#hashes.reserve(slots);
    let entries = this.#table.length;
    while (slots > entries * LOAD_MAX) entries *= 2;
    if (entries === this.#table.length) return;
    this.#moveSome(Infinity);
    this.#table = this.#rebuilt(entries);
  }

  #probe(table: Int32Array, hash: number, key: Key): number {
    const mask = table.length - 1;
    for (let entry = hash & mask;; entry = (entry + 1) & mask) {
      const held = table[entry];
      if (held === 0) return -1 - entry;
      const slot = held - 1;
      if (this.#hashes.at(slot) === hash && this.#matches(slot, key)) return slot;
    }
  }

  #startDoubling(): void {
    // Never two at once (cannot happen at MOVED_PER_LOOKUP ≥ 1; cheap to rule out).
    this.#moveSome(Infinity);
    this.#oldTable = this.#table;
    this.#table = new Int32Array(this.#table.length * 2);
    this.#moved = 0;
    this.#toMove = this.#size;
  }

  /** Moves up to `count` slots from the old table to the new; frees the old after the last. */
  #moveSome(count: number): void {
    if (this.#oldTable === undefined) return;
    const end = Math.min(this.#toMove, this.#moved + count);
    for (let slot = this.#moved; slot < end; slot++) this.#place(this.#table, slot);
    this.#moved = end;
    if (end === this.#toMove) {
      released(this.#oldTable);
      this.#oldTable = undefined;
    }
  }

  /** A table of `entries` holding every slot, the old one freed. */
  #rebuilt(entries: number): Int32Array<ArrayBuffer> {
    const table = new Int32Array(entries);
    for (let slot = 0; slot < this.#size; slot++) this.#place(table, slot);
    released(this.#table);
    return table;
  }

  #place(table: Int32Array, slot: number): void {
    const mask = table.length - 1;
    let entry = this.#hashes.at(slot) & mask;
    while (table[entry] !== 0) entry = (entry + 1) & mask;
    table[entry] = slot + 1;
  }
}
