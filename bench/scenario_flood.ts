/**
 * Flood propagation over two hops, Hill → Campbell, in the full five-server herd: an open
 * loop of IAMATs at a steady rate to Hill (one new client per update), a sample of which
 * (200/s) is polled at Campbell with `WHATSAT id 0.01 1` until Campbell holds it. The
 * figure is an upper bound: from the IAMAT sent to the reply of the first poll that found
 * it; the last poll that did not find it gives the lower bound. Their gap is the poll
 * round trip, the resolution. Afterwards every update sent is looked up at Campbell: any
 * not there with exactly its time is lost.
 *
 * Every server has a loopback monitor; while a rate runs, each one's `/status` is read every
 * 500 ms (five servers × 2 requests/s, next to nothing beside the flood) and the largest
 * `eventLoopLagMs.recent` it shows is kept: how late that server's event loop ran during the
 * row. `recent` is the largest lag of the last second, so the first read is one second into
 * the row (it would otherwise see what came before) and a last one follows the row.
 */
import type { Context } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import {
  HERD_LINKS,
  HERD_NAMES,
  startServer,
  waitLinked,
  waitPlacesReady,
  writeConfig,
} from "./herd.ts";
import { delay, freePorts } from "./processes.ts";

const SOURCE = "Hill";
const DESTINATION = "Campbell";
/** After the last update: how long updates may still be on their way before the check. */
const SETTLE_MS = 500;
const CHECK_CAP_MS = 60_000;
/** How often every server's `/status` is read for its event-loop lag during a row. */
const LAG_POLL_MS = 500;
/** What a status's `eventLoopLagMs.recent` covers: the last second of samples. */
const LAG_WINDOW_MS = 1000;
const LAG_POLL_TIMEOUT_MS = 2000;

/** The event-loop lag the servers' monitors showed during one row, in milliseconds. */
export interface FloodLag {
  /** Each server's largest `eventLoopLagMs.recent` over the row; absent if no read succeeded. */
  perServerMs: Record<string, number>;
  /** The largest of `perServerMs`, and whose it is. */
  maxMs: number | undefined;
  server: string | undefined;
  /** The median of `perServerMs`. */
  medianMs: number | undefined;
  /** `/status` reads made (all servers), and those that failed. */
  polls: number;
  failed: number;
}

export interface FloodRow {
  rate: number;
  load: LoadResult;
  check: LoadResult;
  /** Updates not held at Campbell with their time; undefined when the source fell behind. */
  lost: number | undefined;
  lag: FloodLag;
}

export interface FloodResults {
  path: string;
  rows: FloodRow[];
}

export async function runFlood(context: Context): Promise<FloodResults> {
  const free = freePorts(2 * HERD_NAMES.length);
  const ports = Object.fromEntries(HERD_NAMES.map((name, i) => [name, free[i]]));
  const monitorPorts = Object.fromEntries(
    HERD_NAMES.map((name, i) => [name, free[HERD_NAMES.length + i]]),
  );
  const config = await writeConfig(context.dirs, "flood.json", ports, HERD_LINKS, monitorPorts);
  const servers = await Promise.all(
    HERD_NAMES.map((name) =>
      startServer(context.processes, { name, port: ports[name], config, core: context.serverCore })
    ),
  );
  try {
    // Every server loads its data set at start; none may still be loading on the shared core.
    await Promise.all(servers.map((server) => waitPlacesReady(server.port)));
    await waitLinked(ports[SOURCE], ports[DESTINATION]);
    const rows: FloodRow[] = [];
    for (const [index, rate] of context.settings.floodRates.entries()) {
      context.log(`flood: ${rate} updates/s ${SOURCE} → ${DESTINATION}`);
      rows.push(
        await floodAtRate(
          context,
          ports[SOURCE],
          ports[DESTINATION],
          monitorPorts,
          rate,
          `f${index}`,
        ),
      );
    }
    return { path: `${SOURCE} → ${DESTINATION} (two hops)`, rows };
  } finally {
    await Promise.all(servers.map((server) => server.process.stop()));
  }
}

async function floodAtRate(
  context: Context,
  sourcePort: number,
  destinationPort: number,
  monitorPorts: Record<string, number>,
  rate: number,
  ns: string,
): Promise<FloodRow> {
  const { floodMs, floodTrackPerSecond } = context.settings;
  const timeBase = Math.floor(Date.now() / 1000);
  const stopPolling = pollLag(monitorPorts);
  const load = await context.generator.run("flood", {
    port: sourcePort,
    dst: destinationPort,
    rate,
    durationMs: floodMs,
    trackRate: floodTrackPerSecond,
    ns,
    timeBase,
  }, floodMs + 30_000).catch(async (error) => {
    await stopPolling();
    throw error;
  });
  const lag = await stopPolling();
  await delay(SETTLE_MS);
  const check = await context.generator.run("check", {
    port: destinationPort,
    ns,
    count: load.sent,
    timeBase,
    conns: 4,
    depth: 16,
    maxMs: CHECK_CAP_MS,
  }, CHECK_CAP_MS + 10_000);
  const sourceCaughtUp = Number(load.unacked) === 0 && Number(check.complete) === 1;
  return {
    rate,
    load,
    check,
    lost: sourceCaughtUp ? Number(load.sent) - Number(check.ok) : undefined,
    lag,
  };
}

/**
 * Reads every monitor's `/status` (`monitorPorts[name]`) every {@link LAG_POLL_MS}, from one
 * {@link LAG_WINDOW_MS} on, keeping each server's largest `eventLoopLagMs.recent`. The
 * function returned stops it, reads once more (the row's last second) and sums up.
 */
function pollLag(monitorPorts: Record<string, number>): () => Promise<FloodLag> {
  const largest: Record<string, number> = {};
  let polls = 0;
  let failed = 0;
  const token = Deno.env.get("HERD_MONITOR_TOKEN");
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const readOne = async (name: string, port: number) => {
    polls += 1;
    try {
      const response = await fetch(`http://127.0.0.1:${port}/status`, {
        headers,
        signal: AbortSignal.timeout(LAG_POLL_TIMEOUT_MS),
      });
      const status = await response.json();
      const recentMs = Number(status?.eventLoopLagMs?.recent);
      if (!response.ok || !Number.isFinite(recentMs)) throw new Error("no eventLoopLagMs");
      largest[name] = Math.max(largest[name] ?? 0, recentMs);
    } catch {
      failed += 1;
    }
  };
  const readAll = () =>
    Promise.all(Object.entries(monitorPorts).map(([name, port]) => readOne(name, port)));

  let stopped = false;
  let wake = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const loop = (async () => {
    let nextMs = performance.now() + LAG_WINDOW_MS;
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, Math.max(0, nextMs - performance.now()));
      });
      if (stopped) break;
      await readAll();
      nextMs = Math.max(nextMs + LAG_POLL_MS, performance.now());
    }
  })();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    wake();
    await loop;
    await readAll();
    const figures = Object.entries(largest).sort(([, a], [, b]) => a - b);
    const top = figures.at(-1);
    const middle = figures.length / 2;
    const medianMs = figures.length === 0
      ? undefined
      : figures.length % 2 === 1
      ? figures[Math.floor(middle)][1]
      : (figures[middle - 1][1] + figures[middle][1]) / 2;
    return {
      perServerMs: Object.fromEntries(
        Object.keys(monitorPorts).filter((name) => name in largest).map((name) => [
          name,
          largest[name],
        ]),
      ),
      maxMs: top?.[1],
      server: top?.[0],
      medianMs,
      polls,
      failed,
    };
  };
}
