/**
 * Herd servers for the benchmark: herd.json files in the run's temporary directory, one
 * server started as `deno run -A <runtime flags> main.ts --name NAME --config FILE --log-dir
 * DIR` (the flags every launcher uses; pinned to the servers' core, at the default log level),
 * and the waits that tell it is ready: listening, its offline data set loaded, its neighbours
 * linked.
 */
import { DEFAULT_LINKS, DEFAULT_SERVER_NAMES } from "../lib/config.ts";
import { pollUntil, type Processes, type Started } from "./processes.ts";
import { LineClient, withClient } from "./wire.ts";
import { SERVER_RUNTIME_FLAGS } from "../scripts/permissions.ts";

export const MAIN = new URL("../main.ts", import.meta.url).pathname;
const REPO_DIR = new URL("../", import.meta.url).pathname;

/** The contract's five servers and links, as the built-in default config has them. */
export const HERD_NAMES = DEFAULT_SERVER_NAMES;
export const HERD_LINKS = DEFAULT_LINKS;

const LISTEN_TIMEOUT_MS = 30_000;
const PLACES_READY_TIMEOUT_MS = 30_000;
const LINKED_TIMEOUT_MS = 20_000;

/** Where one benchmark run keeps its configs and, beside each, its servers' logs. */
export interface RunDirs {
  tmpDir: string;
}

/** The log directory of the servers started with the config at `configPath`. */
export function logDirFor(configPath: string): string {
  return configPath.replace(/\.json$/, "") + "-logs";
}

/**
 * Writes a herd.json with `ports[name]` for each server, and a loopback monitor on
 * `monitorPorts[name]` for those given one; returns its path.
 */
export async function writeConfig(
  dirs: RunDirs,
  file: string,
  ports: Record<string, number>,
  links: ReadonlyArray<readonly [string, string]>,
  monitorPorts: Record<string, number> = {},
): Promise<string> {
  const servers = Object.fromEntries(
    Object.entries(ports).map(([name, port]) => {
      const monitorPort = monitorPorts[name];
      return [
        name,
        monitorPort === undefined
          ? { port, host: "127.0.0.1" }
          : { port, host: "127.0.0.1", monitor: `127.0.0.1:${monitorPort}` },
      ];
    }),
  );
  const path = `${dirs.tmpDir}/${file}`;
  await Deno.writeTextFile(path, JSON.stringify({ servers, links }, null, 2));
  return path;
}

/** One running herd server. */
export interface HerdServer {
  name: string;
  port: number;
  process: Started;
}

/**
 * Starts one server and waits until it says it listens; it logs to `logDirFor(config)`.
 * `args` are passed to main.ts after the others (e.g. `--log-max-bytes N`).
 */
export async function startServer(
  processes: Processes,
  options: {
    name: string;
    port: number;
    config: string;
    core: string | undefined;
    args?: string[];
  },
): Promise<HerdServer> {
  const process = processes.spawn({
    label: `herd ${options.name}`,
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      ...SERVER_RUNTIME_FLAGS,
      MAIN,
      "--name",
      options.name,
      "--config",
      options.config,
      "--log-dir",
      logDirFor(options.config),
      ...(options.args ?? []),
    ],
    cwd: REPO_DIR,
    core: options.core,
  });
  await process.waitForLine(new RegExp(`^${options.name} listening on `), LISTEN_TIMEOUT_MS);
  return { name: options.name, port: options.port, process };
}

/**
 * Waits until a WHATSAT is answered with a Places body: the offline data set is loaded
 * (lookups made earlier wait for it). Registers one client of its own to ask about.
 */
export async function waitPlacesReady(port: number): Promise<void> {
  await withClient(port, async (client) => {
    const id = `bench-ready-${port}`;
    const time = (Date.now() / 1000).toFixed(9);
    await client.ask(`IAMAT ${id} +48.856600+002.352200 ${time}`, 5_000);
    const reply = await client.ask(`WHATSAT ${id} 1 1`, PLACES_READY_TIMEOUT_MS);
    if (!reply.includes('"status":"OK"') && !reply.includes('"status":"ZERO_RESULTS"')) {
      throw new Error(`the offline data set did not load on port ${port}: ${reply.slice(0, 200)}`);
    }
  });
}

/**
 * Waits until an update told to the server on `fromPort` is held by the one on `toPort`:
 * the links between them are up. Returns the milliseconds it took.
 */
export async function waitLinked(fromPort: number, toPort: number): Promise<number> {
  const id = `bench-link-${fromPort}-${toPort}-${Date.now()}`;
  const time = (Date.now() / 1000).toFixed(9);
  await withClient(
    fromPort,
    (client) => client.ask(`IAMAT ${id} +48.856600+002.352200 ${time}`, 5_000),
  );
  const client = await LineClient.connect(toPort);
  try {
    const ms = await pollUntil(() => client.holds(id, time), LINKED_TIMEOUT_MS, 20);
    if (ms === undefined) {
      throw new Error(`an update at port ${fromPort} never reached port ${toPort}`);
    }
    return ms;
  } finally {
    client.close();
  }
}
