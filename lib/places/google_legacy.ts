/**
 * The `google` provider: Google's legacy Nearby Search,
 * `GET BASE/maps/api/place/nearbysearch/json?location=LAT,LNG&radius=METRES&key=KEY`.
 *
 * Owns: the legacy request URL and what counts as a legacy Places answer (an HTTP 200 JSON
 * object with a string `status` and an array `results`, passed through whatever its status).
 * Must not know: retries, deadlines or key redaction (upstream.ts), clients or bounds.
 */

import {
  PLACES_RESULTS_MAX,
  type PlacesBody,
  type PlacesQuery,
  unknownErrorBody,
} from "./provider.ts";
import {
  createUpstreamCaller,
  type DeadlineAwareProvider,
  decimalText,
  httpStatusBody,
  placesBaseUrl,
  type UpstreamOptions,
  type UpstreamVerdict,
} from "./upstream.ts";

/** Where the legacy API lives unless `baseUrl` says otherwise. */
export const LEGACY_BASE_URL_DEFAULT = "https://maps.googleapis.com";
/** The Nearby Search path under the base URL. */
export const LEGACY_NEARBY_SEARCH_PATH = "/maps/api/place/nearbysearch/json";

/** Options of {@link createGoogleLegacyProvider}; see {@link UpstreamOptions}. */
export type GoogleLegacyOptions = UpstreamOptions;

/**
 * The Nearby Search URL for `query` under `baseUrl` (no trailing slash), key included — for
 * sending only; report it through `redactUrl`.
 *
 * @example
 * ```ts
 * legacyNearbySearchUrl("https://maps.googleapis.com", { latitude: 34.06893, longitude: -118.445127, radiusMetres: 10000 }, "K");
 * // "https://maps.googleapis.com/maps/api/place/nearbysearch/json?location=34.06893,-118.445127&radius=10000&key=K"
 * ```
 */
export function legacyNearbySearchUrl(baseUrl: string, query: PlacesQuery, apiKey: string): string {
  const location = `${decimalText(query.latitude)},${decimalText(query.longitude)}`;
  return `${baseUrl}${LEGACY_NEARBY_SEARCH_PATH}?location=${location}` +
    `&radius=${decimalText(query.radiusMetres)}&key=${encodeURIComponent(apiKey)}`;
}

/**
 * Whether a parsed JSON value is a legacy Places answer: an object with a string `status`,
 * an array `results`, and `html_attributions` absent or an array.
 *
 * @example
 * ```ts
 * isLegacyPlacesAnswer({ html_attributions: [], results: [], status: "ZERO_RESULTS" }); // true
 * isLegacyPlacesAnswer({ error: "nope" }); // false
 * ```
 */
export function isLegacyPlacesAnswer(value: unknown): value is PlacesBody {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const answer = value as Record<string, unknown>;
  return typeof answer.status === "string" && Array.isArray(answer.results) &&
    (answer.html_attributions === undefined || Array.isArray(answer.html_attributions));
}

/**
 * What one legacy HTTP response means. HTTP 200 with a Places answer: that answer unchanged
 * (whatever its status), except a missing `html_attributions` becomes `[]` and `results` is
 * cut to {@link PLACES_RESULTS_MAX}. HTTP 429: `OVER_QUERY_LIMIT`. Anything else — other
 * statuses, non-JSON, JSON that is not a Places answer — `UNKNOWN_ERROR`, with the reason in
 * `error`. Pure; the key is scrubbed by the caller.
 *
 * @example
 * ```ts
 * legacyBodyFromResponse(200, '{"results":[],"status":"ZERO_RESULTS"}').body.status; // "ZERO_RESULTS"
 * legacyBodyFromResponse(200, "<html>").body.status; // "UNKNOWN_ERROR"
 * ```
 */
export function legacyBodyFromResponse(httpStatus: number, text: string): UpstreamVerdict {
  if (httpStatus !== 200) return { body: httpStatusBody(httpStatus) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { body: unknownErrorBody(), error: "HTTP 200: body is not JSON" };
  }
  if (!isLegacyPlacesAnswer(parsed)) {
    return { body: unknownErrorBody(), error: "HTTP 200: JSON is not a Places answer" };
  }
  const body: PlacesBody = {
    ...parsed,
    html_attributions: parsed.html_attributions ?? [],
    results: parsed.results.slice(0, PLACES_RESULTS_MAX),
  };
  return { body };
}

/**
 * The `google` provider. Every lookup asks for the Nearby Search around the query's point
 * (Google answers up to 20 per page); retries, deadline and redaction as in upstream.ts.
 *
 * @example
 * ```ts
 * const places = createGoogleLegacyProvider({
 *   apiKey: Deno.env.get("GOOGLE_PLACES_API_KEY")!,
 *   onCall: (call) => console.log(call.url, call.placesStatus, call.latencyMs),
 * });
 * const body = await places.lookup({ latitude: 34.06893, longitude: -118.445127, radiusMetres: 10_000 }, AbortSignal.timeout(5000));
 * ```
 */
export function createGoogleLegacyProvider(options: GoogleLegacyOptions): DeadlineAwareProvider {
  const call = createUpstreamCaller("google", options);
  const baseUrl = placesBaseUrl(options.baseUrl, LEGACY_BASE_URL_DEFAULT);
  return {
    name: "google",
    lookup: (query, signal, deadlineAtMs) =>
      call(
        { url: legacyNearbySearchUrl(baseUrl, query, options.apiKey), method: "GET" },
        legacyBodyFromResponse,
        signal,
        deadlineAtMs,
      ),
  };
}
