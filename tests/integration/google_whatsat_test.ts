/**
 * WHATSAT through the Google providers of real server processes, pointed at the fake Places
 * server (tests/fake_places.ts): results cut to the bound, statuses passed through, the
 * UNKNOWN_ERROR body for an upstream that is unreachable, slow or talks nonsense, the Places
 * API (New) mapping, and the API key never showing anywhere.
 */
import assert from "node:assert/strict";
import {
  closedPortUrl,
  type FakePlaces,
  generatePlaces,
  legacyAnswer,
  startFakePlaces,
} from "../fake_places.ts";
import { type Herd, startHerd } from "../support/herd_processes.ts";
import { type WhatsatReply, WireClient } from "../support/wire_client.ts";

/** A key nobody else uses, so finding it anywhere means it leaked. */
const API_KEY = `herd-test-key-${crypto.randomUUID()}`;
const PLACES_TIMEOUT_MS = 500;
/** How late an answer at the deadline may be on a loaded two-core machine. */
const DEADLINE_SLACK_MS = 1000;
const UNKNOWN_ERROR_BODY = { html_attributions: [], results: [], status: "UNKNOWN_ERROR" };
const PRO_FIELD_MASK = "places.id,places.displayName,places.location," +
  "places.shortFormattedAddress,places.formattedAddress,places.types,places.businessStatus";
const LOCATION = "+34.068930-118.445127";

/** A connection that remembers every reply, so the key check can look at all of them. */
class RecordingClient {
  readonly replies: string[];
  readonly client: WireClient;

  constructor(client: WireClient, replies: string[]) {
    this.client = client;
    this.replies = replies;
  }

  async iamat(clientId: string, location = LOCATION, time = "1700000000"): Promise<string> {
    await this.client.write(`IAMAT ${clientId} ${location} ${time}\n`);
    const at = await this.client.readAtReply();
    this.replies.push(at);
    return at;
  }

  /** Sends a WHATSAT and reads its reply; also returns how long the reply took. */
  async whatsat(line: string): Promise<WhatsatReply & { elapsedMs: number }> {
    const started = performance.now();
    await this.client.write(`${line}\n`);
    const reply = await this.client.readWhatsatReply();
    this.replies.push(reply.raw);
    return { ...reply, elapsedMs: performance.now() - started };
  }
}

/** The fake's requests from `from` on. */
function requestsSince(fake: FakePlaces, from: number) {
  return fake.requests.slice(from);
}

Deno.test("google WHATSAT: bound, statuses, failures, the New API, no key anywhere", async (t) => {
  await using legacyFake = await startFakePlaces({ apiKey: API_KEY });
  await using newFake = await startFakePlaces({ apiKey: API_KEY });
  await using herd: Herd = await startHerd({
    names: ["Hill", "Smith", "Jaquez"],
    links: [],
    limits: { placesTimeoutMs: PLACES_TIMEOUT_MS },
    env: { GOOGLE_PLACES_API_KEY: API_KEY },
    serverArgs: {
      Hill: ["--places", "google", "--places-url", legacyFake.url],
      Smith: ["--places", "google", "--places-url", closedPortUrl()],
      // No --places: with a key, auto means the Places API (New). JSON logs, so the key
      // check below also covers that format's separate fields.
      Jaquez: ["--places-url", newFake.url, "--log-format", "json"],
    },
  });
  const replies: string[] = [];
  await using hillConnection = await WireClient.connect(herd.port("Hill"));
  const hill = new RecordingClient(hillConnection, replies);
  await hill.iamat("kiwi");

  await t.step("results are the upstream's, cut to the bound, otherwise unchanged", async () => {
    for (const bound of [3, 20, 1]) {
      const from = legacyFake.requests.length;
      const reply = await hill.whatsat(`WHATSAT kiwi 10 ${bound}`);
      const [request, ...more] = requestsSince(legacyFake, from);
      assert.equal(more.length, 0, "one upstream call per lookup");
      assert.equal(request.api, "legacy");
      assert.equal(request.path, "/maps/api/place/nearbysearch/json");
      assert.equal(request.query.key, API_KEY);
      const [lat, lng] = request.query.location.split(",").map(Number);
      assert.ok(Math.abs(lat - 34.06893) < 1e-9 && Math.abs(lng + 118.445127) < 1e-9);
      assert.equal(Number(request.query.radius), 10_000);
      const upstream = legacyAnswer(generatePlaces(lat, lng, Number(request.query.radius), 20));
      const results = upstream.results as unknown[];
      assert.deepEqual(reply.body, { ...upstream, results: results.slice(0, bound) });
      assert.ok(!reply.bodyText.includes("\n"));
    }
  });

  await t.step("the radius is sent in metres", async () => {
    const from = legacyFake.requests.length;
    await hill.whatsat("WHATSAT kiwi 0.5 2");
    await hill.whatsat("WHATSAT kiwi 50 2");
    assert.deepEqual(requestsSince(legacyFake, from).map((request) => request.query.radius), [
      "500",
      "50000",
    ]);
  });

  await t.step("identical lookups in flight share one upstream call", async () => {
    // The same location as an exact decimal, written differently, by another client.
    await using twinConnection = await WireClient.connect(herd.port("Hill"));
    const twin = new RecordingClient(twinConnection, replies);
    await twin.iamat("kiwi.twin", "+34.06893-118.4451270");
    legacyFake.enqueue({ kind: "delay", delayMs: 200 });
    const from = legacyFake.requests.length;
    const first = hill.whatsat("WHATSAT kiwi 7 3");
    await legacyFake.waitForRequests(from + 1);
    const second = await twin.whatsat("WHATSAT kiwi.twin 7.000 7");
    const firstReply = await first;
    assert.equal(requestsSince(legacyFake, from).length, 1, "the lookups were not shared");
    assert.equal(firstReply.body.results.length, 3);
    assert.equal(second.body.results.length, 7);
    assert.deepEqual(second.body.results.slice(0, 3), firstReply.body.results);
    // Nothing is kept once answered: the same lookup again calls upstream again.
    await hill.whatsat("WHATSAT kiwi 7 3");
    assert.equal(requestsSince(legacyFake, from).length, 2, "a Google answer was cached");
  });

  await t.step("statuses other than OK are passed through as the body", async () => {
    for (
      const status of ["ZERO_RESULTS", "OVER_QUERY_LIMIT", "REQUEST_DENIED", "INVALID_REQUEST"]
    ) {
      const upstream = {
        error_message: `fake says ${status}`,
        html_attributions: [],
        results: [],
        status,
      };
      legacyFake.enqueue({ kind: "json", body: upstream });
      const from = legacyFake.requests.length;
      const reply = await hill.whatsat("WHATSAT kiwi 10 5");
      assert.deepEqual(reply.body, upstream, status);
      // An HTTP 200 answer is never retried.
      assert.equal(requestsSince(legacyFake, from).length, 1, `${status} was retried`);
    }
  });

  await t.step("an upstream body with an empty line is collapsed to one", async () => {
    const upstream = legacyAnswer(generatePlaces(34, -118, 10_000, 2));
    legacyFake.enqueue({
      kind: "text",
      body: JSON.stringify(upstream, null, 2).replace("\n", "\n\n\n"),
      contentType: "application/json",
    });
    const reply = await hill.whatsat("WHATSAT kiwi 10 5");
    assert.deepEqual(reply.body, upstream);
    // The reader stops at the first "\n\n": anything after it would be a stray line.
    await hill.client.write("IAMAT kiwi.after +1+1 1\n");
    assert.match(await hill.client.readLine(), /^AT Hill \S+ kiwi\.after /);
  });

  await t.step("a failed upstream call is retried once it is a 5xx", async () => {
    legacyFake.enqueue({ kind: "status", httpStatus: 503 });
    const from = legacyFake.requests.length;
    const reply = await hill.whatsat("WHATSAT kiwi 10 4");
    assert.equal(reply.body.status, "OK");
    assert.equal(reply.body.results.length, 4);
    assert.equal(requestsSince(legacyFake, from).length, 2);
  });

  await t.step(
    "garbage, non-Places JSON or 5xx to the end give UNKNOWN_ERROR",
    async () => {
      const failures = [
        { kind: "garbage" },
        { kind: "not-places" },
        { kind: "text", body: "", contentType: "application/json" },
        { kind: "json", body: { results: "nope", status: "OK" } },
        { kind: "json", body: null },
      ] as const;
      for (const failure of failures) {
        legacyFake.enqueue(failure);
        const reply = await hill.whatsat("WHATSAT kiwi 10 5");
        assert.deepEqual(reply.body, UNKNOWN_ERROR_BODY, JSON.stringify(failure));
      }
      legacyFake.setDefault({ kind: "status", httpStatus: 500 });
      try {
        const from = legacyFake.requests.length;
        const reply = await hill.whatsat("WHATSAT kiwi 10 5");
        assert.deepEqual(reply.body, UNKNOWN_ERROR_BODY);
        assert.ok(requestsSince(legacyFake, from).length >= 2, "HTTP 500 was not retried");
        assert.ok(reply.elapsedMs < PLACES_TIMEOUT_MS + DEADLINE_SLACK_MS, `${reply.elapsedMs} ms`);
      } finally {
        legacyFake.setDefault({ kind: "places" });
      }
    },
  );

  await t.step("an HTTP 200 whose body is cut off is not retried: UNKNOWN_ERROR", async () => {
    // Contract §4: only connect errors, HTTP 5xx and 429 are retried.
    legacyFake.enqueue({ kind: "reset" });
    const from = legacyFake.requests.length;
    const reply = await hill.whatsat("WHATSAT kiwi 10 5");
    assert.equal(requestsSince(legacyFake, from).length, 1, "the cut-off HTTP 200 was retried");
    assert.deepEqual(reply.body, UNKNOWN_ERROR_BODY);
  });

  await t.step("an upstream slower than placesTimeoutMs gives UNKNOWN_ERROR in time", async () => {
    legacyFake.enqueue({ kind: "delay", delayMs: 5000 });
    const reply = await hill.whatsat("WHATSAT kiwi 10 5");
    assert.deepEqual(reply.body, UNKNOWN_ERROR_BODY);
    // Giving up a little before the deadline is fine; giving up at once is not.
    assert.ok(reply.elapsedMs >= PLACES_TIMEOUT_MS / 2, `answered after ${reply.elapsedMs} ms`);
    assert.ok(reply.elapsedMs < PLACES_TIMEOUT_MS + DEADLINE_SLACK_MS, `${reply.elapsedMs} ms`);
  });

  await t.step("an unreachable upstream gives UNKNOWN_ERROR in time", async () => {
    await using smithConnection = await WireClient.connect(herd.port("Smith"));
    const smith = new RecordingClient(smithConnection, replies);
    await smith.iamat("kiwi");
    const reply = await smith.whatsat("WHATSAT kiwi 10 5");
    assert.deepEqual(reply.body, UNKNOWN_ERROR_BODY);
    assert.ok(reply.elapsedMs < PLACES_TIMEOUT_MS + DEADLINE_SLACK_MS, `${reply.elapsedMs} ms`);
  });

  await t.step("an error text quoting the key does not reach the client", async () => {
    legacyFake.enqueue({ kind: "echo-key" });
    const reply = await hill.whatsat("WHATSAT kiwi 10 5");
    assert.equal(reply.body.status, "REQUEST_DENIED");
    assert.ok(!reply.raw.includes(API_KEY), `the key is in the reply: ${reply.raw}`);
  });

  await t.step("Places API (New): the request and the mapping to the legacy shape", async () => {
    assert.match(herd.process("Jaquez").stdout, /\(places: google-new, /);
    await using jaquezConnection = await WireClient.connect(herd.port("Jaquez"));
    const jaquez = new RecordingClient(jaquezConnection, replies);
    await jaquez.iamat("kiwi");
    const from = newFake.requests.length;
    const reply = await jaquez.whatsat("WHATSAT kiwi 10 5");
    const [request, ...more] = requestsSince(newFake, from);
    assert.equal(more.length, 0);
    assert.equal(request.api, "new");
    assert.equal(request.headers["x-goog-api-key"], API_KEY);
    assert.equal(request.headers["x-goog-fieldmask"], PRO_FIELD_MASK);
    const body = request.body as {
      locationRestriction: {
        circle: { center: { latitude: number; longitude: number }; radius: number };
      };
      maxResultCount: number;
    };
    const { center, radius } = body.locationRestriction.circle;
    assert.equal(radius, 10_000);
    assert.equal(body.maxResultCount, 20);
    assert.ok(Math.abs(center.latitude - 34.06893) < 1e-9);
    assert.ok(Math.abs(center.longitude + 118.445127) < 1e-9);
    const places = generatePlaces(center.latitude, center.longitude, radius, 20).slice(0, 5);
    assert.equal(reply.body.status, "OK");
    assert.equal(reply.body.results.length, 5);
    for (const [index, result] of reply.body.results.entries()) {
      const place = places[index];
      assert.equal(result.name, place.name);
      assert.equal(result.place_id, place.id);
      assert.deepEqual(result.geometry, {
        location: { lat: place.latitude, lng: place.longitude },
      });
      assert.equal(result.vicinity, place.shortAddress);
      assert.deepEqual(result.types, place.types);
      assert.equal(result.business_status, place.businessStatus);
      // Pro fields only: the Enterprise ones were not asked for.
      assert.equal(result.rating, undefined);
    }
  });

  await t.step("Places API (New): no places and errors map to legacy statuses", async () => {
    await using jaquezConnection = await WireClient.connect(herd.port("Jaquez"));
    const jaquez = new RecordingClient(jaquezConnection, replies);
    await jaquez.iamat("kiwi.new");
    const cases = [
      { behaviour: { kind: "json", body: {} }, status: "ZERO_RESULTS" },
      { behaviour: { kind: "status", httpStatus: 400 }, status: "INVALID_REQUEST" },
      { behaviour: { kind: "status", httpStatus: 403 }, status: "REQUEST_DENIED" },
      { behaviour: { kind: "status", httpStatus: 401 }, status: "REQUEST_DENIED" },
      { behaviour: { kind: "garbage" }, status: "UNKNOWN_ERROR" },
      { behaviour: { kind: "echo-key" }, status: "INVALID_REQUEST" },
    ] as const;
    for (const { behaviour, status } of cases) {
      newFake.enqueue(behaviour);
      const reply = await jaquez.whatsat("WHATSAT kiwi.new 10 5");
      assert.equal(reply.body.status, status, JSON.stringify(behaviour));
      assert.deepEqual(reply.body.results, [], JSON.stringify(behaviour));
    }
    // HTTP 429 is retried while the deadline allows, then maps to OVER_QUERY_LIMIT.
    newFake.setDefault({ kind: "status", httpStatus: 429 });
    try {
      const reply = await jaquez.whatsat("WHATSAT kiwi.new 10 5");
      assert.equal(reply.body.status, "OVER_QUERY_LIMIT");
    } finally {
      newFake.setDefault({ kind: "places" });
    }
  });

  await t.step("the key appears in no reply, log, stdout or stderr", async () => {
    for (const reply of replies) assert.ok(!reply.includes(API_KEY), `reply: ${reply}`);
    const processes = herd.names.map((name) => herd.process(name));
    for (const name of herd.names) {
      // A stop flushes the log; then everything the process wrote is on disk.
      const status = await herd.kill(name, "SIGTERM");
      assert.equal(status.code, 0, `${name} did not stop cleanly`);
    }
    for (const server of processes) {
      assert.ok(!server.stdout.includes(API_KEY), `${server.name} stdout holds the key`);
      assert.ok(!server.stderr.includes(API_KEY), `${server.name} stderr holds the key`);
    }
    for (const name of herd.names) {
      const log = await herd.readLog(name);
      assert.ok(log.length > 0, `${name}.log is empty`);
      assert.ok(!log.includes(API_KEY), `${name}.log holds the key`);
    }
    const hillLog = await herd.readLog("Hill");
    assert.match(hillLog, /key=REDACTED/, "a logged legacy URL shows key=REDACTED");
    for (const line of (await herd.readLog("Jaquez")).trimEnd().split("\n")) {
      assert.equal(JSON.parse(line).server, "Jaquez", `Jaquez.log is not JSON: ${line}`);
    }
  });
});

Deno.test("google WHATSAT: past placesQueueMax the answer is OVER_QUERY_LIMIT at once", async () => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "delay", delayMs: 1500 });
  const timeoutMs = 2000;
  await using herd = await startHerd({
    names: ["Campbell"],
    links: [],
    limits: { placesTimeoutMs: timeoutMs, placesConcurrencyMax: 1, placesQueueMax: 1 },
    env: { GOOGLE_PLACES_API_KEY: API_KEY },
    args: ["--places", "google", "--places-url", fake.url],
  });
  const connect = async () => {
    const connection = new RecordingClient(await WireClient.connect(herd.port("Campbell")), []);
    await connection.iamat("queue");
    return connection;
  };
  const [inFlight, queued, refused] = [await connect(), await connect(), await connect()];
  try {
    // Different radii: three distinct lookups.
    const inFlightReply = inFlight.whatsat("WHATSAT queue 1 5");
    await fake.waitForRequests(1);
    const queuedReply = queued.whatsat("WHATSAT queue 2 5");
    const refusedReply = await refused.whatsat("WHATSAT queue 3 5");
    assert.equal(refusedReply.body.status, "OVER_QUERY_LIMIT");
    assert.deepEqual(refusedReply.body.results, []);
    assert.ok(refusedReply.elapsedMs < 500, `refused after ${refusedReply.elapsedMs} ms`);
    assert.equal((await inFlightReply).body.status, "OK");
    // The deadline counts from the line being read, queueing included: the queued lookup
    // starts after 1.5 s and cannot finish in the 0.5 s left.
    const late = await queuedReply;
    assert.deepEqual(late.body, UNKNOWN_ERROR_BODY);
    assert.ok(
      late.elapsedMs < timeoutMs + DEADLINE_SLACK_MS,
      `answered after ${late.elapsedMs} ms`,
    );
  } finally {
    for (const connection of [inFlight, queued, refused]) await connection.client.close();
  }
});
