/**
 * The offline provider's loader, run as a Worker: reads the GeoNames JSON file, turns it
 * into compact columns (typed arrays, one UTF-8 byte buffer, a kdbush index) and posts
 * them back as transferred ArrayBuffers; the parent then terminates it.
 *
 * The file is scanned byte by byte straight into the columns instead of going through
 * JSON.parse: a parsed copy is ~135 MB of objects, and even per-element parsing leaves tens
 * of MB of garbage behind — a terminated worker's heap is not returned to the system, so
 * every MB this worker's heap grows stays in the process's RSS for good.
 *
 * Owns: the data file's format and the columnar layout. Must not know: queries, ranking,
 * place_id, the Places body shape, or anything of servers and clients.
 */

import KDBush from "kdbush";

/** How many places a kd-tree leaf holds; kdbush's default, a good speed/size balance. */
const KDBUSH_NODE_SIZE = 64;

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

/** A guess of the JSON bytes per place (the real file: ~100), only to size the first arrays. */
const ENTRY_BYTES_GUESS = 64;

/**
 * The loaded data set in columns, indexed by place number `0 … count - 1`. Every field is a
 * typed array over its own ArrayBuffer so the whole value can be transferred between
 * threads without copying.
 */
export interface OfflineColumns {
  /** Places loaded. */
  count: number;
  /** Elements of the file that were not places (missing fields, bad coordinates). */
  skippedCount: number;
  /** Latitude in degrees, parsed from the data set's string. */
  latitudes: Float64Array<ArrayBuffer>;
  /** Longitude in degrees, parsed from the data set's string. */
  longitudes: Float64Array<ArrayBuffer>;
  /**
   * For each place, the UTF-8 bytes of `name|country|admin1|lat|lng` exactly as the data
   * set writes them (the place_id hash input), back to back.
   */
  recordBytes: Uint8Array<ArrayBuffer>;
  /** Place `i`'s record is `recordBytes[recordOffsets[i] … recordOffsets[i + 1])`. */
  recordOffsets: Uint32Array<ArrayBuffer>;
  /** How many of a record's leading bytes are the name (a name may hold any character). */
  nameBytes: Uint16Array<ArrayBuffer>;
  /** A finished kdbush index over (longitude, latitude); item ids are place numbers. */
  indexData: ArrayBuffer;
}

/** What the parent sends: the data file to read. */
export interface OfflineLoadRequest {
  /** A `file:` URL (or any URL Deno.readFile accepts). */
  dataUrl: string;
}

/** What the worker answers: the columns, or why it could not build them. */
export type OfflineLoadReply =
  | { ok: true; columns: OfflineColumns }
  | { ok: false; message: string };

/** The buffers of `columns`, for a postMessage transfer list. */
export function columnBuffers(columns: OfflineColumns): ArrayBuffer[] {
  return [
    columns.latitudes.buffer,
    columns.longitudes.buffer,
    columns.recordBytes.buffer,
    columns.recordOffsets.buffer,
    columns.nameBytes.buffer,
    columns.indexData,
  ];
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
  const builder = new ColumnsBuilder(bytes);
  const scanner = new Scanner(bytes);
  scanner.expect(BYTE_OPEN_BRACKET, "the data set is not a JSON array");
  if (!scanner.skip(BYTE_CLOSE_BRACKET)) {
    do {
      builder.addElement(scanner.readFields());
    } while (scanner.skip(BYTE_COMMA));
    scanner.expect(BYTE_CLOSE_BRACKET, "expected , or ] after an element");
  }
  scanner.expectEnd();
  return builder.finish();
}

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

/** Reads JSON tokens from bytes; ASCII structure bytes never occur inside UTF-8 sequences. */
class Scanner {
  #position = 0;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
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
    const fields: ElementFields = {
      name: undefined,
      country: undefined,
      admin1: undefined,
      lat: undefined,
      lng: undefined,
    };
    this.expect(BYTE_OPEN_BRACE, "an element is not a JSON object");
    if (this.skip(BYTE_CLOSE_BRACE)) return fields;
    do {
      this.expect(BYTE_QUOTE, "expected a member name");
      const key = fieldKeyOf(this.#bytes, this.#readString());
      this.expect(BYTE_COLON, "expected : after a member name");
      const value = this.skip(BYTE_QUOTE) ? this.#readString() : this.#skipValue();
      if (key !== undefined) fields[key] = value;
    } while (this.skip(BYTE_COMMA));
    this.expect(BYTE_CLOSE_BRACE, "expected , or } in an object");
    return fields;
  }

  /** Reads a string's content after its opening quote, up to and past its closing quote. */
  #readString(): StringSpan {
    const bytes = this.#bytes;
    const start = this.#position;
    let escaped = false;
    for (let position = start; position < bytes.length; position++) {
      const byte = bytes[position];
      if (byte === BYTE_QUOTE) {
        this.#position = position + 1;
        const span = { start, end: position, escaped };
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
        position = this.#readString().end;
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
    throw new Error(`the data set is not valid: ${problem} at byte ${this.#position}`);
  }
}

/** Which wanted member a key names, if any (keys are compared as decoded text). */
function fieldKeyOf(bytes: Uint8Array, key: StringSpan): keyof ElementFields | undefined {
  if (key.escaped) {
    const text = decodeEscaped(bytes, key);
    return FIELD_KEYS.find((field) => field === text);
  }
  // Compared byte by byte: making a string of every key would be a million small garbage
  // strings for the real file.
  const length = key.end - key.start;
  return FIELD_KEYS.find((field) => {
    if (field.length !== length) return false;
    for (let i = 0; i < length; i++) {
      if (field.charCodeAt(i) !== bytes[key.start + i]) return false;
    }
    return true;
  });
}

/** The text of an escaped JSON string (quotes included in the slice given to JSON.parse). */
function decodeEscaped(bytes: Uint8Array, span: StringSpan): string {
  return JSON.parse(new TextDecoder().decode(bytes.subarray(span.start - 1, span.end + 1)));
}

/** Appends places to growing columns; `finish` trims them and builds the index. */
class ColumnsBuilder {
  readonly #bytes: Uint8Array;
  readonly #encoder = new TextEncoder();
  #latitudes: Float64Array<ArrayBuffer>;
  #longitudes: Float64Array<ArrayBuffer>;
  #recordOffsets: Uint32Array<ArrayBuffer>;
  #nameBytes: Uint16Array<ArrayBuffer>;
  // A record never takes more bytes than the JSON it comes from (each of its five strings
  // has two quotes there, the record four separators; escapes only shrink when decoded),
  // so the file's size bounds all records.
  readonly #recordBytes: Uint8Array<ArrayBuffer>;
  #recordBytesUsed = 0;
  #count = 0;
  #skippedCount = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    const capacity = Math.ceil(bytes.length / ENTRY_BYTES_GUESS) + 1;
    this.#latitudes = new Float64Array(capacity);
    this.#longitudes = new Float64Array(capacity);
    this.#recordOffsets = new Uint32Array(capacity + 1);
    this.#nameBytes = new Uint16Array(capacity);
    this.#recordBytes = new Uint8Array(bytes.length);
  }

  addElement(fields: ElementFields): void {
    const { name, country, admin1, lat, lng } = fields;
    if (
      name === undefined || country === undefined || admin1 === undefined ||
      lat === undefined || lng === undefined
    ) {
      this.#skippedCount++;
      return;
    }
    const latitude = this.#coordinate(lat);
    const longitude = this.#coordinate(lng);
    if (!(Math.abs(latitude) <= 90) || !(Math.abs(longitude) <= 180)) {
      this.#skippedCount++;
      return;
    }
    const recordStart = this.#recordBytesUsed;
    this.#append(name);
    const nameLength = this.#recordBytesUsed - recordStart;
    if (nameLength > NAME_BYTES_MAX) {
      this.#recordBytesUsed = recordStart;
      this.#skippedCount++;
      return;
    }
    for (const span of [country, admin1, lat, lng]) {
      this.#recordBytes[this.#recordBytesUsed++] = BYTE_SEPARATOR;
      this.#append(span);
    }
    if (this.#count === this.#latitudes.length) this.#grow();
    this.#latitudes[this.#count] = latitude;
    this.#longitudes[this.#count] = longitude;
    this.#nameBytes[this.#count] = nameLength;
    this.#recordOffsets[this.#count] = recordStart;
    this.#count++;
  }

  finish(): OfflineColumns {
    const count = this.#count;
    this.#recordOffsets[count] = this.#recordBytesUsed;
    const index = new KDBush(count, KDBUSH_NODE_SIZE, Float64Array);
    for (let i = 0; i < count; i++) index.add(this.#longitudes[i], this.#latitudes[i]);
    index.finish();
    return {
      count,
      skippedCount: this.#skippedCount,
      // slice() copies into exactly sized buffers so no slack is transferred and kept.
      latitudes: this.#latitudes.slice(0, count),
      longitudes: this.#longitudes.slice(0, count),
      recordBytes: this.#recordBytes.slice(0, this.#recordBytesUsed),
      recordOffsets: this.#recordOffsets.slice(0, count + 1),
      nameBytes: this.#nameBytes.slice(0, count),
      indexData: index.data as ArrayBuffer,
    };
  }

  /** Copies a string's UTF-8 bytes (decoding escapes) to the end of the records. */
  #append(span: StringSpan): void {
    if (span.escaped) {
      const target = this.#recordBytes.subarray(this.#recordBytesUsed);
      this.#recordBytesUsed +=
        this.#encoder.encodeInto(decodeEscaped(this.#bytes, span), target).written;
      return;
    }
    this.#recordBytes.set(this.#bytes.subarray(span.start, span.end), this.#recordBytesUsed);
    this.#recordBytesUsed += span.end - span.start;
  }

  /** The degrees a coordinate string writes if it is a plain decimal like `-12.345`, else NaN. */
  #coordinate(span: StringSpan): number {
    const bytes = this.#bytes;
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

  #grow(): void {
    const capacity = 2 * this.#latitudes.length;
    this.#latitudes = grown(this.#latitudes, new Float64Array(capacity));
    this.#longitudes = grown(this.#longitudes, new Float64Array(capacity));
    this.#recordOffsets = grown(this.#recordOffsets, new Uint32Array(capacity + 1));
    this.#nameBytes = grown(this.#nameBytes, new Uint16Array(capacity));
  }
}

function grown<T extends Float64Array | Uint32Array | Uint16Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

function isDigit(byte: number): boolean {
  return byte >= BYTE_DIGIT_0 && byte <= BYTE_DIGIT_9;
}

async function load(request: OfflineLoadRequest): Promise<OfflineLoadReply> {
  try {
    const bytes = await Deno.readFile(new URL(request.dataUrl));
    return { ok: true, columns: buildColumns(bytes) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, message: `offline places: cannot load ${request.dataUrl}: ${reason}` };
  }
}

// Only act as a worker when started as one; importing this module for its types or for
// buildColumns must not install a message handler on the main thread.
const workerScope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<OfflineLoadRequest>) => void) | null;
  postMessage(message: OfflineLoadReply, transfer: Transferable[]): void;
};
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function") {
  workerScope.onmessage = async (event) => {
    const reply = await load(event.data);
    workerScope.postMessage(reply, reply.ok ? columnBuffers(reply.columns) : []);
  };
}
