/**
 * The latest known update per client and the rule that decides which update wins. Knows no
 * sockets; of the wire format only that an AT line's fourth field is the client id and its
 * last the client's time, and that it is wire text (one byte per character).
 *
 * Every accepted change gets the next local sequence number and an entry at the end of a
 * change journal, so walking the journal meets changes in the order they happened: catch-up
 * sends a neighbour only what changed since the sequence number it already has. A client's
 * record is replaced in place; its older journal entries go stale and are skipped, and
 * dropped once they are as many as the clients (so an update costs O(1) amortised however
 * many clients are stored).
 *
 * Memory: no JavaScript object or string per client. AT lines are bytes in an arena (see
 * {@link ByteArena}); per client the rest is a few numbers in typed arrays (the record's
 * place, sequence number, source and id hash), an index entry and its journal entries. None
 * of it is ever copied to grow: the arrays grow by chunks ({@link NumberChunks}) and the
 * index doubles a few entries at a time ({@link SlotIndex}) — a store growing past 256k
 * clients under load stalled its server 13–18 ms per array doubling before.
 * A line becomes a string only when it is read (`get`, `changesAfter`). `storeBytesMax`
 * bounds the bytes held, each client counted as {@link storedClientBytes}.
 *
 * The index is a hash table of slot numbers in a typed array, not a `Map<string, number>`: a
 * restart restores every client at once, and 1M `Map` insertions were most of that load. The
 * id compared is the one inside the slot's AT line. Its hash is seeded at random per store,
 * so ids chosen to collide cannot be known in advance.
 *
 * A restart restores from the data dir's bytes (`restore`): the line is copied from the
 * loader's buffer straight into the arena, with no string made.
 */
import { Buffer } from "node:buffer";
import { DIGIT_ZERO, fieldEnd, POINT, SPACE } from "./protocol.ts";
import { NumberChunks, released } from "./number_chunks.ts";
import { SlotIndex } from "./slot_index.ts";
import { wireBytesInto } from "./lines.ts";

/** Journal entries kept before stale ones are dropped, beyond two per client. */
const JOURNAL_ENTRIES_MIN = 1024;
/** The arena's blocks (see {@link ByteArena}). */
const ARENA_BLOCK_BYTES = 1024 * 1024;
/** A place is its block's number times this, plus its offset in the block. */
const BLOCK_PLACE_STRIDE = 2 ** 32;
/** The arena is compacted once its garbage is this share of its live bytes… */
const ARENA_GARBAGE_SHARE_MAX = 1 / 3;
/** …and at least this many bytes. */
const ARENA_GARBAGE_BYTES_MIN = 1024 * 1024;
/** A record in the arena: the slot (4 bytes), the AT line's length (4), then the line. */
const RECORD_HEADER_BYTES = 8;
/**
 * A line takes room in steps of this many bytes, so that a client's next line — most often as
 * long as its last — overwrites it in place instead of leaving garbage: compacting a store of
 * many busy clients was a stall of tens of ms every few seconds.
 */
const LINE_ROOM_STEP_BYTES = 8;
/** Ids encoded for a lookup in a buffer kept for it, up to this length (longer: a new one). */
const SCRATCH_BYTES = 64 * 1024;
/** Sources (a client, then each neighbour) a per-slot 16-bit number can name. */
const SOURCES_MAX = 0x10000;
/** The client id is an AT line's fourth field: three spaces precede it. */
const SPACES_BEFORE_CLIENT_ID = 3;

/**
 * What a stored client costs beyond its AT line: the per-slot numbers (8-byte record place
 * and sequence number, 4-byte hash, 2-byte source: 22 bytes), the arena's record header (8),
 * an index entry at a load of a quarter to a half (8–16), up to two journal entries of 12
 * bytes (24), and the unused rest of the last chunk of each array. Measured: 183 B of RSS per
 * client at 1M clients whose AT lines are ~80 B (`deno task bench --only memory`, see
 * docs/performance.md), i.e. ~100 beyond one copy of the line. Each client counts twice its
 * line (see {@link storedClientBytes}) and this, 260 B there: the bound errs on the side of
 * the heap.
 */
export const STORED_CLIENT_OVERHEAD_BYTES = 100;

/**
 * The bytes one client counts toward `storeBytesMax`: its AT line twice — the arena holds at
 * most 4/3 of its live lines with the garbage of replaced ones, beyond a fixed 2 MiB (see
 * {@link ByteArena}), and each line's room is rounded up to 8 bytes — and the fixed overhead.
 */
export function storedClientBytes(update: ClientUpdate): number {
  return lineCostBytes(update.atLine.length);
}

function lineCostBytes(atLineBytes: number): number {
  return 2 * atLineBytes + STORED_CLIENT_OVERHEAD_BYTES;
}

/** One client's latest location, as its origin server announced it. */
export interface ClientUpdate {
  clientId: string;
  /** `AT <origin> <skew> <id> <location> <time>`, exactly as the origin wrote it. */
  atLine: string;
}

/** A stored update with where it came from and when it changed locally. */
export interface StoredUpdate extends ClientUpdate {
  /** The neighbour it arrived from, or undefined when a client sent it here. */
  fromPeer: string | undefined;
  /** Local change sequence number (1, 2, …) within this store's epoch. */
  seq: number;
}

/**
 * The result of offering an update to the store: stored, not newer than what is held, or
 * refused because it would take the store past one of its bounds.
 */
export type OfferResult = "stored" | "stale" | "clientsMax" | "storeBytesMax";

/** The counter of each bound an update may be refused by. */
export const STORE_LIMIT_COUNTERS = {
  clientsMax: "limit_clients_max",
  storeBytesMax: "limit_store_bytes",
} as const;

/** The store's bounds, and who hears of what it stores. */
export interface ClientStoreOptions {
  /** Clients held at most; a new one past it is refused. */
  clientsMax: number;
  /** Bytes held at most (see {@link storedClientBytes}); default: no bound. */
  storeBytesMax?: number;
  /** Hears of every update `offer` stores (e.g. to write it to the data dir). */
  onStored?: (atLine: string) => void;
}

/** Where an offered update comes from. */
export interface OfferOptions {
  /** The neighbour it arrived from; absent when a client sent it to this server. */
  fromPeer?: string;
}

/** An AT line in a byte array: `bytes[start, end)`. */
interface LineBytes {
  bytes: Uint8Array;
  start: number;
  end: number;
}

/** Whether an update (its line in `update`) replaces the held one (its line in `held`). */
type NewerRule = (update: LineBytes, held: LineBytes) => boolean;

/**
 * Total order of updates between servers: client time, then the AT line's bytes. Equal-time
 * updates from different origins thus converge to the same winner everywhere.
 */
export function compareUpdates(a: ClientUpdate, b: ClientUpdate): number {
  return compareLines(latin1Line(a.atLine), latin1Line(b.atLine));
}

/**
 * Compares two times of the protocol's grammar (`digits[.digits]`) as exact decimals, with
 * no numbers built: `5.5` equals `5.50`, and any number of digits compares right.
 */
export function compareTimeTexts(a: string, b: string): number {
  return compareTimes(latin1Line(a), latin1Line(b));
}

export class ClientStore {
  readonly #arena = new ByteArena();
  /** Per slot: where its record starts in the arena. */
  readonly #places = new NumberChunks((length) => new Float64Array(length));
  /** Per slot: the sequence number of its latest change. */
  readonly #seqs = new NumberChunks((length) => new Float64Array(length));
  /** Per slot: its update's source, an index into `#sources`. */
  readonly #sourceIndexes = new NumberChunks((length) => new Uint16Array(length));
  /** The slot of each client id; the id compared is the one in the slot's AT line. */
  readonly #index = new SlotIndex<LineBytes>({
    matches: (slot, id) => this.#isClientOf(slot, id),
  });
  readonly #hashSeed = crypto.getRandomValues(new Int32Array(1))[0];
  /** The change journal: slot and sequence number of every change, oldest first. */
  readonly #journalSlots = new NumberChunks((length) => new Int32Array(length));
  readonly #journalSeqs = new NumberChunks((length) => new Float64Array(length));
  #journalLength = 0;
  /** Bumped when stale entries are dropped, so a walk in progress finds its place again. */
  #journalVersion = 0;
  readonly #clientsMax: number;
  readonly #storeBytesMax: number;
  #bytes = 0;
  /** Index 0: sent by a client; then each neighbour name the first time it sends. */
  readonly #sources: Array<string | undefined> = [undefined];
  readonly #onStored: (atLine: string) => void;
  #lastSeq = 0;
  readonly #scratch = new Uint8Array(SCRATCH_BYTES);

  constructor(options: ClientStoreOptions) {
    this.#clientsMax = options.clientsMax;
    this.#storeBytesMax = options.storeBytesMax ?? Infinity;
    this.#onStored = options.onStored ?? (() => {});
  }

  get size(): number {
    return this.#index.size;
  }

  /** Bytes held, as counted toward `storeBytesMax`. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Clients there is room for before the index has to double (see `reserve`). */
  get clientRoom(): number {
    return this.#index.room;
  }

  /** The bytes the arena of AT lines holds now, garbage and room to grow included. */
  get arenaBytes(): number {
    return this.#arena.capacity;
  }

  /** The sequence number of the latest change (0 when nothing was stored). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Makes room at once for `clients` more clients: a restart knows about how many it will
   * restore, and doubling the index on the way would put every client back in it several
   * times over. (The per-client arrays, the journal and the arena of lines grow by chunks and
   * blocks, never copied.)
   */
  reserve(options: { clients: number }): void {
    // No more than the bounds let in: a file of stale records makes no room for its count.
    const clients = Math.min(options.clients, this.#clientsMax - this.size);
    this.#index.reserve(this.size + clients);
  }

  get(clientId: string): StoredUpdate | undefined {
    const id = this.#encoded(clientId);
    const slot = this.#index.find(hashOf(id, this.#hashSeed), id);
    return slot < 0 ? undefined : this.#unpack(slot);
  }

  /**
   * Stores `update` if it is newer than what is held: for a client's own IAMAT (no
   * `fromPeer`) only a strictly later time counts; between servers the full update order
   * applies. A newer update that would pass `clientsMax` or `storeBytesMax` is refused.
   */
  offer(update: ClientUpdate, options: OfferOptions = {}): OfferResult {
    const { fromPeer } = options;
    const line = this.#encoded(update.atLine);
    const result = this.#put(line, fromPeer, fromPeer === undefined ? isLaterTime : isGreater);
    if (result === "stored") this.#onStored(update.atLine);
    return result;
  }

  /**
   * Takes back an update this server had stored before it restarted, the AT line in
   * `bytes[start, end)` (well formed: the caller checked it): the full update order applies,
   * the bytes are copied, and `onStored` is not told (it is already written).
   */
  restore(bytes: Uint8Array, start: number, end: number): OfferResult {
    return this.#put({ bytes, start, end }, undefined, isGreater);
  }

  /**
   * Updates changed after `afterSeq`, oldest change first. The walk is live: an entry that
   * changes while it runs is met again at the end with its new sequence number.
   */
  *changesAfter(afterSeq: number): Generator<StoredUpdate> {
    let version = this.#journalVersion;
    let lastSeq = afterSeq;
    let index = this.#journalIndexAfter(afterSeq);
    while (true) {
      if (version !== this.#journalVersion) {
        version = this.#journalVersion;
        index = this.#journalIndexAfter(lastSeq);
      }
      if (index >= this.#journalLength) return;
      const seq = this.#journalSeqs.at(index);
      const slot = this.#journalSlots.at(index);
      index += 1;
      lastSeq = seq;
      if (this.#seqs.at(slot) === seq) yield this.#unpack(slot);
    }
  }

  /** Every held AT line, oldest change first; live, like `changesAfter`. */
  *atLines(): Generator<string> {
    for (const update of this.changesAfter(0)) yield update.atLine;
  }

  #put(line: LineBytes, fromPeer: string | undefined, isNewer: NewerRule): OfferResult {
    const idStart = clientIdStart(line);
    const id = { bytes: line.bytes, start: idStart, end: fieldEnd(line.bytes, idStart, line.end) };
    const hash = hashOf(id, this.#hashSeed);
    const found = this.#index.find(hash, id);
    const lineBytes = line.end - line.start;
    let addedBytes: number;
    if (found < 0) {
      if (this.size >= this.#clientsMax) return "clientsMax";
      addedBytes = lineCostBytes(lineBytes);
    } else {
      const held = this.#arena.lineOf(this.#places.at(found));
      if (!isNewer(line, held)) return "stale";
      addedBytes = lineCostBytes(lineBytes) - lineCostBytes(held.end - held.start);
    }
    if (addedBytes > 0 && this.#bytes + addedBytes > this.#storeBytesMax) return "storeBytesMax";
    const sourceIndex = this.#sourceIndex(fromPeer);
    this.#bytes += addedBytes;
    this.#lastSeq += 1;
    const slot = found < 0 ? this.#addSlot(hash, -1 - found) : found;
    if (found < 0 || !this.#arena.replace(this.#places.at(slot), line)) {
      if (found >= 0) this.#discard(slot);
      this.#places.set(slot, this.#arena.append(line, slot));
    }
    this.#seqs.set(slot, this.#lastSeq);
    this.#sourceIndexes.set(slot, sourceIndex);
    this.#journal(slot);
    return "stored";
  }

  /** Leaves the slot's line in the arena as garbage: the slot points to no record for now. */
  #discard(slot: number): void {
    const place = this.#places.at(slot);
    this.#places.set(slot, -1);
    this.#arena.discard(place, this.#places);
  }

  /** Whether the slot's AT line has `id` as its client id. */
  #isClientOf(slot: number, id: LineBytes): boolean {
    const line = this.#arena.lineOf(this.#places.at(slot));
    const start = clientIdStart(line);
    const length = id.end - id.start;
    if (start + length >= line.end || line.bytes[start + length] !== SPACE) return false;
    for (let offset = 0; offset < length; offset++) {
      if (line.bytes[start + offset] !== id.bytes[id.start + offset]) return false;
    }
    return true;
  }

  /** A new slot for a new client, indexed at `entry`; its record is placed by the caller. */
  #addSlot(hash: number, entry: number): number {
    const slot = this.#index.add(hash, entry);
    this.#places.reserve(slot + 1);
    this.#seqs.reserve(slot + 1);
    this.#sourceIndexes.reserve(slot + 1);
    return slot;
  }

  /** Adds the slot's latest change to the journal, dropping stale entries when they are many. */
  #journal(slot: number): void {
    this.#journalSlots.reserve(this.#journalLength + 1);
    this.#journalSeqs.reserve(this.#journalLength + 1);
    this.#journalSlots.set(this.#journalLength, slot);
    this.#journalSeqs.set(this.#journalLength, this.#seqs.at(slot));
    this.#journalLength += 1;
    if (this.#journalLength >= JOURNAL_ENTRIES_MIN + 2 * this.size) {
      this.#dropStaleJournalEntries();
    }
  }

  /** Keeps only the journal entries that are their client's latest change, in place. */
  #dropStaleJournalEntries(): void {
    let kept = 0;
    for (let index = 0; index < this.#journalLength; index++) {
      const slot = this.#journalSlots.at(index);
      const seq = this.#journalSeqs.at(index);
      if (this.#seqs.at(slot) !== seq) continue;
      this.#journalSlots.set(kept, slot);
      this.#journalSeqs.set(kept, seq);
      kept += 1;
    }
    this.#journalLength = kept;
    this.#journalVersion += 1;
  }

  /** The index of the first journal entry whose sequence number is above `seq`. */
  #journalIndexAfter(seq: number): number {
    let low = 0;
    let high = this.#journalLength;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#journalSeqs.at(middle) <= seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #unpack(slot: number): StoredUpdate {
    const atLine = this.#arena.textOf(this.#places.at(slot));
    const source = this.#sources[this.#sourceIndexes.at(slot)];
    return new UnpackedUpdate(clientIdWithin(atLine), atLine, this.#seqs.at(slot), source);
  }

  /** Wire text as bytes, in the scratch buffer when it fits (valid until the next call). */
  #encoded(text: string): LineBytes {
    // A loop (Buffer's latin1 write makes an array of the codes first).
    return { bytes: wireBytesInto(text, this.#scratch), start: 0, end: text.length };
  }

  #sourceIndex(fromPeer: string | undefined): number {
    const index = this.#sources.indexOf(fromPeer);
    if (index !== -1) return index;
    // Neighbours are named in the config: far fewer than a 16-bit number can tell apart.
    if (this.#sources.length === SOURCES_MAX) throw new RangeError("too many update sources");
    return this.#sources.push(fromPeer) - 1;
  }
}

/**
 * The AT lines of a store as bytes in blocks of 1 MiB: each record a header (the owner's slot,
 * the line's length) and the line, in the room {@link lineRoomOf} gives it. A record's place
 * is its block's number times 2^32 plus its offset there. Records are appended to the last
 * block; a full block is never copied or grown — a new one is started — so a growing store
 * has no stall (doubling one buffer of 32 MB stalled the server for 46 ms, the copy writing
 * fresh pages). A line replaced by one of the same room is overwritten in place; otherwise the
 * old record stays behind as garbage.
 *
 * Bounds, with L the bytes of the live records: whenever garbage (replaced records and the
 * unused tails of full blocks) is at least a third of L and 1 MiB, the block with the most of
 * it is compacted — its live records moved to the end, the block freed. That block holds at
 * least the average share of garbage, a quarter, so each compaction frees at least 256 KiB
 * while moving at most 1 MiB (about a millisecond), and garbage stays within a third of L,
 * 1 MiB and one block: the arena holds at most 4/3 L + 2 MiB, which {@link storedClientBytes}
 * counts with room to spare (twice the lines).
 */
class ByteArena {
  /** The blocks by number; a compacted one is empty until its number is used again. */
  readonly #blocks: Uint8Array<ArrayBuffer>[] = [];
  /** The same bytes, to read a line as text. */
  readonly #texts: Buffer[] = [];
  /** Per block: bytes of records written (live or not). */
  readonly #usedBytes: number[] = [];
  /** Per block: bytes of its records that are garbage, and its unused tail once it is full. */
  readonly #garbageBytes: number[] = [];
  /** Numbers of compacted blocks, to reuse. */
  readonly #freeBlocks: number[] = [];
  /** The block records are appended to; -1 before the first. */
  #last = -1;
  #allocatedBytes = 0;
  #garbage = 0;
  #live = 0;

  /** Bytes of the blocks held. */
  get capacity(): number {
    return this.#allocatedBytes;
  }

  /** The line of the record at `place` (a view of its block: valid until a compaction). */
  lineOf(place: number): LineBytes {
    const bytes = this.#blocks[blockOf(place)];
    const start = offsetOf(place) + RECORD_HEADER_BYTES;
    return { bytes, start, end: start + readUint32(bytes, start - 4) };
  }

  textOf(place: number): string {
    const line = this.lineOf(place);
    return this.#texts[blockOf(place)].toString("latin1", line.start, line.end);
  }

  /**
   * Counts the record at `place` as garbage (its slot must no longer point to it), and
   * compacts a block once garbage passes its bound: `places` is updated for every record moved.
   */
  discard(place: number, places: NumberChunks): void {
    const block = blockOf(place);
    const recordBytes = recordBytesOf(readUint32(this.#blocks[block], offsetOf(place) + 4));
    this.#addGarbage(block, recordBytes);
    this.#live -= recordBytes;
    // The block appended to is not compacted, so its garbage does not count toward the bound.
    const garbage = this.#garbage - this.#garbageBytes[this.#last];
    if (garbage >= Math.max(ARENA_GARBAGE_BYTES_MIN, this.#live * ARENA_GARBAGE_SHARE_MAX)) {
      this.#compactMostGarbage(places);
    }
  }

  /** Appends a record of `line` for `slot` and returns its place. */
  append(line: LineBytes, slot: number): number {
    const recordBytes = recordBytesOf(line.end - line.start);
    const last = this.#last;
    if (last === -1 || this.#usedBytes[last] + recordBytes > this.#blocks[last].length) {
      this.#startBlock(recordBytes);
    }
    const block = this.#last;
    const offset = this.#usedBytes[block];
    writeUint32(this.#blocks[block], offset, slot);
    const place = block * BLOCK_PLACE_STRIDE + offset;
    this.#writeLine(place, line);
    this.#usedBytes[block] += recordBytes;
    this.#live += recordBytes;
    return place;
  }

  /**
   * Overwrites the line of the record at `place` with `line` if it takes the same room (see
   * {@link LINE_ROOM_STEP_BYTES}); false, changing nothing, if it does not.
   */
  replace(place: number, line: LineBytes): boolean {
    const heldLength = readUint32(this.#blocks[blockOf(place)], offsetOf(place) + 4);
    if (lineRoomOf(line.end - line.start) !== lineRoomOf(heldLength)) return false;
    this.#writeLine(place, line);
    return true;
  }

  /** Writes the length and bytes of `line` into the record at `place`. */
  #writeLine(place: number, line: LineBytes): void {
    const bytes = this.#blocks[blockOf(place)];
    const offset = offsetOf(place);
    writeUint32(bytes, offset + 4, line.end - line.start);
    const target = offset + RECORD_HEADER_BYTES - line.start;
    // A loop, not `set(subarray)`: a view per line is garbage, and of a Buffer a costly one.
    for (let index = line.start; index < line.end; index++) {
      bytes[target + index] = line.bytes[index];
    }
  }

  /** Starts a block for records to be appended to: 1 MiB, or one record's if it is larger. */
  #startBlock(recordBytes: number): void {
    const last = this.#last;
    // The tail the last block will never fill is garbage, to be reclaimed like any.
    if (last !== -1) this.#addGarbage(last, this.#blocks[last].length - this.#usedBytes[last]);
    const block = this.#freeBlocks.pop() ?? this.#blocks.length;
    const bytes = new Uint8Array(Math.max(ARENA_BLOCK_BYTES, recordBytes));
    this.#blocks[block] = bytes;
    this.#texts[block] = Buffer.from(bytes.buffer);
    this.#usedBytes[block] = 0;
    this.#garbageBytes[block] = 0;
    this.#allocatedBytes += bytes.length;
    this.#last = block;
  }

  #addGarbage(block: number, bytes: number): void {
    this.#garbageBytes[block] += bytes;
    this.#garbage += bytes;
  }

  /**
   * Moves the live records of the block with the most garbage (not the one appended to) to
   * the end, updating their places, and frees it.
   */
  #compactMostGarbage(places: NumberChunks): void {
    let worst = -1;
    for (let block = 0; block < this.#blocks.length; block++) {
      if (block === this.#last || this.#blocks[block].length === 0) continue;
      if (worst === -1 || this.#garbageBytes[block] > this.#garbageBytes[worst]) worst = block;
    }
    if (worst === -1) return;
    const bytes = this.#blocks[worst];
    this.#blocks[worst] = EMPTY_BLOCK; // first: the moved records must not land in it
    for (let offset = 0; offset < this.#usedBytes[worst];) {
      const slot = readUint32(bytes, offset);
      const length = readUint32(bytes, offset + 4);
      const place = worst * BLOCK_PLACE_STRIDE + offset;
      if (places.at(slot) === place) {
        const start = offset + RECORD_HEADER_BYTES;
        this.#live -= recordBytesOf(length);
        places.set(slot, this.append({ bytes, start, end: start + length }, slot));
      }
      offset += recordBytesOf(length);
    }
    this.#garbage -= this.#garbageBytes[worst];
    this.#allocatedBytes -= bytes.length;
    this.#texts[worst] = EMPTY_TEXT;
    this.#usedBytes[worst] = 0;
    this.#garbageBytes[worst] = 0;
    this.#freeBlocks.push(worst);
    released(bytes);
  }
}

/** What a freed block's number holds until it is used again. */
const EMPTY_BLOCK: Uint8Array<ArrayBuffer> = new Uint8Array(0);
const EMPTY_TEXT = Buffer.alloc(0);

/** A place's block number (places are integers below 2^53: the quotient truncates to it). */
function blockOf(place: number): number {
  return (place / BLOCK_PLACE_STRIDE) >>> 0;
}

/** A place's offset in its block: its low 32 bits. */
function offsetOf(place: number): number {
  return place >>> 0;
}

/** The room a line of `length` bytes takes in the arena. */
function lineRoomOf(length: number): number {
  return Math.ceil(length / LINE_ROOM_STEP_BYTES) * LINE_ROOM_STEP_BYTES;
}

/** The bytes a record whose line has `length` bytes takes in the arena, header included. */
function recordBytesOf(length: number): number {
  return RECORD_HEADER_BYTES + lineRoomOf(length);
}

/** The unsigned 32-bit number at `at`, little-endian. */
function readUint32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

/** A stored update as read. */
class UnpackedUpdate implements StoredUpdate {
  constructor(
    readonly clientId: string,
    readonly atLine: string,
    readonly seq: number,
    readonly fromPeer: string | undefined,
  ) {}
}

/** Where an AT line's fourth field, the client id, starts. */
function clientIdStart(line: LineBytes): number {
  let start = line.start;
  for (let spaces = 0; spaces < SPACES_BEFORE_CLIENT_ID; spaces++) {
    start = fieldEnd(line.bytes, start, line.end) + 1;
  }
  return start;
}

/** An AT line's fourth field: the client id. */
function clientIdWithin(atLine: string): string {
  let start = 0;
  for (let spaces = 0; spaces < SPACES_BEFORE_CLIENT_ID; spaces++) {
    start = atLine.indexOf(" ", start) + 1;
  }
  return atLine.slice(start, atLine.indexOf(" ", start));
}

/**
 * A seeded 32-bit hash of a client id's bytes: each byte mixed in by a multiply and a shift,
 * then MurmurHash3's finaliser, so the low bits the index uses depend on every byte.
 */
function hashOf(id: LineBytes, seed: number): number {
  let hash = seed;
  for (let index = id.start; index < id.end; index++) {
    hash = Math.imul(hash ^ id.bytes[index], 0x5bd1e995);
    hash ^= hash >>> 15;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}

/** Wire text as a line of bytes. */
function latin1Line(text: string): LineBytes {
  return { bytes: Buffer.from(text, "latin1"), start: 0, end: text.length };
}

/** A client's own IAMAT replaces what is held only with a strictly later time. */
function isLaterTime(update: LineBytes, held: LineBytes): boolean {
  return compareTimes(timeOf(update), timeOf(held)) > 0;
}

/** Between servers, the full update order decides. */
function isGreater(update: LineBytes, held: LineBytes): boolean {
  return compareLines(update, held) > 0;
}

/** The update order (see {@link compareUpdates}) of two AT lines as bytes. */
function compareLines(a: LineBytes, b: LineBytes): number {
  const byTime = compareTimes(timeOf(a), timeOf(b));
  if (byTime !== 0) return byTime;
  const length = Math.min(a.end - a.start, b.end - b.start);
  for (let offset = 0; offset < length; offset++) {
    const difference = a.bytes[a.start + offset] - b.bytes[b.start + offset];
    if (difference !== 0) return difference;
  }
  return (a.end - a.start) - (b.end - b.start);
}

/** An AT line's last field: the client's time as it wrote it. */
function timeOf(line: LineBytes): LineBytes {
  let start = line.end;
  while (start > line.start && line.bytes[start - 1] !== SPACE) start--;
  return { bytes: line.bytes, start, end: line.end };
}

/** Where the whole digits of a time end: at its point, or its end. */
function pointOf(time: LineBytes): number {
  let index = time.start;
  while (index < time.end && time.bytes[index] !== POINT) index++;
  return index;
}

/** Where a time's significant whole digits start (one zero is kept for a zero). */
function wholeStartOf(time: LineBytes, point: number): number {
  let index = time.start;
  while (index < point - 1 && time.bytes[index] === DIGIT_ZERO) index++;
  return index;
}

/** The digit `offset` places after the point, `0` past the last one. */
function fractionDigit(time: LineBytes, point: number, offset: number): number {
  return point + offset < time.end ? time.bytes[point + offset] : DIGIT_ZERO;
}

/** Two times of the grammar (`digits[.digits]`) compared as exact decimals. */
function compareTimes(a: LineBytes, b: LineBytes): number {
  const aPoint = pointOf(a);
  const bPoint = pointOf(b);
  const aStart = wholeStartOf(a, aPoint);
  const bStart = wholeStartOf(b, bPoint);
  const wholeLengths = (aPoint - aStart) - (bPoint - bStart);
  if (wholeLengths !== 0) return wholeLengths;
  for (let offset = 0; offset < aPoint - aStart; offset++) {
    const difference = a.bytes[aStart + offset] - b.bytes[bStart + offset];
    if (difference !== 0) return difference;
  }
  for (let offset = 1; aPoint + offset < a.end || bPoint + offset < b.end; offset++) {
    const difference = fractionDigit(a, aPoint, offset) - fractionDigit(b, bPoint, offset);
    if (difference !== 0) return difference;
  }
  return 0;
}
