/**
 * storeBytesMax end to end: a server whose store is full refuses new clients' IAMATs with
 * `? line` (logged, counted) and keeps serving — a client it already holds still updates
 * and asks WHATSAT — and an update that a full server gets from a neighbour is dropped,
 * counted and logged, never stored cut and never the end of the process.
 */
import assert from "node:assert/strict";
import { pollUntil, startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const STORE_BYTES_MAX = 1_048_576;
const LINE_BYTES_MAX = 65_536;
const LOCATION = "+34.068930-118.445127";
/** A 60 KB id: each such client counts twice that (line and id) toward storeBytesMax. */
const BIG_ID_BYTES = 60_000;
/** More big clients than fit: 1 MiB / ~120 KB is 8. */
const BIG_CLIENTS = 12;
const PROMPT_MS = 2000;

function bigId(index: number): string {
  return `big${index}-`.padEnd(BIG_ID_BYTES, "x");
}

Deno.test("a full store refuses new clients with ? line, keeps serving held ones, and drops peers' updates", async () => {
  await using herd = await startHerd({
    names: ["Hill", "Jaquez"],
    links: [["Hill", "Jaquez"]],
    args: ["--places", "offline"],
    limits: { lineBytesMax: LINE_BYTES_MAX },
    // Only Hill is small: Jaquez takes every client and floods them to it.
    configSeenBy: (name, config) =>
      name === "Hill"
        ? { ...config, limits: { ...config.limits, storeBytesMax: STORE_BYTES_MAX } }
        : config,
  });
  await using watcher = await WireClient.connect(herd.port("Hill"));
  await using filler = await WireClient.connect(herd.port("Hill"));
  const now = () => (Date.now() / 1000).toFixed(3);
  const ask = async (client: WireClient, line: string) => {
    await client.write(`${line}\n`);
    return await client.readLine({ timeoutMs: PROMPT_MS });
  };
  assert.match(
    await ask(watcher, `IAMAT watcher ${LOCATION} ${now()}`),
    /^AT Hill /,
  );

  let refused = 0;
  for (let index = 0; index < BIG_CLIENTS; index++) {
    const line = `IAMAT ${bigId(index)} ${LOCATION} ${now()}`;
    const reply = await ask(filler, line);
    if (reply === `? ${line}`) refused += 1;
    else assert.match(reply.slice(0, 8), /^AT Hill /);
    // The watcher, already held, still gets prompt answers however full the store is.
    assert.match(
      await ask(watcher, `IAMAT watcher ${LOCATION} ${now()}`),
      /^AT Hill .* watcher /,
    );
  }
  assert.ok(refused >= BIG_CLIENTS - 8, `${refused} of ${BIG_CLIENTS} refused`);
  assert.ok(refused < BIG_CLIENTS, "some clients fit before the store filled");
  await watcher.write("WHATSAT watcher 10 1\n");
  const whatsat = await watcher.readWhatsatReply({ timeoutMs: PROMPT_MS });
  assert.match(whatsat.atLine, /^AT Hill .* watcher /);

  // Through the neighbour: Jaquez stores them all and floods them to the full Hill.
  await using atJaquez = await WireClient.connect(herd.port("Jaquez"));
  for (let index = BIG_CLIENTS; index < BIG_CLIENTS + 4; index++) {
    assert.match(
      (await ask(atJaquez, `IAMAT ${bigId(index)} ${LOCATION} ${now()}`)).slice(0, 10),
      /^AT Jaquez /,
    );
  }
  await pollUntil(
    async () =>
      /storeBytesMax reached: dropped update from Jaquez/.test(await herd.readLog("Hill")),
    { what: "Hill logging the dropped flood" },
  );
  assert.match(
    await ask(watcher, `IAMAT watcher ${LOCATION} ${now()}`),
    /^AT Hill /,
  );
  assert.equal((await herd.kill("Hill", "SIGTERM")).code, 0, "Hill never died");
  const log = await herd.readLog("Hill");
  assert.match(log, /storeBytesMax reached: refused IAMAT for big/);
  const counted = Number(log.match(/limit_store_bytes=(\d+)/)?.[1]);
  assert.ok(counted >= refused + 4, `limit_store_bytes=${counted}, refused ${refused} + 4 floods`);
});
