/**
 * The `google-new` provider: Places API (New), `POST BASE/v1/places:searchNearby`, with the
 * answer mapped to the legacy Nearby Search shape every client gets.
 *
 * Owns: the request (headers, field mask per tier, body) and the pure mapping of New answers
 * and errors to the legacy shape. Must not know: retries, deadlines or key redaction
 * (upstream.ts), herd.json (the tier is passed in), clients or bounds.
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
  httpStatusBody,
  placesBaseUrl,
  type UpstreamOptions,
  type UpstreamRequest,
  type UpstreamVerdict,
} from "./upstream.ts";

/** Where the New API lives unless `baseUrl` says otherwise. */
export const NEW_BASE_URL_DEFAULT = "https://places.googleapis.com";
/** The Nearby Search (New) path under the base URL. */
export const NEW_SEARCH_NEARBY_PATH = "/v1/places:searchNearby";

/** Which fields are asked for (and billed): Pro, or Pro plus the Enterprise fields. */
export type GoogleFieldTier = "pro" | "enterprise";

/** The Pro-tier field mask, exactly as the contract lists it. */
export const PRO_FIELD_MASK = [
  "places.id",
  "places.displayName",
  "places.location",
  "places.shortFormattedAddress",
  "places.formattedAddress",
  "places.types",
  "places.businessStatus",
].join(",");

/** The Enterprise-tier field mask: the Pro mask plus four fields. */
export const ENTERPRISE_FIELD_MASK = [
  PRO_FIELD_MASK,
  "places.rating",
  "places.userRatingCount",
  "places.priceLevel",
  "places.currentOpeningHours",
].join(",");

/** New `priceLevel` → legacy `price_level`; `PRICE_LEVEL_UNSPECIFIED` and unknowns map to none. */
export const PRICE_LEVELS: Readonly<Record<string, number>> = {
  PRICE_LEVEL_FREE: 0,
  PRICE_LEVEL_INEXPENSIVE: 1,
  PRICE_LEVEL_MODERATE: 2,
  PRICE_LEVEL_EXPENSIVE: 3,
  PRICE_LEVEL_VERY_EXPENSIVE: 4,
};

/** New `error.status` → legacy status; anything not listed is `UNKNOWN_ERROR`. */
const ERROR_STATUSES: Readonly<Record<string, string>> = {
  INVALID_ARGUMENT: "INVALID_REQUEST",
  FAILED_PRECONDITION: "INVALID_REQUEST",
  OUT_OF_RANGE: "INVALID_REQUEST",
  PERMISSION_DENIED: "REQUEST_DENIED",
  UNAUTHENTICATED: "REQUEST_DENIED",
  RESOURCE_EXHAUSTED: "OVER_QUERY_LIMIT",
};

/** Keys a searchNearby answer may carry besides `places` without being something else. */
const ANSWER_KEYS_KNOWN = new Set(["places", "routingSummaries"]);

/** Options of {@link createGoogleNewProvider}. */
export interface GoogleNewOptions extends UpstreamOptions {
  /** Default `"pro"`; `"enterprise"` adds rating, ratings count, price level and open now. */
  fieldTier?: GoogleFieldTier;
}

/** One result in the legacy shape, as mapped from a New place. */
export interface LegacyResult {
  name: string;
  place_id: string;
  geometry: { location: { lat: number; lng: number } };
  vicinity: string;
  types: string[];
  business_status?: string;
  rating?: number;
  user_ratings_total?: number;
  price_level?: number;
  opening_hours?: { open_now: boolean };
}

/**
 * The `X-Goog-FieldMask` value for a tier.
 *
 * @example
 * ```ts
 * fieldMaskFor("pro") === PRO_FIELD_MASK; // true
 * ```
 */
export function fieldMaskFor(tier: GoogleFieldTier): string {
  return tier === "enterprise" ? ENTERPRISE_FIELD_MASK : PRO_FIELD_MASK;
}

/**
 * The searchNearby request for `query`: URL, the two `X-Goog-*` headers and the JSON body
 * (a `locationRestriction` circle and `maxResultCount` {@link PLACES_RESULTS_MAX}). The key is
 * in a header, never in the URL.
 *
 * @example
 * ```ts
 * const request = searchNearbyRequest(NEW_BASE_URL_DEFAULT, query, apiKey, "pro");
 * ```
 */
export function searchNearbyRequest(
  baseUrl: string,
  query: PlacesQuery,
  apiKey: string,
  tier: GoogleFieldTier,
): UpstreamRequest {
  const body = {
    locationRestriction: {
      circle: {
        center: { latitude: query.latitude, longitude: query.longitude },
        radius: query.radiusMetres,
      },
    },
    maxResultCount: PLACES_RESULTS_MAX,
  };
  return {
    url: `${baseUrl}${NEW_SEARCH_NEARBY_PATH}`,
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-Goog-Api-Key": apiKey,
      "X-Goog-FieldMask": fieldMaskFor(tier),
    },
    body: JSON.stringify(body),
  };
}

/**
 * The legacy status for a New `error.status` (`INVALID_ARGUMENT` → `INVALID_REQUEST`, …);
 * anything unlisted or not a string is `UNKNOWN_ERROR`.
 *
 * @example
 * ```ts
 * newErrorStatusToPlacesStatus("PERMISSION_DENIED"); // "REQUEST_DENIED"
 * ```
 */
export function newErrorStatusToPlacesStatus(errorStatus: unknown): string {
  return typeof errorStatus === "string" && Object.hasOwn(ERROR_STATUSES, errorStatus)
    ? ERROR_STATUSES[errorStatus]
    : "UNKNOWN_ERROR";
}

/**
 * One New place in the legacy result shape, or `undefined` if it has no string `id` or no
 * numeric location (not a usable place). Missing name or address become `""`, missing types
 * `[]`; optional fields appear only when the place has them in a usable form.
 *
 * @example
 * ```ts
 * newPlaceToLegacyResult({ id: "p1", displayName: { text: "Cafe" }, location: { latitude: 1, longitude: 2 } });
 * // { name: "Cafe", place_id: "p1", geometry: { location: { lat: 1, lng: 2 } }, vicinity: "", types: [] }
 * ```
 */
export function newPlaceToLegacyResult(place: unknown): LegacyResult | undefined {
  if (!isObject(place) || typeof place.id !== "string") return undefined;
  const location = place.location;
  if (
    !isObject(location) || !Number.isFinite(location.latitude) ||
    !Number.isFinite(location.longitude)
  ) return undefined;
  const displayName = place.displayName;
  const result: LegacyResult = {
    name: isObject(displayName) && typeof displayName.text === "string" ? displayName.text : "",
    place_id: place.id,
    geometry: { location: { lat: location.latitude as number, lng: location.longitude as number } },
    vicinity: typeof place.shortFormattedAddress === "string"
      ? place.shortFormattedAddress
      : typeof place.formattedAddress === "string"
      ? place.formattedAddress
      : "",
    types: Array.isArray(place.types)
      ? place.types.filter((type): type is string => typeof type === "string")
      : [],
  };
  if (typeof place.businessStatus === "string") result.business_status = place.businessStatus;
  if (Number.isFinite(place.rating)) result.rating = place.rating as number;
  if (Number.isFinite(place.userRatingCount)) {
    result.user_ratings_total = place.userRatingCount as number;
  }
  if (typeof place.priceLevel === "string" && Object.hasOwn(PRICE_LEVELS, place.priceLevel)) {
    result.price_level = PRICE_LEVELS[place.priceLevel];
  }
  const hours = place.currentOpeningHours;
  if (isObject(hours) && typeof hours.openNow === "boolean") {
    result.opening_hours = { open_now: hours.openNow };
  }
  return result;
}

/**
 * A parsed New answer in the legacy shape, or `undefined` if it is not a Places answer.
 * `{"error": {...}}` maps by `error.status` (with `error.message` as `error_message`);
 * `{}` or no usable places is `ZERO_RESULTS`; a `places` array is `OK` with up to
 * {@link PLACES_RESULTS_MAX} mapped results (unusable places dropped). Not an answer: a
 * non-object, `places` that is not an array, or an object without `places` carrying keys a
 * searchNearby answer does not have.
 *
 * @example
 * ```ts
 * newAnswerToLegacyBody({})?.status; // "ZERO_RESULTS"
 * newAnswerToLegacyBody({ error: { code: 403, status: "PERMISSION_DENIED" } })?.status; // "REQUEST_DENIED"
 * ```
 */
export function newAnswerToLegacyBody(answer: unknown): PlacesBody | undefined {
  if (!isObject(answer)) return undefined;
  if (isObject(answer.error)) return newErrorToLegacyBody(answer.error);
  if (answer.places === undefined) {
    const known = Object.keys(answer).every((key) => ANSWER_KEYS_KNOWN.has(key));
    return known ? { html_attributions: [], results: [], status: "ZERO_RESULTS" } : undefined;
  }
  if (!Array.isArray(answer.places)) return undefined;
  const results: LegacyResult[] = [];
  for (const place of answer.places) {
    if (results.length === PLACES_RESULTS_MAX) break;
    const result = newPlaceToLegacyResult(place);
    if (result !== undefined) results.push(result);
  }
  return { html_attributions: [], results, status: results.length > 0 ? "OK" : "ZERO_RESULTS" };
}

/**
 * What one New HTTP response means. HTTP 429 is always `OVER_QUERY_LIMIT`; otherwise a JSON
 * `{"error": {...}}` maps by `error.status` whatever the HTTP status, an HTTP 200 answer maps
 * by {@link newAnswerToLegacyBody}, and anything else is `UNKNOWN_ERROR` with the reason in
 * `error`. Pure; the key is scrubbed by the caller.
 *
 * @example
 * ```ts
 * newBodyFromResponse(200, "{}").body.status; // "ZERO_RESULTS"
 * newBodyFromResponse(503, "Service Unavailable").body.status; // "UNKNOWN_ERROR"
 * ```
 */
export function newBodyFromResponse(httpStatus: number, text: string): UpstreamVerdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return httpStatus === 200
      ? { body: unknownErrorBody(), error: "HTTP 200: body is not JSON" }
      : { body: httpStatusBody(httpStatus) };
  }
  if (httpStatus === 429) {
    const body = isObject(parsed) && isObject(parsed.error)
      ? newErrorToLegacyBody(parsed.error)
      : httpStatusBody(httpStatus);
    return { body: { ...body, status: "OVER_QUERY_LIMIT" } };
  }
  if (httpStatus !== 200) {
    const errorBody = isObject(parsed) && isObject(parsed.error)
      ? newErrorToLegacyBody(parsed.error)
      : undefined;
    return { body: errorBody ?? httpStatusBody(httpStatus) };
  }
  const body = newAnswerToLegacyBody(parsed);
  return body === undefined
    ? { body: unknownErrorBody(), error: "HTTP 200: JSON is not a Places answer" }
    : { body };
}

/**
 * The `google-new` provider: one searchNearby call per lookup (20 results asked for),
 * answered in the legacy shape; retries, deadline and redaction as in upstream.ts.
 *
 * @example
 * ```ts
 * const places = createGoogleNewProvider({ apiKey, fieldTier: "enterprise" });
 * const body = await places.lookup({ latitude: 34.06893, longitude: -118.445127, radiusMetres: 10_000 }, AbortSignal.timeout(5000));
 * ```
 */
export function createGoogleNewProvider(options: GoogleNewOptions): DeadlineAwareProvider {
  const call = createUpstreamCaller("google-new", options);
  const baseUrl = placesBaseUrl(options.baseUrl, NEW_BASE_URL_DEFAULT);
  const tier = options.fieldTier ?? "pro";
  return {
    name: "google-new",
    lookup: (query, signal, deadlineAtMs) =>
      call(
        searchNearbyRequest(baseUrl, query, options.apiKey, tier),
        newBodyFromResponse,
        signal,
        deadlineAtMs,
      ),
  };
}

function newErrorToLegacyBody(error: Record<string, unknown>): PlacesBody {
  const body: PlacesBody = {
    html_attributions: [],
    results: [],
    status: newErrorStatusToPlacesStatus(error.status),
  };
  if (typeof error.message === "string" && error.message !== "") {
    body.error_message = error.message;
  }
  return body;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
