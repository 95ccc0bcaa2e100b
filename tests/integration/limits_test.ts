/**
 * The client limits of the contract's table (§2) against one real server on the fake
 * Google: each one hit by an abusive client — lineBytesMax, linesInFlightMax,
 * outputBytesMax (clients that pipeline big or small replies and never read, while one that
 * asks in a burst and reads slowly is served), connectionsMax,
 * idleTimeoutMs, clientsMax — is enforced as the table says while another client on the
 * same server keeps getting prompt, correct replies; every hit is in the log and in the
 * counters of the stop record. And a server started with a low open-files soft limit
 * runs at the hard one, logs it, and warns when connectionsMax cannot fit under it.
 */
import assert from "node:assert/strict";
import { startFakePlaces } from "../fake_places.ts";
import { delay, type Herd, pollUntil, startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const API_KEY = `herd-test-key-${crypto.randomUUID()}`;
const SERVER = "Hill";
const LIMITS = {
  lineBytesMax: 1024,
  linesInFlightMax: 8,
  outputBytesMax: 64 * 1024,
  connectionsMax: 4,
  idleTimeoutMs: 2000,
  clientsMax: 40,
  // Room for the abusive clients' many lookups: the Places limits are not tested here.
  placesCallsPerSecondMax: 10_000,
  placesConcurrencyMax: 64,
};
const LOCATION = "+34.068930-118.445127";
/** WHATSATs with this radius wait SLOW_MS upstream; others are answered at once. */
const SLOW_RADIUS_KM = 50;
const SLOW_MS = 1500;
const FAST_RADIUS_KM = 10;
/**
 * Results per reply of the lookups held in flight: small, so that all of them together stay
 * well under outputBytesMax (20 results make 14 kB, and eight of those would pass it).
 */
const INFLIGHT_BOUND = 3;
/** Results per reply of the client that never reads: the most, to fill its output fast. */
const NEVER_READ_BOUND = 20;
/** How long a client that keeps within the limits may wait for a reply: liveness only. */
const PROMPT_MS = 2000;
/** WHATSATs per write of the client that never reads, and the most it may write. */
const ABUSE_LINES_PER_WRITE = 100;
const ABUSE_WRITES_MAX = 2000;
/** A write of the client that never reads blocking this long: the server stopped reading. */
const ABUSE_WRITE_STALL_MS = 5000;

/** `now` as a client time with milliseconds, e.g. `1764322114.123`. */
function clientTimeNow(): string {
  return (Date.now() / 1000).toFixed(3);
}

/**
 * A well-behaved client on a new connection: its IAMAT and a WHATSAT with five results are
 * answered correctly, each within PROMPT_MS.
 */
async function assertServedPromptly(herd: Herd, clientId: string): Promise<void> {
  await using client = await WireClient.connect(herd.port(SERVER));
  const time = clientTimeNow();
  await client.write(`IAMAT ${clientId} ${LOCATION} ${time}\n`);
  const at = await client.readAtReply({ timeoutMs: PROMPT_MS });
  assert.match(
    at,
    new RegExp(`^AT ${SERVER} [+-]\\d+\\.\\d{9} ${clientId} \\${LOCATION} ${time}$`),
  );
  await client.write(`WHATSAT ${clientId} ${FAST_RADIUS_KM} 5\n`);
  const reply = await client.readWhatsatReply({ timeoutMs: PROMPT_MS });
  assert.equal(reply.atLine, at);
  assert.equal(reply.body.status, "OK");
  assert.equal(reply.body.results.length, 5);
}

/**
 * Pipelines `line` from a new client that never reads, until a write fails because the
 * server closed the connection for its output (a write that blocks means the server stopped
 * reading instead, and fails); another client is served all along.
 */
async function assertClosedForOutput(herd: Herd, line: string): Promise<void> {
  const closesBefore = countMatches(await herd.readLog(SERVER), /closed: output limit/g);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: herd.port(SERVER) });
  const lines = new TextEncoder().encode(line.repeat(ABUSE_LINES_PER_WRITE));
  let closed = false;
  try {
    for (let write = 0; write < ABUSE_WRITES_MAX && !closed; write++) {
      await writeWithin(conn, lines, ABUSE_WRITE_STALL_MS).catch((error) => {
        if (error instanceof WriteStalledError) throw error;
        closed = true;
      });
      if (write % 20 === 0) await assertServedPromptly(herd, "bystander");
    }
  } finally {
    conn.close();
  }
  assert.ok(closed, `still open after ${ABUSE_WRITES_MAX * ABUSE_LINES_PER_WRITE} lines`);
  // Closed for its output, not (later) as idle.
  await pollUntil(
    async () => countMatches(await herd.readLog(SERVER), /closed: output limit/g) > closesBefore,
    { timeoutMs: PROMPT_MS, what: "the output limit's close in the log" },
  );
  await assertServedPromptly(herd, "bystander");
}

function countMatches(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

/** A write that blocked: the server stopped reading without closing. */
class WriteStalledError extends Error {}

/**
 * A new connection the server serves (its IAMAT answered). One closed a moment ago may
 * still count against connectionsMax, so this retries until then.
 */
async function connectServed(herd: Herd, clientId: string): Promise<WireClient> {
  return await pollUntil(async () => {
    const client = await WireClient.connect(herd.port(SERVER));
    try {
      await client.write(`IAMAT ${clientId} ${LOCATION} 1\n`);
      await client.readAtReply();
      return client;
    } catch (error) {
      await client.close();
      throw error;
    }
  }, { what: `a connection below connectionsMax for ${clientId}` });
}

/** Writes all of `bytes`; rejects with WriteStalledError if that takes over `timeoutMs`. */
async function writeWithin(conn: Deno.Conn, bytes: Uint8Array, timeoutMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WriteStalledError(`a write blocked for ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const writing = (async () => {
      for (let written = 0; written < bytes.length;) {
        written += await conn.write(bytes.subarray(written));
      }
    })();
    await Promise.race([writing, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** The `name=value` counters of the last `counters:` line of a log. */
function lastCounters(log: string): Map<string, number> {
  const line = log.split("\n").findLast((logLine) => logLine.includes("counters: "));
  assert.ok(line !== undefined, "no counters line in the log");
  return new Map(
    [...line.matchAll(/(\w+)=(\d+)/g)].map(([, name, value]) => [name, Number(value)]),
  );
}

Deno.test("each client limit is enforced, logged and counted; other clients unaffected", async (t) => {
  await using fake = await startFakePlaces({ apiKey: API_KEY });
  const slowRadius = String(SLOW_RADIUS_KM * 1000);
  fake.setDefault((request) =>
    request.query.radius === slowRadius
      ? { kind: "delay", delayMs: SLOW_MS, then: { kind: "places" } }
      : undefined
  );
  await using herd = await startHerd({
    names: [SERVER],
    links: [],
    limits: LIMITS,
    env: { GOOGLE_PLACES_API_KEY: API_KEY },
    args: ["--places", "google", "--places-url", fake.url],
  });
  const port = herd.port(SERVER);

  await t.step(
    "a line past lineBytesMax is refused cut, and the connection served on",
    async () => {
      await using client = await WireClient.connect(port);
      await client.write(
        `${"L".repeat(100 * LIMITS.lineBytesMax)}\nIAMAT long.after ${LOCATION} 1\n`,
      );
      assert.equal(await client.readLine(), `? ${"L".repeat(LIMITS.lineBytesMax)}`);
      assert.match(await client.readAtReply(), / long\.after /);
      await assertServedPromptly(herd, "bystander");
    },
  );

  await t.step("past linesInFlightMax a connection is not read until replies drain", async () => {
    await using client = await WireClient.connect(port);
    await client.write(`IAMAT inflight ${LOCATION} 1\n`);
    await client.readAtReply();
    // One write: linesInFlightMax slow lookups, then an IAMAT the server must not act on
    // until they are answered, then one more lookup.
    const markerTime = clientTimeNow();
    await client.write(
      `WHATSAT inflight ${SLOW_RADIUS_KM} ${INFLIGHT_BOUND}\n`.repeat(LIMITS.linesInFlightMax) +
        `IAMAT inflight.marker ${LOCATION} ${markerTime}\n` +
        `WHATSAT inflight ${FAST_RADIUS_KM} 3\n`,
    );
    const sentMs = performance.now();
    // Meanwhile another client is served, and the marker is not stored yet.
    for (let check = 0; performance.now() - sentMs < SLOW_MS / 2 && check < 10; check++) {
      await assertServedPromptly(herd, "bystander");
      await using other = await WireClient.connect(port);
      await other.write("WHATSAT inflight.marker 1 1\n");
      assert.equal(await other.readLine(), "? WHATSAT inflight.marker 1 1");
    }
    for (let index = 0; index < LIMITS.linesInFlightMax; index++) {
      const reply = await client.readWhatsatReply({ timeoutMs: SLOW_MS + PROMPT_MS });
      assert.equal(reply.body.results.length, INFLIGHT_BOUND, `reply ${index}`);
    }
    const marker = await client.readAtReply();
    assert.match(marker, new RegExp(` inflight\\.marker \\${LOCATION} ${markerTime}$`));
    // The skew shows when the IAMAT was acted on: after the slow replies, not when sent.
    const skewSeconds = Number(marker.split(" ")[2]);
    assert.ok(skewSeconds >= (SLOW_MS - 200) / 1000, `marker acted on with skew ${skewSeconds}`);
    assert.equal((await client.readWhatsatReply()).body.results.length, 3);
  });

  await t.step("a client that sends and never reads is closed past outputBytesMax", async () => {
    await assertServedPromptly(herd, "never.reads");
    await assertClosedForOutput(
      herd,
      `WHATSAT never.reads ${FAST_RADIUS_KM} ${NEVER_READ_BOUND}\n`,
    );
  });

  await t.step(
    "so is one whose replies are small (it is paused first, then found out)",
    async () => {
      await assertClosedForOutput(herd, `IAMAT never.reads.small ${LOCATION} ${clientTimeNow()}\n`);
      assert.match(await herd.readLog(SERVER), /read nothing for \d+ ms/);
    },
  );

  await t.step("one connection past connectionsMax is closed without a reply", async () => {
    const open: WireClient[] = [];
    try {
      for (let index = 0; index < LIMITS.connectionsMax; index++) {
        open.push(await connectServed(herd, `conn.${index}`));
      }
      await using refused = await WireClient.connect(port);
      await refused.write(`IAMAT conn.refused ${LOCATION} 1\n`).catch(() => {});
      assert.equal(await refused.readUntilEof(), "");
      // The connections within the limit are served as before.
      for (const [index, client] of open.entries()) {
        await client.write(`IAMAT conn.${index} ${LOCATION} 2\n`);
        assert.match(await client.readAtReply({ timeoutMs: PROMPT_MS }), / 2$/);
      }
    } finally {
      for (const client of open) await client.close();
    }
  });

  await t.step("a silent connection is closed after idleTimeoutMs, a busy one is not", async () => {
    await using silent = await WireClient.connect(port);
    await silent.write(`IAMAT idle ${LOCATION} 1\n`);
    await silent.readAtReply();
    const closed = silent.readUntilEof({ timeoutMs: LIMITS.idleTimeoutMs + PROMPT_MS });
    await using busy = await WireClient.connect(port);
    const quietMs = LIMITS.idleTimeoutMs / 4;
    for (let index = 0; index < 6; index++) {
      await busy.write(`IAMAT busy ${LOCATION} ${clientTimeNow()}\n`);
      await busy.readAtReply({ timeoutMs: PROMPT_MS });
      await new Promise((resolve) => setTimeout(resolve, quietMs));
    }
    assert.equal(await closed, "");
    assert.ok(!busy.serverClosed, "the busy connection was closed");
    await assertServedPromptly(herd, "bystander");
  });

  await t.step("past clientsMax a new id is refused; known ids still update", async () => {
    await using client = await WireClient.connect(port);
    const ids = Array.from({ length: LIMITS.clientsMax }, (_, index) => `fill.${index}`);
    await client.write(ids.map((id) => `IAMAT ${id} ${LOCATION} 1\n`).join(""));
    const replies = [];
    for (const _ of ids) replies.push(await client.readLine());
    // Earlier steps stored a few clients: the store fills part way through.
    const firstRefused = replies.findIndex((reply) => reply.startsWith("? "));
    assert.ok(firstRefused > 0, `replies: ${replies.slice(0, 3)}…`);
    assert.ok(replies.slice(0, firstRefused).every((reply) => reply.startsWith("AT ")));
    assert.deepEqual(
      replies.slice(firstRefused),
      ids.slice(firstRefused).map((id) => `? IAMAT ${id} ${LOCATION} 1`),
    );
    await assertServedPromptly(herd, "bystander");
  });

  await t.step("every limit hit is in the log and in the stop record's counters", async () => {
    assert.equal((await herd.kill(SERVER, "SIGTERM")).code, 0);
    const log = await herd.readLog(SERVER);
    const hits = [
      ["limit_line_bytes", /lineBytesMax reached/],
      ["limit_lines_in_flight", /linesInFlightMax reached on \S+: reading paused/],
      ["limit_output_bytes", /client \S+ closed: output limit/],
      ["limit_connections_max", /connectionsMax reached: closed \S+ without reply/],
      ["limit_idle_timeout", /client \S+ closed: idle timeout/],
      ["limit_clients_max", /clientsMax reached: refused IAMAT for fill\.\d+/],
    ] as const;
    const counters = lastCounters(log);
    for (const [counter, logged] of hits) {
      assert.match(log, logged);
      assert.ok((counters.get(counter) ?? 0) >= 1, `${counter} not counted: ${[...counters]}`);
    }
    // Only the two clients that never read were closed for their output.
    assert.equal(counters.get("limit_output_bytes"), 2);
  });
});

Deno.test("a client that asks in a burst and reads slowly is served, not disconnected", async () => {
  await using herd = await startHerd({
    names: [SERVER],
    links: [],
    limits: { outputBytesMax: LIMITS.outputBytesMax, linesInFlightMax: LIMITS.linesInFlightMax },
    args: ["--places", "offline", "--log-level", "warn"],
  });
  await using client = await WireClient.connect(herd.port(SERVER));
  await client.write(`IAMAT burst ${LOCATION} ${clientTimeNow()}\n`);
  await client.readAtReply({ timeoutMs: PROMPT_MS });
  // Offline replies come at once: the burst's replies are many times outputBytesMax. The
  // client starts reading only after a while (within the server's 1 s), then takes them all.
  const count = 4000;
  await client.write(`WHATSAT burst ${FAST_RADIUS_KM} 5\n`.repeat(count));
  await delay(500);
  for (let index = 0; index < count; index++) {
    const reply = await client.readWhatsatReply({ timeoutMs: PROMPT_MS });
    assert.equal(reply.body.results.length, 5);
  }
  assert.doesNotMatch(await herd.readLog(SERVER), /closed: output limit/);
});

Deno.test({
  name: "at start the open-files soft limit is raised to the hard one, and warned about",
  ignore: Deno.build.os !== "linux", // reads /proc; starts the server under util-linux prlimit
  async fn() {
    const hard = Number(
      (await Deno.readTextFile("/proc/self/limits")).match(/^Max open files\s+\S+\s+(\d+)/m)?.[1],
    );
    assert.ok(Number.isSafeInteger(hard), "this test needs a finite hard open-files limit");
    // Started with a soft limit of 256, it runs at the hard one (Deno's runtime raises it
    // before herd's own raise, whose log shows the result). connectionsMax + 64 spare
    // descriptors cannot fit under the hard limit: a warning.
    await using herd = await startHerd({
      names: [SERVER],
      links: [],
      limits: { connectionsMax: hard },
      args: ["--places", "offline"],
      launcher: ["prlimit", `--nofile=${Math.min(256, hard)}:${hard}`, "--"],
    });
    const limits = await Deno.readTextFile(`/proc/${herd.process(SERVER).pid}/limits`);
    assert.match(limits, new RegExp(`^Max open files\\s+${hard}\\s+${hard}\\s`, "m"));
    assert.equal((await herd.kill(SERVER, "SIGTERM")).code, 0);
    const log = await herd.readLog(SERVER);
    assert.match(log, new RegExp(`open-files limit: soft ${hard}, hard ${hard}`));
    assert.match(log, new RegExp(`open-files limit is ${hard}, below connectionsMax \\+ 64`));
  },
});
