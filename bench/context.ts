/**
 * What every scenario of `deno task bench` gets: the run's settings (full or `--quick`),
 * the process registry, the generator, the temporary directories and the cores. Plus the
 * one helper most scenarios share: a fresh single herd server with its data set loaded.
 */
import type { Generator } from "./generator.ts";
import {
  type HerdServer,
  type RunDirs,
  startServer,
  waitPlacesReady,
  writeConfig,
} from "./herd.ts";
import { freePorts, type Processes } from "./processes.ts";

export interface Settings {
  quick: boolean;
  /** Closed-loop rows: warm-up, then the measured window. */
  warmupMs: number;
  measureMs: number;
  /** Closed-loop concurrencies, and the pipelined row's connections × lines in flight. */
  conns: number[];
  pipelinedConns: number;
  pipelinedDepth: number;
  /** Ids each closed-loop connection cycles through; ids registered for WHATSAT. */
  idsPerConn: number;
  whatsatIds: number;
  /** Open-loop flood: updates/s, and how long each rate runs. */
  floodRates: number[];
  floodMs: number;
  floodTrackPerSecond: number;
  /** Memory per client: stored-client counts at which RSS is read. */
  clientCheckpoints: number[];
  /** Cap on registering all of them. */
  registerCapMs: number;
  idleConns: number;
  idleProbes: number;
  /** Catch-up: clients a restarted server must get back, updates made while a link is down. */
  catchUpClients: number;
  catchUpUpdates: number;
  /** Scale: updates made with every link up, and while one server is down. */
  scaleUpdates: number;
  scaleUpdatesWhileDown: number;
}

export function settingsFor(quick: boolean): Settings {
  return {
    quick,
    warmupMs: quick ? 300 : 1000,
    measureMs: quick ? 1000 : 5000,
    conns: [1, 16, 64, 256],
    pipelinedConns: 16,
    pipelinedDepth: 16,
    idsPerConn: 1000,
    whatsatIds: 1000,
    floodRates: [1000, 10_000],
    floodMs: quick ? 1500 : 5000,
    floodTrackPerSecond: 200,
    clientCheckpoints: quick ? [20_000, 100_000] : [100_000, 1_000_000],
    registerCapMs: quick ? 15_000 : 60_000,
    idleConns: quick ? 2000 : 10_000,
    idleProbes: 20,
    catchUpClients: quick ? 10_000 : 100_000,
    catchUpUpdates: 1000,
    scaleUpdates: quick ? 20 : 100,
    scaleUpdatesWhileDown: quick ? 10 : 100,
  };
}

export interface Context {
  settings: Settings;
  processes: Processes;
  generator: Generator;
  dirs: RunDirs;
  /** Where servers run (`taskset -c`), undefined when the machine has one core. */
  serverCore: string | undefined;
  /** A progress line on stderr. */
  log(message: string): void;
}

/** The name a one-server herd runs under. */
export const SINGLE_NAME = "Hill";

/**
 * Starts one herd server alone (no links) on a free port and waits until its offline data
 * set is loaded: a fresh server, so memory figures start from a clean process.
 */
export async function startSingleServer(context: Context, file: string): Promise<HerdServer> {
  const [port] = freePorts(1);
  const config = await writeConfig(context.dirs, file, { [SINGLE_NAME]: port }, []);
  const server = await startServer(context.processes, {
    name: SINGLE_NAME,
    port,
    config,
    core: context.serverCore,
  });
  await waitPlacesReady(port);
  return server;
}
