/**
 * Tests of the `google` (legacy Nearby Search) provider and of the retry / deadline / key
 * redaction loop it shares with `google-new` (upstream.ts): pure functions directly, I/O
 * against the fake Places server over real loopback HTTP. Real waits are a few hundred ms
 * at most; retry schedules are driven by a stepping clock instead of sleeping.
 */

import assert from "node:assert/strict";
import {
  createGoogleLegacyProvider,
  type GoogleLegacyOptions,
  isLegacyPlacesAnswer,
  LEGACY_BASE_URL_DEFAULT,
  legacyBodyFromResponse,
  legacyNearbySearchUrl,
} from "../../lib/places/google_legacy.ts";
import { PLACES_STATUSES, type PlacesBody, type PlacesQuery } from "../../lib/places/provider.ts";
import {
  ATTEMPTS_MAX,
  decimalText,
  isRetryableHttpStatus,
  PLACES_BACKOFF,
  placesBaseUrl,
  redactKey,
  redactUrl,
  RESPONSE_BYTES_MAX,
  scrubKey,
  type UpstreamCallReport,
  type UpstreamClock,
} from "../../lib/places/upstream.ts";
import { backoffDelayMs } from "../../lib/backoff.ts";
import { closedPortUrl, type FakePlaces, startFakePlaces } from "../fake_places.ts";
import { ABORT_SLACK_MS, runProviderContract, settlesWithin } from "./provider_contract.ts";

const API_KEY = "AIzaTestKey-legacy_0123456789abcdefXYZ";
const UCLA: PlacesQuery = { latitude: 34.06893, longitude: -118.445127, radiusMetres: 10_000 };
/** Every Places status is passed through as it is. */
const STATUSES_PASSED_THROUGH = PLACES_STATUSES;

/** A clock whose sleeps return at once and move time forward by what they slept. */
function steppingClock() {
  let nowMs = 1000;
  const sleptMs: number[] = [];
  const clock: UpstreamClock = {
    nowMs: () => nowMs,
    sleep: (ms) => {
      sleptMs.push(ms);
      nowMs += ms;
      return Promise.resolve();
    },
  };
  return { clock, sleptMs, nowMs: () => nowMs };
}

/** A legacy provider pointed at `fake`, recording its reports. */
function legacyAgainst(fake: FakePlaces, options: Partial<GoogleLegacyOptions> = {}) {
  const reports: UpstreamCallReport[] = [];
  const provider = createGoogleLegacyProvider({
    apiKey: API_KEY,
    baseUrl: fake.url,
    onCall: (report) => reports.push(report),
    random: () => 0.5,
    ...options,
  });
  return { provider, reports };
}

const never = () => new AbortController().signal;

function assertKeyAbsent(value: unknown, key = API_KEY) {
  const text = JSON.stringify(value);
  assert.ok(!text.includes(key), `the key leaked into ${text}`);
  assert.ok(!text.includes(encodeURIComponent(key)), `the encoded key leaked into ${text}`);
}

// ---------------------------------------------------------------------------------------
// The contract every provider meets.

runProviderContract("google (legacy) against the fake server", async () => {
  const fake = await startFakePlaces();
  const { provider } = legacyAgainst(fake);
  return {
    provider,
    query: UCLA,
    stall: () => fake.setDefault({ kind: "delay", delayMs: 60_000 }),
    close: fake.close,
  };
});

// ---------------------------------------------------------------------------------------
// Pure: request URL, answer recognition, mapping of responses.

Deno.test("legacyNearbySearchUrl() puts location, radius in metres and key on the Nearby Search path", () => {
  assert.equal(
    legacyNearbySearchUrl("https://maps.googleapis.com", UCLA, "K1"),
    "https://maps.googleapis.com/maps/api/place/nearbysearch/json" +
      "?location=34.06893,-118.445127&radius=10000&key=K1",
  );
});

Deno.test("legacyNearbySearchUrl() writes tiny numbers as decimals and percent-encodes the key", () => {
  const url = legacyNearbySearchUrl(
    "http://127.0.0.1:1",
    { latitude: 1e-7, longitude: -0.5, radiusMetres: 0.001 },
    "a+b/c=&d",
  );
  assert.equal(
    url,
    "http://127.0.0.1:1/maps/api/place/nearbysearch/json" +
      "?location=0.0000001,-0.5&radius=0.001&key=a%2Bb%2Fc%3D%26d",
  );
});

Deno.test("the legacy default base URL is Google's maps host", () => {
  assert.equal(LEGACY_BASE_URL_DEFAULT, "https://maps.googleapis.com");
  assert.equal(placesBaseUrl(undefined, LEGACY_BASE_URL_DEFAULT), "https://maps.googleapis.com");
  assert.equal(placesBaseUrl("", LEGACY_BASE_URL_DEFAULT), "https://maps.googleapis.com");
  assert.equal(placesBaseUrl("http://127.0.0.1:9/", LEGACY_BASE_URL_DEFAULT), "http://127.0.0.1:9");
  assert.equal(placesBaseUrl("http://h/p//", LEGACY_BASE_URL_DEFAULT), "http://h/p");
});

Deno.test("isLegacyPlacesAnswer() accepts objects with a string status and an array of results", () => {
  const accepted: unknown[] = [
    { html_attributions: [], results: [], status: "ZERO_RESULTS" },
    { results: [{ name: "x" }], status: "OK" },
    { results: [], status: "SOMETHING_NEW", extra: { field: 1 } },
  ];
  for (const value of accepted) {
    assert.equal(isLegacyPlacesAnswer(value), true, JSON.stringify(value));
  }
});

Deno.test("isLegacyPlacesAnswer() refuses anything else", () => {
  const refused: unknown[] = [
    null,
    "OK",
    42,
    [],
    [{ status: "OK", results: [] }],
    {},
    { status: "OK" },
    { results: [] },
    { status: 200, results: [] },
    { status: "OK", results: {} },
    { status: "OK", results: "[]" },
    { status: "OK", results: [], html_attributions: "none" },
    { error: { code: 403, status: "PERMISSION_DENIED" } },
  ];
  for (const value of refused) {
    assert.equal(isLegacyPlacesAnswer(value), false, JSON.stringify(value));
  }
});

for (const status of STATUSES_PASSED_THROUGH) {
  Deno.test(`legacyBodyFromResponse() passes a 200 ${status} answer through unchanged`, () => {
    const answer = {
      error_message: status === "OK" ? undefined : `why ${status}`,
      html_attributions: ["<a>someone</a>"],
      next_page_token: "token-1",
      results: status === "OK" ? [{ name: "A", place_id: "p", anything: [1, { b: 2 }] }] : [],
      status,
    };
    const verdict = legacyBodyFromResponse(200, JSON.stringify(answer));
    assert.deepEqual(verdict.body, JSON.parse(JSON.stringify(answer)));
    assert.equal(verdict.error, undefined);
  });
}

Deno.test("legacyBodyFromResponse() cuts results to 20 and adds missing html_attributions", () => {
  const results = Array.from({ length: 25 }, (_, index) => ({ name: `p${index}` }));
  const verdict = legacyBodyFromResponse(200, JSON.stringify({ results, status: "OK" }));
  assert.deepEqual(verdict.body, {
    html_attributions: [],
    results: results.slice(0, 20),
    status: "OK",
  });
});

Deno.test("legacyBodyFromResponse() maps non-JSON and non-Places JSON to UNKNOWN_ERROR with a reason", () => {
  const cases = [
    "",
    "<html>502 Bad Gateway</html>",
    '{"status": "OK", "results": [',
    "null",
    '"OK"',
    "[]",
    '{"data": [1, 2, 3]}',
    '{"status": "OK"}',
  ];
  for (const text of cases) {
    const verdict = legacyBodyFromResponse(200, text);
    assert.deepEqual(verdict.body, { html_attributions: [], results: [], status: "UNKNOWN_ERROR" });
    assert.ok(verdict.error !== undefined, `a reason for ${text}`);
  }
});

Deno.test("legacyBodyFromResponse() maps HTTP 429 to OVER_QUERY_LIMIT and other non-200 to UNKNOWN_ERROR", () => {
  const placesAnswer = JSON.stringify({ html_attributions: [], results: [], status: "OK" });
  const cases: Array<[number, string, string]> = [
    [429, "Too Many Requests", "OVER_QUERY_LIMIT"],
    [429, placesAnswer, "OVER_QUERY_LIMIT"],
    [500, placesAnswer, "UNKNOWN_ERROR"],
    [503, "<html>", "UNKNOWN_ERROR"],
    [404, "Not Found", "UNKNOWN_ERROR"],
    [403, placesAnswer, "UNKNOWN_ERROR"],
    [302, "", "UNKNOWN_ERROR"],
  ];
  for (const [httpStatus, text, status] of cases) {
    const { body } = legacyBodyFromResponse(httpStatus, text);
    assert.deepEqual(body, { html_attributions: [], results: [], status }, `HTTP ${httpStatus}`);
  }
});

// ---------------------------------------------------------------------------------------
// Pure: the shared retry rule, backoff and redaction (upstream.ts).

Deno.test("isRetryableHttpStatus() is true for 429 and 5xx only", () => {
  for (const status of [429, 500, 502, 503, 504, 599]) {
    assert.equal(isRetryableHttpStatus(status), true);
  }
  for (const status of [200, 204, 301, 400, 401, 403, 404, 428, 430, 600]) {
    assert.equal(isRetryableHttpStatus(status), false, String(status));
  }
});

Deno.test("redactUrl() hides every key= value and the key itself, raw or encoded", () => {
  const key = "se/cr+et";
  assert.equal(
    redactUrl(`http://h/json?location=1,2&key=${encodeURIComponent(key)}&radius=5`, key),
    "http://h/json?location=1,2&key=REDACTED&radius=5",
  );
  assert.equal(
    redactUrl("error sending request for url (http://h/json?key=other): refused", key),
    "error sending request for url (http://h/json?key=REDACTED): refused",
  );
  assert.equal(
    redactUrl(`bad key ${key} or ${encodeURIComponent(key)}`, key),
    "bad key REDACTED or REDACTED",
  );
  assert.equal(
    redactUrl("http://h/v1/places:searchNearby", key),
    "http://h/v1/places:searchNearby",
  );
});

Deno.test("redactKey() replaces only the key, and nothing when the key is empty", () => {
  assert.equal(redactKey("monkey=1 key=2 K3Y", "K3Y"), "monkey=1 key=2 REDACTED");
  assert.equal(redactKey("anything at all", ""), "anything at all");
});

Deno.test("scrubKey() redacts the key in every string and property name, at any depth", () => {
  const key = "AIzaSECRET";
  const value = {
    status: "REQUEST_DENIED",
    error_message: `key ${key} is bad`,
    results: [{ name: `${key}${key}`, nested: [[{ [key]: key }]] }],
    count: 3,
    flag: true,
    nothing: null,
  };
  assert.deepEqual(scrubKey(value, key), {
    status: "REQUEST_DENIED",
    error_message: "key REDACTED is bad",
    results: [{ name: "REDACTEDREDACTED", nested: [[{ REDACTED: "REDACTED" }]] }],
    count: 3,
    flag: true,
    nothing: null,
  });
});

Deno.test("scrubKey() refuses a value nested deeper than any Places answer", () => {
  const deep = JSON.parse("[".repeat(100) + "]".repeat(100));
  assert.throws(() => scrubKey(deep, "k"), RangeError);
  const shallow = JSON.parse("[".repeat(20) + "]".repeat(20));
  assert.deepEqual(scrubKey(shallow, "k"), shallow);
});

Deno.test("decimalText() never writes an exponent", () => {
  const table: Array<[number, string]> = [
    [34.06893, "34.06893"],
    [-118.445127, "-118.445127"],
    [0, "0"],
    [50_000, "50000"],
    [1e-7, "0.0000001"],
    [-2.5e-9, "-0.0000000025"],
  ];
  for (const [value, text] of table) assert.equal(decimalText(value), text);
});

// ---------------------------------------------------------------------------------------
// I/O against the fake: what is sent, what comes back, retries, deadlines, redaction.

Deno.test("the google provider sends one GET with location, radius and key to the Nearby Search path", async () => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  const { provider } = legacyAgainst(fake, { baseUrl: `${fake.url}/` });
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(body.status, "OK");
  assert.equal(body.results.length, 20);
  assert.equal(fake.requests.length, 1);
  const [request] = fake.requests;
  assert.equal(request.method, "GET");
  assert.equal(request.path, "/maps/api/place/nearbysearch/json");
  assert.deepEqual(request.query, {
    location: "34.06893,-118.445127",
    radius: "10000",
    key: API_KEY,
  });
});

Deno.test("the google provider returns the upstream answer as the fake wrote it", async () => {
  await using fake = await startFakePlaces();
  const answer = {
    html_attributions: ['<a href="x">Listings by X</a>'],
    next_page_token: "next",
    results: [{ name: "Only One", place_id: "p1", custom: { deep: [1, 2] } }],
    status: "OK",
  };
  fake.enqueue({ kind: "json", body: answer });
  const { provider } = legacyAgainst(fake);
  assert.deepEqual(await provider.lookup(UCLA, AbortSignal.timeout(2000)), answer);
});

for (const status of STATUSES_PASSED_THROUGH) {
  Deno.test(`the google provider passes a 200 ${status} body through and never retries it`, async () => {
    await using fake = await startFakePlaces();
    const answer = { html_attributions: [], results: [], status, error_message: "upstream says" };
    fake.setDefault({ kind: "json", body: answer });
    const { provider, reports } = legacyAgainst(fake);
    const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
    assert.deepEqual(body, answer);
    assert.equal(fake.requests.length, 1, "one request");
    assert.deepEqual(
      reports.map((report) => [report.attempt, report.httpStatus, report.placesStatus]),
      [
        [1, 200, status],
      ],
    );
  });
}

for (const kind of ["garbage", "not-places"] as const) {
  Deno.test(`the google provider answers UNKNOWN_ERROR for a 200 ${kind} body, without retrying`, async () => {
    await using fake = await startFakePlaces();
    fake.setDefault({ kind });
    const { provider, reports } = legacyAgainst(fake);
    const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
    assert.deepEqual(body, { html_attributions: [], results: [], status: "UNKNOWN_ERROR" });
    assert.equal(fake.requests.length, 1);
    assert.equal(reports.length, 1);
    assert.equal(reports[0].httpStatus, 200);
    assert.match(reports[0].error ?? "", /not JSON|not a Places answer/);
  });
}

Deno.test("the google provider retries a 503 and answers with the retry's OK", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "status", httpStatus: 503 });
  const { provider, reports } = legacyAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(3000));
  assert.equal(body.status, "OK");
  assert.equal(body.results.length, 20);
  assert.equal(fake.requests.length, 2);
  assert.deepEqual(
    reports.map((report) => [report.attempt, report.httpStatus, report.placesStatus]),
    [[1, 503, "UNKNOWN_ERROR"], [2, 200, "OK"]],
  );
  const gapMs = fake.requests[1].atMs - fake.requests[0].atMs;
  assert.ok(
    gapMs >= backoffDelayMs(1, 0.5, PLACES_BACKOFF) - 5,
    `retried after a backoff, not at once (${gapMs} ms)`,
  );
});

Deno.test("an HTTP 200 whose body is cut off is not retried and gives UNKNOWN_ERROR", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "reset" });
  const { provider, reports } = legacyAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(3000));
  assert.equal(body.status, "UNKNOWN_ERROR");
  assert.equal(fake.requests.length, 1);
  assert.equal(reports[0].httpStatus, 200);
  assert.ok(reports[0].error?.includes("body lost"), "the cut attempt says why");
});

Deno.test("retries stop at the deadline and the answer maps the last response (429 → OVER_QUERY_LIMIT)", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "status", httpStatus: 429 });
  const { provider, reports } = legacyAgainst(fake);
  const deadlineMs = 300;
  const startMs = performance.now();
  const body = await settlesWithin(
    provider.lookup(UCLA, AbortSignal.timeout(deadlineMs)),
    deadlineMs + ABORT_SLACK_MS,
    "lookup",
  );
  const tookMs = performance.now() - startMs;
  assert.deepEqual(body, { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT" });
  assert.ok(fake.requests.length >= 2, `retried (${fake.requests.length} requests)`);
  assert.ok(fake.requests.length < ATTEMPTS_MAX, "but not without pause");
  assert.ok(tookMs < deadlineMs + ABORT_SLACK_MS, `answered at the deadline (${tookMs} ms)`);
  assert.ok(reports.every((report) => report.httpStatus === 429));
});

Deno.test("retries stop at the deadline and a last 5xx maps to UNKNOWN_ERROR", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "status", httpStatus: 500 });
  const { provider } = legacyAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(250));
  assert.deepEqual(body, { html_attributions: [], results: [], status: "UNKNOWN_ERROR" });
  assert.ok(fake.requests.length >= 2);
});

Deno.test("a backoff sleep that would end after deadlineAtMs is not started", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "status", httpStatus: 429 });
  const stepping = steppingClock();
  const { provider } = legacyAgainst(fake, { clock: stepping.clock });
  // Backoffs at random 0.5: 75 ms, then 150 ms. 1000 + 75 + 150 passes the deadline at 1200.
  const body = await provider.lookup(UCLA, never(), 1200);
  assert.equal(body.status, "OVER_QUERY_LIMIT");
  assert.deepEqual(stepping.sleptMs, [75]);
  assert.equal(fake.requests.length, 2);
});

Deno.test("without a deadline, attempts stop at ATTEMPTS_MAX", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "status", httpStatus: 503 });
  const stepping = steppingClock();
  const { provider, reports } = legacyAgainst(fake, { clock: stepping.clock });
  const body = await provider.lookup(UCLA, never());
  assert.equal(body.status, "UNKNOWN_ERROR");
  assert.equal(fake.requests.length, ATTEMPTS_MAX);
  assert.deepEqual(reports.map((report) => report.attempt), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(stepping.sleptMs, [75, 150, 300, 600, 750, 750, 750]);
});

Deno.test("a connect error after a 429 still answers OVER_QUERY_LIMIT (the last response)", async () => {
  let calls = 0;
  const fetchImpl = () => {
    calls += 1;
    return calls === 1
      ? Promise.resolve(new Response("slow down", { status: 429 }))
      : Promise.reject(new TypeError("connection refused"));
  };
  const stepping = steppingClock();
  const provider = createGoogleLegacyProvider({
    apiKey: API_KEY,
    fetchImpl,
    clock: stepping.clock,
    random: () => 0,
  });
  const body = await provider.lookup(UCLA, never());
  assert.equal(body.status, "OVER_QUERY_LIMIT");
  assert.equal(calls, ATTEMPTS_MAX);
});

Deno.test("a closed port answers UNKNOWN_ERROR within the deadline, reporting the connect error", async () => {
  const reports: UpstreamCallReport[] = [];
  const baseUrl = closedPortUrl();
  const provider = createGoogleLegacyProvider({
    apiKey: API_KEY,
    baseUrl,
    onCall: (report) => reports.push(report),
  });
  const deadlineMs = 300;
  const startMs = performance.now();
  const body = await settlesWithin(
    provider.lookup(UCLA, AbortSignal.timeout(deadlineMs)),
    deadlineMs + ABORT_SLACK_MS,
    "lookup",
  );
  assert.deepEqual(body, { html_attributions: [], results: [], status: "UNKNOWN_ERROR" });
  assert.ok(performance.now() - startMs < deadlineMs + ABORT_SLACK_MS);
  assert.ok(reports.length >= 2, `connect errors are retried (${reports.length} attempts)`);
  for (const report of reports) {
    assert.equal(report.httpStatus, undefined);
    assert.equal(report.placesStatus, "UNKNOWN_ERROR");
    assert.ok(report.error !== undefined && report.error !== "");
    assert.ok(report.url.startsWith(`${baseUrl}/maps/api/place/nearbysearch/json?`));
    assert.ok(report.url.endsWith("&key=REDACTED"), report.url);
  }
  assertKeyAbsent(reports);
});

Deno.test("an upstream slower than the deadline is answered UNKNOWN_ERROR at the deadline", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "delay", delayMs: 5000 });
  const { provider, reports } = legacyAgainst(fake);
  const deadlineMs = 200;
  const startMs = performance.now();
  const body = await provider.lookup(UCLA, AbortSignal.timeout(deadlineMs));
  const tookMs = performance.now() - startMs;
  assert.equal(body.status, "UNKNOWN_ERROR");
  assert.ok(tookMs >= deadlineMs - 5 && tookMs < deadlineMs + ABORT_SLACK_MS, `${tookMs} ms`);
  assert.equal(fake.requests.length, 1);
  assert.equal(reports.length, 1);
  assert.match(reports[0].error ?? "", /deadline/);
});

Deno.test("the key never appears in a body or report, even when upstream echoes it", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "echo-key" });
  fake.enqueue({
    kind: "json",
    body: {
      html_attributions: [`<a href="https://x/?key=${API_KEY}">x</a>`],
      results: [{ name: `Cafe ${API_KEY}`, [API_KEY]: true }],
      status: "OK",
    },
  });
  const { provider, reports } = legacyAgainst(fake);
  const denied = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(denied.status, "REQUEST_DENIED");
  assert.equal(denied.error_message, "The provided API key is invalid: REDACTED");
  const echoed = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(echoed.status, "OK");
  assert.deepEqual(echoed.results, [{ name: "Cafe REDACTED", REDACTED: true }]);
  assert.equal(fake.requests[0].query.key, API_KEY, "the fake did get the real key");
  assertKeyAbsent([denied, echoed]);
  assertKeyAbsent(reports);
  assert.equal(reports.length, 2);
  for (const report of reports) assert.ok(report.url.includes("key=REDACTED"), report.url);
});

Deno.test("a key with URL-special characters is sent intact and redacted in both forms", async () => {
  const key = "k+e/y=&?x";
  await using fake = await startFakePlaces({ apiKey: key });
  fake.enqueue({ kind: "echo-key" });
  const { provider, reports } = legacyAgainst(fake, { apiKey: key });
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(fake.requests[0].query.key, key);
  assertKeyAbsent([body, reports], key);
  const ok = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(ok.status, "OK", "the fake accepted the key as sent");
});

Deno.test("a redirect is not followed (the key must not travel to another host)", async () => {
  await using target = await startFakePlaces();
  await using fake = await startFakePlaces();
  fake.setDefault({
    kind: "text",
    body: "",
    httpStatus: 302,
    headers: {
      location:
        `${target.url}/maps/api/place/nearbysearch/json?location=1,1&radius=1&key=${API_KEY}`,
    },
  });
  const { provider } = legacyAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(body.status, "UNKNOWN_ERROR");
  assert.equal(target.requests.length, 0);
  assert.equal(fake.requests.length, 1, "a 3xx is not retried");
});

Deno.test("a body larger than RESPONSE_BYTES_MAX is not a Places answer", async () => {
  await using fake = await startFakePlaces();
  const padding = "x".repeat(RESPONSE_BYTES_MAX);
  fake.setDefault({
    kind: "json",
    body: { html_attributions: [], results: [], status: "OK", padding },
  });
  const { provider, reports } = legacyAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(3000));
  assert.equal(body.status, "UNKNOWN_ERROR");
  assert.match(reports[0].error ?? "", /over \d+ bytes/);
});

Deno.test("an observer that throws does not change the answer", async () => {
  await using fake = await startFakePlaces();
  const { provider } = legacyAgainst(fake, {
    onCall: () => {
      throw new Error("observer broke");
    },
  });
  const body: PlacesBody = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(body.status, "OK");
});

Deno.test("each report carries provider, redacted URL, attempt, HTTP status, status and latency", async () => {
  await using fake = await startFakePlaces();
  fake.enqueue({ kind: "delay", delayMs: 30, then: { kind: "places", count: 3 } });
  const { provider, reports } = legacyAgainst(fake);
  await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.equal(reports.length, 1);
  const [report] = reports;
  assert.deepEqual({ ...report, latencyMs: 0 }, {
    provider: "google",
    url:
      `${fake.url}/maps/api/place/nearbysearch/json?location=34.06893,-118.445127&radius=10000&key=REDACTED`,
    attempt: 1,
    httpStatus: 200,
    placesStatus: "OK",
    latencyMs: 0,
    error: undefined,
  });
  assert.ok(report.latencyMs >= 25 && report.latencyMs < 2000, `${report.latencyMs} ms`);
});

Deno.test("an upstream request in flight is cancelled at the deadline, even if fetch ignores it", async () => {
  const signals: AbortSignal[] = [];
  const fetchImpl = (_url: string, init: RequestInit) => {
    signals.push(init.signal!);
    return new Promise<Response>(() => {});
  };
  const provider = createGoogleLegacyProvider({ apiKey: API_KEY, fetchImpl });
  const body = await settlesWithin(
    provider.lookup(UCLA, AbortSignal.timeout(100)),
    100 + ABORT_SLACK_MS,
    "lookup over a fetch that never settles",
  );
  assert.equal(body.status, "UNKNOWN_ERROR");
  assert.equal(signals.length, 1);
  assert.equal(signals[0].aborted, true, "the request was told to stop");
});

Deno.test("a 200 answer nested absurdly deep is UNKNOWN_ERROR, not a crash", async () => {
  await using fake = await startFakePlaces();
  const deep = JSON.parse("[".repeat(5000) + "]".repeat(5000));
  fake.setDefault({ kind: "json", body: { html_attributions: [], results: [deep], status: "OK" } });
  const { provider, reports } = legacyAgainst(fake);
  const body = await provider.lookup(UCLA, AbortSignal.timeout(2000));
  assert.deepEqual(body, { html_attributions: [], results: [], status: "UNKNOWN_ERROR" });
  assert.match(reports[0].error ?? "", /nested deeper/);
});
