/**
 * The scale tests' topologies (tests/support/herd_graphs.ts): grid and random graphs have
 * the links they should, distances and diameters are right, and the flood cost is 2E − N + 1.
 */
import assert from "node:assert/strict";
import { HERD_LINKS, HERD_NAMES } from "./support/herd_processes.ts";
import {
  eccentricity,
  floodMessagesPerUpdate,
  graphDiameter,
  gridGraph,
  hopDistances,
  neighboursOf,
  randomConnectedGraph,
} from "./support/herd_graphs.ts";

const CONTRACT_GRAPH = { names: [...HERD_NAMES], links: [...HERD_LINKS] };

Deno.test("gridGraph() links each server to its right and lower neighbours", () => {
  const graph = gridGraph({ rows: 5, columns: 5 });
  assert.equal(graph.names.length, 25);
  assert.equal(graph.links.length, 40);
  assert.deepEqual(neighboursOf(graph).get("r0c0")?.sort(), ["r0c1", "r1c0"]);
  assert.deepEqual(neighboursOf(graph).get("r2c2")?.sort(), ["r1c2", "r2c1", "r2c3", "r3c2"]);
  assert.equal(graphDiameter(graph), 8);
  assert.equal(eccentricity(graph, "r2c2"), 4);
  assert.equal(floodMessagesPerUpdate(graph), 56);
});

Deno.test("randomConnectedGraph() is connected, simple, of the asked degree, and repeatable", () => {
  for (const seed of [1, 12, 99, 2026]) {
    const graph = randomConnectedGraph({ servers: 25, averageDegree: 3, seed });
    assert.equal(graph.names.length, 25);
    assert.equal(graph.links.length, 38); // round(25 · 3 / 2)
    const keys = graph.links.map(([a, b]) => [a, b].sort().join(" "));
    assert.equal(new Set(keys).size, keys.length, "a link listed twice");
    assert.ok(graph.links.every(([a, b]) => a !== b), "a server linked to itself");
    assert.equal(hopDistances(graph, "s00").size, 25, "not connected");
    assert.deepEqual(randomConnectedGraph({ servers: 25, averageDegree: 3, seed }), graph);
  }
  assert.notDeepEqual(
    randomConnectedGraph({ servers: 25, averageDegree: 3, seed: 1 }),
    randomConnectedGraph({ servers: 25, averageDegree: 3, seed: 2 }),
  );
});

Deno.test("randomConnectedGraph() refuses a link count no connected simple graph has", () => {
  assert.throws(() => randomConnectedGraph({ servers: 10, averageDegree: 1, seed: 1 }), RangeError);
  assert.throws(() => randomConnectedGraph({ servers: 4, averageDegree: 4, seed: 1 }), RangeError);
});

Deno.test("hop distances and the diameter of the contract's five servers", () => {
  assert.deepEqual(
    Object.fromEntries(hopDistances(CONTRACT_GRAPH, "Hill")),
    { Hill: 0, Jaquez: 1, Smith: 1, Singleton: 2, Campbell: 2 },
  );
  assert.equal(graphDiameter(CONTRACT_GRAPH), 2);
  assert.equal(floodMessagesPerUpdate(CONTRACT_GRAPH), 8);
});

Deno.test("graphDiameter() throws on a graph that is not connected", () => {
  assert.throws(() => graphDiameter({ names: ["a", "b", "c"], links: [["a", "b"]] }), RangeError);
});
