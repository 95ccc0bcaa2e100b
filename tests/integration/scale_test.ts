/**
 * How flooding scales: herds of 5 and 25 servers (the contract's graph, a 5 × 5 grid and a
 * seeded random connected graph of average degree 3), each server its own process. Asserts
 * what is exact logic — link messages per update equal 2E − N + 1, no first arrival takes
 * fewer hops than the shortest path, a restarted server catches up on everything — and
 * prints one line of figures per graph (times there are bound by the shared cores).
 */
import assert from "node:assert/strict";
import { HERD_LINKS, HERD_NAMES } from "../support/herd_processes.ts";
import { gridGraph, type HerdGraph, randomConnectedGraph } from "../support/herd_graphs.ts";
import {
  type FloodScaleFigures,
  formatFloodScaleLine,
  measureFloodScale,
} from "../support/flood_scale.ts";

/** K: updates made with every link up, each a new client. */
const UPDATES = 20;
/** M: updates made while one server is down. */
const UPDATES_WHILE_DOWN = 10;
const SEED = 12;

async function measureAndCheck(label: string, graph: HerdGraph): Promise<FloodScaleFigures> {
  const figures = await measureFloodScale({
    label,
    graph,
    updates: UPDATES,
    updatesWhileDown: UPDATES_WHILE_DOWN,
    seed: SEED,
  });
  console.log(formatFloodScaleLine(figures));
  assert.equal(figures.messagesPerUpdate, figures.expectedMessagesPerUpdate);
  assert.equal(figures.receivedPerUpdate, figures.expectedMessagesPerUpdate);
  assert.equal(figures.hops.arrivals, UPDATES * (graph.names.length - 1));
  assert.ok(figures.hops.max >= figures.hops.eccentricityMax, "an update outran its shortest path");
  assert.ok(figures.hops.max <= graph.names.length - 1);
  assert.equal(figures.catchUp.clients, UPDATES + UPDATES_WHILE_DOWN);
  // Each neighbour streams its whole store to a restarted server (it has a new epoch).
  assert.ok(figures.catchUp.updatesReceived >= figures.catchUp.clients);
  return figures;
}

Deno.test("scale: the contract's five servers flood 2E − N + 1 messages per update", async () => {
  await measureAndCheck("contract-5", { names: [...HERD_NAMES], links: [...HERD_LINKS] });
});

Deno.test("scale: a 5 × 5 grid of servers floods 2E − N + 1 messages per update", async () => {
  await measureAndCheck("grid-5x5", gridGraph({ rows: 5, columns: 5 }));
});

Deno.test("scale: a random connected graph of 25 servers floods 2E − N + 1 per update", async () => {
  await measureAndCheck(
    "random-25-degree-3",
    randomConnectedGraph({ servers: 25, averageDegree: 3, seed: SEED }),
  );
});
