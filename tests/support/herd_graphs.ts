/**
 * Herd topologies for scale tests and the bench, as pure functions: a rows × columns grid, a
 * seeded random connected graph of a given average degree, hop distances and the diameter
 * (breadth-first search), and how many link messages the contract's flooding costs per
 * update. Knows nothing of ports, processes or herd.json beyond names and links.
 */

/** Server names and the links between them, as herd.json lists them. */
export interface HerdGraph {
  names: string[];
  links: Array<readonly [string, string]>;
}

/**
 * A `rows` × `columns` grid: server `r{row}c{column}` linked to its right and lower
 * neighbours, so E = rows·(columns − 1) + columns·(rows − 1) (5 × 5: 25 servers, 40 links).
 *
 * @example
 * ```ts
 * const { names, links } = gridGraph({ rows: 5, columns: 5 });
 * ```
 */
export function gridGraph(options: { rows: number; columns: number }): HerdGraph {
  const { rows, columns } = options;
  const name = (row: number, column: number) => `r${row}c${column}`;
  const names: string[] = [];
  const links: Array<readonly [string, string]> = [];
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      names.push(name(row, column));
      if (column + 1 < columns) links.push([name(row, column), name(row, column + 1)]);
      if (row + 1 < rows) links.push([name(row, column), name(row + 1, column)]);
    }
  }
  return { names, links };
}

/** Options of {@link randomConnectedGraph}. */
export interface RandomGraphOptions {
  servers: number;
  /** 2E / N; the link count is rounded to the nearest integer. */
  averageDegree: number;
  /** The same seed gives the same graph, so a run can be repeated. */
  seed: number;
}

/**
 * A connected graph of `servers` servers named `s00`, `s01`, …: a random tree (each server
 * linked to one chosen among those before it) so that every server is reachable, then random
 * links between servers not yet linked until there are round(N · averageDegree / 2).
 * Throws when that many links cannot exist (fewer than N − 1, or more than N(N − 1)/2).
 *
 * @example
 * ```ts
 * const graph = randomConnectedGraph({ servers: 25, averageDegree: 3, seed: 12 });
 * ```
 */
export function randomConnectedGraph(options: RandomGraphOptions): HerdGraph {
  const { servers, averageDegree } = options;
  const linkCount = Math.round((servers * averageDegree) / 2);
  if (linkCount < servers - 1 || linkCount > (servers * (servers - 1)) / 2) {
    throw new RangeError(`no connected graph of ${servers} servers has ${linkCount} links`);
  }
  const random = seededRandom(options.seed);
  const pick = (below: number) => Math.floor(random() * below);
  const width = String(servers - 1).length;
  const names = Array.from(
    { length: servers },
    (_, index) => `s${String(index).padStart(width, "0")}`,
  );
  const linked = new Set<string>();
  const links: Array<readonly [string, string]> = [];
  const link = (a: number, b: number) => {
    const [low, high] = a < b ? [a, b] : [b, a];
    const key = `${low} ${high}`;
    if (low === high || linked.has(key)) return;
    linked.add(key);
    links.push([names[low], names[high]]);
  };
  for (let index = 1; index < servers; index++) link(index, pick(index));
  while (links.length < linkCount) link(pick(servers), pick(servers));
  return { names, links };
}

/** Each server's neighbours. */
export function neighboursOf(graph: HerdGraph): Map<string, string[]> {
  const neighbours = new Map(graph.names.map((name) => [name, [] as string[]]));
  for (const [a, b] of graph.links) {
    neighbours.get(a)!.push(b);
    neighbours.get(b)!.push(a);
  }
  return neighbours;
}

/**
 * Hops from `origin` to every server (breadth-first search); a server that cannot be
 * reached is absent from the map.
 */
export function hopDistances(graph: HerdGraph, origin: string): Map<string, number> {
  const neighbours = neighboursOf(graph);
  const distances = new Map([[origin, 0]]);
  const queue = [origin];
  for (let head = 0; head < queue.length; head++) {
    const here = queue[head];
    for (const next of neighbours.get(here) ?? []) {
      if (distances.has(next)) continue;
      distances.set(next, distances.get(here)! + 1);
      queue.push(next);
    }
  }
  return distances;
}

/** The most hops an update from `origin` needs to reach every server (its eccentricity). */
export function eccentricity(graph: HerdGraph, origin: string): number {
  const distances = hopDistances(graph, origin);
  if (distances.size !== graph.names.length) {
    throw new RangeError(`the graph is not connected: ${origin} reaches ${distances.size}`);
  }
  return Math.max(...distances.values());
}

/** The largest eccentricity: the most hops any update needs. Throws if not connected. */
export function graphDiameter(graph: HerdGraph): number {
  return Math.max(...graph.names.map((name) => eccentricity(graph, name)));
}

/**
 * Link messages (`U` lines) one new update costs when every link is up: exactly 2E − N + 1.
 *
 * Why exact for this implementation: a server floods an update it *accepts* to every
 * neighbour but the one it came from, and drops one it already holds without sending
 * anything. A new update is accepted exactly once per server. The origin accepts it from
 * the client and sends deg(origin) lines; each of the other N − 1 servers accepts it from
 * the first neighbour it arrives from and sends deg(v) − 1. The sum is
 * Σ deg(v) − (N − 1) = 2E − N + 1, whatever order the lines race in: the N − 1 first
 * arrivals form a spanning tree, and every other line (2E − N + 1 − (N − 1) = 2(E − N + 1))
 * is a duplicate dropped on arrival — two per link outside that tree. The figure holds while
 * no newer update of the same client overtakes it and no link is down.
 */
export function floodMessagesPerUpdate(graph: HerdGraph): number {
  return 2 * graph.links.length - graph.names.length + 1;
}

/** A small deterministic generator (mulberry32): numbers in [0, 1) from a 32-bit seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}
