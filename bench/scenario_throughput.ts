/**
 * IAMAT throughput and latency of one herd server against the bare Deno ceiling, in the
 * same run, with the same generator: closed loop at each concurrency and pipelined, row by
 * row (ceiling, then herd, seconds apart, so host noise hits both alike). Then the ceiling's
 * c=64 row again (how much the host drifted during the rows) and offline WHATSAT at c=16.
 */
import { type Context, startSingleServer } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import { freePorts, type Started } from "./processes.ts";

const CEILING = new URL("./ceiling.ts", import.meta.url).pathname;
const CEILING_START_MS = 30_000;
/** Beyond warm-up and window: connecting, every connection's first reply, draining. */
const ROW_SLACK_MS = 20_000;

export interface ThroughputRow {
  label: string;
  conns: number;
  depth: number;
  ceiling: LoadResult;
  herd: LoadResult;
}

export interface ThroughputResults {
  rows: ThroughputRow[];
  /** The ceiling's c=64 row measured again after all rows. */
  ceilingAgain?: LoadResult;
  whatsat: LoadResult;
}

async function startCeiling(context: Context): Promise<{ port: number; process: Started }> {
  const [port] = freePorts(1);
  const process = context.processes.spawn({
    label: "ceiling",
    command: Deno.execPath(),
    args: ["run", "--allow-net", CEILING, String(port)],
    core: context.serverCore,
  });
  await process.waitForLine(/^Ceiling listening on /, CEILING_START_MS);
  return { port, process };
}

/**
 * One closed-loop row of `row.conns` connections against the server on `port` (over TLS,
 * trusting the CA in `row.tlsCa`, when given).
 */
export function closedLoop(
  context: Context,
  port: number,
  row: { conns: number; depth: number; kind?: string; ns?: string; tlsCa?: string },
): Promise<LoadResult> {
  const { warmupMs, measureMs, idsPerConn, whatsatIds } = context.settings;
  const kind = row.kind ?? "iamat";
  return context.generator.run("closed", {
    port,
    kind,
    conns: row.conns,
    depth: row.depth,
    ids: kind === "whatsat" ? whatsatIds : idsPerConn,
    ns: row.ns ?? "tp",
    warmupMs,
    measureMs,
    ...(row.tlsCa === undefined ? {} : { tlsCa: row.tlsCa }),
  }, warmupMs + measureMs + ROW_SLACK_MS);
}

export async function runThroughput(context: Context): Promise<ThroughputResults> {
  const { settings } = context;
  const [ceiling, herd] = await Promise.all([
    startCeiling(context),
    startSingleServer(context, "throughput.json"),
  ]);
  try {
    const shapes = [
      ...settings.conns.map((conns) => ({ label: `iamat c=${conns}`, conns, depth: 1 })),
      {
        label: `pipelined c=${settings.pipelinedConns} k=${settings.pipelinedDepth}`,
        conns: settings.pipelinedConns,
        depth: settings.pipelinedDepth,
      },
    ];
    const rows: ThroughputRow[] = [];
    for (const shape of shapes) {
      context.log(`throughput: ${shape.label}`);
      const ceilingResult = await closedLoop(context, ceiling.port, shape);
      const herdResult = await closedLoop(context, herd.port, shape);
      rows.push({ ...shape, ceiling: ceilingResult, herd: herdResult });
    }
    const ceilingAgain = settings.conns.includes(64)
      ? await closedLoop(context, ceiling.port, { conns: 64, depth: 1 })
      : undefined;
    return { rows, ceilingAgain, whatsat: await runWhatsat(context) };
  } finally {
    await Promise.all([ceiling.process.stop(), herd.process.stop()]);
  }
}

/**
 * Offline WHATSAT on a fresh server (not one still writing the IAMAT rows' logs and holding
 * their clients): 1000 clients registered, then closed loop at c=16.
 */
async function runWhatsat(context: Context): Promise<LoadResult> {
  context.log("whatsat: offline, c=16, radius 10, bound 20");
  const server = await startSingleServer(context, "whatsat.json");
  try {
    await context.generator.run("register", {
      port: server.port,
      ns: "wa",
      count: context.settings.whatsatIds,
      conns: 4,
      depth: 16,
    }, 30_000);
    return await closedLoop(context, server.port, {
      conns: 16,
      depth: 1,
      kind: "whatsat",
      ns: "wa",
    });
  } finally {
    await server.process.stop();
  }
}
