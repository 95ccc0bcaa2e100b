/**
 * The log file: records appended to `NAME.log` in batches, rotated by size to `NAME.log.1` …
 * so that at most `files` files of at most `maxBytes` each are kept (a record is never split
 * across two), with at most `queueBytesMax` bytes of records waiting in memory.
 *
 * Logging never waits for the disk: a record is formatted and copied into a queue of byte
 * chunks at once, and one writer drains the queue — everything queued while a write is in
 * flight goes out in the next. A writer that finds the queue short waits up to `batchMs` for
 * more (a full chunk or a close ends the wait): a file write per record cost a quarter of a
 * core at one client's pace. A record that would take the queue past its bound (the disk is
 * slow, stalled or full) is dropped and counted; once the queue is below half its bound again
 * a warning says how many were lost. A failed write is retried with backoff, from where it
 * stopped, so no record is written twice or torn while the disk keeps up.
 */
import { raceAbort, systemWaitClock, type WaitClock } from "./abortable.ts";
import { backoffDelayMs } from "./backoff.ts";
import type { LogLineFormatter } from "./log_format.ts";
import type { LogRecord } from "@logtape/logtape";

/** What the sink needs of a file system; tests inject one that fails or blocks. */
export interface LogSinkFileSystem {
  /** Opens `path` for appending, creating it. */
  openAppend(path: string): Promise<LogSinkFile>;
  rename(from: string, to: string): Promise<void>;
  /** Removes `path`; a missing file is not an error. */
  remove(path: string): Promise<void>;
  /** The names in `dir`. */
  list(dir: string): Promise<string[]>;
}

export interface LogSinkFile {
  /** Writes some of `bytes` (at least one) and says how many. */
  write(bytes: Uint8Array): Promise<number>;
  size(): Promise<number>;
  close(): void;
}

/** The real file system. */
export const denoLogSinkFileSystem: LogSinkFileSystem = {
  async openAppend(path) {
    const file = await Deno.open(path, { append: true, create: true });
    return {
      write: (bytes) => file.write(bytes),
      size: async () => (await file.stat()).size,
      close: () => file.close(),
    };
  },
  rename: (from, to) => Deno.rename(from, to),
  async remove(path) {
    try {
      await Deno.remove(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  },
  async list(dir) {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    return names;
  },
};

/** The contract's bound on records waiting in memory. */
export const LOG_QUEUE_BYTES_MAX = 8 * 1024 * 1024;
/** Records are copied into chunks of this size (a larger record gets a chunk of its own). */
const CHUNK_BYTES = 64 * 1024;
/** How long records may wait for more to be written with them, unless a chunk fills. */
export const LOG_WRITE_BATCH_MS = 10;
/** The abort reason that ends a batch wait early. */
const BATCH_WAIT_ENDED = "batch wait ended";
/** Empty chunks kept for reuse rather than left to the garbage collector. */
const SPARE_CHUNKS_MAX = 4;
const RETRY_BACKOFF = { firstMs: 50, maxMs: 5_000 };

export interface LogFileSinkOptions {
  /** `DIR/NAME.log`. */
  path: string;
  /** A file is rotated before a record would take it past this many bytes. */
  maxBytes: number;
  /** Files kept in all, `NAME.log` included (at least 1). */
  files: number;
  format: LogLineFormatter;
  /** Called with each count of records dropped (for `log_records_dropped`). */
  onDropped: (records: number) => void;
  /** The record that reports drops, given their count; formatted and written like any other. */
  dropWarning: (dropped: number, lastError: string | undefined) => LogRecord;
  /** Where a failing disk is reported, once per failure (the log itself cannot say it). */
  reportFailure: (message: string) => void;
  queueBytesMax?: number;
  fileSystem?: LogSinkFileSystem;
  random?: () => number;
  /** Waits between retries (a retry's wait ends at close) and for a batch to gather. */
  waitClock?: WaitClock;
  /** How long a short queue waits for more records before it is written; 0: a turn. */
  batchMs?: number;
}

interface Chunk {
  bytes: Uint8Array;
  used: number;
  /** Records in it, for counting what a give-up at close loses. */
  records: number;
  /** Set once the writer has taken it: no record is added after that. */
  sealed: boolean;
  /** Its records start a new file: rotate before writing it. */
  rotateBefore: boolean;
}

/**
 * A LogTape sink (call it with a record; `close` flushes). Open it with {@link openLogFileSink}.
 */
export class LogFileSink {
  readonly #options: Required<LogFileSinkOptions>;
  readonly #encoder = new TextEncoder();
  readonly #chunks: Chunk[] = [];
  readonly #spareChunks: Uint8Array[] = [];
  #file: LogSinkFile;
  /** Bytes the current file will hold once everything queued for it is written. */
  #plannedFileBytes: number;
  #queuedBytes = 0;
  #writing: Promise<void> | undefined;
  #droppedUnreported = 0;
  #failing: string | undefined;
  #lastError: string | undefined;
  #closing = false;
  /** Aborted by close(): a retry waiting for its backoff stops waiting. */
  readonly #closed = new AbortController();
  /** Aborted when the records waiting for a batch should go now (a chunk filled, a close). */
  #batchDone: AbortController | undefined;
  /** Set by close(): what is queued goes out without waiting for a batch. */
  #flushing = false;

  constructor(options: Required<LogFileSinkOptions>, file: LogSinkFile, fileBytes: number) {
    this.#options = options;
    this.#file = file;
    this.#plannedFileBytes = fileBytes;
  }

  /** Bytes of records waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Queues `record`, or drops and counts it when the queue is full. Never waits. */
  readonly write = (record: LogRecord): void => {
    if (this.#closing) return;
    this.#enqueue(this.#options.format(record));
  };

  #enqueue(line: string): void {
    const { maxBytes, queueBytesMax } = this.#options;
    // Each UTF-16 unit is at least one byte: a line that cannot fit by its length is dropped
    // before it is encoded.
    if (this.#queuedBytes + line.length > queueBytesMax) return this.#drop();
    let chunk = this.#tail();
    let { read, written } = this.#encoder.encodeInto(line, chunk.bytes.subarray(chunk.used));
    if (read < line.length) {
      chunk = this.#newChunk(line.length * 3);
      ({ written } = this.#encoder.encodeInto(line, chunk.bytes));
    }
    if (this.#queuedBytes + written > queueBytesMax) return this.#drop();
    if (this.#plannedFileBytes > 0 && this.#plannedFileBytes + written > maxBytes) {
      // The record starts the next file: it moves to a chunk written after a rotation.
      const encoded = chunk.bytes.subarray(chunk.used, chunk.used + written);
      const next = this.#newChunk(written);
      next.bytes.set(encoded);
      next.rotateBefore = true;
      chunk = next;
      this.#plannedFileBytes = 0;
    }
    chunk.used += written;
    chunk.records += 1;
    this.#queuedBytes += written;
    this.#plannedFileBytes += written;
    if (this.#writing === undefined) this.#writing = this.#writeQueued();
  }

  /** The chunk a record goes into: the last one, unless the writer has it or it is full. */
  #tail(): Chunk {
    const last = this.#chunks.at(-1);
    if (last !== undefined && !last.sealed && last.bytes.length - last.used >= CHUNK_BYTES / 4) {
      return last;
    }
    return this.#newChunk(0);
  }

  #newChunk(bytesNeeded: number): Chunk {
    const last = this.#chunks.at(-1);
    if (last !== undefined) {
      last.sealed = true;
      this.#endBatchWait();
    }
    const bytes = bytesNeeded <= CHUNK_BYTES
      ? this.#spareChunks.pop() ?? new Uint8Array(CHUNK_BYTES)
      : new Uint8Array(bytesNeeded);
    const chunk = { bytes, used: 0, records: 0, sealed: false, rotateBefore: false };
    this.#chunks.push(chunk);
    return chunk;
  }

  #drop(): void {
    this.#droppedUnreported += 1;
    this.#options.onDropped(1);
    // With nothing being written (the record alone was past the bound), say so at once.
    if (this.#writing === undefined) this.#reportDropsOnceCaughtUp();
  }

  /** Writes chunks until none is left; the one writer, started by the first record queued. */
  async #writeQueued(): Promise<void> {
    while (!this.#closing && this.#chunks.length > 0) {
      // Every write gathers a batch, not only the first: records that came while one chunk was
      // written would otherwise go out at once, a write for every record or two.
      await this.#gatherBatch();
      const chunk = this.#chunks[0];
      if (chunk === undefined) break;
      chunk.sealed = true;
      if (chunk.used === 0) {
        this.#chunks.shift();
        this.#recycle(chunk);
        continue;
      }
      if (chunk.rotateBefore) {
        await this.#rotate();
        chunk.rotateBefore = false;
      }
      await this.#writeChunk(chunk);
      if (this.#closing) break; // close() gave up on it and emptied the queue
      this.#chunks.shift();
      this.#queuedBytes -= chunk.used;
      this.#recycle(chunk);
      this.#reportDropsOnceCaughtUp();
    }
    this.#writing = undefined;
  }

  /**
   * Lets records gather: at least the rest of this synchronous pass (one read's lines), then up
   * to `batchMs` unless a chunk fills or the sink closes meanwhile.
   */
  async #gatherBatch(): Promise<void> {
    await Promise.resolve();
    const { batchMs, waitClock } = this.#options;
    if (batchMs === 0 || this.#chunks.length > 1 || this.#flushing) return;
    this.#batchDone = new AbortController();
    await waitClock.sleep(batchMs, this.#batchDone.signal);
    this.#batchDone = undefined;
  }

  /** Ends a batch wait in progress; with a reason, so no DOMException (and its stack) is made. */
  #endBatchWait(): void {
    const batchDone = this.#batchDone;
    if (batchDone !== undefined && !batchDone.signal.aborted) batchDone.abort(BATCH_WAIT_ENDED);
  }

  async #writeChunk(chunk: Chunk): Promise<void> {
    let written = 0;
    let retry = 0;
    while (written < chunk.used && !this.#closing) {
      try {
        written += await this.#file.write(chunk.bytes.subarray(written, chunk.used));
        this.#recovered();
      } catch (error) {
        retry += 1;
        await this.#failed(`log write to ${this.#options.path} failed`, error, retry);
      }
    }
  }

  /**
   * `NAME.log.(k)` → `NAME.log.(k+1)`, `NAME.log` → `NAME.log.1`, the oldest (and any beyond
   * `files`, left by a run with a larger setting) removed; then a new `NAME.log`. A step that
   * fails is reported and the rotation given up: the current file is reopened and grows until
   * the next rotation is due — logs are kept rather than lost.
   */
  async #rotate(): Promise<void> {
    const { path, files, fileSystem } = this.#options;
    closeQuietly(this.#file);
    try {
      const slash = path.lastIndexOf("/");
      const dir = slash === -1 ? "." : path.slice(0, slash) || "/";
      const base = path.slice(slash + 1);
      for (const name of await fileSystem.list(dir)) {
        const number = rotatedNumber(name, base);
        if (number !== undefined && number >= files - 1) await fileSystem.remove(`${dir}/${name}`);
      }
      for (let number = files - 2; number >= 1; number--) {
        await fileSystem.rename(`${path}.${number}`, `${path}.${number + 1}`).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
      }
      if (files > 1) await fileSystem.rename(path, `${path}.1`);
      else await fileSystem.remove(path);
    } catch (error) {
      this.#options.reportFailure(`log rotation of ${path} failed: ${errorText(error)}`);
    }
    for (let retry = 1; !this.#closing; retry++) {
      try {
        this.#file = await fileSystem.openAppend(path);
        return this.#recovered();
      } catch (error) {
        await this.#failed(`log file ${path} could not be opened`, error, retry);
      }
    }
  }

  /** Reports the first failure of a run of them, then waits before the retry. */
  async #failed(what: string, error: unknown, retry: number): Promise<void> {
    const message = `${what}: ${errorText(error)}`;
    this.#lastError = message;
    if (this.#failing === undefined) {
      this.#failing = message;
      this.#options.reportFailure(`${message}; records wait (up to 8 MiB) and it is retried`);
    }
    const delayMs = backoffDelayMs(retry, this.#options.random(), RETRY_BACKOFF);
    await this.#options.waitClock.sleep(delayMs, this.#closed.signal);
  }

  #recovered(): void {
    if (this.#failing === undefined) return;
    this.#failing = undefined;
    this.#options.reportFailure(`log writes to ${this.#options.path} work again`);
  }

  #recycle(chunk: Chunk): void {
    if (chunk.bytes.length === CHUNK_BYTES && this.#spareChunks.length < SPARE_CHUNKS_MAX) {
      this.#spareChunks.push(chunk.bytes);
    }
  }

  /** Once the queue is below half its bound after drops, a warning with their count. */
  #reportDropsOnceCaughtUp(): void {
    if (this.#droppedUnreported === 0) return;
    if (this.#queuedBytes > this.#options.queueBytesMax / 2) return;
    const dropped = this.#droppedUnreported;
    this.#droppedUnreported = 0;
    this.#enqueue(this.#options.format(this.#options.dropWarning(dropped, this.#lastError)));
    this.#lastError = undefined;
  }

  /**
   * Writes what is queued and closes the file. A disk that still fails after `waitMs` is given
   * up on: what is left is lost (counted as dropped), and the file closed.
   */
  async close(options: { waitMs: number }): Promise<void> {
    this.#flushing = true;
    this.#endBatchWait();
    try {
      const writing = this.#writing;
      if (writing !== undefined) {
        await raceAbort(writing, AbortSignal.timeout(options.waitMs), () => undefined);
      }
    } finally {
      this.#closing = true;
      this.#closed.abort();
      const lost = this.#chunks.reduce((sum, chunk) => sum + chunk.records, 0);
      if (lost > 0) this.#options.onDropped(lost);
      this.#chunks.length = 0;
      this.#queuedBytes = 0;
      closeQuietly(this.#file);
    }
  }
}

/** `7` for `NAME.log.7` when `base` is `NAME.log`; undefined for any other name. */
function rotatedNumber(name: string, base: string): number | undefined {
  if (!name.startsWith(`${base}.`)) return undefined;
  const digits = name.slice(base.length + 1);
  if (digits.length === 0 || digits.length > 9) return undefined;
  for (const char of digits) if (char < "0" || char > "9") return undefined;
  return Number(digits);
}

/** Closes `file`; one already closed (a reopen failed) is not an error. */
function closeQuietly(file: LogSinkFile): void {
  try {
    file.close();
  } catch {
    // closed before
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Opens (creating) the log file — so an unwritable directory is reported at start — and
 * returns its sink.
 */
export async function openLogFileSink(options: LogFileSinkOptions): Promise<LogFileSink> {
  const complete: Required<LogFileSinkOptions> = {
    queueBytesMax: LOG_QUEUE_BYTES_MAX,
    fileSystem: denoLogSinkFileSystem,
    random: Math.random,
    waitClock: systemWaitClock,
    batchMs: LOG_WRITE_BATCH_MS,
    ...options,
  };
  const file = await complete.fileSystem.openAppend(options.path);
  return new LogFileSink(complete, file, await file.size());
}
