/**
 * `--data-dir` across real processes: with every server SIGKILLed at once in the middle of a
 * stream of IAMATs, no update that got an AT is lost once they restart and catch up; a
 * graceful stop writes what came by flooding; a torn last record is skipped, not fatal.
 */
import assert from "node:assert/strict";
import { type Herd, HERD_NAMES, pollUntil, startHerd } from "../support/herd_processes.ts";
import { heldTime, waitUntilHeld } from "../support/held_state.ts";
import { heldAtLines, WireClient } from "../support/wire_client.ts";

/** Mid-Pacific: the offline data set has nothing near, so each WHATSAT is cheap. */
const LOCATION = "+00.000000-150.000000";
const FIRST_TIME = 1_700_000_000;
const CATCH_UP_TIMEOUT_MS = 30_000;

async function withDataDir(body: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "herd-data-" });
  try {
    await body(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

function startDurableHerd(dataDir: string, names: readonly string[] = HERD_NAMES) {
  return startHerd({
    names,
    args: ["--places", "offline", "--log-level", "warn", "--data-dir", dataDir],
  });
}

/** The client time in each AT line `server` holds for `clientIds` (undefined: unknown). */
async function heldTimes(
  herd: Herd,
  server: string,
  clientIds: readonly string[],
): Promise<Array<number | undefined>> {
  return (await heldAtLines(herd.port(server), clientIds)).map(heldTime);
}

/** Polls until every server in `servers` holds, for each client, at least its time in `newest`. */
function waitNoneLost(
  herd: Herd,
  newest: ReadonlyMap<string, number>,
  servers: readonly string[],
): Promise<void> {
  const isNewEnough = (id: string, held: string | undefined) =>
    (heldTime(held) ?? -1) >= newest.get(id)!;
  return waitUntilHeld(herd, servers, [...newest.keys()], isNewEnough, {
    timeoutMs: CATCH_UP_TIMEOUT_MS,
  });
}

Deno.test("data dir: all five SIGKILLed at once mid-stream lose no acknowledged update", async () => {
  const clients = 2000;
  const updatesPerClient = 5;
  const killAfterReplies = (clients * updatesPerClient * 3) / 5;
  await withDataDir(async (dataDir) => {
    await using herd = await startDurableHerd(dataDir);
    // Update u of client c goes to server (c + u) mod 5: each client moves across the herd.
    const linesByServer = new Map<string, string[]>(HERD_NAMES.map((name) => [name, []]));
    for (let c = 0; c < clients; c++) {
      for (let u = 0; u < updatesPerClient; u++) {
        const server = HERD_NAMES[(c + u) % HERD_NAMES.length];
        linesByServer.get(server)!.push(`IAMAT durable${c} ${LOCATION} ${FIRST_TIME + u}\n`);
      }
    }
    const newestAcknowledged = new Map<string, number>();
    let replies = 0;
    let killing: Promise<unknown> | undefined;
    const killAll = () => Promise.all(HERD_NAMES.map((name) => herd.kill(name, "SIGKILL")));
    await Promise.all(HERD_NAMES.map(async (server) => {
      const lines = linesByServer.get(server)!;
      const client = await WireClient.connect(herd.port(server));
      try {
        await client.write(lines.join(""));
        for (const _ of lines) {
          const at = await client.readAtReply().catch(() => undefined);
          if (at === undefined) break; // killed
          const fields = at.split(" ");
          const time = Number(fields[5]);
          newestAcknowledged.set(fields[3], Math.max(newestAcknowledged.get(fields[3]) ?? 0, time));
          replies += 1;
          if (replies === killAfterReplies) killing = killAll();
        }
      } finally {
        await client.close();
      }
    }));
    await killing;
    assert.ok(replies >= killAfterReplies, `only ${replies} replies before the kill`);
    for (const name of HERD_NAMES) await herd.start(name);
    await waitNoneLost(herd, newestAcknowledged, HERD_NAMES);
  });
});

Deno.test("data dir: a graceful stop keeps what came by flooding", async () => {
  const names = ["Hill", "Jaquez"];
  const clients = 3000;
  await withDataDir(async (dataDir) => {
    await using herd = await startDurableHerd(dataDir, names);
    const newest = new Map<string, number>();
    await using client = await WireClient.connect(herd.port("Hill"));
    const lines = Array.from(
      { length: clients },
      (_, c) => `IAMAT flooded${c} ${LOCATION} ${FIRST_TIME + c}\n`,
    );
    await client.write(lines.join(""));
    for (let c = 0; c < clients; c++) {
      await client.readAtReply();
      newest.set(`flooded${c}`, FIRST_TIME + c);
    }
    // Jaquez holds the last update, so every update has reached it by flooding.
    const lastId = `flooded${clients - 1}`;
    await pollUntil(async () => (await heldTimes(herd, "Jaquez", [lastId]))[0] !== undefined, {
      what: "the last update at Jaquez",
    });
    await herd.kill("Hill", "SIGKILL");
    assert.equal((await herd.kill("Jaquez", "SIGTERM")).code, 0);
    await herd.start("Jaquez");
    await waitNoneLost(herd, newest, ["Jaquez"]);
  });
});

Deno.test("data dir: a torn last record is skipped, logged, and not fatal", async () => {
  await withDataDir(async (dataDir) => {
    await using herd = await startDurableHerd(dataDir, ["Smith"]);
    await using client = await WireClient.connect(herd.port("Smith"));
    await client.write(`IAMAT kept ${LOCATION} ${FIRST_TIME}\n`);
    await client.readAtReply();
    await herd.kill("Smith", "SIGKILL");
    const file = `${dataDir}/Smith.updates`;
    await Deno.writeTextFile(file, `0badc0de AT Smith +0.000000000 torn ${LOCATION} 17`, {
      append: true,
    });
    await herd.start("Smith");
    assert.deepEqual(await heldTimes(herd, "Smith", ["kept", "torn"]), [FIRST_TIME, undefined]);
    assert.match(await herd.readLog("Smith"), /1 clients from 1 records \(1 torn or damaged/);
  });
});
