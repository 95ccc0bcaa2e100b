/**
 * Shared in-flight lookups: identical lookups (same provider, same exact location, same
 * radius — not the bound) made while one is already in flight wait for that one instead of
 * calling upstream again. Nothing is kept once the call is answered (Google's terms forbid
 * caching its content). A provider that can answer at once ({@link ImmediatePlacesProvider},
 * the offline one once its data is in) gives its body through `answerNow`, which the caller
 * tries first: with nothing in flight there is nothing to share, and no signal, timer or
 * listener is needed for an answer that is already there. Knows nothing of clients beyond "a
 * waiter" with its own signal.
 */
import { raceAbort } from "../abortable.ts";
import type { Counters } from "../counters.ts";
import {
  type PlacesBody,
  type PlacesProvider,
  type PlacesQuery,
  unknownErrorBody,
} from "./provider.ts";

/** A query with the exact identity of its location (equal decimals, equal key). */
export interface KeyedPlacesQuery extends PlacesQuery {
  locationKey: string;
}

/** A provider that can answer some lookups at once, without I/O and without waiting. */
export interface ImmediatePlacesProvider extends PlacesProvider {
  /**
   * The body `lookup` would resolve to, if it can be had now; undefined when `lookup` must
   * be awaited (the offline provider before its data is loaded). Never throws. An answer
   * given is the answer to that query for good: callers may keep it and not ask again.
   */
  answerNow(query: PlacesQuery): PlacesBody | undefined;
}

interface SharedCall {
  body: Promise<PlacesBody>;
  waiters: number;
  /** Aborts the upstream call when every waiter has gone. */
  abandon: AbortController;
}

export class SharedLookups {
  readonly #provider: PlacesProvider;
  readonly #counters: Counters;
  readonly #inFlight = new Map<string, SharedCall>();
  readonly #answerNow: ((query: PlacesQuery) => PlacesBody | undefined) | undefined;

  constructor(provider: PlacesProvider | ImmediatePlacesProvider, counters: Counters) {
    this.#provider = provider;
    this.#counters = counters;
    this.#answerNow = "answerNow" in provider ? (query) => provider.answerNow(query) : undefined;
  }

  /**
   * The body a lookup would give, when the provider has it at once (see
   * {@link ImmediatePlacesProvider}); undefined when a lookup must be awaited.
   */
  answerNow(query: PlacesQuery): PlacesBody | undefined {
    return this.#answerNow?.(query);
  }

  /**
   * The body for `query`, resolved no later than `waiter` aborts (then `UNKNOWN_ERROR`).
   * A new call runs until `deadline`; a waiter that joins it shares its deadline, and when
   * all its waiters have gone it is aborted — one waiter leaving never cancels it for others.
   */

  lookup(query: KeyedPlacesQuery, deadline: AbortSignal, waiter: AbortSignal): Promise<PlacesBody> {
    const key = `${query.locationKey}|${query.radiusMetres}`;
    let call = this.#inFlight.get(key);
    if (call === undefined) {
      const abandon = new AbortController();
      const body = this.#provider.lookup(query, AbortSignal.any([deadline, abandon.signal]));
      const started: SharedCall = { body, waiters: 0, abandon };
      this.#inFlight.set(key, started);
      const forget = () => {
        if (this.#inFlight.get(key) === started) this.#inFlight.delete(key);
      };
      body.then(forget, forget);
      call = started;
    } else {
      this.#counters.add("places_shared_lookups");
    }
    const joined = call;
    joined.waiters += 1;
    return raceAbort(joined.body, waiter, unknownErrorBody).finally(() => {
      joined.waiters -= 1;
      if (joined.waiters === 0) joined.abandon.abort();
    });
  }
}
