/**
 * What the log costs: IAMAT throughput of one server at the default level (`info`: one
 * record per reply) whose log is never rotated, against the same server with its log
 * rotated every 1 MiB (`--log-max-bytes`, `--log-files`), in text and in JSON, in one run.
 * Rows alternate — never, rotated, json, never, rotated, json — as in the monitor section,
 * and the spread between rows of one kind is the noise. Afterwards the rotating text
 * server's kept files give the mean bytes per record, from which the report estimates how
 * often it rotated.
 */
import { type Context, SINGLE_NAME } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import { logDirFor, startServer, waitPlacesReady, writeConfig } from "./herd.ts";
import { freePorts } from "./processes.ts";
import { closedLoop } from "./scenario_throughput.ts";

/** The closed-loop shape of every row: the throughput scenario's main row. */
const CONNS = 64;
/** Rows of each kind; alternating, so that each kind has a spread to show the noise. */
const ROUNDS = 2;
/** The rotated rows' file size, and files kept in all. */
const ROTATE_BYTES = 1024 * 1024;
const LOG_FILES = 5;
/** `--log-max-bytes`' maximum (2^50): a log that is never rotated. */
const NEVER_ROTATED_BYTES = 2 ** 50;

export type LogKind = "never" | "rotated" | "json";

const KINDS: ReadonlyArray<{ kind: LogKind; label: string; ns: string; args: string[] }> = [
  {
    kind: "never",
    label: "text, never rotated",
    ns: "n",
    args: ["--log-max-bytes", String(NEVER_ROTATED_BYTES)],
  },
  {
    kind: "rotated",
    label: "text, rotated every 1 MiB",
    ns: "r",
    args: ["--log-max-bytes", String(ROTATE_BYTES), "--log-files", String(LOG_FILES)],
  },
  {
    kind: "json",
    label: "json, rotated every 1 MiB",
    ns: "j",
    args: [
      "--log-max-bytes",
      String(ROTATE_BYTES),
      "--log-files",
      String(LOG_FILES),
      "--log-format",
      "json",
    ],
  },
];

export interface LogCostRow {
  kind: LogKind;
  load: LoadResult;
}

/** What the rotating text server's kept files held when it stopped. */
export interface KeptLog {
  files: number;
  bytes: number;
  lines: number;
}

export interface LogCostResults {
  conns: number;
  rotateBytes: number;
  logFiles: number;
  rows: LogCostRow[];
  /** The rotating text server's kept files, read after it stopped. */
  rotatedLog?: KeptLog;
}

/** The label of a kind of row, for the progress lines and the report. */
export function logKindLabel(kind: LogKind): string {
  return KINDS.find((k) => k.kind === kind)!.label;
}

/** Sums the bytes and lines of `NAME.log` and `NAME.log.N` in `dir`. */
async function readKeptLog(dir: string): Promise<KeptLog> {
  const kept = { files: 0, bytes: 0, lines: 0 };
  const pattern = new RegExp(`^${SINGLE_NAME}\\.log(\\.\\d+)?$`);
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !pattern.test(entry.name)) continue;
    const bytes = await Deno.readFile(`${dir}/${entry.name}`);
    kept.files += 1;
    kept.bytes += bytes.length;
    for (const byte of bytes) if (byte === 0x0a) kept.lines += 1;
  }
  return kept;
}

export async function runLogCost(context: Context): Promise<LogCostResults> {
  const ports = freePorts(KINDS.length);
  const configs = await Promise.all(
    KINDS.map(({ kind }, i) =>
      writeConfig(context.dirs, `logs-${kind}.json`, { [SINGLE_NAME]: ports[i] }, [])
    ),
  );
  const servers = [];
  const results: LogCostResults = {
    conns: CONNS,
    rotateBytes: ROTATE_BYTES,
    logFiles: LOG_FILES,
    rows: [],
  };
  try {
    for (const [i, { args }] of KINDS.entries()) {
      servers.push(
        await startServer(context.processes, {
          name: SINGLE_NAME,
          port: ports[i],
          config: configs[i],
          core: context.serverCore,
          args,
        }),
      );
    }
    await Promise.all(servers.map((server) => waitPlacesReady(server.port)));
    // One row each before measuring: a fresh server's first row runs code not yet optimised,
    // which made every kind's first round the slower one.
    for (const [i, { kind }] of KINDS.entries()) {
      context.log(`logs: warming up the ${kind} server`);
      await closedLoop(context, ports[i], { conns: CONNS, depth: 1, ns: `w${i}` });
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, { kind, label, ns }] of KINDS.entries()) {
        context.log(`logs: iamat c=${CONNS}, ${label}`);
        const load = await closedLoop(context, ports[i], {
          conns: CONNS,
          depth: 1,
          ns: `${ns}${round}`, // two characters: the generator's id prefix
        });
        results.rows.push({ kind, load });
      }
    }
  } finally {
    await Promise.all(servers.map((server) => server.process.stop()));
  }
  // Read after the server stopped, its queued records written.
  const rotated = KINDS.findIndex(({ kind }) => kind === "rotated");
  results.rotatedLog = await readKeptLog(logDirFor(configs[rotated]));
  return results;
}
