/**
 * What a monitor costs: IAMAT throughput of one server whose monitor is scraped every second
 * (`/metrics` and `/status`, as Prometheus and a dashboard would) against the same server
 * config without a monitor, in one run. Rows alternate — without, with, without, with — so
 * host drift hits both alike, and the spread between rows of the same kind is the run's
 * noise the difference is judged against.
 */
import { type Context, SINGLE_NAME } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import { startServer, waitPlacesReady } from "./herd.ts";
import { freePorts } from "./processes.ts";
import { closedLoop } from "./scenario_throughput.ts";

/** The closed-loop shape of every row: the throughput scenario's main row. */
const CONNS = 64;
/** Rows of each kind; alternating, so that each kind has a spread to show the noise. */
const ROUNDS = 2;
const SCRAPE_INTERVAL_MS = 1000;
const SCRAPED_PATHS = ["/metrics", "/status"];

export interface MonitorCostRow {
  monitored: boolean;
  load: LoadResult;
  /** Scrapes (both paths) made during the row, and the slowest one in ms. */
  scrapes: number;
  scrapeMsMax: number;
}

export interface MonitorCostResults {
  conns: number;
  rows: MonitorCostRow[];
}

/** Writes one server's config, with or without a monitor; returns its path. */
async function writeSingleConfig(
  context: Context,
  file: string,
  port: number,
  monitorPort: number | undefined,
): Promise<string> {
  const server = monitorPort === undefined
    ? { port, host: "127.0.0.1" }
    : { port, host: "127.0.0.1", monitor: `127.0.0.1:${monitorPort}` };
  const path = `${context.dirs.tmpDir}/${file}`;
  await Deno.writeTextFile(path, JSON.stringify({ servers: { [SINGLE_NAME]: server }, links: [] }));
  return path;
}

/** Scrapes `monitorUrl` every second until stopped; counts the scrapes and the slowest. */
function scrapeEverySecond(monitorUrl: string): () => Promise<{ scrapes: number; msMax: number }> {
  let scrapes = 0;
  let msMax = 0;
  let pending: Promise<void> = Promise.resolve();
  const scrape = async () => {
    const startMs = performance.now();
    for (const path of SCRAPED_PATHS) {
      const response = await fetch(`${monitorUrl}${path}`);
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      await response.text();
    }
    scrapes += 1;
    msMax = Math.max(msMax, performance.now() - startMs);
  };
  const timer = setInterval(() => pending = pending.then(scrape), SCRAPE_INTERVAL_MS);
  return async () => {
    clearInterval(timer);
    await pending;
    return { scrapes, msMax };
  };
}

export async function runMonitorCost(context: Context): Promise<MonitorCostResults> {
  const [plainPort, monitoredPort, monitorPort] = freePorts(3);
  const [plainConfig, monitoredConfig] = await Promise.all([
    writeSingleConfig(context, "monitor-off.json", plainPort, undefined),
    writeSingleConfig(context, "monitor-on.json", monitoredPort, monitorPort),
  ]);
  const start = (port: number, config: string) =>
    startServer(context.processes, { name: SINGLE_NAME, port, config, core: context.serverCore });
  const servers = [
    await start(plainPort, plainConfig),
    await start(monitoredPort, monitoredConfig),
  ];
  try {
    await Promise.all(servers.map((server) => waitPlacesReady(server.port)));
    const rows: MonitorCostRow[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const monitored of [false, true]) {
        context.log(
          `monitor: iamat c=${CONNS}, ${monitored ? "monitor scraped 1/s" : "no monitor"}`,
        );
        const stopScraping = monitored
          ? scrapeEverySecond(`http://127.0.0.1:${monitorPort}`)
          : undefined;
        const load = await closedLoop(context, monitored ? monitoredPort : plainPort, {
          conns: CONNS,
          depth: 1,
          ns: `${monitored ? "y" : "n"}${round}`, // two characters: the generator's id prefix
        });
        const scraped = await stopScraping?.();
        rows.push({
          monitored,
          load,
          scrapes: scraped?.scrapes ?? 0,
          scrapeMsMax: scraped?.msMax ?? 0,
        });
      }
    }
    return { conns: CONNS, rows };
  } finally {
    await Promise.all(servers.map((server) => server.process.stop()));
  }
}
