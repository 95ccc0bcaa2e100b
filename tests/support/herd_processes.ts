/**
 * Starts herd servers as real processes for integration tests: free loopback ports, a
 * generated herd.json (or one per server) in a temporary directory, start / kill / restart
 * by name, and a stop of every process it started (by its own child handle, never by name)
 * when the herd is disposed — even when the test failed. Every wait polls against a deadline.
 */

/** The file's text, or undefined when there is no such file. */
async function readTextIfAny(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** The contract's five servers, in the built-in default's port order. */
export const HERD_NAMES = ["Jaquez", "Hill", "Smith", "Singleton", "Campbell"] as const;

/** The contract's links. */
export const HERD_LINKS: ReadonlyArray<readonly [string, string]> = [
  ["Hill", "Jaquez"],
  ["Hill", "Smith"],
  ["Singleton", "Jaquez"],
  ["Singleton", "Smith"],
  ["Singleton", "Campbell"],
  ["Smith", "Campbell"],
];

/** The repository root: servers run with this as their working directory. */
export const REPO_DIR = new URL("../../", import.meta.url).pathname;

/** How long a server may take from spawn to "listening". */
export const LISTEN_TIMEOUT_MS_DEFAULT = 15_000;
/** How long a process may take to exit after a signal before the harness SIGKILLs it. */
const EXIT_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 25;
/** Output kept per stream; a chatty process cannot grow the test's memory past this. */
const OUTPUT_CHARS_MAX = 1024 * 1024;

/** Variables removed from a server's environment unless a test sets them. */
const HERD_ENV_KEYS = [
  "GOOGLE_PLACES_API_KEY",
  "HERD_PLACES_API",
  "HERD_SECRET",
  "HERD_MONITOR_TOKEN",
];

/**
 * Polls `check` until it returns a value other than undefined/false, or throws after
 * `timeoutMs` with `what` and the last value seen. Give `what` as a function to describe
 * the state at the deadline (e.g. what was still missing then).
 *
 * @example
 * ```ts
 * const line = await pollUntil(() => readSomething(), { what: "the update at Smith" });
 * ```
 */
export async function pollUntil<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number; what: string | (() => string) },
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = undefined;
  while (true) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError === undefined ? "" : `; last error: ${lastError}`;
      const what = typeof options.what === "function" ? options.what() : options.what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await delay(intervalMs);
  }
}

/** A promise that resolves after `ms`; only ever used between polls, never to synchronise. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `count` distinct loopback ports that were free a moment ago: each is bound to port 0,
 * read, and released only after all are chosen, so no two are the same.
 */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" }),
  );
  const ports = listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** What herd.json holds, as a test builds it. */
export interface HerdConfigJson {
  servers: Record<
    string,
    {
      port: number;
      host?: string;
      bind?: string;
      monitor?: string;
      tls?: { cert: string; key: string };
    }
  >;
  links: Array<readonly [string, string]>;
  limits?: Record<string, number>;
  [key: string]: unknown;
}

/** Options of a herd that a test starts. */
export interface HerdOptions {
  /** Server names; default the contract's five. */
  names?: readonly string[];
  /** Links; default the contract's (only those whose ends are in `names`). */
  links?: ReadonlyArray<readonly [string, string]>;
  /** `limits` of herd.json; omitted when undefined. */
  limits?: Record<string, number>;
  /** Gives every server a monitor (`"monitor": "127.0.0.1:PORT"`) on a free loopback port. */
  monitors?: boolean;
  /** Further top-level keys of herd.json (e.g. `placesFields`). */
  extraConfig?: Record<string, unknown>;
  /** Further keys of one server's entry in herd.json (e.g. its `tls`). */
  serverFields?: Readonly<Record<string, Record<string, unknown>>>;
  /** Extra CLI arguments for every server, e.g. `["--places", "offline"]`. */
  args?: readonly string[];
  /** Extra CLI arguments for one server, after `args`. */
  serverArgs?: Readonly<Record<string, readonly string[]>>;
  /** Environment overrides; GOOGLE_PLACES_API_KEY and friends are unset unless given here. */
  env?: Record<string, string>;
  /** Environment overrides for one server, over `env`. */
  serverEnv?: Readonly<Record<string, Record<string, string>>>;
  /**
   * The config one server is given, from the herd's (e.g. with its neighbours' ports moved
   * to proxies: `LinkProxies.route`); default the herd's own for all.
   */
  configSeenBy?: (name: string, config: HerdConfigJson) => HerdConfigJson;
  /** A command every server runs under, e.g. `["prlimit", "--nofile=256:4096", "--"]`. */
  launcher?: readonly string[];
  /** The command one server runs under, instead of `launcher` (e.g. in its own namespace). */
  serverLauncher?: Readonly<Record<string, readonly string[]>>;
  /** The host each server is dialled at (and, without `bind`, listens on); default 127.0.0.1. */
  hosts?: Readonly<Record<string, string>>;
  /** Which servers to start at once; default all of `names`. */
  start?: readonly string[];
  listenTimeoutMs?: number;
}

/** One server process as the harness knows it. */
export class ServerProcess {
  readonly name: string;
  readonly port: number;
  readonly child: Deno.ChildProcess;
  readonly startedAtMs = Date.now();
  #stdout = "";
  #stderr = "";
  #exitStatus: Deno.CommandStatus | undefined;
  readonly #exited: Promise<Deno.CommandStatus>;
  readonly #drained: Promise<void>;

  constructor(name: string, port: number, child: Deno.ChildProcess) {
    this.name = name;
    this.port = port;
    this.child = child;
    this.#drained = Promise.all([
      collect(child.stdout, (text) => (this.#stdout = keepTail(this.#stdout + text))),
      collect(child.stderr, (text) => (this.#stderr = keepTail(this.#stderr + text))),
    ]).then(() => undefined);
    this.#exited = child.status.then((status) => (this.#exitStatus = status));
  }

  get pid(): number {
    return this.child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The exit status once the process has exited, else undefined. */
  get exitStatus(): Deno.CommandStatus | undefined {
    return this.#exitStatus;
  }

  /** Waits for the process to exit (and its output to be read). */
  async status(): Promise<Deno.CommandStatus> {
    const status = await this.#exited;
    await this.#drained;
    return status;
  }

  /** Sends a signal if the process is still running; true when one was sent. */
  signal(signal: Deno.Signal): boolean {
    if (this.#exitStatus !== undefined) return false;
    try {
      this.child.kill(signal);
      return true;
    } catch {
      return false; // exited between the check and the kill
    }
  }

  /**
   * Waits until stdout says `NAME listening on HOST:PORT`; rejects if the process exits
   * first or the deadline passes.
   */
  async waitListening(timeoutMs = LISTEN_TIMEOUT_MS_DEFAULT): Promise<void> {
    await pollUntil(() => {
      if (this.#stdout.includes(`${this.name} listening on `)) return true;
      if (this.#exitStatus !== undefined) {
        throw new FatalPollError(
          `${this.name} exited with ${this.#exitStatus.code} before listening: ${this.#stderr}`,
        );
      }
      return false;
    }, { timeoutMs, intervalMs: POLL_INTERVAL_MS, what: `${this.name} to listen` }).catch(
      (error) => {
        if (error instanceof FatalPollError) throw error;
        throw new Error(`${error.message}; stdout: ${this.#stdout}; stderr: ${this.#stderr}`);
      },
    );
  }

  /**
   * Stops the process: `signal` first, SIGKILL if it has not exited within the grace
   * period; returns its status. Safe to call on an exited process.
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    this.signal(signal);
    const timer = setTimeout(() => this.signal("SIGKILL"), EXIT_TIMEOUT_MS);
    try {
      return await this.status();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Thrown inside a poll when waiting longer cannot help. */
class FatalPollError extends Error {}

/** A running herd: its config, its processes, and how to stop or restart each. */
export class Herd implements AsyncDisposable {
  readonly dir: string;
  readonly configPath: string;
  readonly logDir: string;
  readonly config: HerdConfigJson;
  readonly #options: HerdOptions;
  readonly #running = new Map<string, ServerProcess>();
  /** Every process ever started, so disposal stops even the ones a test replaced. */
  readonly #all: ServerProcess[] = [];

  constructor(dir: string, config: HerdConfigJson, options: HerdOptions) {
    this.dir = dir;
    this.configPath = `${dir}/herd.json`;
    this.logDir = `${dir}/logs`;
    this.config = config;
    this.#options = options;
  }

  /** The names in the config. */
  get names(): string[] {
    return Object.keys(this.config.servers);
  }

  port(name: string): number {
    const server = this.config.servers[name];
    if (server === undefined) throw new Error(`no server ${name} in this herd`);
    return server.port;
  }

  /** The host `name` is dialled at. */
  host(name: string): string {
    return this.config.servers[name]?.host ?? "127.0.0.1";
  }

  /** The running process for `name`; throws if it is not running. */
  process(name: string): ServerProcess {
    const server = this.#running.get(name);
    if (server === undefined) throw new Error(`${name} is not running`);
    return server;
  }

  /** The config file `name` is started with: its own when `configSeenBy` is given. */
  configPathOf(name: string): string {
    return this.#options.configSeenBy === undefined ? this.configPath : `${this.dir}/${name}.json`;
  }

  logPath(name: string): string {
    return `${this.logDir}/${name}.log`;
  }

  /**
   * Reads the server's log: the rotated files still kept (`NAME.log.N` … `NAME.log.1`, oldest
   * first), then `NAME.log` — empty when there is none yet.
   */
  async readLog(name: string): Promise<string> {
    const path = this.logPath(name);
    const rotated: string[] = [];
    for (let number = 1;; number++) {
      const text = await readTextIfAny(`${path}.${number}`);
      if (text === undefined) break;
      rotated.unshift(text);
    }
    return rotated.join("") + (await readTextIfAny(path) ?? "");
  }

  /** Starts `name` (not waiting); throws if it is already running. */
  spawn(name: string): ServerProcess {
    if (this.#running.has(name)) throw new Error(`${name} is already running`);
    const server = spawnServer({
      name,
      port: this.port(name),
      args: [
        "--config",
        this.configPathOf(name),
        "--log-dir",
        this.logDir,
        ...(this.#options.args ?? []),
        ...(this.#options.serverArgs?.[name] ?? []),
      ],
      env: { ...this.#options.env, ...this.#options.serverEnv?.[name] },
      launcher: this.#options.serverLauncher?.[name] ?? this.#options.launcher,
    });
    this.#running.set(name, server);
    this.#all.push(server);
    return server;
  }

  /** Starts `name` and waits until it listens. */
  async start(name: string): Promise<ServerProcess> {
    const server = this.spawn(name);
    await server.waitListening(this.#options.listenTimeoutMs);
    return server;
  }

  /** Stops `name` with `signal` (SIGKILL after a grace period) and returns its status. */
  async kill(name: string, signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus> {
    const server = this.process(name);
    const status = await server.stop(signal);
    this.#running.delete(name);
    return status;
  }

  /** Kills `name` if it runs, then starts it again on the same port and waits for it. */
  async restart(name: string, signal: Deno.Signal = "SIGKILL"): Promise<ServerProcess> {
    if (this.#running.has(name)) await this.kill(name, signal);
    return await this.start(name);
  }

  /** Stops every process this herd started, by its own handle; waits for each to exit. */
  async stopAll(): Promise<void> {
    await Promise.all(this.#all.map((server) => server.stop("SIGKILL")));
    this.#running.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.stopAll();
    } finally {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Writes a herd.json for the given servers and links in a new temporary directory, starts
 * the servers and waits until each listens. Dispose the result (`await using`) to stop
 * them all.
 *
 * @example
 * ```ts
 * await using herd = await startHerd({ args: ["--places", "offline"] });
 * const client = await WireClient.connect(herd.port("Hill"));
 * ```
 */
export async function startHerd(options: HerdOptions = {}): Promise<Herd> {
  const names = options.names ?? HERD_NAMES;
  const links = options.links ??
    HERD_LINKS.filter(([a, b]) => names.includes(a) && names.includes(b));
  const ports = freePorts(names.length * (options.monitors ? 2 : 1));
  const monitorOf = (index: number) =>
    options.monitors ? { monitor: `127.0.0.1:${ports[names.length + index]}` } : {};
  const config: HerdConfigJson = {
    servers: Object.fromEntries(
      names.map((name, index) => [name, {
        port: ports[index],
        host: options.hosts?.[name] ?? "127.0.0.1",
        ...monitorOf(index),
        ...options.serverFields?.[name],
      }]),
    ),
    links: [...links],
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.extraConfig ?? {}),
  };
  const dir = await Deno.makeTempDir({ prefix: "herd_test_" });
  const herd = new Herd(dir, config, options);
  try {
    await Deno.writeTextFile(herd.configPath, JSON.stringify(config, null, 2));
    if (options.configSeenBy !== undefined) {
      for (const name of names) {
        const seen = options.configSeenBy(name, config);
        await Deno.writeTextFile(herd.configPathOf(name), JSON.stringify(seen, null, 2));
      }
    }
    for (const name of options.start ?? names) herd.spawn(name);
    await Promise.all(
      (options.start ?? names).map((name) =>
        herd.process(name).waitListening(options.listenTimeoutMs)
      ),
    );
  } catch (error) {
    await herd[Symbol.asyncDispose]();
    throw error;
  }
  return herd;
}

/** Starts one server process with the test environment (no Google key unless given). */
export function spawnServer(
  options: {
    name: string;
    port: number;
    args: readonly string[];
    env?: Record<string, string>;
    launcher?: readonly string[];
  },
): ServerProcess {
  const child = spawnMain(["--name", options.name, ...options.args], options.env, options.launcher);
  return new ServerProcess(options.name, options.port, child);
}

/**
 * `deno run -A main.ts ARGS` from the repository, with the test environment, under
 * `launcher` when given (it must exec its command, so the child's pid stays the server's).
 */
function spawnMain(
  args: readonly string[],
  env?: Record<string, string>,
  launcher: readonly string[] = [],
  stdin: "null" | "piped" = "null",
): Deno.ChildProcess {
  const [command, ...prefix] = [...launcher, Deno.execPath()];
  return new Deno.Command(command, {
    args: [...prefix, "run", "-A", "main.ts", ...args],
    cwd: REPO_DIR,
    env: serverEnv(env),
    clearEnv: true,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** This process's environment without herd's variables, plus the test's overrides. */
export function serverEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  for (const key of HERD_ENV_KEYS) delete env[key];
  env.NO_COLOR = "1";
  return { ...env, ...overrides };
}

/** What a finished CLI run printed and how it exited. */
export interface CliRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `main.ts` with `args` to completion (SIGKILL after `timeoutMs`), for start-up checks
 * and subcommands that are expected to exit by themselves; `stdin` is written to its standard
 * input and then closed (without it, standard input is /dev/null).
 */
export async function runHerdCli(
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number; stdin?: string } = {},
): Promise<CliRun> {
  const child = spawnMain(args, options.env, [], options.stdin === undefined ? "null" : "piped");
  const server = new ServerProcess("cli", 0, child);
  const timer = setTimeout(() => server.signal("SIGKILL"), options.timeoutMs ?? 15_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const status = await server.status();
    return {
      code: status.code,
      signal: status.signal,
      stdout: server.stdout,
      stderr: server.stderr,
    };
  } finally {
    clearTimeout(timer);
  }
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  append: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) append(decoder.decode(chunk, { stream: true }));
}

function keepTail(text: string): string {
  return text.length > OUTPUT_CHARS_MAX ? text.slice(text.length - OUTPUT_CHARS_MAX) : text;
}
