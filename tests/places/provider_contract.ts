/**
 * The contract every Places provider meets, as one test suite run against each of them (the
 * way hono runs one router suite against every router): the legacy Nearby Search shape, a
 * string status, at most 20 results each with name / geometry.location / place_id / vicinity
 * / types, plain JSON data, and a lookup that resolves — never rejects — when its signal
 * aborts. A provider's own test file calls {@link runProviderContract} once.
 *
 * Knows only the PlacesProvider interface; how a subject is built (fake server, data file)
 * is the caller's.
 */

import assert from "node:assert/strict";
import {
  PLACES_RESULTS_MAX,
  type PlacesBody,
  type PlacesProvider,
  type PlacesQuery,
} from "../../lib/places/provider.ts";

/** One provider under test, with what the suite needs to drive it. */
export interface ProviderContractSubject {
  provider: PlacesProvider;
  /** A query this provider answers with at least one place. */
  query: PlacesQuery;
  /**
   * Makes lookups from now on hang until their signal aborts (e.g. a fake upstream that
   * never answers). Absent when the provider cannot be made to hang; the abort check then
   * aborts a lookup just after it starts.
   */
  stall?: () => void;
  /** Frees what the subject holds (servers, workers). */
  close(): Promise<void> | void;
}

/** Builds a fresh subject for each check. */
export type ProviderContractFactory = () => Promise<ProviderContractSubject>;

/** How long a lookup may take past its abort before the suite calls it late. */
export const ABORT_SLACK_MS = 250;
/** The longest a healthy lookup may take in these checks. */
const LOOKUP_MS_MAX = 10_000;
const PROVIDER_NAMES: readonly string[] = ["google", "google-new", "offline"];

/**
 * Asserts that `body` is in the legacy Nearby Search shape: `html_attributions` and
 * `results` arrays (at most 20 results), a non-empty string `status`, and each result with a
 * string `name`, numeric `geometry.location.{lat,lng}` in range, a non-empty string
 * `place_id`, a string `vicinity` and an array of strings `types`.
 *
 * @example
 * ```ts
 * assertLegacyShape(await provider.lookup(query, AbortSignal.timeout(5000)));
 * ```
 */
export function assertLegacyShape(body: PlacesBody): void {
  assert.ok(body !== null && typeof body === "object", "body is an object");
  assert.ok(Array.isArray(body.html_attributions), "html_attributions is an array");
  assert.ok(Array.isArray(body.results), "results is an array");
  assert.equal(typeof body.status, "string", "status is a string");
  assert.notEqual(body.status, "", "status is not empty");
  assert.ok(
    body.results.length <= PLACES_RESULTS_MAX,
    `${body.results.length} results, more than ${PLACES_RESULTS_MAX}`,
  );
  body.results.forEach((result, index) => assertLegacyResult(result, index));
}

function assertLegacyResult(value: unknown, index: number): void {
  const where = `results[${index}]`;
  assert.ok(value !== null && typeof value === "object", `${where} is an object`);
  const result = value as Record<string, unknown>;
  assert.equal(typeof result.name, "string", `${where}.name is a string`);
  assert.equal(typeof result.place_id, "string", `${where}.place_id is a string`);
  assert.notEqual(result.place_id, "", `${where}.place_id is not empty`);
  assert.equal(typeof result.vicinity, "string", `${where}.vicinity is a string`);
  assert.ok(Array.isArray(result.types), `${where}.types is an array`);
  for (const type of result.types as unknown[]) {
    assert.equal(typeof type, "string", `${where}.types holds strings`);
  }
  const location = (result.geometry as { location?: Record<string, unknown> } | undefined)
    ?.location;
  assert.ok(location !== undefined, `${where}.geometry.location is present`);
  const { lat, lng } = location as { lat: unknown; lng: unknown };
  assert.ok(typeof lat === "number" && Math.abs(lat) <= 90, `${where} lat ${lat} is a latitude`);
  assert.ok(
    typeof lng === "number" && Math.abs(lng) <= 180,
    `${where} lng ${lng} is a longitude`,
  );
}

/**
 * Settles like `promise`, or rejects if it has not settled within `ms` — a bound on a wait,
 * never a way to synchronise.
 */
export function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Registers the contract checks for one provider, each as a `Deno.test` named
 * `"<label>: <behaviour>"`, each on a fresh subject from `makeProvider` (closed afterwards).
 *
 * @example
 * ```ts
 * runProviderContract("google (legacy) against the fake", async () => {
 *   const fake = await startFakePlaces();
 *   const provider = createGoogleLegacyProvider({ apiKey: "test-key", baseUrl: fake.url });
 *   return { provider, query, stall: () => fake.setDefault({ kind: "delay", delayMs: 60_000 }), close: fake.close };
 * });
 * ```
 */
export function runProviderContract(label: string, makeProvider: ProviderContractFactory): void {
  const check = (behaviour: string, body: (subject: ProviderContractSubject) => Promise<void>) =>
    Deno.test(`${label}: ${behaviour}`, async () => {
      const subject = await makeProvider();
      try {
        await body(subject);
      } finally {
        await subject.close();
      }
    });

  const lookup = (subject: ProviderContractSubject, query = subject.query) =>
    settlesWithin(
      subject.provider.lookup(query, AbortSignal.timeout(LOOKUP_MS_MAX)),
      LOOKUP_MS_MAX + ABORT_SLACK_MS,
      "lookup",
    );

  check("is named google, google-new or offline", (subject) => {
    assert.ok(PROVIDER_NAMES.includes(subject.provider.name), subject.provider.name);
    return Promise.resolve();
  });

  check("answers a point with places in the legacy shape with status OK", async (subject) => {
    const body = await lookup(subject);
    assertLegacyShape(body);
    assert.equal(body.status, "OK");
    assert.ok(body.results.length > 0, "at least one result");
  });

  check("answers at most 20 results even for the widest radius", async (subject) => {
    const body = await lookup(subject, { ...subject.query, radiusMetres: 50_000 });
    assertLegacyShape(body);
    assert.ok(body.results.length <= PLACES_RESULTS_MAX, `${body.results.length} results`);
  });

  check("answers plain JSON data (what a client is sent is what it holds)", async (subject) => {
    const body = await lookup(subject);
    assert.deepEqual(JSON.parse(JSON.stringify(body)), body);
  });

  check("does not change the query it is given", async (subject) => {
    const query = { ...subject.query };
    await lookup(subject, query);
    assert.deepEqual(query, subject.query);
  });

  check("resolves, never rejects, when the signal has already aborted", async (subject) => {
    const aborted = AbortSignal.abort();
    const body = await settlesWithin(
      subject.provider.lookup(subject.query, aborted),
      ABORT_SLACK_MS,
      "lookup with an aborted signal",
    );
    assertLegacyShape(body);
  });

  check("resolves promptly, never rejects, when the signal aborts mid-lookup", async (subject) => {
    subject.stall?.();
    const abortAfterMs = subject.stall === undefined ? 0 : 100;
    const controller = new AbortController();
    const startMs = performance.now();
    const pending = subject.provider.lookup(subject.query, controller.signal);
    const timer = setTimeout(() => controller.abort(), abortAfterMs);
    try {
      const body = await settlesWithin(pending, abortAfterMs + ABORT_SLACK_MS, "aborted lookup");
      assertLegacyShape(body);
      if (subject.stall !== undefined) {
        assert.equal(body.status, "UNKNOWN_ERROR", "a stalled lookup has no answer");
        assert.ok(performance.now() - startMs >= abortAfterMs - 1, "it waited for the abort");
      }
    } finally {
      clearTimeout(timer);
    }
  });
}
