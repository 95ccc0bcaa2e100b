/**
 * The durable record of accepted updates behind `--data-dir`: an append-only file of AT
 * lines, each with a CRC-32, written with group commit — every update appended while one
 * write + fdatasync is in flight goes out together in the next, so a client's AT can wait
 * for its update to be on disk without the server paying one fsync per line.
 *
 * File: a header line `herd-updates 2` (the format version; a file without one is an older
 * herd's, format 1, read the same way and given the header at its next compaction; a newer
 * version is refused, never overwritten), then records: `<CRC-32 of the AT line, 8 hex
 * digits> <AT line>\n`, the line as wire text (one byte per character). A record cut short by
 * a crash (no `\n`), whose checksum does not match, longer than `recordBytesMax`, or whose AT
 * line the loader finds malformed is skipped when loading, never fatal. A file with such
 * records, or with more stale records than latest ones (beyond a minimum), is compacted: at
 * start, and while serving.
 *
 * Compaction writes the latest update of every client to `NAME.updates.new` while batches
 * still go to the old file, then swaps files. No update that was acknowledged may end up only
 * in a file that is no longer at the path, so the swap goes:
 * 1. the walk of the clients ends in the same turn as new batches start to wait (`#swapping`),
 *    so every update is in the new file, or in a batch written to the old file before the
 *    swap, or waiting; the new file is synced and the batch in flight finishes;
 * 2. `.new` was opened for appending from the start, so its handle is the one batches use
 *    after the swap (the handle follows the inode through the rename: there is no reopen to
 *    fail after the path has changed);
 * 3. rename `.new` over the path. Until it succeeds, nothing has changed: any failure up to
 *    here closes and removes `.new`, batches resume on the old file (complete, at the path),
 *    and a compaction is tried again after a backoff. A rename that reports an error after
 *    taking effect leaves no `.new` to remove: then the new file is at the path and is used;
 * 4. sync the directory. The new file is already the one at the path, so this cannot fail
 *    the swap; if it fails, the rename is "not durable yet" (a crash could bring back the old
 *    file, which lacks what is appended from now on), and every later write syncs the
 *    directory before it acknowledges anything, until one directory sync succeeds.
 * A new file is made the same way (a compaction of what is held), so it always starts with
 * its header and its name is synced before an update in it is acknowledged.
 *
 * A failed write (a full disk, say) is cut off and retried with backoff, for ever: updates
 * are never dropped, and `backlog` tells how many wait, so the server can refuse new ones
 * past `backlogMax` instead of holding more and more.
 */
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import { systemWaitClock, type WaitClock } from "./abortable.ts";
import { backoffDelayMs, type BackoffOptions } from "./backoff.ts";
import { oneLine, OneLineError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Counters } from "./counters.ts";

/**
 * Takes one intact record's AT line, `bytes[start, end)` (wire text; the bytes are reused
 * once it returns), and says whether it is well formed.
 */
export type AcceptRecord = (bytes: Uint8Array, start: number, end: number) => boolean;

/** What `load` found in the file. */
export interface LoadReport {
  records: number;
  /** Records skipped: torn by a crash, damaged, too long or malformed. */
  skipped: number;
  /** Of the skipped, those intact on disk whose AT line the loader refused. */
  malformed: number;
  /** The file's size. */
  bytes: number;
}

/** An open file, as the log uses it (a `Deno.FsFile` is one). */
export interface LogFile {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  syncData(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): void;
}

/** The file-system calls the log makes: passed in, so a test can fail any one of them. */
export interface LogFileSystem {
  /** Rejects with `Deno.errors.NotFound` when there is no such file. */
  openRead(path: string): Promise<LogFile>;
  /** Opens for appending, creating the file when missing. */
  openAppend(path: string): Promise<LogFile>;
  rename(from: string, to: string): Promise<void>;
  /** Rejects with `Deno.errors.NotFound` when there is no such file. */
  remove(path: string): Promise<void>;
  /** Makes the names in `directory` (files created, renamed) durable. */
  syncDirectory(directory: string): Promise<void>;
}

/** The real file system. */
export const denoFileSystem: LogFileSystem = {
  openRead: (path) => Deno.open(path, { read: true }),
  openAppend: (path) => Deno.open(path, { create: true, append: true }),
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path),
  async syncDirectory(directory) {
    const handle = await Deno.open(directory, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  },
};

export interface UpdateLogOptions {
  /** The file, see {@link updateLogPath}. */
  path: string;
  /** What a compaction writes. */
  latest: LatestUpdates;
  logger: Logger;
  /**
   * Counts `data_dir_updates` written, in `data_dir_writes` (one fdatasync each), and
   * `data_dir_write_failures`, `data_dir_compaction_failures`.
   */
  counters: Counters;
  /**
   * Longest record `load` accepts, its `\n` not counted: {@link RECORD_PREFIX_BYTES} plus the
   * longest AT line this server can store (a neighbour's, about twice `lineBytesMax`).
   */
  recordBytesMax: number;
  /** Updates that may wait for a write before {@link UpdateLog.backlogged} (dataDirBacklogMax). */
  backlogMax: number;
  /** Default {@link denoFileSystem}. */
  fileSystem?: LogFileSystem;
  /** Waits between retries; default {@link systemWaitClock}. */
  clock?: WaitClock;
  /** Jitter source in [0, 1); default `Math.random`. */
  random?: () => number;
  /** Records beyond two per client that start a compaction; default 100000. */
  compactionRecordsMin?: number;
}

/** The format this herd writes; it reads it and the header-less format 1. */
const FORMAT_VERSION = 2;
const HEADER_PREFIX = "herd-updates ";
const HEADER = `${HEADER_PREFIX}${FORMAT_VERSION}\n`;
/** Bytes of a record before its AT line: the checksum and a space. */
export const RECORD_PREFIX_BYTES = 9;
/** Header bytes shown in the error that refuses an unknown header. */
const HEADER_SHOWN_BYTES_MAX = 40;
/** Bytes read at a time: a turn of the event loop per ~45k records of 90 bytes. */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
/** Waits before retrying a failed write: short, since AT replies wait for it. */
const WRITE_BACKOFF: BackoffOptions = { firstMs: 50, maxMs: 2000 };
/** Waits before trying a failed compaction again: nothing waits for one, and it is costly. */
const COMPACTION_BACKOFF: BackoffOptions = { firstMs: 1000, maxMs: 60_000 };
/** Records written (and synced) per chunk when compacting the file. */
const COMPACT_CHUNK_RECORDS = 4096;
/** A compaction starts once the file holds this many records per client, plus the minimum. */
const COMPACT_RECORDS_PER_CLIENT = 2;
const COMPACT_RECORDS_MIN_DEFAULT = 100_000;
/** A write is retried until it succeeds: its wait is never cut short. */
const NEVER_ABORTED = new AbortController().signal;

/** The file of one server's updates inside the data directory. */
export function updateLogPath(dataDir: string, serverName: string): string {
  return `${dataDir}/${serverName}.updates`;
}

/** Bytes at the start of a file whose lines tell the average length of its records. */
const RECORD_SAMPLE_BYTES = 64 * 1024;
/** The shortest record a file can hold: `AT a +0.000000000 b +0+0 0` with its prefix and `\n`. */
const RECORD_BYTES_MIN = RECORD_PREFIX_BYTES + "AT a +0.000000000 b +0+0 0".length + 1;

/** About how many records the file at `path` holds. */
export interface RecordRoom {
  clients: number;
}

/**
 * About how many records the file at `path` holds (none for a missing file), for the store
 * to size its index once before a load: the file's size over the average length of the lines
 * in its first {@link RECORD_SAMPLE_BYTES}, never more than the shortest record allows. The
 * bound alone over-counted ~80-byte records 2.5 times, and an index sized for that many is
 * touched all over (24 MB more at 1M clients).
 */
export async function recordRoomOf(path: string): Promise<RecordRoom> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { clients: 0 };
    throw error;
  }
  try {
    const { size } = await file.stat();
    const sample = new Uint8Array(Math.min(size, RECORD_SAMPLE_BYTES));
    let sampled = 0;
    while (sampled < sample.length) {
      const read = await file.read(sample.subarray(sampled));
      if (read === null) break;
      sampled += read;
    }
    let lines = 0;
    for (let index = 0; index < sampled; index++) if (sample[index] === NEWLINE) lines += 1;
    const bound = Math.floor(size / RECORD_BYTES_MIN);
    // A sample with no line end holds part of one long line: the bound is all there is to go by.
    if (lines === 0) return { clients: bound };
    return { clients: Math.min(bound, Math.ceil(size * lines / sampled)) };
  } finally {
    file.close();
  }
}

/** One record's bytes as written. */
export function formatRecord(atLine: string): string {
  return `${checksumOf(atLine)} ${atLine}\n`;
}

/**
 * The AT line of a record (without its `\n`), or undefined when it is damaged: the format's
 * inverse of {@link formatRecord}, one record at a time, as text. The loader checks records
 * the same way on the bytes as it scans them (`RecordReader`), and its tests hold it to this.
 */
export function parseRecord(record: string): string | undefined {
  if (record.length < RECORD_PREFIX_BYTES + 1 || record[RECORD_PREFIX_BYTES - 1] !== " ") {
    return undefined;
  }
  const atLine = record.slice(RECORD_PREFIX_BYTES);
  return record.slice(0, RECORD_PREFIX_BYTES - 1) === checksumOf(atLine) ? atLine : undefined;
}

/**
 * CRC-32 of the line's UTF-8 form, 8 hex digits: computed natively from the string, and as
 * good a check of the bytes on disk as one of the latin1 bytes themselves.
 */
function checksumOf(atLine: string): string {
  return crc32(atLine).toString(16).padStart(8, "0");
}

/** Throws unless `header` (a first line naming a format) names one this herd reads. */
function checkFormatHeader(path: string, header: string): void {
  const version = header.slice(HEADER_PREFIX.length);
  if (version === String(FORMAT_VERSION)) return;
  if (/^[1-9][0-9]*$/.test(version) && BigInt(version) > FORMAT_VERSION) {
    throw new OneLineError(
      `${path} is in format ${version}, written by a newer herd; this one reads up to format ${FORMAT_VERSION}`,
    );
  }
  const shown = JSON.stringify(header.slice(0, HEADER_SHOWN_BYTES_MAX));
  throw new OneLineError(`${path} starts with an unknown format header ${shown}`);
}

/**
 * Reads every record of `path` in file order and hands each intact one to `accept`. A
 * missing file is an empty one.
 *
 * Cost: one pass over the bytes, read in large chunks; each record's checksum is computed on
 * the bytes in the buffer while its end is looked for, and its AT line is handed over where
 * it lies in the buffer: no string is made — the per-line strings, slices and hex texts of a
 * line splitter were most of the time of a restart with 1M clients outside the store.
 */
async function loadUpdates(
  fileSystem: LogFileSystem,
  path: string,
  recordBytesMax: number,
  accept: AcceptRecord,
): Promise<LoadReport> {
  const report: LoadReport = { records: 0, skipped: 0, malformed: 0, bytes: 0 };
  let file: LogFile;
  try {
    file = await fileSystem.openRead(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return report;
    throw error;
  }
  const reader = new RecordReader(path, recordBytesMax, accept, report);
  try {
    // Each read is a turn of the event loop, so the monitor still answers during a load.
    // The longest line that may be a record: recordBytesMax, a `\r`, and its `\n`.
    const lineBytesMax = recordBytesMax + 2;
    let buffer: Buffer = Buffer.alloc(Math.min(READ_CHUNK_BYTES, lineBytesMax));
    let filled = 0;
    while (true) {
      const read = await file.read(buffer.subarray(filled));
      if (read === null) break;
      report.bytes += read;
      filled = reader.take(buffer, filled, filled + read);
      if (filled === buffer.length) {
        // A line not ended fills the buffer: too long to be a record, or one to make room for.
        if (filled >= lineBytesMax) filled = reader.discardLine(buffer);
        else buffer = grown(buffer, Math.min(buffer.length * 2, lineBytesMax), filled);
      }
    }
    reader.end(filled);
  } finally {
    file.close();
  }
  return report;
}

/** A larger buffer holding the first `filled` bytes of `buffer`. */
function grown(buffer: Buffer, bytes: number, filled: number): Buffer {
  const larger = Buffer.alloc(bytes);
  larger.set(buffer.subarray(0, filled));
  return larger;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const SPACE = 0x20;
const DIGIT_ZERO = 0x30;
const DIGIT_NINE = 0x39;
const LETTER_A = 0x61;
const LETTER_F = 0x66;
const HEADER_PREFIX_BYTES = Buffer.from(HEADER_PREFIX, "latin1");

/** CRC-32 (IEEE, reflected) of every byte value, for the checksum computed while scanning. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
    table[byte] = crc;
  }
  return table;
})();

/**
 * Splits chunks of the file into lines and checks each as a record (see `parseRecord`): the
 * scan for a line's end also computes the CRC-32 of the UTF-8 form of its AT line (a byte of
 * 0x80 or more, one wire-text character, is two bytes in UTF-8), so no line is turned into
 * text before it has proved intact.
 */
class RecordReader {
  readonly #path: string;
  readonly #recordBytesMax: number;
  readonly #accept: AcceptRecord;
  readonly #report: LoadReport;
  #isFirstLine = true;
  /** True while the rest of a line too long to be a record is skipped, up to its `\n`. */
  #discarding = false;

  constructor(
    path: string,
    recordBytesMax: number,
    accept: AcceptRecord,
    report: LoadReport,
  ) {
    this.#path = path;
    this.#recordBytesMax = recordBytesMax;
    this.#accept = accept;
    this.#report = report;
  }

  /**
   * Takes the complete lines in `buffer` up to `filled` (the bytes from `from` on are new),
   * moves what is left of a line not yet ended to the front, and returns its length.
   */
  take(buffer: Buffer, from: number, filled: number): number {
    let start = 0;
    if (this.#discarding) {
      const end = buffer.indexOf(NEWLINE, from);
      if (end === -1 || end >= filled) return 0;
      this.#discarding = false;
      start = end + 1;
    }
    while (start < filled) {
      let end = start;
      // The checksum and its space: any `\n` in them ends a line too short to be a record.
      const prefixEnd = Math.min(start + RECORD_PREFIX_BYTES, filled);
      while (end < prefixEnd && buffer[end] !== NEWLINE) end++;
      if (end === filled) break;
      let crc = -1;
      if (end === prefixEnd) {
        for (; end < filled; end++) {
          const byte = buffer[end];
          if (byte === NEWLINE) break;
          if (byte < 0x80) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
          else {
            crc = CRC_TABLE[(crc ^ (0xc0 | (byte >>> 6))) & 0xff] ^ (crc >>> 8);
            crc = CRC_TABLE[(crc ^ (0x80 | (byte & 0x3f))) & 0xff] ^ (crc >>> 8);
          }
        }
        if (end === filled) break;
      }
      this.#takeLine(buffer, start, end, (crc ^ -1) >>> 0);
      start = end + 1;
    }
    buffer.copyWithin(0, start, filled);
    return filled - start;
  }

  /**
   * Skips the line that fills `buffer`, longer than any record (the rest of it with the next
   * chunks), and returns the bytes left: none.
   */
  discardLine(buffer: Buffer): number {
    if (this.#isFirstLine) this.#takeHeader(buffer, 0, this.#recordBytesMax);
    this.#report.skipped += 1;
    this.#discarding = true;
    return 0;
  }

  /** At the end of the file: bytes after the last `\n` are a record a crash cut short. */
  end(filled: number): void {
    if (filled > 0 && !this.#discarding) this.#report.skipped += 1;
  }

  /** One line, `buffer[start, end)`; `crc` is that of its bytes after the record prefix. */
  #takeLine(buffer: Buffer, start: number, end: number, crc: number): void {
    let textEnd = end;
    if (textEnd > start && buffer[textEnd - 1] === CARRIAGE_RETURN) {
      textEnd -= 1;
      crc = textEnd - start > RECORD_PREFIX_BYTES
        ? crc32(buffer.toString("latin1", start + RECORD_PREFIX_BYTES, textEnd))
        : crc;
    }
    if (this.#isFirstLine && this.#takeHeader(buffer, start, textEnd)) return;
    if (!this.#isRecord(buffer, start, textEnd, crc)) {
      this.#report.skipped += 1;
      return;
    }
    if (this.#accept(buffer, start + RECORD_PREFIX_BYTES, textEnd)) this.#report.records += 1;
    else {
      this.#report.skipped += 1;
      this.#report.malformed += 1;
    }
  }

  /** Whether `buffer[start, end)` is the first line and a format header (else a record). */
  #takeHeader(buffer: Buffer, start: number, end: number): boolean {
    this.#isFirstLine = false;
    const prefixEnd = start + HEADER_PREFIX_BYTES.length;
    if (end < prefixEnd || buffer.compare(HEADER_PREFIX_BYTES, 0, undefined, start, prefixEnd)) {
      return false;
    }
    const textEnd = Math.min(end, start + this.#recordBytesMax);
    checkFormatHeader(this.#path, buffer.toString("latin1", start, textEnd));
    return true;
  }

  /** Whether the line is a record whose checksum (lowercase hex, then a space) is `crc`. */
  #isRecord(buffer: Buffer, start: number, end: number, crc: number): boolean {
    const length = end - start;
    if (length < RECORD_PREFIX_BYTES + 1 || length > this.#recordBytesMax) return false;
    if (buffer[start + RECORD_PREFIX_BYTES - 1] !== SPACE) return false;
    let written = 0;
    for (let index = start; index < start + RECORD_PREFIX_BYTES - 1; index++) {
      const byte = buffer[index];
      let digit: number;
      if (byte >= DIGIT_ZERO && byte <= DIGIT_NINE) digit = byte - DIGIT_ZERO;
      else if (byte >= LETTER_A && byte <= LETTER_F) digit = byte - LETTER_A + 10;
      else return false;
      written = written * 16 + digit;
    }
    return written === crc;
  }
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
  readonly #directory: string;
  readonly #latest: LatestUpdates;
  readonly #logger: Logger;
  readonly #counters: Counters;
  readonly #recordBytesMax: number;
  readonly #backlogMax: number;
  readonly #fileSystem: LogFileSystem;
  readonly #clock: WaitClock;
  readonly #random: () => number;
  readonly #compactionRecordsMin: number;
  /** Open for appending once `open` is done. */
  #file: LogFile | undefined;
  /** Records appended since the last write started. */
  #waiting: string[] = [];
  /** Resolves when the records in `#waiting` are on disk. */
  #waitingCommitted = Promise.withResolvers<void>();
  /** Resolves when the write in flight (if any) is on disk. */
  #inFlight: Promise<void> | undefined;
  #inFlightRecords = 0;
  /** File size up to the last record known to be on disk, to cut off a failed write. */
  #committedBytes = 0;
  #recordsInFile = 0;
  #compaction: Promise<void> | undefined;
  /** Compactions failed in a row, for the backoff before the next. */
  #compactionFailures = 0;
  /** True while a compaction swaps files in: new batches wait for the new file. */
  #swapping = false;
  /** False after a rename whose directory sync failed: writes sync it before acknowledging. */
  #directorySynced = true;
  /** Resolves when the backlog drops below `backlogMax`; made when someone waits for that. */
  #belowBacklog: PromiseWithResolvers<void> | undefined;
  /** Aborted by `close`: no compaction starts, and the wait after a failed one ends. */
  readonly #closing = new AbortController();

  constructor(options: UpdateLogOptions) {
    this.#path = options.path;
    this.#directory = options.path.slice(0, options.path.lastIndexOf("/")) || ".";
    this.#latest = options.latest;
    this.#logger = options.logger;
    this.#counters = options.counters;
    this.#recordBytesMax = options.recordBytesMax;
    this.#backlogMax = options.backlogMax;
    this.#fileSystem = options.fileSystem ?? denoFileSystem;
    this.#clock = options.clock ?? systemWaitClock;
    this.#random = options.random ?? Math.random;
    this.#compactionRecordsMin = options.compactionRecordsMin ?? COMPACT_RECORDS_MIN_DEFAULT;
  }

  /**
   * Reads the file's intact records in file order and hands each AT line to `accept`, which
   * says whether it is well formed (false: counted as damaged). A missing file has none.
   * Throws (one-line message) when the file is in a newer format or cannot be read.
   */
  async load(accept: AcceptRecord): Promise<LoadReport> {
    const report = await loadUpdates(this.#fileSystem, this.#path, this.#recordBytesMax, accept);
    this.#committedBytes = report.bytes;
    // A damaged file is always rewritten before anything is appended: a record appended
    // after a torn one would be read back as part of it, and lost with it.
    this.#recordsInFile = report.skipped > 0 ? Infinity : report.records;
    return report;
  }

  /**
   * After `load`: opens the file to append to — first compacted if it is missing or empty,
   * holds damaged records, or as many stale ones as would start a compaction while serving.
   * Throws when that fails.
   */
  async open(): Promise<void> {
    if (this.#committedBytes === 0 || this.#recordsInFile >= this.#compactionThreshold()) {
      return await this.#compact();
    }
    this.#file = await this.#fileSystem.openAppend(this.#path);
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

  /** Updates appended and not yet on disk: waiting for a write, or in the one in flight. */
  get backlog(): number {
    return this.#waiting.length + this.#inFlightRecords;
  }

  /** True while `backlog` is at `backlogMax` or past it: take no new updates. */
  get backlogged(): boolean {
    return this.backlog >= this.#backlogMax;
  }

  /** Resolves once the backlog is below `backlogMax` (at once if it is). */
  whenBelowBacklog(): Promise<void> {
    if (!this.backlogged) return Promise.resolve();
    this.#belowBacklog ??= Promise.withResolvers<void>();
    return this.#belowBacklog.promise;
  }

  /** Lets a compaction in progress finish (and starts none), writes what waits, closes the file. */
  async close(): Promise<void> {
    this.#closing.abort();
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
      this.#inFlightRecords = records;
      await this.#writeDurably(this.#file!, bytes);
      this.#inFlightRecords = 0;
      this.#counters.add("data_dir_updates", records);
      this.#counters.add("data_dir_writes");
      this.#recordsInFile += records;
      committed.resolve();
      if (this.#belowBacklog !== undefined && !this.backlogged) {
        this.#belowBacklog.resolve();
        this.#belowBacklog = undefined;
      }
      this.#compactIfMostlyStale();
    }
    this.#inFlight = undefined;
  }

  /**
   * Appends `bytes` and syncs them. A failed attempt is logged, the part of it that reached
   * the file cut off (before anything is written again: a torn record followed by others
   * would swallow the first of them), and retried with backoff: the updates are never
   * dropped and their clients' AT replies wait.
   */
  async #writeDurably(file: LogFile, bytes: Uint8Array): Promise<void> {
    let mayHoldPart = false;
    for (let retry = 1;; retry++) {
      try {
        if (mayHoldPart) await file.truncate(this.#committedBytes);
        mayHoldPart = true;
        await writeAll(file, bytes);
        await file.syncData();
        if (!this.#directorySynced) await this.#syncDirectory();
        this.#committedBytes += bytes.length;
        return;
      } catch (error) {
        const retryMs = Math.round(backoffDelayMs(retry, this.#random(), WRITE_BACKOFF));
        this.#counters.add("data_dir_write_failures");
        this.#logger.error("data dir write failed ({error}); retrying in {retryMs} ms", {
          error: oneLine(String(error)),
          retryMs,
        });
        await this.#clock.sleep(retryMs, NEVER_ABORTED);
      }
    }
  }

  /** Syncs the directory; the flag is only set by a success, never cleared by a failure. */
  async #syncDirectory(): Promise<void> {
    await this.#fileSystem.syncDirectory(this.#directory);
    this.#directorySynced = true;
  }

  /** Starts a compaction once the file holds far more records than there are clients. */
  #compactIfMostlyStale(): void {
    if (
      this.#compaction !== undefined || this.#closing.signal.aborted ||
      this.#recordsInFile < this.#compactionThreshold()
    ) return;
    this.#compaction = this.#compactOrBackOff().finally(() => (this.#compaction = undefined));
  }

  /** A compaction while serving; after a failure, waits before another may start. */
  async #compactOrBackOff(): Promise<void> {
    try {
      await this.#compact();
      this.#compactionFailures = 0;
    } catch (error) {
      this.#compactionFailures += 1;
      const retryMs = Math.round(
        backoffDelayMs(this.#compactionFailures, this.#random(), COMPACTION_BACKOFF),
      );
      this.#counters.add("data_dir_compaction_failures");
      this.#logger.error(
        "data dir compaction failed ({error}); appending to the old file, next try in {retryMs} ms at the earliest",
        { error: oneLine(String(error)), retryMs },
      );
      await this.#clock.sleep(retryMs, this.#closing.signal);
    }
  }

  #compactionThreshold(): number {
    return this.#compactionRecordsMin + COMPACT_RECORDS_PER_CLIENT * this.#latest.size;
  }

  /**
   * Rewrites the file with the latest update of every client and swaps it in, as the module
   * comment describes. Throws if the swap did not happen: the old file is then still in use,
   * complete, and `.new` is removed.
   */
  async #compact(): Promise<void> {
    const startedMs = this.#clock.nowMs();
    const newPath = `${this.#path}.new`;
    let file: LogFile | undefined;
    let written = { bytes: 0, records: 0 };
    let isRenaming = false;
    try {
      file = await this.#fileSystem.openAppend(newPath);
      written = await this.#writeLatest(file);
      isRenaming = true;
      await this.#fileSystem.rename(newPath, this.#path);
    } catch (error) {
      const isNewLeft = await this.#removeNewFile(newPath);
      if (!isRenaming || isNewLeft) {
        file?.close();
        this.#resumeWriting();
        throw error;
      }
      this.#logger.warn("data dir rename failed ({error}) but took effect: using the new file", {
        error: oneLine(String(error)),
      });
    }
    this.#file?.close();
    this.#file = file;
    this.#committedBytes = written.bytes;
    this.#recordsInFile = written.records;
    this.#directorySynced = false;
    await this.#syncDirectory().catch((error) =>
      this.#logger.error(
        "data dir {directory} sync failed after a rename ({error}); writes sync it before acknowledging",
        { directory: this.#directory, error: oneLine(String(error)) },
      )
    );
    this.#resumeWriting();
    this.#logger.info("data dir {path} compacted: {records} records, {bytes} bytes in {ms} ms", {
      path: this.#path,
      records: written.records,
      bytes: written.bytes,
      ms: Math.round(this.#clock.nowMs() - startedMs),
    });
  }

  /**
   * Writes the header and the latest update of every client to `file`, synced, and returns
   * with new batches waiting (`#swapping`) and none in flight to the old file.
   */
  async #writeLatest(file: LogFile): Promise<{ bytes: number; records: number }> {
    // A `.new` left by a crash or a failed removal is emptied: this handle only appends.
    await file.truncate(0);
    let bytes = await writeText(file, HEADER);
    let records = 0;
    let chunk: string[] = [];
    const writeChunk = async () => {
      bytes += await writeText(file, chunk.join(""));
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
    return { bytes, records };
  }

  /**
   * Removes a failed compaction's `.new`, so it does not hold the disk; returns whether it
   * was there (false: a rename moved it). A failed removal is logged and the file left.
   */
  async #removeNewFile(newPath: string): Promise<boolean> {
    try {
      await this.#fileSystem.remove(newPath);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      this.#logger.error("data dir could not remove {path} ({error})", {
        path: newPath,
        error: oneLine(String(error)),
      });
    }
    return true;
  }

  /** Ends a swap (done or failed): the batches that waited for it go out. */
  #resumeWriting(): void {
    this.#swapping = false;
    if (this.#waiting.length > 0) this.#startWriting();
  }
}

/** Writes `text` as wire text (one byte per character); returns how many bytes that was. */
async function writeText(file: LogFile, text: string): Promise<number> {
  const bytes = Buffer.from(text, "latin1");
  await writeAll(file, bytes);
  return bytes.length;
}

async function writeAll(file: LogFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
