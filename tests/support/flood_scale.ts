/**
 * How flooding scales, measured on a real herd of any shape (tests/integration/scale_test.ts
 * and the bench's `scale` section share it): every server its own process, on the Google
 * provider pointed at the tests' fake (so no process loads the offline data set), each with
 * a monitor. Once every link is up, K updates (each a new client) go to seeded-random
 * servers, one at a time; then one server is killed, M more updates are made, and it is
 * restarted to catch up.
 *
 * Figures and where they come from:
 * - link messages per update: the sum of every server's `floods_sent` counter (its /status)
 *   over K — exact whatever the CPU, to set beside 2E − N + 1;
 * - hops: each server logs (at info) `flood from PEER: AT …` for every update it receives;
 *   the first such line per update names the neighbour it accepted it from, so following
 *   those back to the origin gives the path each first arrival took;
 * - convergence time: the first arrival's log timestamp minus the origin's receive time
 *   (client time + skew, from the AT line), per update the latest server — milliseconds on
 *   processes sharing the machine's cores, so a bound of this machine, not of the design;
 * - catch-up: what the restarted server received on its links (/status `updatesReceived`,
 *   `bytesReceived`) and sent on as floods while rebuilding its store.
 */
import { startFakePlaces } from "../fake_places.ts";
import {
  eccentricity,
  floodMessagesPerUpdate,
  graphDiameter,
  type HerdGraph,
  hopDistances,
  neighboursOf,
  seededRandom,
} from "./herd_graphs.ts";
import { delay, type Herd, pollUntil, startHerd } from "./herd_processes.ts";
import { waitAllHold } from "./held_state.ts";
import { WireClient } from "./wire_client.ts";

/** The Google key the servers are given; the fake accepts only it. */
const FAKE_PLACES_KEY = "fake-scale-key";
const LOCATION = "+34.068930-118.445127";
/** Between two updates, so one update's flood is (mostly) over before the next begins. */
const UPDATE_SPACING_MS = 50;
/** 25 processes start at once on two cores: each may take a while to listen. */
const LISTEN_TIMEOUT_MS = 60_000;
const LINKS_UP_TIMEOUT_MS = 30_000;
const HELD_TIMEOUT_MS = 30_000;
const MONITOR_TIMEOUT_MS = 5_000;
/** A first-arrival log line: timestamp, the neighbour it came from, the client id. */
const FLOOD_FROM_LINE = /^(\S+) \[INF\] flood from (\S+): AT \S+ \S+ (\S+) /gm;

/** Options of {@link measureFloodScale}. */
export interface FloodScaleOptions {
  /** Names the run in its figures and its client ids: no white space. */
  label: string;
  graph: HerdGraph;
  /** K: updates made with every link up. */
  updates: number;
  /** M: updates made while one server is down, before it restarts. */
  updatesWhileDown: number;
  /** Seeds which servers get the updates, so a run can be repeated. */
  seed: number;
  /** A command every server runs under (the bench pins them: `["taskset", "-c", "0"]`). */
  launcher?: readonly string[];
}

/** What one run measured. */
export interface FloodScaleFigures {
  label: string;
  servers: number;
  links: number;
  diameter: number;
  /** 2E − N + 1: see `floodMessagesPerUpdate`. */
  expectedMessagesPerUpdate: number;
  updates: number;
  /** Σ floods_sent / K. */
  messagesPerUpdate: number;
  /** Σ floods_received / K, after every line sent has arrived. */
  receivedPerUpdate: number;
  hops: {
    /** The most hops any first arrival took, over all updates. */
    max: number;
    /** The largest eccentricity among the updates' origins: the fewest hops `max` could be. */
    eccentricityMax: number;
    /** First arrivals that came along a shortest path, of all (N − 1) · K. */
    onShortestPath: number;
    arrivals: number;
  };
  /** Per update, origin receive → the last server's first arrival (ms). */
  convergenceMs: { median: number; max: number };
  /** Each server's resident memory after the K updates (VmRSS), MB. */
  serverRssMb: { median: number; max: number };
  catchUp: {
    server: string;
    linksOfServer: number;
    /** Clients it held again afterwards: K + M. */
    clients: number;
    /** `U` lines it received on its links from its restart until it held them all. */
    updatesReceived: number;
    bytesReceived: number;
    /** Floods it sent on while rebuilding (each caught-up update to its other neighbours). */
    floodsSent: number;
    /** From spawn to holding every client, ms (start-up and dial included). */
    totalMs: number;
  };
}

/** One update a run made. */
interface MadeUpdate {
  clientId: string;
  origin: string;
  atLine: string;
}

/**
 * Starts the herd of `options.graph`, measures it as the module header says, stops it.
 *
 * @example
 * ```ts
 * const figures = await measureFloodScale({
 *   label: "grid", graph: gridGraph({ rows: 5, columns: 5 }), updates: 20,
 *   updatesWhileDown: 10, seed: 1,
 * });
 * console.log(formatFloodScaleLine(figures));
 * ```
 */
export async function measureFloodScale(options: FloodScaleOptions): Promise<FloodScaleFigures> {
  const { graph, label } = options;
  await using places = await startFakePlaces({ apiKey: FAKE_PLACES_KEY });
  await using herd = await startHerd({
    names: graph.names,
    links: graph.links,
    monitors: true,
    args: ["--places", "google", "--places-url", places.url, "--log-level", "info"],
    env: { GOOGLE_PLACES_API_KEY: FAKE_PLACES_KEY },
    launcher: options.launcher,
    listenTimeoutMs: LISTEN_TIMEOUT_MS,
  });
  await waitLinksUp(herd, graph.names);
  const random = seededRandom(options.seed);
  const pickServer = (among: readonly string[]) => among[Math.floor(random() * among.length)];

  const made: MadeUpdate[] = [];
  for (let index = 0; index < options.updates; index++) {
    made.push(await makeUpdate(herd, pickServer(graph.names), `${label}.u${index}`));
    await delay(UPDATE_SPACING_MS);
  }
  const expected = new Map(made.map((update) => [update.clientId, update.atLine]));
  await waitAllHold(herd, expected, graph.names, { timeoutMs: HELD_TIMEOUT_MS });
  // Every server has accepted every update, and a server floods as it accepts: the sent
  // counters are final. Received ones are final once every line sent has arrived.
  const sent = await sumCounter(herd, graph.names, "floods_sent");
  const received = await pollUntil(async () => {
    const total = await sumCounter(herd, graph.names, "floods_received");
    return total === sent && total;
  }, { timeoutMs: HELD_TIMEOUT_MS, what: `${sent} floods to arrive` });
  const arrivals = await firstArrivals(herd, graph.names, made);
  const rssMb = await Promise.all(graph.names.map((name) => residentMb(herd.process(name).pid)));

  const catchUp = await restartOne(herd, graph, {
    label,
    updatesWhileDown: options.updatesWhileDown,
    pickServer,
    expected,
  });
  return {
    label,
    servers: graph.names.length,
    links: graph.links.length,
    diameter: graphDiameter(graph),
    expectedMessagesPerUpdate: floodMessagesPerUpdate(graph),
    updates: options.updates,
    messagesPerUpdate: sent / options.updates,
    receivedPerUpdate: received / options.updates,
    ...hopsAndConvergence(graph, made, arrivals),
    serverRssMb: { median: median(rssMb), max: Math.max(...rssMb) },
    catchUp,
  };
}

/** One line of a run's figures, for a test's output or the bench's log. */
export function formatFloodScaleLine(figures: FloodScaleFigures): string {
  const { hops, convergenceMs, catchUp } = figures;
  return `${figures.label}: N=${figures.servers} E=${figures.links} diameter ${figures.diameter}; ` +
    `link messages per update ${figures.messagesPerUpdate.toFixed(2)} ` +
    `(2E-N+1 = ${figures.expectedMessagesPerUpdate}; duplicates dropped ` +
    `${(figures.receivedPerUpdate - (figures.servers - 1)).toFixed(2)}/update); ` +
    `hops max ${hops.max} (origins' eccentricity max ${hops.eccentricityMax}; ` +
    `${hops.onShortestPath}/${hops.arrivals} first arrivals on a shortest path); ` +
    `convergence median ${convergenceMs.median} ms, max ${convergenceMs.max} ms ` +
    `(${figures.servers} processes on ${navigator.hardwareConcurrency} shared cores); ` +
    `RSS per server median ${figures.serverRssMb.median} MB, max ${figures.serverRssMb.max} MB; ` +
    `catch-up of ${catchUp.server} (${catchUp.linksOfServer} links): ${catchUp.clients} clients ` +
    `from ${catchUp.updatesReceived} updates, ${catchUp.bytesReceived} B received, ` +
    `${catchUp.floodsSent} re-flooded, ${catchUp.totalMs} ms from spawn`;
}

/** The monitor's answer at `path` for `server`, as JSON. */
async function monitorJson(herd: Herd, server: string, path: string): Promise<unknown> {
  const response = await fetch(`http://${herd.config.servers[server].monitor}${path}`, {
    signal: AbortSignal.timeout(MONITOR_TIMEOUT_MS),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${server} ${path}: HTTP ${response.status}`);
  return body;
}

interface StatusFigures {
  clients: { held: number };
  counters: Record<string, number>;
  links: Array<{
    peer: string;
    updatesReceived: number;
    bytesReceived: number;
    catchUp: { receivedAll: boolean };
  }>;
}

function serverStatus(herd: Herd, server: string): Promise<StatusFigures> {
  return monitorJson(herd, server, "/status") as Promise<StatusFigures>;
}

/** Polls every server's `/healthz?links=all` until each has all its configured links up. */
async function waitLinksUp(herd: Herd, servers: readonly string[]): Promise<void> {
  let down: string[] = [];
  await pollUntil(async () => {
    const answers = await Promise.all(
      servers.map((server) =>
        monitorJson(herd, server, "/healthz?links=all").then(() => true, () => false)
      ),
    );
    down = servers.filter((_, index) => !answers[index]);
    return down.length === 0;
  }, {
    timeoutMs: LINKS_UP_TIMEOUT_MS,
    intervalMs: 200,
    what: () => `every link up (not yet at ${down.join(", ")})`,
  });
}

async function sumCounter(
  herd: Herd,
  servers: readonly string[],
  counter: string,
): Promise<number> {
  const statuses = await Promise.all(servers.map((server) => serverStatus(herd, server)));
  return statuses.reduce((sum, status) => sum + (status.counters[counter] ?? 0), 0);
}

/** One IAMAT of a new client at `origin`, with the client time now. */
async function makeUpdate(herd: Herd, origin: string, clientId: string): Promise<MadeUpdate> {
  const nowMs = Date.now();
  const time = `${Math.floor(nowMs / 1000)}.${String(nowMs % 1000).padStart(3, "0")}000000`;
  await using client = await WireClient.connect(herd.port(origin));
  await client.write(`IAMAT ${clientId} ${LOCATION} ${time}\n`);
  return { clientId, origin, atLine: await client.readAtReply() };
}

/** Where and when one update first reached one server. */
interface Arrival {
  from: string;
  atMs: number;
}

/**
 * Per client id, per server: the first `flood from` line in its log. Polls, since a log
 * line may reach the file a moment after the update reached the store.
 */
async function firstArrivals(
  herd: Herd,
  servers: readonly string[],
  made: readonly MadeUpdate[],
): Promise<Map<string, Map<string, Arrival>>> {
  const arrivals = new Map(made.map((update) => [update.clientId, new Map<string, Arrival>()]));
  // The origin hears its own update back from its neighbours: never its first arrival.
  const originOf = new Map(made.map((update) => [update.clientId, update.origin]));
  const expectedCount = made.length * (servers.length - 1);
  let found = 0;
  await pollUntil(async () => {
    found = 0;
    for (const server of servers) {
      for (
        const [, atText, from, clientId] of (await herd.readLog(server)).matchAll(FLOOD_FROM_LINE)
      ) {
        const byServer = arrivals.get(clientId);
        if (byServer === undefined || byServer.has(server) || originOf.get(clientId) === server) {
          continue;
        }
        byServer.set(server, { from, atMs: Date.parse(atText) });
      }
    }
    for (const byServer of arrivals.values()) found += byServer.size;
    return found === expectedCount;
  }, {
    timeoutMs: HELD_TIMEOUT_MS,
    what: () => `${expectedCount} first arrivals in the logs (${found})`,
  });
  return arrivals;
}

/** The origin's receive time of an AT line, ms: the client's time plus the skew. */
function originReceiveMs(atLine: string): number {
  const [, , skew, , , clientTime] = atLine.split(" ");
  return (Number(clientTime) + Number(skew)) * 1000;
}

function hopsAndConvergence(
  graph: HerdGraph,
  made: readonly MadeUpdate[],
  arrivals: Map<string, Map<string, Arrival>>,
): Pick<FloodScaleFigures, "hops" | "convergenceMs"> {
  const hops = { max: 0, eccentricityMax: 0, onShortestPath: 0, arrivals: 0 };
  const convergence: number[] = [];
  for (const update of made) {
    const byServer = arrivals.get(update.clientId)!;
    const shortest = hopDistances(graph, update.origin);
    const hopsTo = (server: string): number =>
      server === update.origin ? 0 : hopsTo(byServer.get(server)!.from) + 1;
    for (const server of byServer.keys()) {
      const taken = hopsTo(server);
      hops.max = Math.max(hops.max, taken);
      hops.arrivals += 1;
      if (taken === shortest.get(server)) hops.onShortestPath += 1;
    }
    hops.eccentricityMax = Math.max(hops.eccentricityMax, eccentricity(graph, update.origin));
    const lastMs = Math.max(...[...byServer.values()].map((arrival) => arrival.atMs));
    convergence.push(Math.round(lastMs - originReceiveMs(update.atLine)));
  }
  return { hops, convergenceMs: { median: median(convergence), max: Math.max(...convergence) } };
}

/** The middle value (the upper one of an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A process's VmRSS from /proc, in MB with one decimal. */
async function residentMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kilobytes = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  return Math.round(kilobytes / 102.4) / 10;
}

/**
 * The best-linked server (most neighbours, then nearest the middle) whose loss leaves the
 * others connected, so that updates made while it is down still reach all of them.
 */
function serverToRestart(graph: HerdGraph): string {
  const neighbours = neighboursOf(graph);
  const byLinks = [...graph.names].sort((a, b) =>
    neighbours.get(b)!.length - neighbours.get(a)!.length ||
    eccentricity(graph, a) - eccentricity(graph, b)
  );
  const victim = byLinks.find((candidate) => {
    const rest: HerdGraph = {
      names: graph.names.filter((name) => name !== candidate),
      links: graph.links.filter((link) => !link.includes(candidate)),
    };
    return hopDistances(rest, rest.names[0]).size === rest.names.length;
  });
  if (victim === undefined) throw new RangeError("every server's loss disconnects the herd");
  return victim;
}

/**
 * Kills the server {@link serverToRestart} picks, makes M updates
 * elsewhere, restarts it and waits until it holds all K + M clients; what that cost it.
 */
async function restartOne(
  herd: Herd,
  graph: HerdGraph,
  options: {
    label: string;
    updatesWhileDown: number;
    pickServer: (among: readonly string[]) => string;
    expected: Map<string, string>;
  },
): Promise<FloodScaleFigures["catchUp"]> {
  const neighbours = neighboursOf(graph);
  const victim = serverToRestart(graph);
  const others = graph.names.filter((name) => name !== victim);
  await herd.kill(victim, "SIGKILL");
  for (let index = 0; index < options.updatesWhileDown; index++) {
    const update = await makeUpdate(herd, options.pickServer(others), `${options.label}.d${index}`);
    options.expected.set(update.clientId, update.atLine);
  }
  await waitAllHold(herd, options.expected, others, { timeoutMs: HELD_TIMEOUT_MS });
  const startMs = performance.now();
  herd.spawn(victim);
  await pollUntil(
    async () => (await serverStatus(herd, victim)).clients.held === options.expected.size,
    {
      timeoutMs: HELD_TIMEOUT_MS,
      intervalMs: 20,
      what: `${victim} to hold ${options.expected.size} clients again`,
    },
  );
  const totalMs = Math.round(performance.now() - startMs);
  await waitAllHold(herd, options.expected, [victim], { timeoutMs: HELD_TIMEOUT_MS });
  // Every neighbour streams its catch-up: read the totals once each has said SYNCED.
  const status = await pollUntil(async () => {
    const status = await serverStatus(herd, victim);
    return status.links.every((link) => link.catchUp.receivedAll) && status;
  }, { timeoutMs: HELD_TIMEOUT_MS, what: `every neighbour's catch-up of ${victim} to end` });
  return {
    server: victim,
    linksOfServer: neighbours.get(victim)!.length,
    clients: options.expected.size,
    updatesReceived: status.links.reduce((sum, link) => sum + link.updatesReceived, 0),
    bytesReceived: status.links.reduce((sum, link) => sum + link.bytesReceived, 0),
    floodsSent: status.counters.floods_sent ?? 0,
    totalMs,
  };
}
