/**
 * The processes a benchmark run starts: spawn (optionally pinned to a core with `taskset`),
 * wait for a line of output, read memory from /proc, and stop — each by its own pid, never
 * by name. `stopAll` ends everything still running, and is what the driver calls on any
 * failure or signal. Knows nothing of herd beyond "a process that prints a line when ready".
 */

/** How long a process may take to exit after SIGTERM before it gets SIGKILL. */
const EXIT_GRACE_MS = 4_000;
/** Output lines kept per process for error messages; a chatty process cannot grow this. */
const OUTPUT_LINES_KEPT = 40;

export interface SpawnOptions {
  /** A short name for messages. */
  label: string;
  command: string;
  args: string[];
  cwd?: string;
  /** A CPU list for `taskset -c` (e.g. "0"), or undefined to run unpinned. */
  core?: string;
}

/** One started process. `pid` is the program's own: `taskset` execs it in place. */
export class Started {
  readonly label: string;
  readonly pid: number;
  readonly startedMs = performance.now();
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #lineWaiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  #running = true;

  constructor(options: SpawnOptions) {
    this.label = options.label;
    const pinned = options.core === undefined
      ? [options.command, ...options.args]
      : ["taskset", "-c", options.core, options.command, ...options.args];
    this.#child = new Deno.Command(pinned[0], {
      args: pinned.slice(1),
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // Its own process group: a Ctrl-C at the terminal reaches the driver, which stops it.
      detached: true,
    }).spawn();
    this.pid = this.#child.pid;
    const status = this.#child.status.then((status) => {
      this.#running = false;
      return status;
    });
    // Exited means exited and every line it printed read.
    this.exited = Promise.all([
      status,
      this.#collect(this.#child.stdout),
      this.#collect(this.#child.stderr),
    ]).then(([status]) => status);
  }

  get running(): boolean {
    return this.#running;
  }

  /** The last lines it printed, for error messages. */
  get output(): string {
    return this.#lines.join("\n");
  }

  /** Resolves with the first output line matching `pattern`; rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.#lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`${this.label}: no ${pattern} within ${timeoutMs} ms\n${this.output}`)),
        timeoutMs,
      );
      const waiter = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.#lineWaiters.push(waiter);
      this.exited.then((status) => {
        clearTimeout(timer);
        reject(
          new Error(`${this.label} exited (code ${status.code}) before ${pattern}\n${this.output}`),
        );
      });
    });
  }

  /** Sends a signal if it still runs. */
  signal(signal: Deno.Signal): void {
    if (!this.#running) return;
    try {
      this.#child.kill(signal);
    } catch {
      // It exited between the check and the signal.
    }
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves once it has exited. */
  async stop(): Promise<void> {
    this.signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.signal("SIGKILL");
        resolve();
      }, EXIT_GRACE_MS);
    });
    await Promise.race([this.exited, late]);
    clearTimeout(timer);
    await this.exited;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream) {
        const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) this.#addLine(line);
      }
    } catch {
      // The pipe broke when the process died: what it printed so far is kept.
    }
    if (partial !== "") this.#addLine(partial);
  }

  #addLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > OUTPUT_LINES_KEPT) this.#lines.shift();
    for (const waiter of this.#lineWaiters.filter((w) => w.pattern.test(line))) {
      this.#lineWaiters.splice(this.#lineWaiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  }
}

/** Every process of one run; `stopAll` ends those still running. */
export class Processes {
  readonly #started = new Set<Started>();

  spawn(options: SpawnOptions): Started {
    const started = new Started(options);
    this.#started.add(started);
    started.exited.then(() => this.#started.delete(started));
    return started;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#started].map((started) => started.stop()));
  }
}

/** `count` distinct loopback ports free a moment ago (all bound at once, then released). */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((listener) => listener.addr.port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM), or undefined once the process is gone. */
export function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * VmRSS once it has settled: read every 250 ms until two reads are within 1 % (at least
 * `minMs` after the call, at most `maxMs`), so a collection in progress does not count.
 */
export async function settledRssKb(pid: number, minMs = 1000, maxMs = 5000): Promise<number> {
  const startMs = performance.now();
  let last = -1;
  for (;;) {
    await delay(250);
    const rss = statusKb(pid, "VmRSS");
    if (rss === undefined) throw new Error(`process ${pid} is gone: no VmRSS`);
    const elapsedMs = performance.now() - startMs;
    if (elapsedMs >= maxMs || (elapsedMs >= minMs && Math.abs(rss - last) <= rss / 100)) return rss;
    last = rss;
  }
}

/** Waits `ms`; only ever between polls, never to synchronise. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every `intervalMs` until it returns true; resolves with the milliseconds it
 * took, or undefined after `timeoutMs`.
 */
export async function pollUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs: number,
): Promise<number | undefined> {
  const startMs = performance.now();
  while (performance.now() - startMs < timeoutMs) {
    if (await check()) return performance.now() - startMs;
    await delay(intervalMs);
  }
  return undefined;
}
