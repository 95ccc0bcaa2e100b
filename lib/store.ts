/**
 * The latest known update per client and the rule that decides which update wins. Knows no
 * sockets; of the wire format only that an AT line's fourth field is the client id and its
 * last the client's time.
 *
 * Every accepted change gets the next local sequence number and moves to the end of the
 * map, so iterating the map walks changes in the order they happened: catch-up can send a
 * neighbour only what changed since the sequence number it already has.
 *
 * Memory: a client costs one map entry whose value is a single flat string — the AT line,
 * then `\n<seq> <peer index>` — instead of an object with a BigInt (about half the bytes at
 * a million clients). Stored updates are unpacked when read.
 */
import { parseTimeNs } from "./protocol.ts";

/** One client's latest location, as its origin server announced it. */
export interface ClientUpdate {
  clientId: string;
  /** `AT <origin> <skew> <id> <location> <time>`, exactly as the origin wrote it. */
  atLine: string;
}

/** A stored update with where it came from and when it changed locally. */
export interface StoredUpdate extends ClientUpdate {
  /** The client's own time, exact, in nanoseconds. */
  readonly timeNs: bigint;
  /** The neighbour it arrived from, or undefined when a client sent it here. */
  fromPeer: string | undefined;
  /** Local change sequence number (1, 2, …) within this store's epoch. */
  seq: number;
}

/** The result of offering an update to the store. */
export type OfferResult = "stored" | "stale" | "full";

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
  /** clientId → `<AT line>\n<seq> <peer index>`, in change order. */
  readonly #records = new Map<string, string>();
  readonly #clientsMax: number;
  /** Index 0: sent by a client; then each neighbour name the first time it sends. */
  readonly #sources: Array<string | undefined> = [undefined];
  readonly #onStored: (atLine: string) => void;
  #lastSeq = 0;

  /** `onStored` hears of every update `offer` stores (e.g. to write it to the data dir). */
  constructor(clientsMax: number, onStored: (atLine: string) => void = () => {}) {
    this.#clientsMax = clientsMax;
    this.#onStored = onStored;
  }

  get size(): number {
    return this.#records.size;
  }

  /** The sequence number of the latest change (0 when nothing was stored). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get(clientId: string): StoredUpdate | undefined {
    const record = this.#records.get(clientId);
    return record === undefined ? undefined : this.#unpack(clientId, record);
  }

  /**
   * Stores `update` if it is newer than what is held: for a client's own IAMAT (`fromPeer`
   * undefined) only a strictly later time counts; between servers the full update order
   * applies. "full" means a new client would pass `clientsMax`.
   */
  offer(update: ClientUpdate, fromPeer: string | undefined): OfferResult {
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

  #put(
    update: ClientUpdate,
    fromPeer: string | undefined,
    isNewer: (update: ClientUpdate, held: ClientUpdate) => boolean,
  ): OfferResult {
    const record = this.#records.get(update.clientId);
    if (record === undefined) {
      if (this.#records.size >= this.#clientsMax) return "full";
    } else {
      const held = { clientId: update.clientId, atLine: record.slice(0, record.lastIndexOf("\n")) };
      if (!isNewer(update, held)) return "stale";
      this.#records.delete(update.clientId);
    }
    this.#lastSeq += 1;
    // join() makes one flat string: no rope of the pieces stays behind.
    const packed = [update.atLine, "\n", this.#lastSeq, " ", this.#sourceIndex(fromPeer)].join("");
    this.#records.set(keyWithin(packed, update.clientId), packed);
    return "stored";
  }

  /**
   * Updates changed after `afterSeq`, oldest change first. The iteration is live: an entry
   * that changes while it runs is met again at the end with its new sequence number.
   */
  *changesAfter(afterSeq: number): Generator<StoredUpdate> {
    for (const [clientId, record] of this.#records) {
      if (recordMeta(record)[0] > afterSeq) yield this.#unpack(clientId, record);
    }
  }

  #unpack(clientId: string, record: string): StoredUpdate {
    const [seq, sourceIndex] = recordMeta(record);
    const atLine = record.slice(0, record.lastIndexOf("\n"));
    return new UnpackedUpdate(clientId, atLine, seq, this.#sources[sourceIndex]);
  }

  #sourceIndex(fromPeer: string | undefined): number {
    const index = this.#sources.indexOf(fromPeer);
    return index !== -1 ? index : this.#sources.push(fromPeer) - 1;
  }
}

/**
 * A stored update as read. A class, so that `timeNs` is one getter on the prototype: it is
 * parsed only when asked (floods and WHATSAT replies need just the line), and an accessor in
 * an object literal would cost every read a closure (measured: ~60 B per stored client more).
 */
class UnpackedUpdate implements StoredUpdate {
  constructor(
    readonly clientId: string,
    readonly atLine: string,
    readonly seq: number,
    readonly fromPeer: string | undefined,
  ) {}

  get timeNs(): bigint {
    return parseTimeNs(timeText(this.atLine))!;
  }
}

/** The sequence number and source index at the end of a packed record. */
function recordMeta(record: string): [number, number] {
  const metaStart = record.lastIndexOf("\n");
  const space = record.indexOf(" ", metaStart);
  return [Number(record.slice(metaStart + 1, space)), Number(record.slice(space + 1))];
}

/**
 * The client id as a slice of the packed record (its AT line's fourth field), so the map key
 * shares the record's memory instead of keeping the client's own line alive.
 */
function keyWithin(record: string, clientId: string): string {
  let start = 0;
  for (let spaces = 0; spaces < 3 && start !== -1; spaces++) start = record.indexOf(" ", start) + 1;
  const key = record.slice(start, start + clientId.length);
  return key === clientId ? key : clientId;
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
