/**
 * `deno task bench`: herd's own benchmark. Starts what it needs on loopback — the bare Deno
 * ceiling (bench/ceiling.ts), herd servers (`deno run -A main.ts`, default log level) and
 * the native load generator (bench/herdload.c, built with the system `cc`) — with servers
 * pinned to core 0 and the generator to core 1. Prints one table of every scenario and the
 * issue's targets, and writes the same as JSON to bench/results/<UTC stamp>.json.
 *
 *   deno task bench                      # the full run, about 3 minutes
 *   deno task bench --quick              # short rows and small counts, under a minute
 *   deno task bench --only flood,idle    # some scenarios (throughput, flood, memory, idle, catchup,
 *                                        # monitor, scale, tls, logs)
 *   deno task bench --keep-logs          # keep the servers' logs and configs (path printed)
 *
 * Every process it starts is stopped by its pid when the run ends, fails or is interrupted.
 */
import { type Context, settingsFor } from "./context.ts";
import { buildGenerator, Generator } from "./generator.ts";
import { Processes } from "./processes.ts";
import { type BenchResults, formatTable, verdicts } from "./report.ts";
import { runCatchUp } from "./scenario_catch_up.ts";
import { runFlood } from "./scenario_flood.ts";
import { runLogCost } from "./scenario_logs.ts";
import { runIdle, runMemory } from "./scenario_memory.ts";
import { runMonitorCost } from "./scenario_monitor.ts";
import { runScale } from "./scenario_scale.ts";
import { runThroughput } from "./scenario_throughput.ts";
import { runTlsCost } from "./scenario_tls.ts";

const RESULTS_DIR = new URL("./results/", import.meta.url).pathname;
const SCENARIOS = [
  "throughput",
  "flood",
  "memory",
  "idle",
  "catchup",
  "monitor",
  "scale",
  "tls",
  "logs",
] as const;
type Scenario = typeof SCENARIOS[number];

interface Options {
  quick: boolean;
  only: Set<Scenario>;
  keepLogs: boolean;
}

function usage(message: string): never {
  console.error(
    `bench: ${message}\nusage: deno task bench [--quick] [--only ${
      SCENARIOS.join(",")
    }] [--keep-logs]`,
  );
  Deno.exit(2);
}

function parseOptions(args: string[]): Options {
  const options: Options = { quick: false, only: new Set(SCENARIOS), keepLogs: false };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--quick") options.quick = true;
    else if (args[i] === "--keep-logs") options.keepLogs = true;
    else if (args[i] === "--only" && i + 1 < args.length) {
      const names = args[++i].split(",").filter((name) => name !== "");
      const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
      if (unknown.length > 0 || names.length === 0) {
        usage(`--only: unknown scenario ${unknown.join(", ")}`);
      }
      options.only = new Set(names as Scenario[]);
    } else usage(`unknown argument ${args[i]}`);
  }
  return options;
}

/** Servers on core 0, generator (and this driver, mostly idle) on core 1 — given 2 cores. */
async function chooseCores(): Promise<{ server?: string; generator?: string; pinning: string }> {
  const cores = navigator.hardwareConcurrency;
  const taskset = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", "1", String(Deno.pid)],
  })
    .output().catch(() => undefined);
  if (cores < 2 || !taskset?.success) {
    return {
      pinning: `NOT pinned (${
        cores < 2 ? "one core" : "taskset unavailable"
      }): figures are indicative`,
    };
  }
  return {
    server: "0",
    generator: "1",
    pinning: "servers on core 0, generator and driver on core 1 (taskset)",
  };
}

async function runScenarios(
  context: Context,
  options: Options,
  results: BenchResults,
): Promise<void> {
  const steps: Array<[Scenario, () => Promise<void>]> = [
    ["throughput", async () => void (results.throughput = await runThroughput(context))],
    ["idle", async () => void (results.idle = await runIdle(context))],
    ["memory", async () => void (results.memory = await runMemory(context))],
    ["flood", async () => void (results.flood = await runFlood(context))],
    ["catchup", async () => void (results.catchUp = await runCatchUp(context))],
    ["monitor", async () => void (results.monitor = await runMonitorCost(context))],
    ["scale", async () => void (results.scale = await runScale(context))],
    ["tls", async () => void (results.tls = await runTlsCost(context))],
    ["logs", async () => void (results.logs = await runLogCost(context))],
  ];
  for (const [name, step] of steps) {
    if (!options.only.has(name)) continue;
    const startMs = performance.now();
    try {
      await step();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      results.errors.push({ scenario: name, error: message });
      context.log(`${name} failed: ${message}`);
    } finally {
      await context.processes.stopAll(); // whatever the scenario left running
    }
    context.log(`${name}: ${((performance.now() - startMs) / 1000).toFixed(1)} s`);
  }
}

async function writeResults(results: BenchResults): Promise<string> {
  await Deno.mkdir(RESULTS_DIR, { recursive: true });
  const path = `${RESULTS_DIR}${results.meta.started.replace(/[:.]/g, "-")}.json`;
  await Deno.writeTextFile(path, JSON.stringify(results, null, 2) + "\n");
  return path;
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  const startMs = performance.now();
  const log = (message: string) => console.error(`bench: ${message}`);
  const cores = await chooseCores();
  const processes = new Processes();
  const tmpDir = await Deno.makeTempDir({ prefix: "herd-bench-" });
  const cleanUp = async () => {
    await processes.stopAll();
    if (!options.keepLogs) await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      log(`${signal}: stopping everything this run started`);
      cleanUp().finally(() => Deno.exit(130));
    });
  }
  const context: Context = {
    settings: settingsFor(options.quick),
    processes,
    generator: new Generator(await buildGenerator(), cores.generator, processes),
    dirs: { tmpDir },
    serverCore: cores.server,
    log,
  };
  const results: BenchResults = {
    meta: {
      started: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      host: Deno.hostname(),
      cores: navigator.hardwareConcurrency,
      pinning: cores.pinning,
      quick: options.quick,
      loadAverage: Deno.loadavg().map((load) => load.toFixed(2)).join(" "),
      deno: Deno.version.deno,
      logLevel: "info (the default)",
    },
    errors: [],
  };
  log(`${options.quick ? "quick run" : "full run"}; servers' logs and configs in ${tmpDir}`);
  try {
    await runScenarios(context, options, results);
  } finally {
    await cleanUp();
  }
  results.meta.wallSeconds = (performance.now() - startMs) / 1000;
  results.targets = verdicts(results, context.settings.floodRates);
  console.log(formatTable(results));
  console.log(`JSON: ${await writeResults(results)}`);
}

if (import.meta.main) await main();
