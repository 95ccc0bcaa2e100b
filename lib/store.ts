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
 * Memory: a client costs one map entry (its id → a slot number) and one flat string per
 * slot — the AT line, then `\n<seq> <peer index>` — instead of an object with a BigInt.
 * Stored updates are unpacked when read. `storeBytesMax` bounds the bytes held, each client
 * counted as {@link storedClientBytes}: its AT line, its id again (the map key is a copy),
 * and a fixed overhead measured for everything else.
 */

/** Journal entries kept before stale ones are dropped, beyond two per client. */
const JOURNAL_ENTRIES_MIN = 1024;

/**
 * What a stored client costs beyond the bytes of its AT line and id: the map entry, the
 * slot's record header and metadata, up to four journal numbers, and the allocator's slack.
 * Measured: 370 B of RSS per client at 1M clients whose AT lines are ~85 B and ids 16 B
 * (`deno task bench --only memory`), i.e. ~270 B beyond line and id; counted as 300 so that
 * the bound errs on the side of the heap.
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
  /** clientId → slot in `#records`. */
  readonly #slots = new Map<string, number>();
  /** Per slot: `<AT line>\n<seq> <peer index>`. */
  readonly #records: string[] = [];
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
    return this.#slots.size;
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
    const slot = this.#slots.get(clientId);
    return slot === undefined ? undefined : this.#unpack(this.#records[slot]);
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
    let slot = this.#slots.get(update.clientId);
    let addedBytes: number;
    if (slot === undefined) {
      if (this.#slots.size >= this.#clientsMax) return "clientsMax";
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
    if (slot === undefined) {
      slot = this.#records.push(packed) - 1;
      this.#slots.set(ownCopy(update.clientId), slot);
    } else {
      this.#records[slot] = packed;
    }
    this.#journalSlots.push(slot);
    this.#journalSeqs.push(this.#lastSeq);
    if (this.#journalSeqs.length >= JOURNAL_ENTRIES_MIN + 2 * this.#slots.size) {
      this.#dropStaleJournalEntries();
    }
    return "stored";
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

/** An AT line's fourth field: the client id. */
function clientIdWithin(atLine: string): string {
  let start = 0;
  for (let spaces = 0; spaces < 3; spaces++) start = atLine.indexOf(" ", start) + 1;
  return atLine.slice(start, atLine.indexOf(" ", start));
}

/**
 * A copy of a client id that holds on to nothing else: the id given is often a slice of a
 * longer line, which a map key would otherwise keep alive for as long as the client is known.
 * A JSON round trip gives back exactly the same characters in a new flat string (measured:
 * 4× faster than through a Buffer, and as small).
 */
function ownCopy(clientId: string): string {
  return JSON.parse(JSON.stringify(clientId));
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
