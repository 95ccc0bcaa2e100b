/**
 * The latest known update per client and the rule that decides which update wins. Knows no
 * sockets; of the wire format only that an AT line's fourth field is the client id and its
 * last the client's time.
 *
 * Every accepted change gets the next local sequence number and an entry at the end of a
 * change journal, so walking the journal meets changes in the order they happened: catch-up
 * sends a neighbour only what changed since the sequence number it already has. A client's
 * record is replaced in place; its older journal entries go stale and are skipped, and
 * dropped once they are as many as the clients (so an update costs O(1) amortised however
 * many clients are stored — moving a map entry to the end instead cost V8 a rehash of the
 * whole map every few thousand updates).
 *
 * Memory: a client costs one flat string per slot — the AT line, then `\n<seq> <peer index>` —
 * instead of an object with a BigInt, and 12–24 bytes of an index by client id. Stored
 * updates are unpacked when read. `storeBytesMax` bounds the bytes held, each client counted
 * as {@link storedClientBytes}: its AT line, its id again, and a fixed overhead measured for
 * everything else (when a `Map` from id copies to slots was the index: the bound errs further
 * on the side of the heap now).
 *
 * The index is a hash table of slot numbers in typed arrays, not a `Map<string, number>`: a
 * restart restores every client at once, and 1M `Map` insertions were most of that load
 * (measured on a 2-core VM: 1M records decoded and inserted in 2.3 s with a `Map`, 1.0 s with
 * this table), while the table holds no copy of the id — the id compared is the one inside the
 * slot's AT line. Its hash is seeded at random per store, so ids chosen to collide cannot be
 * known in advance.
 */

/** Journal entries kept before stale ones are dropped, beyond two per client. */
const JOURNAL_ENTRIES_MIN = 1024;
/** Entries of the index by client id at first (a power of two, as every size after it). */
const INDEX_ENTRIES_MIN = 1024;
/** The index doubles once this share of it is in use: linear probe runs stay short. */
const INDEX_LOAD_MAX = 0.5;
const SPACE_CODE = 0x20;

/**
 * What a stored client costs beyond the bytes of its AT line and id: the map entry, the
 * slot's record header and metadata, up to four journal numbers, and the allocator's slack.
 * Measured: 370 B of RSS per client at 1M clients whose AT lines are ~85 B and ids 16 B
 * (`deno task bench --only memory`), i.e. ~270 B beyond line and id; counted as 300 so that
 * the bound errs on the side of the heap. Measured with a `Map` index holding a copy of each
 * id; the typed-array index costs less, and the count is kept so that what is refused is not.
 */
export const STORED_CLIENT_OVERHEAD_BYTES = 300;

/** The bytes one client counts toward `storeBytesMax`. */
export function storedClientBytes(update: ClientUpdate): number {
  return update.atLine.length + update.clientId.length + STORED_CLIENT_OVERHEAD_BYTES;
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

/**
 * Total order of updates between servers: client time, then the AT line's bytes. Equal-time
 * updates from different origins thus converge to the same winner everywhere.
 */
export function compareUpdates(a: ClientUpdate, b: ClientUpdate): number {
  const byTime = compareTimeTexts(timeText(a.atLine), timeText(b.atLine));
  if (byTime !== 0) return byTime;
  // Wire text holds one byte per code unit, so string order is byte order.
  return a.atLine < b.atLine ? -1 : a.atLine > b.atLine ? 1 : 0;
}

export class ClientStore {
  /** Per slot: `<AT line>\n<seq> <peer index>`. */
  readonly #records: string[] = [];
  /** Open addressing by client id, linear probing: slot + 1 per entry, 0 when empty. */
  #index = new Int32Array(INDEX_ENTRIES_MIN);
  /** Per slot: the hash of its client id, so a probe compares ids only on equal hashes. */
  #hashes: Int32Array = new Int32Array(INDEX_ENTRIES_MIN);
  readonly #hashSeed = crypto.getRandomValues(new Int32Array(1))[0];
  /** The change journal: slot and sequence number of every change, oldest first. */
  #journalSlots: number[] = [];
  #journalSeqs: number[] = [];
  /** Bumped when stale entries are dropped, so a walk in progress finds its place again. */
  #journalVersion = 0;
  readonly #clientsMax: number;
  readonly #storeBytesMax: number;
  #bytes = 0;
  /** Index 0: sent by a client; then each neighbour name the first time it sends. */
  readonly #sources: Array<string | undefined> = [undefined];
  readonly #onStored: (atLine: string) => void;
  #lastSeq = 0;

  constructor(options: ClientStoreOptions) {
    this.#clientsMax = options.clientsMax;
    this.#storeBytesMax = options.storeBytesMax ?? Infinity;
    this.#onStored = options.onStored ?? (() => {});
  }

  get size(): number {
    return this.#records.length;
  }

  /** Bytes held, as counted toward `storeBytesMax`. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The sequence number of the latest change (0 when nothing was stored). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get(clientId: string): StoredUpdate | undefined {
    const slot = this.#find(clientId, hashOf(clientId, this.#hashSeed));
    return slot < 0 ? undefined : this.#unpack(this.#records[slot]);
  }

  /**
   * Stores `update` if it is newer than what is held: for a client's own IAMAT (no
   * `fromPeer`) only a strictly later time counts; between servers the full update order
   * applies. A newer update that would pass `clientsMax` or `storeBytesMax` is refused.
   */
  offer(update: ClientUpdate, options: OfferOptions = {}): OfferResult {
    const { fromPeer } = options;
    const result = this.#put(update, fromPeer, fromPeer === undefined ? isLaterTime : isGreater);
    if (result === "stored") this.#onStored(update.atLine);
    return result;
  }

  /**
   * Takes back an update this server had stored before it restarted: the full update order
   * applies, and `onStored` is not told (it is already written).
   */
  restore(update: ClientUpdate): OfferResult {
    return this.#put(update, undefined, isGreater);
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
      if (index >= this.#journalSeqs.length) return;
      const seq = this.#journalSeqs[index];
      const record = this.#records[this.#journalSlots[index]];
      index += 1;
      lastSeq = seq;
      if (recordSeq(record) === seq) yield this.#unpack(record);
    }
  }

  /** Every held AT line, oldest change first; live, like `changesAfter`. */
  *atLines(): Generator<string> {
    for (const update of this.changesAfter(0)) yield update.atLine;
  }

  #put(
    update: ClientUpdate,
    fromPeer: string | undefined,
    isNewer: (update: ClientUpdate, held: ClientUpdate) => boolean,
  ): OfferResult {
    const hash = hashOf(update.clientId, this.#hashSeed);
    let slot = this.#find(update.clientId, hash);
    let addedBytes: number;
    if (slot < 0) {
      if (this.#records.length >= this.#clientsMax) return "clientsMax";
      addedBytes = storedClientBytes(update);
    } else {
      const record = this.#records[slot];
      const held = { clientId: update.clientId, atLine: record.slice(0, record.lastIndexOf("\n")) };
      if (!isNewer(update, held)) return "stale";
      addedBytes = update.atLine.length - held.atLine.length;
    }
    if (addedBytes > 0 && this.#bytes + addedBytes > this.#storeBytesMax) return "storeBytesMax";
    this.#bytes += addedBytes;
    this.#lastSeq += 1;
    // join() makes one flat string: no rope of the pieces stays behind.
    const packed = [update.atLine, "\n", this.#lastSeq, " ", this.#sourceIndex(fromPeer)].join("");
    if (slot < 0) slot = this.#add(packed, hash, -1 - slot);
    else this.#records[slot] = packed;
    this.#journalSlots.push(slot);
    this.#journalSeqs.push(this.#lastSeq);
    if (this.#journalSeqs.length >= JOURNAL_ENTRIES_MIN + 2 * this.#records.length) {
      this.#dropStaleJournalEntries();
    }
    return "stored";
  }

  /** The slot of `clientId` (whose hash is `hash`), or `-1 - entry` of the free entry for it. */
  #find(clientId: string, hash: number): number {
    const mask = this.#index.length - 1;
    for (let entry = hash & mask;; entry = (entry + 1) & mask) {
      const held = this.#index[entry];
      if (held === 0) return -1 - entry;
      const slot = held - 1;
      if (this.#hashes[slot] === hash && isClientOf(this.#records[slot], clientId)) return slot;
    }
  }

  /** Puts a new client's record in a new slot, indexed at `entry`; returns the slot. */
  #add(packed: string, hash: number, entry: number): number {
    const slot = this.#records.push(packed) - 1;
    if (slot === this.#hashes.length) this.#hashes = grown(this.#hashes);
    this.#hashes[slot] = hash;
    this.#index[entry] = slot + 1;
    if (this.#records.length > this.#index.length * INDEX_LOAD_MAX) this.#growIndex();
    return slot;
  }

  /** Doubles the index and puts every slot back in it. */
  #growIndex(): void {
    const index = new Int32Array(this.#index.length * 2);
    const mask = index.length - 1;
    for (let slot = 0; slot < this.#records.length; slot++) {
      let entry = this.#hashes[slot] & mask;
      while (index[entry] !== 0) entry = (entry + 1) & mask;
      index[entry] = slot + 1;
    }
    this.#index = index;
  }

  /** Keeps only the journal entries that are their client's latest change. */
  #dropStaleJournalEntries(): void {
    const slots: number[] = [];
    const seqs: number[] = [];
    for (let index = 0; index < this.#journalSeqs.length; index++) {
      const slot = this.#journalSlots[index];
      if (recordSeq(this.#records[slot]) !== this.#journalSeqs[index]) continue;
      slots.push(slot);
      seqs.push(this.#journalSeqs[index]);
    }
    this.#journalSlots = slots;
    this.#journalSeqs = seqs;
    this.#journalVersion += 1;
  }

  /** The index of the first journal entry whose sequence number is above `seq`. */
  #journalIndexAfter(seq: number): number {
    let low = 0;
    let high = this.#journalSeqs.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#journalSeqs[middle] <= seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #unpack(record: string): StoredUpdate {
    const metaStart = record.lastIndexOf("\n");
    const space = record.indexOf(" ", metaStart);
    const atLine = record.slice(0, metaStart);
    const source = this.#sources[Number(record.slice(space + 1))];
    return new UnpackedUpdate(clientIdWithin(atLine), atLine, recordSeq(record), source);
  }

  #sourceIndex(fromPeer: string | undefined): number {
    const index = this.#sources.indexOf(fromPeer);
    return index !== -1 ? index : this.#sources.push(fromPeer) - 1;
  }
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

/** The sequence number in a packed record. */
function recordSeq(record: string): number {
  const metaStart = record.lastIndexOf("\n");
  return Number(record.slice(metaStart + 1, record.indexOf(" ", metaStart)));
}

/** Where an AT line's fourth field, the client id, starts (in a packed record too). */
function clientIdStart(atLine: string): number {
  let start = 0;
  for (let spaces = 0; spaces < 3; spaces++) start = atLine.indexOf(" ", start) + 1;
  return start;
}

/** An AT line's fourth field: the client id. */
function clientIdWithin(atLine: string): string {
  const start = clientIdStart(atLine);
  return atLine.slice(start, atLine.indexOf(" ", start));
}

/** Whether the packed record is that of `clientId` (an id with a space is no field's). */
function isClientOf(record: string, clientId: string): boolean {
  const start = clientIdStart(record);
  return record.startsWith(clientId, start) &&
    record.charCodeAt(start + clientId.length) === SPACE_CODE && !clientId.includes(" ");
}

/**
 * A seeded 32-bit hash of a client id: each character mixed in by a multiply and a shift,
 * then MurmurHash3's finaliser, so the low bits the index uses depend on every character.
 */
function hashOf(clientId: string, seed: number): number {
  let hash = seed;
  for (let index = 0; index < clientId.length; index++) {
    hash = Math.imul(hash ^ clientId.charCodeAt(index), 0x5bd1e995);
    hash ^= hash >>> 15;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}

/** The same numbers in an array twice as long. */
function grown(numbers: Int32Array): Int32Array {
  const larger = new Int32Array(numbers.length * 2);
  larger.set(numbers);
  return larger;
}

/** A client's own IAMAT replaces what is held only with a strictly later time. */
function isLaterTime(update: ClientUpdate, held: ClientUpdate): boolean {
  return compareTimeTexts(timeText(update.atLine), timeText(held.atLine)) > 0;
}

/** Between servers, the full update order decides. */
function isGreater(update: ClientUpdate, held: ClientUpdate): boolean {
  return compareUpdates(update, held) > 0;
}

/** An AT line's last field: the client's time as it wrote it. */
function timeText(atLine: string): string {
  return atLine.slice(atLine.lastIndexOf(" ") + 1);
}

/**
 * Compares two times of the protocol's grammar (`digits[.digits]`) as exact decimals, with
 * no numbers built: `5.5` equals `5.50`, and any number of digits compares right.
 */
export function compareTimeTexts(a: string, b: string): number {
  const aDot = a.indexOf(".") === -1 ? a.length : a.indexOf(".");
  const bDot = b.indexOf(".") === -1 ? b.length : b.indexOf(".");
  let aStart = 0;
  let bStart = 0;
  while (aStart < aDot - 1 && a[aStart] === "0") aStart++;
  while (bStart < bDot - 1 && b[bStart] === "0") bStart++;
  const wholeLengths = (aDot - aStart) - (bDot - bStart);
  if (wholeLengths !== 0) return wholeLengths;
  for (let i = 0; i < aDot - aStart; i++) {
    const difference = a.charCodeAt(aStart + i) - b.charCodeAt(bStart + i);
    if (difference !== 0) return difference;
  }
  for (let i = 1; aDot + i < a.length || bDot + i < b.length; i++) {
    const aDigit = aDot + i < a.length ? a.charCodeAt(aDot + i) : 48;
    const bDigit = bDot + i < b.length ? b.charCodeAt(bDot + i) : 48;
    if (aDigit !== bDigit) return aDigit - bDigit;
  }
  return 0;
}
