/**
 * The durable record of accepted updates behind `--data-dir`: an append-only file of AT
 * lines, each with a CRC-32, written with group commit — every update appended while one
 * write + fdatasync is in flight goes out together in the next, so a client's AT can wait
 * for its update to be on disk without the server paying one fsync per line.
 *
 * Record: `<CRC-32 of the AT line, 8 hex digits> <AT line>\n`, the line as wire text (one
 * byte per character). A record cut short by a crash (no `\n`, or a checksum that does not
 * match) is skipped when loading, never fatal. A file with such records, or with more stale
 * records than latest ones (beyond a minimum), is rewritten with only the latest update per
 * client (a new file, fsynced, renamed over the old one): at start, and while serving.
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
  /** The file's size. */
  bytes: number;
}

const READ_CHUNK_BYTES = 1024 * 1024;
/** Longest record `load` accepts: an AT line from any client line the config allows. */
const RECORD_BYTES_MAX = 16 * 1024 * 1024;
/** First and longest wait before retrying a failed write. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2000;
/** Records written (and synced) per chunk when compacting the file. */
const COMPACT_CHUNK_RECORDS = 4096;
/** A compaction starts once the file holds this many records per client, plus the minimum. */
const COMPACT_RECORDS_PER_CLIENT = 2;
const COMPACT_RECORDS_MIN = 100_000;

/** The file of one server's updates inside the data directory. */
export function updateLogPath(dataDir: string, serverName: string): string {
  return `${dataDir}/${serverName}.updates`;
}

/** One record's bytes as written. */
export function formatRecord(atLine: string): string {
  return `${checksumOf(atLine)} ${atLine}\n`;
}

/** The AT line of a record (without its `\n`), or undefined when it is damaged. */
export function parseRecord(record: string): string | undefined {
  if (record.length < 10 || record[8] !== " ") return undefined;
  const atLine = record.slice(9);
  return record.slice(0, 8) === checksumOf(atLine) ? atLine : undefined;
}

/**
 * CRC-32 of the line's UTF-8 form, 8 hex digits: computed natively from the string, and as
 * good a check of the bytes on disk as one of the latin1 bytes themselves.
 */
function checksumOf(atLine: string): string {
  return crc32(atLine).toString(16).padStart(8, "0");
}

/**
 * Reads every record of `path` in file order and hands each intact one to `onRecord`. A
 * missing file is an empty one.
 */
async function loadUpdates(
  path: string,
  onRecord: (atLine: string) => void,
): Promise<LoadReport> {
  const report: LoadReport = { records: 0, skipped: 0, bytes: 0 };
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
      report.bytes += read;
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

/** What the log is compacted to: the latest update of every client. */
export interface LatestUpdates {
  readonly size: number;
  /** Every held AT line; a live walk that also meets the lines changed while it runs. */
  atLines(): Iterable<string>;
}

/** Loads, appends and compacts one server's records; see the module comment. */
export class UpdateLog {
  readonly #path: string;
  readonly #latest: LatestUpdates;
  readonly #logger: Logger;
  readonly #counters: Counters;
  /** Open for appending once `open` is done. */
  #file: Deno.FsFile | undefined;
  /** Records appended since the last write started. */
  #waiting: string[] = [];
  /** Resolves when the records in `#waiting` are on disk. */
  #waitingCommitted = Promise.withResolvers<void>();
  /** Resolves when the write in flight (if any) is on disk. */
  #inFlight: Promise<void> | undefined;
  /** File size up to the last record known to be on disk, to cut off a failed write. */
  #committedBytes = 0;
  #recordsInFile = 0;
  #compaction: Promise<void> | undefined;
  /** True while a compaction swaps files in: new batches wait for the new file. */
  #swapping = false;

  /**
   * `latest` is what a compaction writes. Counts `data_dir_updates` written, in
   * `data_dir_writes` (one fdatasync each).
   */
  constructor(path: string, latest: LatestUpdates, logger: Logger, counters: Counters) {
    this.#path = path;
    this.#latest = latest;
    this.#logger = logger;
    this.#counters = counters;
  }

  /** Reads the file's intact records in file order; a missing file has none. */
  async load(onRecord: (atLine: string) => void): Promise<LoadReport> {
    const report = await loadUpdates(this.#path, onRecord);
    this.#committedBytes = report.bytes;
    // A damaged file is always rewritten before anything is appended: a record appended
    // after a torn one would be read back as part of it, and lost with it.
    this.#recordsInFile = report.skipped > 0 ? Infinity : report.records;
    return report;
  }

  /**
   * After `load`: opens the file to append to — first compacted, if it holds damaged records
   * or as many stale ones as would start a compaction while serving.
   */
  async open(): Promise<void> {
    if (this.#recordsInFile >= this.#compactionThreshold()) return await this.#compact();
    this.#file = await Deno.open(this.#path, { write: true, create: true, append: true });
  }

  /** Adds an update, to be written with the next batch (only after `open`). */
  append(atLine: string): void {
    this.#waiting.push(formatRecord(atLine));
    this.#startWriting();
  }

  /** Resolves once everything appended so far is on disk (never rejects). */
  committed(): Promise<void> {
    if (this.#waiting.length > 0) return this.#waitingCommitted.promise;
    return this.#inFlight ?? Promise.resolve();
  }

  /** Lets a compaction finish, writes what is waiting, then closes the file. */
  async close(): Promise<void> {
    await this.#compaction;
    await this.committed();
    this.#file?.close();
    this.#file = undefined;
  }

  #startWriting(): void {
    if (this.#inFlight === undefined && !this.#swapping) this.#inFlight = this.#writeWaiting();
  }

  /** Writes batch after batch until nothing waits (or a compaction swaps files). */
  async #writeWaiting(): Promise<void> {
    // Let every line of the current turn join the first batch.
    await Promise.resolve();
    while (this.#waiting.length > 0 && !this.#swapping) {
      const bytes = Buffer.from(this.#waiting.join(""), "latin1");
      const records = this.#waiting.length;
      const committed = this.#waitingCommitted;
      this.#waiting = [];
      this.#waitingCommitted = Promise.withResolvers<void>();
      await this.#writeDurably(this.#file!, bytes);
      this.#counters.add("data_dir_updates", records);
      this.#counters.add("data_dir_writes");
      this.#recordsInFile += records;
      committed.resolve();
      this.#compactIfMostlyStale();
    }
    this.#inFlight = undefined;
  }

  /**
   * Appends `bytes` and syncs them. A failed attempt (a full disk, say) is logged, the part
   * of it that reached the file cut off, and retried with backoff: the updates are never
   * dropped and their clients' AT replies wait.
   */
  async #writeDurably(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
    for (let retryMs = RETRY_FIRST_MS;; retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)) {
      try {
        await writeAll(file, bytes);
        await file.syncData();
        this.#committedBytes += bytes.length;
        return;
      } catch (error) {
        this.#counters.add("data_dir_write_failures");
        this.#logger.error("data dir write failed ({error}); retrying in {retryMs} ms", {
          error: oneLine(String(error)),
          retryMs,
        });
        await file.truncate(this.#committedBytes).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  }

  /** Starts a compaction once the file holds far more records than there are clients. */
  #compactIfMostlyStale(): void {
    if (this.#compaction !== undefined || this.#recordsInFile < this.#compactionThreshold()) {
      return;
    }
    this.#compaction = this.#compact()
      .catch((error) =>
        this.#logger.error("data dir compaction failed ({error}); appending to the old file", {
          error: oneLine(String(error)),
        })
      )
      .finally(() => (this.#compaction = undefined));
  }

  #compactionThreshold(): number {
    return COMPACT_RECORDS_MIN + COMPACT_RECORDS_PER_CLIENT * this.#latest.size;
  }

  /**
   * Writes the latest update of every client to a new file while batches still go to the old
   * one. The walk of the clients ends in the same turn as new batches start to wait, so every
   * update is in the old file's last batch, in the new file, or waiting for it; then the new
   * file is synced and renamed over the old one, and the waiting batches go to it.
   */
  async #compact(): Promise<void> {
    const startedMs = performance.now();
    const temporaryPath = `${this.#path}.new`;
    const file = await Deno.open(temporaryPath, { write: true, create: true, truncate: true });
    let bytes = 0;
    let records = 0;
    try {
      let chunk: string[] = [];
      const writeChunk = async () => {
        bytes += await writeRecords(file, chunk);
        records += chunk.length;
        chunk = [];
        // Synced chunk by chunk, so the last sync (while batches wait) is short.
        await file.syncData();
      };
      for (const atLine of this.#latest.atLines()) {
        chunk.push(formatRecord(atLine));
        if (chunk.length === COMPACT_CHUNK_RECORDS) await writeChunk();
      }
      this.#swapping = true;
      await writeChunk();
      await this.#inFlight;
      await Deno.rename(temporaryPath, this.#path);
      await syncDirectory(this.#path);
      this.#file?.close();
      this.#file = await Deno.open(this.#path, { write: true, append: true });
      this.#committedBytes = bytes;
      this.#recordsInFile = records;
    } finally {
      file.close();
      this.#swapping = false;
      if (this.#waiting.length > 0) this.#startWriting();
    }
    this.#logger.info("data dir {path} compacted: {records} records, {bytes} bytes in {ms} ms", {
      path: this.#path,
      records,
      bytes,
      ms: Math.round(performance.now() - startedMs),
    });
  }
}

/** Writes records; returns how many bytes that was. */
async function writeRecords(file: Deno.FsFile, records: string[]): Promise<number> {
  const bytes = Buffer.from(records.join(""), "latin1");
  await writeAll(file, bytes);
  return bytes.length;
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
