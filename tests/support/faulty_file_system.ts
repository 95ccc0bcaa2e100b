/**
 * Fault injection for the data dir: the real file system behind the update log's
 * `LogFileSystem`, which records every call and fails exactly the ones a test chooses (the
 * Nth write, the rename, the directory sync…), and a wait clock whose sleeps end only when
 * the test says, so retry loops run without really sleeping.
 */
import type { WaitClock } from "../../lib/abortable.ts";
import { denoFileSystem, type LogFile, type LogFileSystem } from "../../lib/update_log.ts";

/** The calls the update log makes, on the file system or on an open file. */
export type FileCall =
  | "openRead"
  | "openAppend"
  | "rename"
  | "remove"
  | "syncDirectory"
  | "read"
  | "write"
  | "syncData"
  | "truncate";

/** Which calls fail, and how. */
export interface FailureOptions {
  /** Only calls on this file name (a handle keeps the name it was opened by); default any. */
  file?: string;
  /** Matching calls let through before the first failure; default 0. */
  skip?: number;
  /** Matching calls that fail, one after another; default 1. */
  times?: number;
  /** The call is made, then reported as failed (a write that reached the disk, a rename done). */
  afterTakingEffect?: boolean;
}

interface Failure extends Required<Omit<FailureOptions, "file">> {
  call: FileCall;
  file: string | undefined;
}

/** Thrown by a call the test chose to fail. */
export class InjectedFailure extends Error {
  override name = "InjectedFailure";
}

export class FaultyFileSystem implements LogFileSystem {
  /** Every call made, as `call fileName`, in order. */
  readonly calls: string[] = [];
  #failures: Failure[] = [];

  /** Makes the matching calls fail from now on (see {@link FailureOptions}). */
  fail(call: FileCall, options: FailureOptions = {}): void {
    this.#failures.push({
      call,
      file: options.file,
      skip: options.skip ?? 0,
      times: options.times ?? 1,
      afterTakingEffect: options.afterTakingEffect ?? false,
    });
  }

  /** Fails nothing any more: the disk has recovered. */
  heal(): void {
    this.#failures = [];
  }

  async openRead(path: string): Promise<LogFile> {
    const file = await this.#call("openRead", path, () => denoFileSystem.openRead(path));
    return this.#faultyFile(file, path);
  }

  async openAppend(path: string): Promise<LogFile> {
    const file = await this.#call("openAppend", path, () => denoFileSystem.openAppend(path));
    return this.#faultyFile(file, path);
  }

  rename(from: string, to: string): Promise<void> {
    return this.#call("rename", from, () => denoFileSystem.rename(from, to));
  }

  remove(path: string): Promise<void> {
    return this.#call("remove", path, () => denoFileSystem.remove(path));
  }

  syncDirectory(directory: string): Promise<void> {
    return this.#call("syncDirectory", directory, () => denoFileSystem.syncDirectory(directory));
  }

  #faultyFile(file: LogFile, path: string): LogFile {
    return {
      read: (buffer) => this.#call("read", path, () => file.read(buffer)),
      write: (bytes) => this.#call("write", path, () => file.write(bytes)),
      syncData: () => this.#call("syncData", path, () => file.syncData()),
      truncate: (length) => this.#call("truncate", path, () => file.truncate(length)),
      close: () => file.close(),
    };
  }

  async #call<T>(call: FileCall, path: string, run: () => Promise<T>): Promise<T> {
    const fileName = path.slice(path.lastIndexOf("/") + 1);
    this.calls.push(`${call} ${fileName}`);
    const failure = this.#failures.find((failure) =>
      failure.call === call && (failure.file ?? fileName) === fileName && failure.times > 0
    );
    if (failure === undefined) return await run();
    if (failure.skip > 0) {
      failure.skip -= 1;
      return await run();
    }
    failure.times -= 1;
    if (failure.afterTakingEffect) await run();
    throw new InjectedFailure(`injected failure: ${call} ${fileName}`);
  }
}

/** Turns of the event loop a test waits for a retry loop to sleep before it gives up. */
const EVENT_LOOP_TURNS_MAX = 10_000;

/** A wait clock whose sleeps last until {@link SteppedClock.wake} (or their abort). */
export class SteppedClock implements WaitClock {
  /** What each sleep asked for, in order. */
  readonly sleepsMs: number[] = [];
  #sleepers: Array<() => void> = [];

  nowMs(): number {
    return performance.now();
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.sleepsMs.push(ms);
    return new Promise((resolve) => {
      this.#sleepers.push(resolve);
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Ends every sleep in progress. */
  wake(): void {
    for (const wake of this.#sleepers.splice(0)) wake();
  }

  /** Resolves once `count` sleeps have begun, letting the event loop turn meanwhile. */
  async sleptTimes(count: number): Promise<void> {
    for (let turn = 0; this.sleepsMs.length < count; turn++) {
      if (turn === EVENT_LOOP_TURNS_MAX) {
        throw new Error(`${this.sleepsMs.length} sleeps, not ${count}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}
