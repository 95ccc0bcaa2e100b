/**
 * Start-up mistakes, run as real processes: each exits 2 (a port in use: 1 or 2) with
 * exactly one line on stderr and no stack trace (contract §2).
 */
import assert from "node:assert/strict";
import {
  type CliRun,
  freePorts,
  HERD_LINKS,
  HERD_NAMES,
  runHerdCli,
} from "../support/herd_processes.ts";

/** CLI runs at once: each is a Deno start-up, and the machine has two cores. */
const RUNS_IN_PARALLEL_MAX = 4;

interface BadStart {
  name: string;
  args: (dir: string) => string[];
  /** herd.json text written to DIR/herd.json before the run, if any. */
  config?: (ports: number[]) => string;
  env?: Record<string, string>;
  /** What the one line must mention, when the contract names it. */
  mentions?: RegExp;
}

function herdJson(ports: number[], change: (config: Record<string, unknown>) => void = () => {}) {
  const config: Record<string, unknown> = {
    servers: Object.fromEntries(HERD_NAMES.map((name, index) => [name, { port: ports[index] }])),
    links: HERD_LINKS.map((link) => [...link]),
  };
  change(config);
  return JSON.stringify(config);
}

const withConfig = (dir: string, ...rest: string[]) => [
  "--config",
  `${dir}/herd.json`,
  "--log-dir",
  `${dir}/logs`,
  ...rest,
];

const BAD_STARTS: BadStart[] = [
  {
    name: "an unknown flag",
    args: (dir) => withConfig(dir, "--name", "Hill", "--bogus"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "an unknown flag with a value",
    args: (dir) => withConfig(dir, "--name", "Hill", "--port=1"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "--name missing",
    args: (dir) => withConfig(dir),
    config: (ports) => herdJson(ports),
  },
  {
    name: "--name without its value",
    args: (dir) => [...withConfig(dir), "--name"],
    config: (ports) => herdJson(ports),
  },
  {
    name: "--name not in the config",
    args: (dir) => withConfig(dir, "--name", "Nobody"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "--name in the wrong case",
    args: (dir) => withConfig(dir, "--name", "hill"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "a config file that does not exist",
    args: (
      dir,
    ) => ["--name", "Hill", "--config", `${dir}/missing.json`, "--log-dir", `${dir}/logs`],
  },
  {
    name: "a config that is not JSON",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: () => '{"servers": {"Hill": {"port": 1}',
  },
  {
    name: "a config that is JSON but not an object",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: () => "[1, 2, 3]",
  },
  {
    name: "a self-link",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) =>
      herdJson(ports, (config) => (config.links as string[][]).push(["Hill", "Hill"])),
  },
  {
    name: "a link naming an unknown server",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) =>
      herdJson(ports, (config) => (config.links as string[][]).push(["Hill", "Nobody"])),
  },
  {
    name: "the same link twice in reverse order",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) =>
      herdJson(ports, (config) => (config.links as string[][]).push(["Jaquez", "Hill"])),
  },
  {
    name: "the same host and port twice",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) =>
      herdJson(ports, (config) => {
        const servers = config.servers as Record<string, { port: number; host?: string }>;
        servers.Smith = { port: servers.Hill.port, host: "127.0.0.1" };
      }),
  },
  {
    name: "a server name with white space",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) =>
      herdJson(ports, (config) => {
        (config.servers as Record<string, unknown>)["Bad Name"] = { port: ports[5] };
      }),
  },
  {
    name: "an empty server name",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) =>
      herdJson(ports, (config) => {
        (config.servers as Record<string, unknown>)[""] = { port: ports[5] };
      }),
  },
  {
    name: "an unknown key in limits",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) => herdJson(ports, (config) => (config.limits = { lineBytesMaximum: 1024 })),
  },
  {
    name: "a negative limit",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) => herdJson(ports, (config) => (config.limits = { placesTimeoutMs: -5 })),
  },
  {
    name: "a limit that is not a number",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) => herdJson(ports, (config) => (config.limits = { lineBytesMax: "big" })),
  },
  {
    name: "a --data-dir that is a file",
    args: (dir) => withConfig(dir, "--name", "Hill", "--data-dir", `${dir}/herd.json`),
    config: (ports) => herdJson(ports),
    mentions: /--data-dir .*herd\.json/,
  },
  {
    name: "--places google without GOOGLE_PLACES_API_KEY",
    args: (dir) => withConfig(dir, "--name", "Hill", "--places", "google"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "--places google-new without GOOGLE_PLACES_API_KEY",
    args: (dir) => withConfig(dir, "--name", "Hill", "--places", "google-new"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "--places with an unknown provider",
    args: (dir) => withConfig(dir, "--name", "Hill", "--places", "bing"),
    config: (ports) => herdJson(ports),
  },
  {
    name: "--log-max-bytes below its minimum",
    args: (dir) => withConfig(dir, "--name", "Hill", "--log-max-bytes", "10"),
    config: (ports) => herdJson(ports),
    mentions: /--log-max-bytes/,
  },
  {
    name: "--log-max-bytes not a number",
    args: (dir) => withConfig(dir, "--name", "Hill", "--log-max-bytes", "abc"),
    config: (ports) => herdJson(ports),
    mentions: /--log-max-bytes/,
  },
  {
    name: "--log-files 0",
    args: (dir) => withConfig(dir, "--name", "Hill", "--log-files", "0"),
    config: (ports) => herdJson(ports),
    mentions: /--log-files/,
  },
  {
    name: "--log-format with an unknown format",
    args: (dir) => withConfig(dir, "--name", "Hill", "--log-format", "xml"),
    config: (ports) => herdJson(ports),
    mentions: /--log-format/,
  },
  {
    name: "an empty HERD_SECRET",
    args: (dir) => withConfig(dir, "--name", "Hill"),
    config: (ports) => herdJson(ports),
    env: { HERD_SECRET: "" },
    mentions: /HERD_SECRET is empty/,
  },
];

function assertOneLineNoStack(run: CliRun, what: string): string {
  const shown = `${what}: exit ${run.code}, stderr ${JSON.stringify(run.stderr)}`;
  assert.ok(run.stderr.endsWith("\n"), `${shown}: stderr is not one complete line`);
  const lines = run.stderr.slice(0, -1).split("\n");
  assert.equal(lines.length, 1, `${shown}: not exactly one line`);
  assert.ok(lines[0].trim().length > 0, `${shown}: the line is empty`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `${shown}: stack trace`);
  assert.doesNotMatch(run.stderr, /Uncaught|Stack backtrace/, `${shown}: uncaught error`);
  assert.doesNotMatch(run.stdout, /listening on/, `${shown}: it started listening`);
  return lines[0];
}

/** Runs `tasks` with at most `limit` at once. */
async function inBatches<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < tasks.length; start += limit) {
    results.push(...await Promise.all(tasks.slice(start, start + limit).map((task) => task())));
  }
  return results;
}

Deno.test("bad start-ups exit 2 with one line on stderr and no stack trace", async () => {
  const dir = await Deno.makeTempDir({ prefix: "herd_cli_" });
  try {
    const failures: string[] = [];
    await inBatches(
      BAD_STARTS.map((bad, index) => async () => {
        const caseDir = `${dir}/${index}`;
        await Deno.mkdir(caseDir);
        if (bad.config) await Deno.writeTextFile(`${caseDir}/herd.json`, bad.config(freePorts(6)));
        const run = await runHerdCli(bad.args(caseDir), { env: bad.env });
        try {
          assert.equal(run.code, 2, `${bad.name}: exit ${run.code}, stderr ${run.stderr}`);
          const line = assertOneLineNoStack(run, bad.name);
          if (bad.mentions) assert.match(line, bad.mentions, bad.name);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }),
      RUNS_IN_PARALLEL_MAX,
    );
    assert.deepEqual(failures, [], `\n${failures.join("\n")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a port in use exits 1 or 2 with one line on stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "herd_cli_" });
  const squatter = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const ports = freePorts(5);
    ports[1] = (squatter.addr as Deno.NetAddr).port;
    await Deno.writeTextFile(`${dir}/herd.json`, herdJson(ports));
    const run = await runHerdCli(withConfig(dir, "--name", "Hill"));
    assert.ok(run.code === 1 || run.code === 2, `exit ${run.code}: ${run.stderr}`);
    assertOneLineNoStack(run, "port in use");
  } finally {
    squatter.close();
    await Deno.remove(dir, { recursive: true });
  }
});
