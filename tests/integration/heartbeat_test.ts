/**
 * Peer links between real processes (contract §2 limits, §5): a neighbour frozen with
 * SIGSTOP — its kernel still ACKs, so only heartbeats can tell — is found out within three
 * heartbeats and caught up once it runs again or restarts; an IAMAT at exactly lineBytesMax
 * whose AT line is far longer crosses every link whole; a herd whose clients fill
 * connectionsMax still links; and a catch-up of 60 KB ids fits the peer output limit.
 */
import assert from "node:assert/strict";
import {
  type Herd,
  HERD_LINKS,
  HERD_NAMES,
  pollUntil,
  startHerd,
} from "../support/herd_processes.ts";
import { waitAllHold } from "../support/held_state.ts";
import { heldAtLines, WireClient } from "../support/wire_client.ts";

const HEARTBEAT_MS = 200;
/** Three silent heartbeats, plus a generous margin for a loaded machine (the brief's bound). */
const DEAD_LINK_FOUND_MS_MAX = 3 * HEARTBEAT_MS + 1500;
const CATCH_UP = { timeoutMs: 15_000 };
const LOCATION = "+34.068930-118.445127";

async function iamat(herd: Herd, server: string, line: string): Promise<string> {
  await using client = await WireClient.connect(herd.port(server));
  await client.write(`${line}\n`);
  return await client.readAtReply();
}

/** When `server` logged that its link to `peer` went down for want of heartbeats. */
async function heartbeatDownAtMs(herd: Herd, server: string, peer: string, afterMs: number) {
  return await pollUntil(async () => {
    const pattern = new RegExp(`^(\\S+) .*link to ${peer} down: no heartbeat$`, "gm");
    const times = [...(await herd.readLog(server)).matchAll(pattern)]
      .map((match) => Date.parse(match[1]))
      .filter((atMs) => atMs >= afterMs);
    return times[0];
  }, { timeoutMs: 10_000, what: `${server} to find its link to ${peer} dead` });
}

/** Waits until `server`'s log says its link to `peer` is up (its last word on it). */
async function waitLinked(herd: Herd, server: string, peer: string): Promise<void> {
  await pollUntil(async () => {
    const log = await herd.readLog(server);
    return log.lastIndexOf(`link to ${peer} up (`) > log.lastIndexOf(`link to ${peer} down:`);
  }, { timeoutMs: 10_000, what: `${server} to be linked to ${peer}` });
}

Deno.test("a neighbour frozen by SIGSTOP is found out by heartbeats and caught up after", async (t) => {
  await using herd = await startHerd({
    args: ["--places", "offline"],
    limits: { peerHeartbeatMs: HEARTBEAT_MS },
  });
  const expected = new Map<string, string>();
  expected.set("before", await iamat(herd, "Hill", `IAMAT before ${LOCATION} 1700000000`));
  await waitAllHold(herd, expected, HERD_NAMES, CATCH_UP);

  for (const thaw of ["SIGCONT", "restart"] as const) {
    await t.step(`frozen Smith's neighbours drop its links; ${thaw} catches it up`, async () => {
      for (const neighbour of ["Hill", "Singleton", "Campbell"]) {
        await waitLinked(herd, neighbour, "Smith");
      }
      const smith = herd.process("Smith");
      const frozenAtMs = Date.now();
      Deno.kill(smith.pid, "SIGSTOP");
      try {
        for (const neighbour of ["Hill", "Singleton", "Campbell"]) {
          const downAtMs = await heartbeatDownAtMs(herd, neighbour, "Smith", frozenAtMs);
          assert.ok(
            downAtMs - frozenAtMs < DEAD_LINK_FOUND_MS_MAX,
            `${neighbour} found Smith dead after ${downAtMs - frozenAtMs} ms`,
          );
        }
        // Meanwhile the others serve, and learn from each other.
        for (const server of ["Hill", "Campbell", "Jaquez"]) {
          const id = `${thaw}.${server}`;
          expected.set(id, await iamat(herd, server, `IAMAT ${id} ${LOCATION} 1700000100`));
        }
        const others = HERD_NAMES.filter((name) => name !== "Smith");
        await waitAllHold(herd, expected, others, CATCH_UP);
      } finally {
        Deno.kill(smith.pid, "SIGCONT");
      }
      if (thaw === "restart") await herd.restart("Smith", "SIGKILL");
      await waitAllHold(herd, expected, HERD_NAMES, CATCH_UP);
    });
  }
});

Deno.test("an IAMAT at exactly lineBytesMax, its AT line twice as long, is held whole by all five", async () => {
  const lineBytesMax = 4096;
  await using herd = await startHerd({ args: ["--places", "offline"], limits: { lineBytesMax } });
  // A long time makes a long skew: the AT line is about twice the client's line.
  const prefix = "IAMAT long.time +0+0 ";
  const line = `${prefix}${"9".repeat(lineBytesMax - prefix.length)}`;
  assert.equal(line.length, lineBytesMax);
  const at = await iamat(herd, "Jaquez", line);
  assert.ok(at.length > 1.9 * lineBytesMax, `AT line of ${at.length} bytes`);
  await waitAllHold(herd, new Map([["long.time", at]]), HERD_NAMES, CATCH_UP);
  for (const name of HERD_NAMES) {
    assert.doesNotMatch(await herd.readLog(name), /link to \w+ closed: a line over/);
  }
});

Deno.test("a herd whose clients fill connectionsMax still links, even after a restart", async () => {
  const connectionsMax = 4;
  await using herd = await startHerd({
    args: ["--places", "offline"],
    limits: { connectionsMax },
  });
  const clients = new Map<string, WireClient[]>();
  const fill = async (server: string) => {
    const idle = [];
    for (let index = 0; index < connectionsMax; index++) {
      idle.push(await servedClient(herd, server));
    }
    clients.set(server, idle);
  };
  try {
    for (const [a, b] of HERD_LINKS) await waitLinked(herd, a, b);
    for (const name of HERD_NAMES) await fill(name);
    // A client past the limit is closed without a reply.
    await using extra = await WireClient.connect(herd.port("Hill"));
    await extra.write(`IAMAT refused ${LOCATION} 1700000000\n`);
    assert.equal(await extra.readUntilEof({ timeoutMs: 5000 }), "");
    await pollUntil(
      async () => (await herd.readLog("Hill")).includes("connectionsMax reached: closed"),
      { what: "Hill to log the refused client" },
    );

    for (const client of clients.get("Smith")!) await client.close();
    await herd.restart("Smith", "SIGKILL");
    await fill("Smith");
    // Smith's neighbours are full, and so is Smith: the links must still come up.
    const atSmith = clients.get("Smith")![0];
    await atSmith.write(`IAMAT through.full ${LOCATION} 1700000000\n`);
    const at = await atSmith.readAtReply();
    for (const neighbour of ["Hill", "Singleton", "Campbell"]) {
      const client = clients.get(neighbour)![0];
      await pollUntil(async () => {
        await client.write("WHATSAT through.full 1 1\n");
        const first = await client.readLine();
        if (first.startsWith("? ")) return false;
        await client.readLine();
        await client.readLine();
        return first === at;
      }, { timeoutMs: 10_000, what: `${neighbour} to get Smith's update` });
    }
  } finally {
    for (const idle of clients.values()) for (const client of idle) await client.close();
  }
});

/**
 * A client connection that `server` serves: one past connectionsMax while a neighbour's
 * handshake holds a slot is closed, so it is tried again.
 */
async function servedClient(herd: Herd, server: string): Promise<WireClient> {
  return await pollUntil(async () => {
    const client = await WireClient.connect(herd.port(server));
    try {
      await client.write("WHATSAT nobody 1 1\n");
      if (await client.readLine({ timeoutMs: 3000 }) === "? WHATSAT nobody 1 1") return client;
    } catch {
      // Closed without a reply: the slot was taken for now.
    }
    await client.close();
    return undefined;
  }, { timeoutMs: 10_000, what: `a client slot at ${server}` });
}

Deno.test("a catch-up of 20 clients with 60 KB ids reaches a restarted neighbour whole", async () => {
  await using herd = await startHerd({ names: ["Jaquez", "Hill"], args: ["--places", "offline"] });
  await herd.kill("Hill", "SIGKILL");
  const ids = Array.from({ length: 20 }, (_, index) => `${index}.${"x".repeat(60_000)}`);
  const expected = new Map<string, string>();
  for (const id of ids) {
    expected.set(id, await iamat(herd, "Jaquez", `IAMAT ${id} ${LOCATION} 1700000000`));
  }
  await herd.start("Hill");
  await pollUntil(async () => {
    const held = await heldAtLines(herd.port("Hill"), ids);
    return held.every((line, index) => line === expected.get(ids[index]));
  }, { timeoutMs: 15_000, what: "Hill to hold all 20 long-id clients" });
  for (const name of ["Jaquez", "Hill"]) {
    assert.doesNotMatch(await herd.readLog(name), /output limit/, `${name} hit an output limit`);
  }
});
