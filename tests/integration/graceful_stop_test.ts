/**
 * Slow upstreams and stopping, with a real server process and the fake Places server: a slow
 * lookup delays only later replies on its own connection; SIGTERM answers what was read
 * (UNKNOWN_ERROR after 2 s for a lookup still pending) and exits 0 within 3 s; a second
 * signal exits 1 at once.
 */
import assert from "node:assert/strict";
import { startFakePlaces } from "../fake_places.ts";
import { type Herd, pollUntil, startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const UNKNOWN_ERROR_BODY = { html_attributions: [], results: [], status: "UNKNOWN_ERROR" };
/** Longer than any wait here: the upstream never answers in time. */
const UPSTREAM_DELAY_MS = 10_000;
/** The contract's grace for pending lookups once a stop begins. */
const STOP_LOOKUP_GRACE_MS = 2000;
/** The contract's 3 s, with room for a loaded two-core machine. */
const EXIT_WITHIN_MS = 5000;
const LOCATION = "+34.068930-118.445127";

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Resolves once `port` refuses connections (the listener is closed). */
async function waitRefusing(port: number, timeoutMs: number): Promise<void> {
  await pollUntil(async () => {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return false;
    } catch {
      return true;
    }
  }, { timeoutMs, intervalMs: 20, what: `port ${port} to refuse connections` });
}

let pendingLookups = 0;

/**
 * Opens a connection to Hill, stores a client, and sends a WHATSAT the fake will sit on.
 * Each gets its own radius, so that no two share one upstream call.
 */
async function pendingWhatsat(herd: Herd, clientId: string, after = ""): Promise<WireClient> {
  const client = await WireClient.connect(herd.port("Hill"));
  await client.write(`IAMAT ${clientId} ${LOCATION} 1700000000\n`);
  await client.readAtReply();
  pendingLookups += 1;
  await client.write(`WHATSAT ${clientId} ${pendingLookups} 5\n${after}`);
  return client;
}

Deno.test("slow upstream and graceful stop", async (t) => {
  await using fake = await startFakePlaces();
  fake.setDefault({ kind: "delay", delayMs: UPSTREAM_DELAY_MS });
  await using herd = await startHerd({
    names: ["Hill"],
    links: [],
    env: { GOOGLE_PLACES_API_KEY: "herd-test-key" },
    args: ["--places", "google", "--places-url", fake.url],
  });

  await t.step("a slow lookup delays only later replies on its own connection", async () => {
    const requestsBefore = fake.requests.length;
    await using slow = await pendingWhatsat(herd, "slow.one", "IAMAT slow.later +1+1 1\n");
    await fake.waitForRequests(requestsBefore + 1);
    // Another connection is served at once, while the lookup is pending.
    await using other = await WireClient.connect(herd.port("Hill"));
    const started = performance.now();
    await other.write(`IAMAT other ${LOCATION} 1700000000\n`);
    assert.match(await other.readAtReply({ timeoutMs: 2000 }), /^AT Hill \S+ other /);
    assert.ok(performance.now() - started < 1000, "another connection's IAMAT was delayed");
    // On the slow connection, the IAMAT after the WHATSAT waits its turn.
    assert.equal(slow.peekBuffered(), "", "a reply overtook the pending WHATSAT");
  });

  await t.step("SIGTERM answers the pending lookup after 2 s and exits 0 in time", async () => {
    const requestsBefore = fake.requests.length;
    await using pending = await pendingWhatsat(herd, "stop.one", "IAMAT stop.later +1+1 2\n");
    await fake.waitForRequests(requestsBefore + 1);
    await using idle = await WireClient.connect(herd.port("Hill"));
    await idle.write("IAMAT idle +1+1 1\n");
    await idle.readAtReply();
    const server = herd.process("Hill");
    const signalledAt = performance.now();
    assert.ok(server.signal("SIGTERM"));
    // It stops accepting well before the lookup grace ends.
    await waitRefusing(herd.port("Hill"), STOP_LOOKUP_GRACE_MS - 500);
    const reply = await pending.readWhatsatReply({ timeoutMs: EXIT_WITHIN_MS });
    const answeredMs = performance.now() - signalledAt;
    assert.deepEqual(reply.body, UNKNOWN_ERROR_BODY);
    assert.ok(answeredMs >= STOP_LOOKUP_GRACE_MS - 300, `answered ${answeredMs} ms after SIGTERM`);
    assert.ok(answeredMs < EXIT_WITHIN_MS, `answered ${answeredMs} ms after SIGTERM`);
    // The line read before the stop is answered too, in order; then the server closes.
    assert.match(await pending.readAtReply(), /^AT Hill \S+ stop\.later /);
    assert.equal(await pending.readUntilEof({ timeoutMs: EXIT_WITHIN_MS }), "");
    assert.equal(await idle.readUntilEof({ timeoutMs: EXIT_WITHIN_MS }), "");
    const status = await server.status();
    const exitedMs = performance.now() - signalledAt;
    assert.equal(status.code, 0, `exit ${status.code}; stderr: ${server.stderr}`);
    assert.ok(exitedMs < EXIT_WITHIN_MS, `exited ${exitedMs} ms after SIGTERM`);
    await herd.kill("Hill");
  });

  await t.step("a second signal exits 1 at once", async () => {
    const server = await herd.start("Hill");
    const requestsBefore = fake.requests.length;
    // Held open so that the stop has a lookup to wait for.
    await using _pending = await pendingWhatsat(herd, "second.signal");
    await fake.waitForRequests(requestsBefore + 1);
    assert.ok(server.signal("SIGTERM"));
    // The first signal is being handled once the listener is closed.
    await waitRefusing(herd.port("Hill"), STOP_LOOKUP_GRACE_MS - 500);
    const signalledAt = performance.now();
    assert.ok(server.signal("SIGTERM"), "the process was gone before the second signal");
    const status = await server.status();
    const exitedMs = performance.now() - signalledAt;
    assert.equal(status.code, 1, `exit ${status.code}`);
    assert.ok(exitedMs < 1000, `exited ${exitedMs} ms after the second signal`);
    await herd.kill("Hill");
  });

  await t.step("SIGINT with nothing pending exits 0 promptly", async () => {
    const server = await herd.start("Hill");
    await using client = await WireClient.connect(herd.port("Hill"));
    await client.write("IAMAT sigint +1+1 1\n");
    await client.readAtReply();
    const signalledAt = performance.now();
    assert.ok(server.signal("SIGINT"));
    const status = await server.status();
    assert.equal(status.code, 0);
    assert.ok(performance.now() - signalledAt < EXIT_WITHIN_MS);
    assert.equal(await client.readUntilEof(), "");
    await herd.kill("Hill");
  });
});

Deno.test("a stop is not held up by a client that never reads its replies", async () => {
  await using herd = await startHerd({ names: ["Hill"], links: [], args: ["--places", "offline"] });
  const server = herd.process("Hill");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: herd.port("Hill") });
  try {
    // Big replies (up to 20 places each), asked for and never read: the server's output to
    // this client backs up past what the kernel buffers.
    const lines = `IAMAT hoarder ${LOCATION} 1700000000\n` + "WHATSAT hoarder 50 20\n".repeat(3000);
    const writing = writeAll(conn, new TextEncoder().encode(lines)).catch(() => {});
    await pollUntil(async () => /reads slowly/.test(await herd.readLog("Hill")), {
      what: "Hill to hold back the hoarder's lines",
    });
    const signalledAt = performance.now();
    assert.ok(server.signal("SIGTERM"));
    const status = await server.status();
    assert.equal(status.code, 0, `exit ${status.code}; stderr: ${server.stderr}`);
    assert.ok(performance.now() - signalledAt < EXIT_WITHIN_MS);
    // It stopped by itself (counters and "stopped" logged), not by the exit deadline.
    assert.match(await herd.readLog("Hill"), /\[INF\] stopped/);
    await writing;
  } finally {
    conn.close();
  }
});
