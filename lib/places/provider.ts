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

/** Which provider answers a server's lookups. */
export type PlacesProviderName = PlacesProvider["name"];

/** The statuses a Places body may carry; counters and labels use only these, or `other`. */
export const PLACES_STATUSES = [
  "OK",
  "ZERO_RESULTS",
  "OVER_QUERY_LIMIT",
  "REQUEST_DENIED",
  "INVALID_REQUEST",
  "UNKNOWN_ERROR",
] as const;

/** A body status as a counter may name it: one of {@link PLACES_STATUSES}, or `other`. */
export type PlacesStatusLabel = typeof PLACES_STATUSES[number] | "other";

/**
 * The fixed label of an upstream status: the legacy API passes its status through as free
 * text, and a counter named from it would let an upstream grow the set of counters.
 *
 * @example
 * ```ts
 * placesStatusLabel("ZERO_RESULTS"); // "ZERO_RESULTS"
 * placesStatusLabel("NOT_A_STATUS\nx"); // "other"
 * ```
 */
export function placesStatusLabel(status: string): PlacesStatusLabel {
  return (PLACES_STATUSES as readonly string[]).includes(status)
    ? status as PlacesStatusLabel
    : "other";
}

/** The body a client gets when no Places answer could be had. */
export function unknownErrorBody(): PlacesBody {
  return { html_attributions: [], results: [], status: "UNKNOWN_ERROR" };
}
