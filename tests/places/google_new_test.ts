/**
 * Tests of the `google-new` (Places API New) provider: the request (headers, field mask per
 * tier, body), the pure mapping of New answers and errors to the legacy shape, and the
 * provider end to end against the fake Places server over loopback HTTP. The retry loop it
 * shares with `google` is tested at length in google_legacy_test.ts; here only what the New
 * API makes different (429 and error bodies in JSON).
 */

import assert from "node:assert/strict";
import {
  createGoogleNewProvider,
  ENTERPRISE_FIELD_MASK,
  fieldMaskFor,
  type GoogleNewOptions,
  NEW_BASE_URL_DEFAULT,
  newAnswerToLegacyBody,
  newBodyFromResponse,
  newErrorStatusToPlacesStatus,
  newPlaceToLegacyResult,
  PRO_FIELD_MASK,
  searchNearbyRequest,
} from "../../lib/places/google_new.ts";
import type { PlacesQuery } from "../../lib/places/provider.ts";
import type { UpstreamCallReport } from "../../lib/places/upstream.ts";
import { type FakePlaces, generatePlaces, startFakePlaces } from "../fake_places.ts";
import { ABORT_SLACK_MS, runProviderContract, settlesWithin } from "./provider_contract.ts";

const API_KEY = "AIzaTestKey-new_9876543210fedcbaQRS";
const UCLA: PlacesQuery = { latitude: 34.06893, longitude: -118.445127, radiusMetres: 10_000 };
/** The masks exactly as the contract (PROTOCOL.md section 4) writes them. */
const CONTRACT_PRO_MASK = "places.id,places.displayName,places.location," +
  "places.shortFormattedAddress,places.formattedAddress,places.types,places.businessStatus";
const CONTRACT_ENTERPRISE_MASK = CONTRACT_PRO_MASK +
  ",places.rating,places.userRatingCount,places.priceLevel,places.currentOpeningHours";

/** A New place with every field the Enterprise mask asks for, and some it does not. */
const RICH_PLACE = {
  id: "ChIJ_rich_place",
  displayName: { text: "Café Zoë", languageCode: "fr" },
  location: { latitude: 34.0701, longitude: -118.4433 },
  shortFormattedAddress: "1 Royce Dr, Westwood",
  formattedAddress: "1 Royce Dr, Los Angeles, CA 90095, USA",
  types: ["cafe", "food", "point_of_interest", "establishment"],
  businessStatus: "OPERATIONAL",
  rating: 4.6,
  userRatingCount: 1234,
  priceLevel: "PRICE_LEVEL_MODERATE",
  currentOpeningHours: { openNow: true, weekdayDescriptions: ["Monday: 7 AM – 9 PM"] },
  googleMapsUri: "https://maps.google.com/?cid=1",
};

const emptyBody = (status: string) => ({ html_attributions: [], results: [], status });

function newAgainst(fake: FakePlaces, options: Partial<GoogleNewOptions> = {}) {
  const reports: UpstreamCallReport[] = [];
  const provider = createGoogleNewProvider({
    apiKey: API_KEY,
    baseUrl: fake.url,
    onCall: (report) => reports.push(report),
    random: () => 0.5,
    ...options,
  });
  return { provider, reports };
}

// ---------------------------------------------------------------------------------------
// The contract every provider meets, in both tiers.

for (const fieldTier of ["pro", "enterprise"] as const) {
  runProviderContract(`google-new (${fieldTier}) against the fake server`, async () => {
    const fake = await startFakePlaces();
    const { provider } = newAgainst(fake, { fieldTier });
    return {
      provider,
      query: UCLA,
      stall: () => fake.setDefault({ kind: "delay", delayMs: 60_000 }),
      close: fake.close,
    };
  });
}

// ---------------------------------------------------------------------------------------
// Pure: request.

Deno.test("the field masks are exactly the contract's Pro and Enterprise masks", () => {
  assert.equal(PRO_FIELD_MASK, CONTRACT_PRO_MASK);
  assert.equal(ENTERPRISE_FIELD_MASK, CONTRACT_ENTERPRISE_MASK);
  assert.equal(fieldMaskFor("pro"), CONTRACT_PRO_MASK);
  assert.equal(fieldMaskFor("enterprise"), CONTRACT_ENTERPRISE_MASK);
});

Deno.test("searchNearbyRequest() posts a circle and 20 results with the key in a header, not the URL", () => {
  const request = searchNearbyRequest(NEW_BASE_URL_DEFAULT, UCLA, API_KEY, "pro");
  assert.equal(request.url, "https://places.googleapis.com/v1/places:searchNearby");
  assert.equal(request.method, "POST");
  assert.deepEqual(request.headers, {
    "Content-Type": "application/json",
    "X-Goog-Api-Key": API_KEY,
    "X-Goog-FieldMask": CONTRACT_PRO_MASK,
  });
  assert.deepEqual(JSON.parse(request.body!), {
    locationRestriction: {
      circle: { center: { latitude: 34.06893, longitude: -118.445127 }, radius: 10_000 },
    },
    maxResultCount: 20,
  });
  assert.ok(!request.url.includes(API_KEY));
});

// ---------------------------------------------------------------------------------------
// Pure: mapping of places.

Deno.test("newPlaceToLegacyResult() maps a rich place field by field", () => {
  assert.deepEqual(newPlaceToLegacyResult(RICH_PLACE), {
    name: "Café Zoë",
    place_id: "ChIJ_rich_place",
    geometry: { location: { lat: 34.0701, lng: -118.4433 } },
    vicinity: "1 Royce Dr, Westwood",
    types: ["cafe", "food", "point_of_interest", "establishment"],
    business_status: "OPERATIONAL",
    rating: 4.6,
    user_ratings_total: 1234,
    price_level: 2,
    opening_hours: { open_now: true },
  });
});

Deno.test("newPlaceToLegacyResult() maps a Pro-tier place without the Enterprise fields", () => {
  const { rating, userRatingCount, priceLevel, currentOpeningHours, ...pro } = RICH_PLACE;
  assert.ok(rating && userRatingCount && priceLevel && currentOpeningHours);
  assert.deepEqual(newPlaceToLegacyResult(pro), {
    name: "Café Zoë",
    place_id: "ChIJ_rich_place",
    geometry: { location: { lat: 34.0701, lng: -118.4433 } },
    vicinity: "1 Royce Dr, Westwood",
    types: ["cafe", "food", "point_of_interest", "establishment"],
    business_status: "OPERATIONAL",
  });
});

Deno.test("newPlaceToLegacyResult() takes vicinity from shortFormattedAddress, else formattedAddress, else empty", () => {
  const base = { id: "p", location: { latitude: 1, longitude: 2 } };
  const table: Array<[Record<string, unknown>, string]> = [
    [{ shortFormattedAddress: "short", formattedAddress: "long" }, "short"],
    [{ formattedAddress: "long" }, "long"],
    [{ shortFormattedAddress: 7, formattedAddress: "long" }, "long"],
    [{}, ""],
  ];
  for (const [fields, vicinity] of table) {
    assert.equal(newPlaceToLegacyResult({ ...base, ...fields })?.vicinity, vicinity);
  }
});

Deno.test("newPlaceToLegacyResult() maps every price level to 0–4 and drops unspecified or unknown ones", () => {
  const table: Array<[unknown, number | undefined]> = [
    ["PRICE_LEVEL_FREE", 0],
    ["PRICE_LEVEL_INEXPENSIVE", 1],
    ["PRICE_LEVEL_MODERATE", 2],
    ["PRICE_LEVEL_EXPENSIVE", 3],
    ["PRICE_LEVEL_VERY_EXPENSIVE", 4],
    ["PRICE_LEVEL_UNSPECIFIED", undefined],
    ["PRICE_LEVEL_LUDICROUS", undefined],
    ["toString", undefined],
    [2, undefined],
  ];
  for (const [priceLevel, expected] of table) {
    const result = newPlaceToLegacyResult({ ...RICH_PLACE, priceLevel });
    assert.equal(result?.price_level, expected, String(priceLevel));
    assert.equal(result !== undefined && "price_level" in result, expected !== undefined);
  }
});

Deno.test("newPlaceToLegacyResult() keeps open_now false and drops opening hours without openNow", () => {
  const closed = newPlaceToLegacyResult({ ...RICH_PLACE, currentOpeningHours: { openNow: false } });
  assert.deepEqual(closed?.opening_hours, { open_now: false });
  const unknown = newPlaceToLegacyResult({ ...RICH_PLACE, currentOpeningHours: { periods: [] } });
  assert.equal(unknown !== undefined && "opening_hours" in unknown, false);
});

Deno.test("newPlaceToLegacyResult() fills a missing name and types, and drops non-string types", () => {
  const result = newPlaceToLegacyResult({
    id: "p",
    location: { latitude: 0, longitude: 0 },
    types: ["cafe", 3, null, "food"],
  });
  assert.deepEqual(result, {
    name: "",
    place_id: "p",
    geometry: { location: { lat: 0, lng: 0 } },
    vicinity: "",
    types: ["cafe", "food"],
  });
  assert.deepEqual(
    newPlaceToLegacyResult({ id: "q", location: { latitude: 0, longitude: 0 } })?.types,
    [],
  );
});

Deno.test("newPlaceToLegacyResult() refuses a place without a string id or a numeric location", () => {
  const refused: unknown[] = [
    null,
    "place",
    [],
    { location: { latitude: 1, longitude: 2 } },
    { id: 7, location: { latitude: 1, longitude: 2 } },
    { id: "p" },
    { id: "p", location: { latitude: "1", longitude: 2 } },
    { id: "p", location: { latitude: 1 } },
    { id: "p", location: { latitude: Infinity, longitude: 2 } },
  ];
  for (const place of refused) {
    assert.equal(newPlaceToLegacyResult(place), undefined, JSON.stringify(place));
  }
});

// ---------------------------------------------------------------------------------------
// Pure: mapping of answers and errors.

Deno.test("newAnswerToLegacyBody() maps {} and an empty places list to ZERO_RESULTS", () => {
  assert.deepEqual(newAnswerToLegacyBody({}), emptyBody("ZERO_RESULTS"));
  assert.deepEqual(newAnswerToLegacyBody({ places: [] }), emptyBody("ZERO_RESULTS"));
  assert.deepEqual(newAnswerToLegacyBody({ places: [{ id: 1 }] }), emptyBody("ZERO_RESULTS"));
});

Deno.test("newAnswerToLegacyBody() maps places to OK results in order, at most 20, skipping unusable ones", () => {
  const places = Array.from({ length: 25 }, (_, index) => ({
    id: `p${index}`,
    displayName: { text: `Place ${index}` },
    location: { latitude: index, longitude: -index },
  }));
  const body = newAnswerToLegacyBody({ places: [{ id: "broken" }, ...places] })!;
  assert.equal(body.status, "OK");
  assert.deepEqual(body.html_attributions, []);
  assert.deepEqual(
    body.results.map((result) => (result as { place_id: string }).place_id),
    places.slice(0, 20).map((place) => place.id),
  );
});

Deno.test("newAnswerToLegacyBody() refuses what is not a searchNearby answer", () => {
  const refused: unknown[] = [null, "x", 3, [], { places: {} }, { places: "[]" }, { data: [1] }];
  for (const answer of refused) {
    assert.equal(newAnswerToLegacyBody(answer), undefined, JSON.stringify(answer));
  }
});

Deno.test("newErrorStatusToPlacesStatus() maps every error.status as the contract lists", () => {
  const table: Array<[unknown, string]> = [
    ["INVALID_ARGUMENT", "INVALID_REQUEST"],
    ["FAILED_PRECONDITION", "INVALID_REQUEST"],
    ["OUT_OF_RANGE", "INVALID_REQUEST"],
    ["PERMISSION_DENIED", "REQUEST_DENIED"],
    ["UNAUTHENTICATED", "REQUEST_DENIED"],
    ["RESOURCE_EXHAUSTED", "OVER_QUERY_LIMIT"],
    ["NOT_FOUND", "UNKNOWN_ERROR"],
    ["INTERNAL", "UNKNOWN_ERROR"],
    ["UNAVAILABLE", "UNKNOWN_ERROR"],
    ["DEADLINE_EXCEEDED", "UNKNOWN_ERROR"],
    ["invalid_argument", "UNKNOWN_ERROR"],
    ["constructor", "UNKNOWN_ERROR"],
    [400, "UNKNOWN_ERROR"],
    [undefined, "UNKNOWN_ERROR"],
  ];
  for (const [errorStatus, status] of table) {
    assert.equal(newErrorStatusToPlacesStatus(errorStatus), status, String(errorStatus));
  }
});

Deno.test("newBodyFromResponse() maps error bodies by error.status, keeping the message", () => {
  const table: Array<[number, string, string]> = [
    [400, "INVALID_ARGUMENT", "INVALID_REQUEST"],
    [400, "FAILED_PRECONDITION", "INVALID_REQUEST"],
    [400, "OUT_OF_RANGE", "INVALID_REQUEST"],
    [403, "PERMISSION_DENIED", "REQUEST_DENIED"],
    [401, "UNAUTHENTICATED", "REQUEST_DENIED"],
    [404, "NOT_FOUND", "UNKNOWN_ERROR"],
    [500, "INTERNAL", "UNKNOWN_ERROR"],
    [503, "UNAVAILABLE", "UNKNOWN_ERROR"],
    [200, "PERMISSION_DENIED", "REQUEST_DENIED"],
  ];
  for (const [httpStatus, errorStatus, status] of table) {
    const text = JSON.stringify({
      error: { code: httpStatus, message: "why", status: errorStatus },
    });
    assert.deepEqual(
      newBodyFromResponse(httpStatus, text).body,
      { ...emptyBody(status), error_message: "why" },
      `${httpStatus} ${errorStatus}`,
    );
  }
});

Deno.test("newBodyFromResponse() maps HTTP 429 to OVER_QUERY_LIMIT whatever its body says", () => {
  const bodies = [
    JSON.stringify({ error: { code: 429, message: "quota", status: "RESOURCE_EXHAUSTED" } }),
    JSON.stringify({ error: { code: 429, message: "quota", status: "INVALID_ARGUMENT" } }),
    "Too Many Requests",
    "{}",
  ];
  for (const text of bodies) {
    assert.equal(newBodyFromResponse(429, text).body.status, "OVER_QUERY_LIMIT", text);
  }
});

Deno.test("newBodyFromResponse() maps other failures to UNKNOWN_ERROR", () => {
  const table: Array<[number, string]> = [
    [200, "<html>"],
    [200, ""],
    [200, "[]"],
    [200, '{"places": 3}'],
    [200, '{"data": [1, 2, 3]}'],
    [503, "Service Unavailable"],
    [502, '{"message": "bad gateway"}'],
    [404, "{}"],
  ];
  for (const [httpStatus, text] of table) {
    assert.deepEqual(newBodyFromResponse(httpStatus, text).body, emptyBody("UNKNOWN_ERROR"), text);
  }
  assert.ok(newBodyFromResponse(200, "<html>").error !== undefined, "a 200 non-answer says why");
});

Deno.test("newBodyFromResponse() maps a 200 {} to ZERO_RESULTS and places to OK", () => {
  assert.deepEqual(newBodyFromResponse(200, "{}").body, emptyBody("ZERO_RESULTS"));
  const { body } = newBodyFromResponse(200, JSON.stringify({ places: [RICH_PLACE] }));
  assert.equal(body.status, "OK");
  assert.deepEqual(body.results, [newPlaceToLegacyResult(RICH_PLACE)]);
});

// ---------------------------------------------------------------------------------------
// I/O against the fake.

for (
  const [fieldTier, mask] of [["pro", CONTRACT_PRO_MASK], [
    "enterprise",
    CONTRACT_ENTERPRISE_MASK,
  ]] as const
) {
  Deno.test(`the google-new provider (${fieldTier}) posts the key, the ${fieldTier} field mask and a 20-result circle`, async () => {
    await using fake = await startFakePlaces({ apiKey: API_KEY });
    const { provider, reports } = newAgainst(fake, { fieldTier });
    const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
    assert.equal(body.status, "OK");
    assert.equal(fake.requests.length, 1);
    const [request] = fake.requests;
    assert.equal(request.method, "POST");
    assert.equal(request.path, "/v1/places:searchNearby");
    assert.deepEqual(request.query, {});
    assert.equal(request.headers["x-goog-api-key"], API_KEY);
    assert.equal(request.headers["x-goog-fieldmask"], mask);
    assert.match(request.headers["content-type"], /^application\/json/);
    assert.deepEqual(request.body, {
      locationRestriction: {
        circle: { center: { latitude: 34.06893, longitude: -118.445127 }, radius: 10_000 },
      },
      maxResultCount: 20,
    });
    assert.equal(reports[0].url, `${fake.url}/v1/places:searchNearby`);
  });
}

Deno.test("the google-new provider maps the fake's Enterprise places to legacy results field by field", async () => {
  await using fake = await startFakePlaces();
  const { provider } = newAgainst(fake, { fieldTier: "enterprise" });
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  const places = generatePlaces(UCLA.latitude, UCLA.longitude, UCLA.radiusMetres, 20);
  assert.deepEqual(body, {
    html_attributions: [],
    status: "OK",
    results: places.map((place) => ({
      name: place.name,
      place_id: place.id,
      geometry: { location: { lat: place.latitude, lng: place.longitude } },
      vicinity: place.shortAddress,
      types: place.types,
      business_status: place.businessStatus,
      rating: place.rating,
      user_ratings_total: place.userRatingCount,
      price_level: place.priceLevel,
      opening_hours: { open_now: place.openNow },
    })),
  });
});

Deno.test("the google-new provider in the Pro tier gets no Enterprise fields back", async () => {
  await using fake = await startFakePlaces();
  const { provider } = newAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(body.results.length, 20);
  for (const result of body.results as Array<Record<string, unknown>>) {
    assert.deepEqual(Object.keys(result).sort(), [
      "business_status",
      "geometry",
      "name",
      "place_id",
      "types",
      "vicinity",
    ]);
  }
});

Deno.test("the google-new provider answers ZERO_RESULTS when the API finds nothing ({})", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "places", count: 0 });
  const { provider } = newAgainst(fake);
  assert.deepEqual(
    await provider.lookup(UCLA, AbortSignal.timeout(2000)),
    emptyBody("ZERO_RESULTS"),
  );
});

Deno.test("the google-new provider does not retry a 400 and answers INVALID_REQUEST", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "status", httpStatus: 400 });
  const { provider, reports } = newAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.deepEqual(body, { ...emptyBody("INVALID_REQUEST"), error_message: "fake failure 400" });
  assert.equal(fake.requests.length, 1);
  assert.deepEqual(reports.map((report) => [report.httpStatus, report.placesStatus]), [
    [400, "INVALID_REQUEST"],
  ]);
});

Deno.test("the google-new provider retries a 503 and answers with the retry's OK", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "status", httpStatus: 503 });
  const { provider, reports } = newAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(3000));
  assert.equal(body.status, "OK");
  assert.equal(fake.requests.length, 2);
  assert.deepEqual(
    reports.map((report) => [report.attempt, report.httpStatus, report.placesStatus]),
    [
      [1, 503, "UNKNOWN_ERROR"],
      [2, 200, "OK"],
    ],
  );
});

Deno.test("the google-new provider retries 429 until the deadline, then answers OVER_QUERY_LIMIT", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "status", httpStatus: 429 });
  const { provider } = newAgainst(fake);
  const deadlineMs = 300;
  const body = await settlesWithin(
    provider.lookup(UCLA, AbortSignal.timeout(deadlineMs)),
    deadlineMs + ABORT_SLACK_MS,
    "lookup",
  );
  assert.deepEqual(body, { ...emptyBody("OVER_QUERY_LIMIT"), error_message: "fake failure 429" });
  assert.ok(fake.requests.length >= 2, `retried (${fake.requests.length} requests)`);
});

Deno.test("the google-new provider answers UNKNOWN_ERROR for garbage and for JSON that is not an answer", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "garbage" }, { kind: "not-places" });
  const { provider } = newAgainst(fake);
  assert.deepEqual(
    await provider.lookup(UCLA, AbortSignal.timeout(2000)),
    emptyBody("UNKNOWN_ERROR"),
  );
  assert.deepEqual(
    await provider.lookup(UCLA, AbortSignal.timeout(2000)),
    emptyBody("UNKNOWN_ERROR"),
  );
  assert.equal(fake.requests.length, 2, "neither was retried");
});

Deno.test("the google-new provider keeps the key out of bodies and reports when upstream echoes it", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "echo-key" });
  fake.enqueue({
    kind: "json",
    httpStatus: 503,
    body: { error: { code: 503, message: `backend saw ${API_KEY}`, status: "UNAVAILABLE" } },
  });
  fake.enqueue({
    kind: "json",
    body: { places: [{ ...RICH_PLACE, displayName: { text: `Shop ${API_KEY}` } }] },
  });
  const reports: UpstreamCallReport[] = [];
  const { provider } = newAgainst(fake, { onCall: (report) => reports.push(report) });
  const denied = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.deepEqual(denied, {
    ...emptyBody("INVALID_REQUEST"),
    error_message: "API key not valid. Please pass a valid API key. (got REDACTED)",
  });
  const retried = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal((retried.results[0] as { name: string }).name, "Shop REDACTED");
  assert.equal(fake.requests[0].headers["x-goog-api-key"], API_KEY, "the fake did get the key");
  const everything = JSON.stringify([denied, retried, reports]);
  assert.ok(!everything.includes(API_KEY), everything);
  assert.equal(reports.length, 3);
});
