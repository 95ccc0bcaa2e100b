/**
 * How flooding scales: the measurement of tests/support/flood_scale.ts on a 5 × 5 grid of
 * 25 server processes (and, in a full run, a seeded random connected graph of average degree
 * 3), pinned like every bench server: link messages per update beside 2E − N + 1, hops
 * against the diameter, convergence time and a restarted server's catch-up.
 */
import type { Context } from "./context.ts";
import { type FloodScaleFigures, measureFloodScale } from "../tests/support/flood_scale.ts";
import { gridGraph, type HerdGraph, randomConnectedGraph } from "../tests/support/herd_graphs.ts";

/** Fixed, so a run repeats which servers get the updates and the random graph's links. */
const SEED = 12;

export interface ScaleResults {
  rows: FloodScaleFigures[];
}

export async function runScale(context: Context): Promise<ScaleResults> {
  const { scaleUpdates, scaleUpdatesWhileDown, quick } = context.settings;
  const graphs: Array<[string, HerdGraph]> = [["grid-5x5", gridGraph({ rows: 5, columns: 5 })]];
  if (!quick) {
    graphs.push([
      "random-25-degree-3",
      randomConnectedGraph({ servers: 25, averageDegree: 3, seed: SEED }),
    ]);
  }
  const rows: FloodScaleFigures[] = [];
  for (const [label, graph] of graphs) {
    context.log(`scale: ${label}, ${graph.names.length} servers, ${scaleUpdates} updates`);
    rows.push(
      await measureFloodScale({
        label,
        graph,
        updates: scaleUpdates,
        updatesWhileDown: scaleUpdatesWhileDown,
        seed: SEED,
        launcher: context.serverCore === undefined ? [] : ["taskset", "-c", context.serverCore],
      }),
    );
  }
  return { rows };
}
