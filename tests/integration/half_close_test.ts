/**
 * A client that pipelines many lines and half-closes gets every reply, in order, and then
 * end of stream — against a real server process, where more than linesInFlightMax replies
 * wait on something asynchronous: the data dir's disk writes, or slow upstream lookups
 * (the fake Google).
 */
import assert from "node:assert/strict";
import { startFakePlaces } from "../fake_places.ts";
import { startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const SERVER = "Hill";
const LOCATION = "+34.068930-118.445127";
/** From the half-close to end of stream: a few seconds, with room for a loaded machine. */
const EOF_WITHIN_MS = 15_000;

/** Sends `lines` in one write, half-closes, and returns everything received until EOF. */
async function exchangeThenHalfClose(port: number, lines: readonly string[]): Promise<string> {
  await using client = await WireClient.connect(port);
  await client.write(lines.map((line) => `${line}\n`).join(""));
  await client.closeWrite();
  return await client.readUntilEof({ timeoutMs: EOF_WITHIN_MS });
}

/** The AT line a server `SERVER` sends for an IAMAT of `clientId` at `time` (any skew). */
function atLinePattern(clientId: string, time: string): RegExp {
  return new RegExp(`^AT ${SERVER} [+-]\\d+\\.\\d{9} ${clientId} \\${LOCATION} ${time}$`);
}

Deno.test("with --data-dir, 2,000 IAMATs in one write then half-close: 2,000 AT replies in order, then EOF", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "herd-data-" });
  try {
    await using herd = await startHerd({
      names: [SERVER],
      links: [],
      args: ["--places", "offline", "--log-level", "warn", "--data-dir", dataDir],
    });
    const clientIds = Array.from({ length: 2000 }, (_, index) => `half.close.${index}`);
    const received = await exchangeThenHalfClose(
      herd.port(SERVER),
      clientIds.map((clientId, index) => `IAMAT ${clientId} ${LOCATION} ${index + 1}`),
    );
    const replies = received.split("\n");
    assert.equal(replies.pop(), "", "the last reply does not end in a newline");
    assert.equal(replies.length, clientIds.length);
    for (const [index, reply] of replies.entries()) {
      assert.match(reply, atLinePattern(clientIds[index], String(index + 1)), `reply ${index}`);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("200 pipelined IAMATs and WHATSATs, some slow upstream, then half-close: every reply in order, then EOF", async () => {
  const apiKey = `herd-test-key-${crypto.randomUUID()}`;
  await using fake = await startFakePlaces({ apiKey });
  // Radii from 40 km are slow; each its own upstream call, so they end one by one.
  const slowRadiusKmMin = 40;
  fake.setDefault((request) =>
    Number(request.query.radius) >= slowRadiusKmMin * 1000
      ? {
        kind: "delay",
        delayMs: 150 + Number(request.query.radius) / 1000,
        then: { kind: "places" },
      }
      : undefined
  );
  await using herd = await startHerd({
    names: [SERVER],
    links: [],
    limits: { linesInFlightMax: 8, placesCallsPerSecondMax: 10_000, placesConcurrencyMax: 64 },
    env: { GOOGLE_PLACES_API_KEY: apiKey },
    args: ["--places", "google", "--places-url", fake.url, "--log-level", "warn"],
  });
  type Sent = { kind: "IAMAT"; clientId: string } | { kind: "WHATSAT"; bound: number };
  const sent: Sent[] = [{ kind: "IAMAT", clientId: "asker" }];
  for (let index = 1; index < 200; index++) {
    if (index % 3 === 0) {
      sent.push({ kind: "IAMAT", clientId: `other.${index}` });
    } else {
      sent.push({ kind: "WHATSAT", bound: 1 + index % 5 });
    }
  }
  // Every tenth WHATSAT, and the last two, are slow, each with its own radius.
  const whatsatIndexes = sent.flatMap((line, index) => line.kind === "WHATSAT" ? [index] : []);
  const slowIndexes = new Set([
    ...whatsatIndexes.filter((_, order) => order % 10 === 0),
    ...whatsatIndexes.slice(-2),
  ]);
  const lines = sent.map((line, index) => {
    if (line.kind === "IAMAT") return `IAMAT ${line.clientId} ${LOCATION} 1700000000`;
    const radiusKm = slowIndexes.has(index) ? slowRadiusKmMin + index % 10 : 1 + index % 10;
    return `WHATSAT asker ${radiusKm} ${line.bound}`;
  });

  const received = (await exchangeThenHalfClose(herd.port(SERVER), lines)).split("\n");
  assert.equal(received.pop(), "", "the last reply does not end in a newline");
  const askerAt = received[0];
  assert.match(askerAt, atLinePattern("asker", "1700000000"));
  let at = 0;
  for (const [index, line] of sent.entries()) {
    if (line.kind === "IAMAT") {
      assert.match(received[at++], atLinePattern(line.clientId, "1700000000"), `line ${index}`);
      continue;
    }
    assert.equal(received[at++], askerAt, `line ${index}: the WHATSAT's AT line`);
    const body = JSON.parse(received[at++]);
    assert.equal(body.status, "OK", `line ${index}`);
    assert.equal(body.results.length, line.bound, `line ${index}`);
    assert.equal(received[at++], "", `line ${index}: the empty line ending a WHATSAT reply`);
  }
  assert.equal(at, received.length, "more replies than lines");
});
