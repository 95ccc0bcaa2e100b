/**
 * The native load generator: builds bench/herdload.c with the system `cc -O2` into
 * bench/.build/ (again only when the source is newer), and runs it pinned to the
 * generator's core, one mode at a time, returning the JSON object it prints.
 */
import type { Processes } from "./processes.ts";

const SOURCE = new URL("./herdload.c", import.meta.url).pathname;
const BUILD_DIR = new URL("./.build/", import.meta.url).pathname;
const BINARY = `${BUILD_DIR}herdload`;

/** What herdload prints: numbers, a few strings, or `error`. */
export type LoadResult = Record<string, number | string>;

/**
 * Builds the generator if it is missing or older than its source; returns its path. Built
 * with TLS (`-DHERDLOAD_TLS -lssl -lcrypto`) when OpenSSL's headers and libraries are there,
 * else without: `features()` tells which.
 */
export async function buildGenerator(): Promise<string> {
  const source = await Deno.stat(SOURCE);
  const built = await Deno.stat(BINARY).catch(() => undefined);
  if (built?.mtime && source.mtime && built.mtime >= source.mtime) return BINARY;
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  const withTls = await compile([
    "-DHERDLOAD_TLS",
    "-o",
    BINARY,
    SOURCE,
    "-lm",
    "-lssl",
    "-lcrypto",
  ]);
  if (withTls.success) return BINARY;
  const plain = await compile(["-o", BINARY, SOURCE, "-lm"]);
  if (!plain.success) {
    throw new Error(`cc could not build ${SOURCE}:\n${new TextDecoder().decode(plain.stderr)}`);
  }
  return BINARY;
}

function compile(args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command("cc", {
    args: ["-O2", "-Wall", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(`cannot run cc (the system C compiler builds the generator): ${error.message}`);
  });
}

export class Generator {
  readonly #binary: string;
  readonly #core: string | undefined;
  readonly #processes: Processes;

  constructor(binary: string, core: string | undefined, processes: Processes) {
    this.#binary = binary;
    this.#core = core;
    this.#processes = processes;
  }

  /** Whether this build speaks TLS (`--tls-ca`): it needs OpenSSL's headers to build. */
  async features(): Promise<{ tls: boolean }> {
    const output = await new Deno.Command(this.#binary, {
      args: ["features"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const result = JSON.parse(new TextDecoder().decode(output.stdout)) as LoadResult;
    return { tls: result.tls === 1 };
  }

  /**
   * Runs one mode with `options` (`{ port: 1234 }` → `--port 1234`) and returns its JSON.
   * Throws if it reports an error, prints no JSON, or outlives `timeoutMs` (then it is
   * killed).
   */
  async run(
    mode: string,
    options: Record<string, string | number>,
    timeoutMs: number,
  ): Promise<LoadResult> {
    const args = [
      mode,
      ...Object.entries(options).flatMap(([key, value]) => [`--${kebab(key)}`, String(value)]),
    ];
    const started = this.#processes.spawn({
      label: `herdload ${mode}`,
      command: this.#binary,
      args,
      core: this.#core,
    });
    const timer = setTimeout(() => started.signal("SIGKILL"), timeoutMs);
    const status = await started.exited;
    clearTimeout(timer);
    const json = started.output.split("\n").find((line) => line.startsWith("{"));
    if (json === undefined) {
      throw new Error(
        `herdload ${args.join(" ")}: no result (exit ${status.code}, signal ${status.signal})`,
      );
    }
    const result = JSON.parse(json) as LoadResult;
    if (typeof result.error === "string") throw new Error(`herdload ${mode}: ${result.error}`);
    return result;
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}
