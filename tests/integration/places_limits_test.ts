/**
 * The upstream limits and shared lookups of a real server process against the fake Google:
 * the concurrency cap, the token bucket, a waiter that disconnects from a shared call,
 * retries stopped by the deadline, and the Places counters in the log.
 */
import assert from "node:assert/strict";
import { startFakePlaces } from "../fake_places.ts";
import { startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const API_KEY = `herd-test-key-${crypto.randomUUID()}`;
/** How late an answer may be on a loaded two-core machine. */
const SLACK_MS = 1000;

/** A one-server herd on the legacy provider pointed at `placesUrl`. */
function startGoogleServer(placesUrl: string, limits: Record<string, number>) {
  return startHerd({
    names: ["Hill"],
    links: [],
    limits,
    env: { GOOGLE_PLACES_API_KEY: API_KEY },
    args: ["--places", "google", "--places-url", placesUrl],
  });
}

/** Opens a connection and registers `clientId` at a fixed location. */
async function clientAt(port: number, clientId: string): Promise<WireClient> {
  const client = await WireClient.connect(port);
  await client.write(`IAMAT ${clientId} +34.068930-118.445127 1700000000\n`);
  await client.readAtReply();
  return client;
}

Deno.test("no more than placesConcurrencyMax upstream calls are in flight at once", async () => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  const delayMs = 400;
  fake.setDefault({ kind: "delay", delayMs, then: { kind: "places" } });
  await using herd = await startGoogleServer(fake.url, {
    placesConcurrencyMax: 2,
    placesCallsPerSecondMax: 100,
    placesTimeoutMs: 5000,
  });
  await using client = await clientAt(herd.port("Hill"), "capped");
  // Six distinct radii: six lookups that cannot share a call.
  await client.write([1, 2, 3, 4, 5, 6].map((km) => `WHATSAT capped ${km} 3\n`).join(""));
  for (let index = 0; index < 6; index++) {
    assert.equal((await client.readWhatsatReply()).body.status, "OK");
  }
  const arrivals = fake.requests.map((request) => request.atMs).sort((a, b) => a - b);
  assert.equal(arrivals.length, 6);
  for (let index = 2; index < arrivals.length; index++) {
    // The third call can start only when the first has answered.
    assert.ok(
      arrivals[index] - arrivals[index - 2] >= delayMs * 0.9,
      `calls ${index - 2} and ${index} were ${arrivals[index] - arrivals[index - 2]} ms apart`,
    );
  }
});

Deno.test("upstream call starts are paced by placesCallsPerSecondMax", async () => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  await using herd = await startGoogleServer(fake.url, {
    placesConcurrencyMax: 10,
    placesCallsPerSecondMax: 2,
    placesTimeoutMs: 5000,
  });
  await using client = await clientAt(herd.port("Hill"), "paced");
  await client.write([1, 2, 3, 4, 5].map((km) => `WHATSAT paced ${km} 1\n`).join(""));
  for (let index = 0; index < 5; index++) {
    assert.equal((await client.readWhatsatReply()).body.status, "OK");
  }
  const arrivals = fake.requests.map((request) => request.atMs).sort((a, b) => a - b);
  // A burst of two, then one every 500 ms: the fifth starts about 1.5 s after the first.
  const spreadMs = arrivals[4] - arrivals[0];
  assert.ok(spreadMs >= 1300, `five calls within ${spreadMs} ms`);
});

Deno.test("a waiter that disconnects leaves the shared call to the others", async () => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  fake.setDefault({ kind: "delay", delayMs: 600, then: { kind: "places" } });
  await using herd = await startGoogleServer(fake.url, { placesTimeoutMs: 5000 });
  const leaving = await clientAt(herd.port("Hill"), "shared");
  await using staying = await clientAt(herd.port("Hill"), "shared");
  await leaving.write("WHATSAT shared 10 2\n");
  await fake.waitForRequests(1);
  await staying.write("WHATSAT shared 10 4\n");
  await leaving.close();
  const reply = await staying.readWhatsatReply();
  assert.equal(reply.body.status, "OK");
  assert.equal(reply.body.results.length, 4);
  assert.equal(fake.requests.length, 1, "the second waiter joined the first call");
  // The server is unharmed and forgot the call once it was answered.
  await staying.write("WHATSAT shared 10 1\n");
  assert.equal((await staying.readWhatsatReply()).body.status, "OK");
  assert.equal(fake.requests.length, 2);
});

Deno.test("retries stop at placesTimeoutMs and the body maps the last 429", async () => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  fake.setDefault({ kind: "status", httpStatus: 429 });
  const timeoutMs = 700;
  await using herd = await startGoogleServer(fake.url, { placesTimeoutMs: timeoutMs });
  await using client = await clientAt(herd.port("Hill"), "limited");
  const startedMs = performance.now();
  await client.write("WHATSAT limited 10 5\n");
  const reply = await client.readWhatsatReply();
  const elapsedMs = performance.now() - startedMs;
  assert.deepEqual(reply.body, { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT" });
  assert.ok(fake.requests.length >= 2, `${fake.requests.length} calls: 429 is retried`);
  assert.ok(elapsedMs < timeoutMs + SLACK_MS, `answered after ${elapsedMs} ms`);
});

Deno.test("the log counts upstream calls, shared lookups and statuses", async () => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  fake.setDefault({ kind: "delay", delayMs: 300, then: { kind: "places" } });
  await using herd = await startGoogleServer(fake.url, { placesTimeoutMs: 5000 });
  await using client = await clientAt(herd.port("Hill"), "counted");
  await client.write("WHATSAT counted 10 1\nWHATSAT counted 10 2\nWHATSAT counted 10 3\n");
  for (let index = 0; index < 3; index++) await client.readWhatsatReply();
  await herd.process("Hill").stop("SIGTERM");
  const log = await herd.readLog("Hill");
  const counters = log.split("\n").filter((line) => line.includes("counters:")).at(-1) ?? "";
  assert.match(counters, /places_calls=1\b/);
  assert.match(counters, /places_shared_lookups=2\b/);
  assert.match(counters, /places_status_OK=1\b/);
  assert.match(counters, /whatsat=3\b/);
  assert.ok(!log.includes(API_KEY), "the key is not in the log");
});
