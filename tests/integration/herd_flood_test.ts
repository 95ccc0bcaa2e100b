/**
 * The five-server herd as real processes: the AT line's exact form, flooding to every
 * server, the newer-only rule, convergence of equal-time updates, and peer hellos on a
 * client port. One herd serves every step; each step uses its own client ids.
 */
import assert from "node:assert/strict";
import { type Herd, HERD_NAMES, pollUntil, startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const LOCATION = "+34.068930-118.445127";
const PROPAGATION_TIMEOUT_MS = 10_000;
/** "A moment later" (contract §5), generous for a loaded two-core machine. */
const QUICK_DELIVERY_MS = 1000;
const NANOSECONDS_PER_MILLISECOND = 1_000_000n;

/** The AT line's grammar, with the parts a test compares. */
const AT_LINE = /^AT (\S+) ([+-])(\d+)\.(\d{9}) (\S+) (\S+) (\S+)$/;

/** A time string for "now minus `agoMs`" with nine decimals, and its value in ns. */
function clientTime(agoMs: number): { text: string; ns: bigint } {
  const ns = BigInt(Date.now() - agoMs) * NANOSECONDS_PER_MILLISECOND + 123_456n;
  const text = `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, "0")}`;
  return { text, ns };
}

/** Skew field → signed nanoseconds. */
function skewNs(sign: string, seconds: string, nanos: string): bigint {
  const magnitude = BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
  return sign === "-" ? -magnitude : magnitude;
}

/** One IAMAT on a fresh connection; returns the AT reply. */
async function iamat(herd: Herd, server: string, line: string): Promise<string> {
  await using client = await WireClient.connect(herd.port(server));
  await client.write(`${line}\n`);
  return await client.readAtReply();
}

/** The AT line `server` holds for `clientId`, or undefined while it knows none. */
async function storedAtLine(
  herd: Herd,
  server: string,
  clientId: string,
): Promise<string | undefined> {
  await using client = await WireClient.connect(herd.port(server));
  await client.write(`WHATSAT ${clientId} 1 1\n`);
  const first = await client.readLine();
  if (first.startsWith("? ")) return undefined;
  await client.readLine(); // the body
  const empty = await client.readLine();
  assert.equal(empty, "", `WHATSAT reply at ${server} does not end in an empty line`);
  return first;
}

/** Polls until every server in `servers` holds exactly `expected` for `clientId`. */
async function waitHeldEverywhere(
  herd: Herd,
  clientId: string,
  expected: string,
  servers: readonly string[] = HERD_NAMES,
  timeoutMs = PROPAGATION_TIMEOUT_MS,
): Promise<void> {
  for (const server of servers) {
    let last: string | undefined;
    await pollUntil(async () => {
      last = await storedAtLine(herd, server, clientId);
      return last === expected;
    }, {
      timeoutMs,
      what: `${server} to hold ${JSON.stringify(expected)} (last: ${JSON.stringify(last)})`,
    });
  }
}

Deno.test("herd: IAMAT, flooding and the newer-only rule across five processes", async (t) => {
  await using herd = await startHerd({ args: ["--places", "offline"] });

  await t.step("IAMAT is answered with the AT line in its exact form", async () => {
    const time = clientTime(1500);
    const startNs = BigInt(Date.now()) * NANOSECONDS_PER_MILLISECOND;
    const reply = await iamat(herd, "Hill", `IAMAT kiwi.cs.ucla.edu ${LOCATION} ${time.text}`);
    const endNs = BigInt(Date.now()) * NANOSECONDS_PER_MILLISECOND;
    const match = AT_LINE.exec(reply);
    assert.ok(match, `not an AT line: ${JSON.stringify(reply)}`);
    const [, server, sign, seconds, nanos, clientId, location, timeText] = match;
    assert.equal(server, "Hill");
    assert.equal(clientId, "kiwi.cs.ucla.edu");
    assert.equal(location, LOCATION);
    assert.equal(timeText, time.text);
    assert.equal(sign, "+");
    const skew = skewNs(sign, seconds, nanos);
    // The server received the line between our send and our read; allow clock granularity.
    const slackNs = 50n * NANOSECONDS_PER_MILLISECOND;
    assert.ok(
      skew >= startNs - time.ns - slackNs && skew <= endNs - time.ns + slackNs,
      `skew ${skew} ns is not within [${startNs - time.ns}, ${endNs - time.ns}] ns`,
    );
  });

  await t.step("a client time in the future gives a negative skew with nine decimals", async () => {
    const futureSeconds = Math.floor(Date.now() / 1000) + 100;
    const reply = await iamat(herd, "Jaquez", `IAMAT future ${LOCATION} ${futureSeconds}`);
    const match = AT_LINE.exec(reply);
    assert.ok(match, `not an AT line: ${JSON.stringify(reply)}`);
    assert.equal(match[2], "-");
    assert.ok(Number(match[3]) >= 98 && Number(match[3]) <= 100, reply);
    assert.equal(match[7], String(futureSeconds));
  });

  await t.step("client id, location and time are echoed byte for byte", async () => {
    // Bytes that are not white space by the contract: NUL, DEL, latin1 NBSP, UTF-8 NBSP, NEL.
    const clientId = "odd\x00\x7f\xa0\xc2\xa0\x85\xff\xe9id";
    const location = "-00.000+000.0000"; // unusual but inside the grammar
    const time = "0001700000000.100000000";
    const reply = await iamat(herd, "Smith", `IAMAT ${clientId} ${location} ${time}`);
    assert.match(reply, /^AT Smith \+\d+\.\d{9} /);
    assert.equal(reply.slice(reply.indexOf(" ", 9) + 1), `${clientId} ${location} ${time}`);
  });

  await t.step("IAMAT at Hill reaches every other server verbatim", async () => {
    const at = await iamat(herd, "Hill", `IAMAT flood.one ${LOCATION} ${clientTime(0).text}`);
    assert.match(at, /^AT Hill /);
    await waitHeldEverywhere(herd, "flood.one", at);
  });

  await t.step("odd bytes in a client id survive flooding", async () => {
    const clientId = "flood\xe9\xff\x01\xc2\xa0two";
    const at = await iamat(herd, "Campbell", `IAMAT ${clientId} ${LOCATION} ${clientTime(0).text}`);
    await waitHeldEverywhere(herd, clientId, at);
  });

  await t.step("an AT reply means the neighbours have the update a moment later", async () => {
    // The flood is handed to the links before the AT reply is written, so the neighbours
    // have it within a short moment, far below the general propagation deadline.
    const at = await iamat(herd, "Hill", `IAMAT quick ${LOCATION} ${clientTime(0).text}`);
    await waitHeldEverywhere(herd, "quick", at, ["Jaquez", "Smith"], QUICK_DELIVERY_MS);
  });

  await t.step("an older or equal time is answered but replaces nothing anywhere", async () => {
    const first = await iamat(herd, "Hill", `IAMAT stale ${LOCATION} 1700000005.5`);
    await waitHeldEverywhere(herd, "stale", first);
    // Equal as an exact decimal (5.5 = 5.50), at the origin and at another server.
    const equalAtHill = await iamat(herd, "Hill", "IAMAT stale +10.0-20.0 1700000005.50");
    assert.match(equalAtHill, /^AT Hill [+-]\d+\.\d{9} stale \+10\.0-20\.0 1700000005\.50$/);
    const equalAtCampbell = await iamat(
      herd,
      "Campbell",
      "IAMAT stale +11-21 1700000005.500000000",
    );
    assert.match(equalAtCampbell, /^AT Campbell \S+ stale \+11-21 1700000005\.500000000$/);
    const olderAtSmith = await iamat(herd, "Smith", "IAMAT stale +12-22 1700000004.999999999");
    assert.match(olderAtSmith, /^AT Smith \S+ stale \+12-22 1700000004\.999999999$/);
    // What a server answers straight after is its own store: unchanged.
    for (const server of ["Hill", "Campbell", "Smith"]) {
      assert.equal(await storedAtLine(herd, server, "stale"), first, server);
    }
    // A later update sent after the stale ones travels the same links; once it is
    // everywhere, a flooded stale update would have arrived too.
    const marker = await iamat(herd, "Campbell", `IAMAT stale.marker ${LOCATION} 1700000000`);
    await waitHeldEverywhere(herd, "stale.marker", marker);
    const marker2 = await iamat(herd, "Smith", `IAMAT stale.marker2 ${LOCATION} 1700000000`);
    await waitHeldEverywhere(herd, "stale.marker2", marker2);
    for (const server of HERD_NAMES) {
      assert.equal(await storedAtLine(herd, server, "stale"), first, server);
    }
  });

  await t.step("a newer time replaces the stored line everywhere", async () => {
    const first = await iamat(herd, "Jaquez", `IAMAT newer ${LOCATION} 1700000010`);
    await waitHeldEverywhere(herd, "newer", first);
    const second = await iamat(herd, "Campbell", "IAMAT newer +1.5-2.5 1700000010.000000001");
    await waitHeldEverywhere(herd, "newer", second);
  });

  await t.step("equal-time updates at two servers converge to one AT line", async () => {
    for (let round = 0; round < 3; round++) {
      const clientId = `tie.${round}`;
      const time = `17000000${20 + round}.25`;
      await using atJaquez = await WireClient.connect(herd.port("Jaquez"));
      await using atCampbell = await WireClient.connect(herd.port("Campbell"));
      // Written together so that neither server has the other's update yet (usually).
      await Promise.all([
        atJaquez.write(`IAMAT ${clientId} +1-1 ${time}\n`),
        atCampbell.write(`IAMAT ${clientId} +2-2 ${time}\n`),
      ]);
      const replies = [await atJaquez.readAtReply(), await atCampbell.readAtReply()];
      let held: string[] = [];
      await pollUntil(async () => {
        held = [];
        for (const server of HERD_NAMES) {
          held.push(await storedAtLine(herd, server, clientId) ?? "");
        }
        return held.every((line) => line === held[0]) && held[0] !== "";
      }, {
        timeoutMs: PROPAGATION_TIMEOUT_MS,
        what: `five servers to agree on ${clientId} (held: ${JSON.stringify(held)})`,
      });
      assert.ok(replies.includes(held[0]), `converged on ${held[0]}, not one of ${replies}`);
    }
  });

  await t.step("a PEER hello from a non-neighbour closes the connection", async () => {
    // Campbell's neighbours are Singleton and Smith; Hill is not one, nor is a stranger.
    for (const hello of ["PEER Hill 1", "PEER Stranger 1", "PEER Campbell 1"]) {
      await using client = await WireClient.connect(herd.port("Campbell"));
      await client.write(`${hello}\n`);
      const rest = await client.readUntilEof({ timeoutMs: 5000 });
      assert.doesNotMatch(rest, /^(AT|\?) /m, `${hello} got a client reply: ${rest}`);
    }
    // Campbell still serves clients.
    const at = await iamat(herd, "Campbell", `IAMAT after.hello ${LOCATION} 1700000000`);
    assert.match(at, /^AT Campbell /);
  });

  await t.step("PEER as a later line of a client connection is an invalid line", async () => {
    await using client = await WireClient.connect(herd.port("Hill"));
    await client.write(`IAMAT peer.later ${LOCATION} 1700000000\nPEER Jaquez 1\nPEER Smith 1 x\n`);
    assert.match(await client.readAtReply(), /^AT Hill /);
    assert.equal(await client.readLine(), "? PEER Jaquez 1");
    assert.equal(await client.readLine(), "? PEER Smith 1 x");
    await client.write("WHATSAT nobody.known 1 1\n");
    assert.equal(await client.readLine(), "? WHATSAT nobody.known 1 1");
  });
});
