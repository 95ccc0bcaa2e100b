/**
 * The contract every Places provider meets: given a point and a radius, answer in the
 * legacy Nearby Search shape. Providers know nothing of clients, sockets or bounds —
 * the caller cuts `results` to each client's bound.
 */

/** One nearby-places question; `radiusMetres` is exact (km × 1000, up to 50 000). */
export interface PlacesQuery {
  latitude: number;
  longitude: number;
  radiusMetres: number;
}

/** A body in the legacy Nearby Search shape (`status` is `OK`, `ZERO_RESULTS`, …). */
export interface PlacesBody {
  html_attributions: unknown[];
  results: unknown[];
  status: string;
  next_page_token?: string;
  [field: string]: unknown;
}

/** How many results every upstream call asks for; clients' bounds cut from these. */
export const PLACES_RESULTS_MAX = 20;

/**
 * A source of nearby places. `lookup` never rejects for upstream trouble: unreachable,
 * timed-out or malformed answers resolve to {@link unknownErrorBody}. It stops work
 * (and resolves) when `signal` aborts.
 */
export interface PlacesProvider {
  readonly name: "google" | "google-new" | "offline";
  lookup(query: PlacesQuery, signal: AbortSignal): Promise<PlacesBody>;
}

/** The body a client gets when no Places answer could be had. */
export function unknownErrorBody(): PlacesBody {
  return { html_attributions: [], results: [], status: "UNKNOWN_ERROR" };
}
