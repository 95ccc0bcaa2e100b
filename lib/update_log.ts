/**
 * The durable record of accepted updates behind `--data-dir`: an append-only file of AT
 * lines, each with a CRC-32, written with group commit — every update appended while one
 * write + fdatasync is in flight goes out together in the next, so a client's AT can wait
 * for its update to be on disk without the server paying one fsync per line.
 *
 * Record: `<crc32 of the AT line, 8 hex digits> <AT line>\n`, the line as wire text (one
 * byte per character). A record cut short by a crash (no `\n`, or a checksum that does not
 * match) is skipped when loading, never fatal. On start the file is read, then rewritten
 * with only the latest update per client (a new file, fsynced, renamed over the old one).
 */
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import { oneLine } from "./errors.ts";
import { LineSplitter } from "./lines.ts";
import type { Logger } from "./log.ts";
import type { Counters } from "./counters.ts";

/** What `load` found in the file. */
export interface LoadReport {
  records: number;
  /** Records skipped: torn by a crash or damaged. */
  skipped: number;
}

const READ_CHUNK_BYTES = 1024 * 1024;
/** Longest record `load` accepts: an AT line from any client line the config allows. */
const RECORD_BYTES_MAX = 16 * 1024 * 1024;
/** First and longest wait before retrying a failed write. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2000;
/** Records written per chunk when rewriting the file. */
const REWRITE_CHUNK_RECORDS = 4096;

/** The file of one server's updates inside the data directory. */
export function updateLogPath(dataDir: string, serverName: string): string {
  return `${dataDir}/${serverName}.updates`;
}

/** One record's bytes as written. */
export function formatRecord(atLine: string): string {
  const checksum = crc32(Buffer.from(atLine, "latin1")).toString(16).padStart(8, "0");
  return `${checksum} ${atLine}\n`;
}

/** The AT line of a record (without its `\n`), or undefined when it is damaged. */
export function parseRecord(record: string): string | undefined {
  if (record.length < 10 || record[8] !== " ") return undefined;
  const atLine = record.slice(9);
  return formatRecord(atLine) === `${record}\n` ? atLine : undefined;
}

/**
 * Reads every record of `path` in file order and hands each intact one to `onRecord`. A
 * missing file is an empty one.
 */
async function loadUpdates(
  path: string,
  onRecord: (atLine: string) => void,
): Promise<LoadReport> {
  const report: LoadReport = { records: 0, skipped: 0 };
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return report;
    throw error;
  }
  const splitter = new LineSplitter(RECORD_BYTES_MAX);
  const buffer = new Uint8Array(READ_CHUNK_BYTES);
  const take = (text: string | undefined) => {
    if (text === undefined) report.skipped += 1;
    else {
      report.records += 1;
      onRecord(text);
    }
  };
  try {
    while (true) {
      const read = await file.read(buffer);
      if (read === null) break;
      for (const line of splitter.push(buffer.subarray(0, read))) {
        take(line.tooLong ? undefined : parseRecord(line.text));
      }
    }
  } finally {
    file.close();
  }
  // Bytes after the last `\n`: a record whose write a crash cut short.
  if (splitter.end() !== undefined) report.skipped += 1;
  return report;
}

/** Loads, rewrites and appends one server's records; see the module comment. */
export class UpdateLog {
  readonly #path: string;
  readonly #logger: Logger;
  readonly #counters: Counters;
  /** Open for appending once `rewrite` is done. */
  #file: Deno.FsFile | undefined;
  /** Records appended since the last write started. */
  #waiting: string[] = [];
  /** Resolves when the records in `#waiting` are on disk. */
  #waitingCommitted = Promise.withResolvers<void>();
  /** Resolves when the write in flight (if any) is on disk. */
  #inFlight: Promise<void> | undefined;
  /** File size up to the last record known to be on disk, to cut off a failed write. */
  #committedBytes = 0;

  /** Counts `data_dir_updates` written, in `data_dir_writes` (one fdatasync each). */
  constructor(path: string, logger: Logger, counters: Counters) {
    this.#path = path;
    this.#logger = logger;
    this.#counters = counters;
  }

  /** Reads the file's intact records in file order; a missing file has none. */
  load(onRecord: (atLine: string) => void): Promise<LoadReport> {
    return loadUpdates(this.#path, onRecord);
  }

  /**
   * Replaces the file with `atLines` (the latest update per client) — a new file, synced and
   * renamed over the old one — and opens it for appending.
   */
  async rewrite(atLines: Iterable<string>): Promise<void> {
    const temporaryPath = `${this.#path}.new`;
    const file = await Deno.open(temporaryPath, { write: true, create: true, truncate: true });
    try {
      let chunk: string[] = [];
      const writeChunk = async () => {
        const encoded = Buffer.from(chunk.join(""), "latin1");
        await writeAll(file, encoded);
        this.#committedBytes += encoded.length;
        chunk = [];
      };
      for (const atLine of atLines) {
        chunk.push(formatRecord(atLine));
        if (chunk.length === REWRITE_CHUNK_RECORDS) await writeChunk();
      }
      await writeChunk();
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temporaryPath, this.#path);
    await syncDirectory(this.#path);
    this.#file = await Deno.open(this.#path, { write: true, append: true });
  }

  /** Adds an update, to be written with the next batch (only after `rewrite`). */
  append(atLine: string): void {
    this.#waiting.push(formatRecord(atLine));
    if (this.#inFlight === undefined) this.#inFlight = this.#writeWaiting();
  }

  /** Resolves once everything appended so far is on disk (never rejects). */
  committed(): Promise<void> {
    if (this.#waiting.length > 0) return this.#waitingCommitted.promise;
    return this.#inFlight ?? Promise.resolve();
  }

  /** Writes what is waiting, then closes the file. */
  async close(): Promise<void> {
    await this.committed();
    this.#file?.close();
    this.#file = undefined;
  }

  /** Writes batch after batch until nothing waits. */
  async #writeWaiting(): Promise<void> {
    // Let every line of the current turn join the first batch.
    await Promise.resolve();
    while (this.#waiting.length > 0) {
      const bytes = Buffer.from(this.#waiting.join(""), "latin1");
      this.#counters.add("data_dir_updates", this.#waiting.length);
      this.#counters.add("data_dir_writes");
      const committed = this.#waitingCommitted;
      this.#waiting = [];
      this.#waitingCommitted = Promise.withResolvers<void>();
      await this.#writeDurably(bytes);
      committed.resolve();
    }
    this.#inFlight = undefined;
  }

  /**
   * Appends `bytes` and syncs them. A failed attempt (a full disk, say) is logged, the part
   * of it that reached the file cut off, and retried with backoff: the updates are never
   * dropped and their clients' AT replies wait.
   */
  async #writeDurably(bytes: Uint8Array): Promise<void> {
    for (let retryMs = RETRY_FIRST_MS;; retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)) {
      try {
        await writeAll(this.#file!, bytes);
        await this.#file!.syncData();
        this.#committedBytes += bytes.length;
        return;
      } catch (error) {
        this.#counters.add("data_dir_write_failures");
        this.#logger.error("data dir write failed ({error}); retrying in {retryMs} ms", {
          error: oneLine(String(error)),
          retryMs,
        });
        await this.#file!.truncate(this.#committedBytes).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/** Makes a rename in the file's directory durable. */
async function syncDirectory(path: string): Promise<void> {
  const directory = path.slice(0, path.lastIndexOf("/")) || ".";
  const handle = await Deno.open(directory, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
