/**
 * Flood propagation over two hops, Hill → Campbell, in the full five-server herd: an open
 * loop of IAMATs at a steady rate to Hill (one new client per update), a sample of which
 * (200/s) is polled at Campbell with `WHATSAT id 0.01 1` until Campbell holds it. The
 * figure is an upper bound: from the IAMAT sent to the reply of the first poll that found
 * it; the last poll that did not find it gives the lower bound. Their gap is the poll
 * round trip, the resolution. Afterwards every update sent is looked up at Campbell: any
 * not there with exactly its time is lost.
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

export interface FloodRow {
  rate: number;
  load: LoadResult;
  check: LoadResult;
  /** Updates not held at Campbell with their time; undefined when the source fell behind. */
  lost: number | undefined;
}

export interface FloodResults {
  path: string;
  rows: FloodRow[];
}

export async function runFlood(context: Context): Promise<FloodResults> {
  const free = freePorts(HERD_NAMES.length);
  const ports = Object.fromEntries(HERD_NAMES.map((name, i) => [name, free[i]]));
  const config = await writeConfig(context.dirs, "flood.json", ports, HERD_LINKS);
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
      rows.push(await floodAtRate(context, ports[SOURCE], ports[DESTINATION], rate, `f${index}`));
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
  rate: number,
  ns: string,
): Promise<FloodRow> {
  const { floodMs, floodTrackPerSecond } = context.settings;
  const timeBase = Math.floor(Date.now() / 1000);
  const load = await context.generator.run("flood", {
    port: sourcePort,
    dst: destinationPort,
    rate,
    durationMs: floodMs,
    trackRate: floodTrackPerSecond,
    ns,
    timeBase,
  }, floodMs + 30_000);
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
  };
}
