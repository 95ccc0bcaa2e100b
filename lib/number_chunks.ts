/**
 * A growable array of numbers kept in chunks of a fixed length: growing adds a chunk and
 * never copies what is held. Doubling one typed array of a quarter of a million clients
 * stalled a server for 13–18 ms — not the copy as such, but the first touch of the new
 * array's pages (about 11 µs a page on the development VM). A chunk's pages are touched as
 * the numbers in them are first written, spread over the writes; room never written costs
 * address space, not memory.
 */

/** Numbers per chunk: 2^12 (32 KiB of doubles). */
const CHUNK_BITS = 12;
const CHUNK_LENGTH = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_LENGTH - 1;

/** The typed arrays chunks can be made of. */
export type NumberArray =
  | Float64Array<ArrayBuffer>
  | Int32Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>;

export class NumberChunks {
  readonly #chunks: NumberArray[] = [];
  readonly #makeChunk: (length: number) => NumberArray;

  /** `makeChunk` makes one zeroed chunk of the given length, e.g. `(n) => new Int32Array(n)`. */
  constructor(makeChunk: (length: number) => NumberArray) {
    this.#makeChunk = makeChunk;
  }

  /** How many numbers there is room for: indexes below it may be read and written. */
  get capacity(): number {
    return this.#chunks.length * CHUNK_LENGTH;
  }

  /** The number at `index` (below `capacity`; 0 until written). */
  at(index: number): number {
    return this.#chunks[index >>> CHUNK_BITS][index & CHUNK_MASK];
  }

  set(index: number, value: number): void {
    this.#chunks[index >>> CHUNK_BITS][index & CHUNK_MASK] = value;
  }

  /** Makes room for indexes below `length`, a chunk at a time. */
  reserve(length: number): void {
    while (this.capacity < length) this.#chunks.push(this.#makeChunk(CHUNK_LENGTH));
  }
}

/**
 * Frees the memory of an array no longer used, without waiting for the garbage collector: left
 * to it, the old copies of a growing store stayed resident for seconds.
 */
export function released(numbers: NumberArray | Uint8Array<ArrayBuffer>): void {
  numbers.buffer.transfer(0);
}
