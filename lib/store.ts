/**
 * The latest known update per client and the rule that decides which update wins. Knows no
 * sockets and no wire format beyond holding the AT line as an opaque string.
 *
 * Every accepted change gets the next local sequence number and moves to the end of the
 * map, so iterating the map walks changes in the order they happened: catch-up can send a
 * neighbour only what changed since the sequence number it already has.
 */

/** One client's latest location, as its origin server announced it. */
export interface ClientUpdate {
  clientId: string;
  /** The client's own time, exact, in nanoseconds. */
  timeNs: bigint;
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

/** The result of offering an update to the store. */
export type OfferResult = "stored" | "stale" | "full";

/**
 * Total order of updates between servers: client time, then the AT line's bytes. Equal-time
 * updates from different origins thus converge to the same winner everywhere.
 */
export function compareUpdates(a: ClientUpdate, b: ClientUpdate): number {
  if (a.timeNs !== b.timeNs) return a.timeNs < b.timeNs ? -1 : 1;
  // Wire text holds one byte per code unit, so string order is byte order.
  return a.atLine < b.atLine ? -1 : a.atLine > b.atLine ? 1 : 0;
}

export class ClientStore {
  readonly #updates = new Map<string, StoredUpdate>();
  readonly #clientsMax: number;
  #lastSeq = 0;

  constructor(clientsMax: number) {
    this.#clientsMax = clientsMax;
  }

  get size(): number {
    return this.#updates.size;
  }

  /** The sequence number of the latest change (0 when nothing was stored). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get(clientId: string): StoredUpdate | undefined {
    return this.#updates.get(clientId);
  }

  /**
   * Stores `update` if it is newer than what is held: for a client's own IAMAT (`fromPeer`
   * undefined) only a strictly later time counts; between servers the full update order
   * applies. "full" means a new client would pass `clientsMax`.
   */
  offer(update: ClientUpdate, fromPeer: string | undefined): OfferResult {
    const held = this.#updates.get(update.clientId);
    if (held === undefined) {
      if (this.#updates.size >= this.#clientsMax) return "full";
    } else {
      const isNewer = fromPeer === undefined
        ? update.timeNs > held.timeNs
        : compareUpdates(update, held) > 0;
      if (!isNewer) return "stale";
      this.#updates.delete(update.clientId);
    }
    this.#lastSeq += 1;
    const { clientId, timeNs, atLine } = update;
    this.#updates.set(clientId, { clientId, timeNs, atLine, fromPeer, seq: this.#lastSeq });
    return "stored";
  }

  /**
   * Updates changed after `afterSeq`, oldest change first. The iteration is live: an entry
   * that changes while it runs is met again at the end with its new sequence number.
   */
  *changesAfter(afterSeq: number): Generator<StoredUpdate> {
    for (const update of this.#updates.values()) {
      if (update.seq > afterSeq) yield update;
    }
  }
}
