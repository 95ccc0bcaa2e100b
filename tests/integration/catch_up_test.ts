/**
 * Catch-up between real processes: servers that were killed (and so forgot everything) learn
 * every client's latest location from their neighbours when they come back, without any
 * client sending its IAMAT again; servers cut off meanwhile learn what they missed.
 */
import assert from "node:assert/strict";
import { type Herd, HERD_NAMES, pollUntil, startHerd } from "../support/herd_processes.ts";
import { waitAllHold } from "../support/held_state.ts";
import { heldAtLines, WireClient } from "../support/wire_client.ts";

/** How long servers may take to catch up. */
const CATCH_UP = { timeoutMs: 10_000 };
/** "Linked to its live neighbours within a second" (contract §5), with room for a slow machine. */
const RELINK_TIMEOUT_MS = 2000;
const LOCATION = "+34.068930-118.445127";

async function iamat(herd: Herd, server: string, line: string): Promise<string> {
  await using client = await WireClient.connect(herd.port(server));
  await client.write(`${line}\n`);
  return await client.readAtReply();
}

Deno.test("catch-up: killed servers learn every client when they come back", async (t) => {
  await using herd = await startHerd({ args: ["--places", "offline"] });
  const expected = new Map<string, string>();

  await t.step("before the kill, an update reaches all five", async () => {
    expected.set("before", await iamat(herd, "Smith", `IAMAT before ${LOCATION} 1700000000`));
    expected.set(
      "before.old",
      await iamat(herd, "Jaquez", `IAMAT before.old ${LOCATION} 1700000000`),
    );
    await waitAllHold(herd, expected, HERD_NAMES, CATCH_UP);
  });

  await t.step("with Smith and Singleton killed, the others still serve", async () => {
    // Campbell's only neighbours are Smith and Singleton: it is cut off from Hill and Jaquez.
    await herd.kill("Smith", "SIGKILL");
    await herd.kill("Singleton", "SIGKILL");
    const started = Date.now();
    expected.set(
      "during.hill",
      await iamat(herd, "Hill", `IAMAT during.hill ${LOCATION} 1700000100`),
    );
    expected.set(
      "during.jaquez",
      await iamat(herd, "Jaquez", "IAMAT during.jaquez +1-1 1700000101"),
    );
    expected.set(
      "during.campbell",
      await iamat(herd, "Campbell", "IAMAT during.campbell +2-2 1700000102"),
    );
    expected.set("before", await iamat(herd, "Campbell", "IAMAT before +3-3 1700000103"));
    expected.set("before.old", await iamat(herd, "Hill", "IAMAT before.old +4-4 1700000104"));
    for (let index = 0; index < 50; index++) {
      const id = `during.bulk.${index}`;
      const server = index % 2 === 0 ? "Jaquez" : "Campbell";
      expected.set(id, await iamat(herd, server, `IAMAT ${id} +5-5 ${1700000200 + index}`));
    }
    assert.ok(Date.now() - started < 5000, "neighbours being down slowed clients down");
    // Hill and Jaquez share a link; Campbell has none left.
    const hillAndJaquez = new Map([...expected].filter(([, line]) => !/^AT Campbell /.test(line)));
    await waitAllHold(herd, hillAndJaquez, ["Hill", "Jaquez"], CATCH_UP);
    const [atCampbell] = await heldAtLines(herd.port("Campbell"), ["during.hill"]);
    assert.equal(atCampbell, undefined, "Campbell cannot know Hill's update yet");
  });

  await t.step("restarted, they and everyone else catch up without any IAMAT", async () => {
    await Promise.all([herd.start("Smith"), herd.start("Singleton")]);
    await waitAllHold(herd, expected, HERD_NAMES, CATCH_UP);
  });

  await t.step("a restarted server is linked to its neighbours within about a second", async () => {
    await herd.kill("Singleton", "SIGKILL");
    await herd.start("Singleton");
    const listeningAt = performance.now();
    // Sent at once: it reaches a neighbour by flood if the link is up, else by catch-up.
    const at = await iamat(herd, "Singleton", "IAMAT relinked +7-7 1700000400");
    expected.set("relinked", at);
    for (const neighbour of ["Jaquez", "Smith", "Campbell"]) {
      await pollUntil(
        async () => (await heldAtLines(herd.port(neighbour), ["relinked"]))[0] === at,
        {
          timeoutMs: RELINK_TIMEOUT_MS,
          intervalMs: 20,
          what: `${neighbour} to get Singleton's update after its restart`,
        },
      );
    }
    const linkedMs = performance.now() - listeningAt;
    assert.ok(linkedMs < RELINK_TIMEOUT_MS, `linked after ${linkedMs} ms`);
  });

  await t.step("a server stopped with SIGTERM and restarted catches up too", async () => {
    const status = await herd.kill("Hill", "SIGTERM");
    assert.equal(status.code, 0);
    expected.set(
      "after.hill.stop",
      await iamat(herd, "Campbell", "IAMAT after.hill.stop +6-6 1700000300"),
    );
    await herd.start("Hill");
    await waitAllHold(herd, expected, HERD_NAMES, CATCH_UP);
  });

  await t.step("a server restarted twice in a row still catches up", async () => {
    await herd.restart("Campbell", "SIGKILL");
    await herd.restart("Campbell", "SIGKILL");
    await waitAllHold(herd, expected, ["Campbell"], CATCH_UP);
  });
});
