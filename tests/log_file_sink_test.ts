/**
 * The rotating log file sink, on an in-memory file system: rotation keeps `files` files of at
 * most `maxBytes` bytes (counted in UTF-8 bytes) holding the newest records whole and in
 * order, stale and oversized files are dealt with at the first rotation, the queue never
 * passes its bound and reports what it dropped once it has caught up, failed and partial
 * writes are retried from where they stopped, `close` flushes or gives up in time, and records
 * wait for a batch only until it is due, a chunk fills or the sink closes.
 */
import assert from "node:assert/strict";
import {
  LogFileSink,
  type LogFileSinkOptions,
  type LogSinkFile,
  type LogSinkFileSystem,
  openLogFileSink,
} from "../lib/log_file_sink.ts";
import { logLineFormatter } from "../lib/log_format.ts";
import { logRecord } from "./support/log_records.ts";

const DIR = "/logs";
const PATH = `${DIR}/Hill.log`;
/** Turns of the event loop a test waits for the writer before it gives up. */
const EVENT_LOOP_TURNS_MAX = 10_000;
/** Sleeps a test allows before it calls the retry loop runaway. */
const SLEEPS_MAX = 1_000;
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const format = logLineFormatter("text", "Hill");

/** The line `logRecord(message)` becomes in the file. */
function line(message: string): string {
  return format(logRecord(message));
}

/** Messages of different lengths, so records do not fill a file in a fixed pattern. */
function messages(count: number, prefix = "record"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${i} ${"x".repeat((i * 7) % 23)}`);
}

/** Thrown by a write the test chose to fail. */
class NoSpaceError extends Error {
  override name = "NoSpaceError";
  constructor() {
    super("No space left on device (os error 28)");
  }
}

/**
 * Files as a map of path → bytes. Writes can be made to fail (by call number), to take only
 * `bytesPerWriteMax` bytes, or to wait until {@link MemoryFileSystem.release}.
 */
class MemoryFileSystem implements LogSinkFileSystem {
  readonly files = new Map<string, Uint8Array>();
  /** Write calls so far (failed ones included), numbered from 1. */
  writeCalls = 0;
  /** The write calls that throw. */
  failingWriteCalls = new Set<number>();
  bytesPerWriteMax = Infinity;
  /** Writes waiting on {@link block}. */
  writesWaiting = 0;
  /** Handles closed then written to (the sink must never do that). */
  writesAfterClose = 0;
  #gate: PromiseWithResolvers<void> | undefined;

  constructor(files: Record<string, string> = {}) {
    for (const [path, text] of Object.entries(files)) this.files.set(path, encoder.encode(text));
  }

  /** Writes from now on wait until {@link release}. */
  block(): void {
    this.#gate = Promise.withResolvers<void>();
  }

  /** Lets waiting writes go on; `blockAgain` makes the ones after them wait again. */
  release(blockAgain = false): void {
    const gate = this.#gate;
    this.#gate = blockAgain ? Promise.withResolvers<void>() : undefined;
    gate?.resolve();
  }

  text(path = PATH): string | undefined {
    const bytes = this.files.get(path);
    return bytes === undefined ? undefined : decoder.decode(bytes);
  }

  names(): string[] {
    return [...this.files.keys()].sort();
  }

  openAppend(path: string): Promise<LogSinkFile> {
    if (!this.files.has(path)) this.files.set(path, new Uint8Array(0));
    let closed = false;
    return Promise.resolve({
      write: async (bytes: Uint8Array) => {
        if (closed) this.writesAfterClose += 1;
        const call = ++this.writeCalls;
        const gate = this.#gate;
        if (gate !== undefined) {
          this.writesWaiting += 1;
          await gate.promise;
          this.writesWaiting -= 1;
        }
        if (this.failingWriteCalls.has(call)) throw new NoSpaceError();
        const taken = bytes.slice(0, Math.min(bytes.length, this.bytesPerWriteMax));
        const old = this.files.get(path) ?? new Uint8Array(0);
        const grown = new Uint8Array(old.length + taken.length);
        grown.set(old);
        grown.set(taken, old.length);
        this.files.set(path, grown);
        return taken.length;
      },
      size: () => Promise.resolve(this.files.get(path)?.length ?? 0),
      close: () => {
        closed = true;
      },
    });
  }

  rename(from: string, to: string): Promise<void> {
    const bytes = this.files.get(from);
    if (bytes === undefined) return Promise.reject(new Deno.errors.NotFound(`rename ${from}`));
    this.files.delete(from);
    this.files.set(to, bytes);
    return Promise.resolve();
  }

  remove(path: string): Promise<void> {
    this.files.delete(path);
    return Promise.resolve();
  }

  list(dir: string): Promise<string[]> {
    const names = [...this.files.keys()]
      .filter((path) => path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes("/"))
      .map((path) => path.slice(dir.length + 1));
    return Promise.resolve(names);
  }
}

/** A sink on a {@link MemoryFileSystem}, with what it reports collected. */
class TestSink {
  readonly fileSystem: MemoryFileSystem;
  /** Each `onDropped` count, in order. */
  readonly droppedCounts: number[] = [];
  readonly dropWarnings: Array<[number, string | undefined]> = [];
  readonly failures: string[] = [];
  readonly sleepsMs: number[] = [];
  sink!: LogFileSink;

  private constructor(fileSystem: MemoryFileSystem) {
    this.fileSystem = fileSystem;
  }

  static async open(
    options: Partial<LogFileSinkOptions> = {},
    fileSystem = new MemoryFileSystem(),
  ): Promise<TestSink> {
    const test = new TestSink(fileSystem);
    test.sink = await openLogFileSink({
      path: PATH,
      maxBytes: 1_000_000,
      files: 3,
      format,
      onDropped: (records) => test.droppedCounts.push(records),
      dropWarning: (dropped, lastError) => {
        test.dropWarnings.push([dropped, lastError]);
        return logRecord("{dropped} log records dropped", { dropped }, "warning");
      },
      reportFailure: (message) => test.failures.push(message),
      fileSystem,
      random: () => 1,
      batchMs: 0,
      waitClock: {
        nowMs: () => 0,
        sleep: (ms) => {
          test.sleepsMs.push(ms);
          if (test.sleepsMs.length > SLEEPS_MAX) throw new Error("the retry loop never stops");
          return Promise.resolve();
        },
      },
      ...options,
    });
    return test;
  }

  get dropped(): number {
    return this.droppedCounts.reduce((sum, count) => sum + count, 0);
  }

  writeAll(messages: readonly string[]): void {
    for (const message of messages) this.sink.write(logRecord(message));
  }

  /** Waits until everything queued is in the files. */
  idle(): Promise<void> {
    return until(() => this.sink.queuedBytes === 0, "the queue never emptied");
  }
}

/** Turns the event loop until `done`, a bounded number of times. */
async function until(done: () => boolean, failure: string): Promise<void> {
  for (let turn = 0; !done(); turn++) {
    if (turn === EVENT_LOOP_TURNS_MAX) throw new Error(failure);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** The lines of `text`, each with its newline; asserts nothing follows the last newline. */
function linesOf(text: string): string[] {
  assert.ok(text === "" || text.endsWith("\n"), `a torn last line: ${JSON.stringify(text)}`);
  return text.split(/(?<=\n)/).filter((part) => part !== "");
}

/**
 * Asserts the rotated files hold whole lines, none past `maxBytes` unless it is a single line,
 * each older file full (the next file's first line would not have fitted), and returns their
 * lines oldest first.
 */
function keptLines(fileSystem: MemoryFileSystem, files: number, maxBytes: number): string[] {
  const paths = Array.from({ length: files }, (_, i) => i === 0 ? PATH : `${PATH}.${i}`)
    .reverse();
  const lines: string[][] = [];
  for (const path of paths) {
    const bytes = fileSystem.files.get(path);
    assert.ok(bytes !== undefined, `${path} missing`);
    const fileLines = linesOf(decoder.decode(bytes));
    assert.ok(fileLines.length > 0, `${path} empty`);
    assert.ok(
      bytes.length <= maxBytes || fileLines.length === 1,
      `${path} holds ${bytes.length} bytes in ${fileLines.length} lines`,
    );
    lines.push(fileLines);
  }
  for (let i = 0; i + 1 < paths.length; i++) {
    const bytes = fileSystem.files.get(paths[i])!.length;
    const next = encoder.encode(lines[i + 1][0]).length;
    assert.ok(bytes + next > maxBytes, `${paths[i]} rotated early at ${bytes} bytes`);
  }
  return lines.flat();
}

Deno.test("rotation keeps NAME.log, .1 and .2 within maxBytes, holding the newest records whole and in order", async () => {
  const test = await TestSink.open({ maxBytes: 300, files: 3 });
  const all = messages(200);
  // Some records queued in one pass, some one at a time: rotation is planned in both.
  for (let at = 0; at < all.length; at += 13) {
    test.writeAll(all.slice(at, at + 13));
    if (at % 2 === 0) await test.idle();
  }
  await test.idle();
  assert.deepEqual(test.fileSystem.names(), [PATH, `${PATH}.1`, `${PATH}.2`]);
  const kept = keptLines(test.fileSystem, 3, 300);
  const expected = all.map(line);
  assert.ok(kept.length >= 6 && kept.length < 200, `${kept.length} lines kept`);
  assert.deepEqual(kept, expected.slice(-kept.length));
  assert.deepEqual(test.droppedCounts, []);
  assert.deepEqual(test.failures, []);
  assert.equal(test.fileSystem.writesAfterClose, 0);
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("files=1 keeps just NAME.log, holding the newest records", async () => {
  const test = await TestSink.open({ maxBytes: 300, files: 1 });
  const all = messages(60);
  for (let at = 0; at < all.length; at += 4) {
    test.writeAll(all.slice(at, at + 4));
    await test.idle();
  }
  assert.deepEqual(test.fileSystem.names(), [PATH]);
  const kept = keptLines(test.fileSystem, 1, 300);
  assert.ok(kept.length >= 3 && kept.length < 60, `${kept.length} lines kept`);
  assert.deepEqual(kept, all.map(line).slice(-kept.length));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("the first rotation removes NAME.log.7 left by a larger `files`, and keeps other names", async () => {
  const fileSystem = new MemoryFileSystem({
    [`${PATH}.1`]: "old one\n",
    [`${PATH}.2`]: "old two\n",
    [`${PATH}.7`]: "old seven\n",
    [`${PATH}.bak`]: "a backup\n",
    [`${PATH}.1.gz`]: "compressed\n",
    [`${DIR}/OTHER.log.1`]: "another server\n",
  });
  const test = await TestSink.open({ maxBytes: 200, files: 3 }, fileSystem);
  test.writeAll(["first"]);
  await test.idle();
  assert.ok(fileSystem.files.has(`${PATH}.7`), "removed before any rotation");
  const all = messages(5);
  test.writeAll(all);
  await test.idle();
  assert.equal(fileSystem.text(`${PATH}.2`), "old one\n");
  assert.equal(fileSystem.text(`${PATH}.1`)?.startsWith(line("first")), true);
  assert.deepEqual(fileSystem.names(), [
    PATH,
    `${PATH}.1`,
    `${PATH}.1.gz`,
    `${PATH}.2`,
    `${PATH}.bak`,
    `${DIR}/OTHER.log.1`,
  ]);
  assert.equal(fileSystem.text(`${PATH}.bak`), "a backup\n");
  assert.equal(fileSystem.text(`${PATH}.1.gz`), "compressed\n");
  assert.equal(fileSystem.text(`${DIR}/OTHER.log.1`), "another server\n");
  assert.equal(
    fileSystem.text(`${PATH}.1`)! + fileSystem.text(PATH)!,
    ["first", ...all].map(line).join(""),
  );
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("an existing NAME.log already past maxBytes is rotated before the first new record", async () => {
  const old = `${"o".repeat(499)}\n`;
  const fileSystem = new MemoryFileSystem({ [PATH]: old });
  const test = await TestSink.open({ maxBytes: 300, files: 3 }, fileSystem);
  test.writeAll(["new"]);
  await test.idle();
  assert.equal(fileSystem.text(`${PATH}.1`), old);
  assert.equal(fileSystem.text(PATH), line("new"));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("an existing NAME.log with room left is appended to", async () => {
  const fileSystem = new MemoryFileSystem({ [PATH]: "earlier run\n" });
  const test = await TestSink.open({ maxBytes: 300, files: 3 }, fileSystem);
  test.writeAll(["new"]);
  await test.idle();
  assert.deepEqual(fileSystem.names(), [PATH]);
  assert.equal(fileSystem.text(PATH), `earlier run\n${line("new")}`);
  // The size it started with counts: the next record past 300 bytes starts a new file.
  test.writeAll(["y".repeat(300 - 12 - line("new").length - line("").length + 1)]);
  await test.idle();
  assert.equal(fileSystem.text(`${PATH}.1`), `earlier run\n${line("new")}`);
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("a record longer than maxBytes goes alone into a file of its own", async () => {
  const test = await TestSink.open({ maxBytes: 200, files: 5 });
  const long = "L".repeat(500);
  test.writeAll(["before 1", "before 2", long, "after"]);
  await test.idle();
  assert.equal(test.fileSystem.text(`${PATH}.2`), line("before 1") + line("before 2"));
  assert.equal(test.fileSystem.text(`${PATH}.1`), line(long));
  assert.equal(test.fileSystem.text(PATH), line("after"));
  // Also as the very first record of an empty file, and between two long ones.
  const first = await TestSink.open({ maxBytes: 200, files: 5 });
  first.writeAll([long, `${long}2`, "last"]);
  await first.idle();
  assert.equal(first.fileSystem.text(`${PATH}.2`), line(long));
  assert.equal(first.fileSystem.text(`${PATH}.1`), line(`${long}2`));
  assert.equal(first.fileSystem.text(PATH), line("last"));
  await test.sink.close({ waitMs: 1_000 });
  await first.sink.close({ waitMs: 1_000 });
});

Deno.test("non-ASCII records are counted in bytes: no file passes maxBytes", async () => {
  const test = await TestSink.open({ maxBytes: 200, files: 20 });
  // Each line is about 1.5 to 3.5 bytes per UTF-16 unit: counted by length, two would share a file.
  const all = Array.from(
    { length: 30 },
    (_, i) => `${i} ${"é".repeat(i % 5)}${"日本語".repeat(12)}${"🦬".repeat(i % 3)}`,
  );
  for (let at = 0; at < all.length; at += 3) {
    test.writeAll(all.slice(at, at + 3));
    if (at % 2 === 0) await test.idle();
  }
  await test.idle();
  const files = test.fileSystem.names().length;
  assert.ok(files >= 15, `${files} files`);
  const kept = keptLines(test.fileSystem, files, 200);
  assert.deepEqual(kept, all.map(line).slice(-kept.length));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("with the writer stalled the queue stays within its bound; drops are counted, then reported once after the queued records", async () => {
  const queueBytesMax = 2_000;
  const test = await TestSink.open({ queueBytesMax });
  const fileSystem = test.fileSystem;
  const all = Array.from({ length: 200 }, (_, i) => `record ${String(i).padStart(3, "0")}`);
  const lineBytes = line(all[0]).length;
  fileSystem.block();
  test.writeAll(all.slice(0, 1));
  await until(() => fileSystem.writesWaiting === 1, "the writer never began");
  for (const message of all.slice(1)) {
    test.writeAll([message]);
    assert.ok(test.sink.queuedBytes <= queueBytesMax, `${test.sink.queuedBytes} bytes queued`);
  }
  const kept = Math.floor(queueBytesMax / lineBytes);
  assert.equal(test.sink.queuedBytes, kept * lineBytes, "the queue is filled to its bound");
  assert.equal(test.dropped, all.length - kept);
  assert.ok(test.droppedCounts.every((count) => count > 0));

  // The first write done, the queue is still above half its bound: no warning yet.
  fileSystem.release(true);
  await until(() => fileSystem.writesWaiting === 1 && fileSystem.writeCalls === 2, "no 2nd write");
  assert.equal(fileSystem.text(), line(all[0]));
  assert.equal(test.sink.queuedBytes, (kept - 1) * lineBytes);
  assert.deepEqual(test.dropWarnings, []);

  fileSystem.release();
  await test.idle();
  const warning = format(
    logRecord("{dropped} log records dropped", { dropped: all.length - kept }, "warning"),
  );
  assert.ok(warning.includes(`${all.length - kept} log records dropped`), warning);
  assert.equal(fileSystem.text(), all.slice(0, kept).map(line).join("") + warning);
  assert.deepEqual(test.dropWarnings, [[all.length - kept, undefined]]);

  test.writeAll(["later 1", "later 2"]);
  await test.idle();
  assert.equal(
    fileSystem.text(),
    all.slice(0, kept).map(line).join("") + warning + line("later 1") + line("later 2"),
  );
  assert.equal(test.dropped, all.length - kept);
  await test.sink.close({ waitMs: 1_000 });
  assert.equal(test.dropped, all.length - kept);
});

Deno.test("a record longer than the whole queue bound is dropped and counted, the rest kept", async () => {
  const test = await TestSink.open({ queueBytesMax: 500 });
  test.writeAll(["small 1", "B".repeat(600), "small 2", "é".repeat(300)]);
  await test.idle();
  assert.equal(test.dropped, 2);
  const text = test.fileSystem.text()!;
  assert.ok(text.startsWith(line("small 1") + line("small 2")), text);
  assert.ok(text.includes("2 log records dropped"), text);
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("a write that fails twice is retried with backoff: every record once, the failure and recovery reported once each", async () => {
  const test = await TestSink.open();
  test.fileSystem.failingWriteCalls = new Set([1, 2]);
  const all = messages(20);
  test.writeAll(all);
  await test.idle();
  assert.equal(test.fileSystem.text(), all.map(line).join(""));
  assert.equal(test.fileSystem.writeCalls, 3);
  assert.deepEqual(test.sleepsMs, [50, 100]);
  assert.equal(test.failures.length, 2, test.failures.join("\n"));
  assert.match(test.failures[0], /log write to \/logs\/Hill\.log failed: No space left on device/);
  assert.match(test.failures[1], /work again/);
  assert.deepEqual(test.droppedCounts, []);
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("a disk failing for long is retried with backoff capped at 5 s, and reported once", async () => {
  const test = await TestSink.open();
  test.fileSystem.failingWriteCalls = new Set(Array.from({ length: 10 }, (_, i) => i + 1));
  test.writeAll(["one", "two"]);
  await test.idle();
  assert.equal(test.fileSystem.text(), line("one") + line("two"));
  assert.deepEqual(test.sleepsMs, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  assert.equal(test.failures.length, 2, test.failures.join("\n"));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("partial writes, some failing, still give the exact bytes, across rotations too", async () => {
  const test = await TestSink.open({ maxBytes: 250, files: 50 });
  test.fileSystem.bytesPerWriteMax = 7;
  test.fileSystem.failingWriteCalls = new Set([3, 4, 9, 40, 41, 42]);
  const all = messages(40).map((message, i) => i % 3 === 0 ? `${message} ünïcödé ✓` : message);
  for (let at = 0; at < all.length; at += 5) {
    test.writeAll(all.slice(at, at + 5));
    if (at % 2 === 0) await test.idle();
  }
  await test.idle();
  const files = test.fileSystem.names().length;
  assert.ok(files > 3, `${files} files`);
  assert.deepEqual(keptLines(test.fileSystem, files, 250), all.map(line));
  assert.equal(test.failures.length, 6, test.failures.join("\n"));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("close() writes what is queued; records after it are ignored", async () => {
  const test = await TestSink.open({ maxBytes: 300, files: 10 });
  const all = messages(30);
  test.writeAll(all);
  await test.sink.close({ waitMs: 1_000 });
  const files = test.fileSystem.names().length;
  assert.deepEqual(keptLines(test.fileSystem, files, 300), all.map(line));
  assert.deepEqual(test.droppedCounts, []);
  const writeCalls = test.fileSystem.writeCalls;
  test.writeAll(["after close"]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(test.sink.queuedBytes, 0);
  assert.equal(test.fileSystem.writeCalls, writeCalls);
  assert.deepEqual(keptLines(test.fileSystem, files, 300), all.map(line));
  assert.deepEqual(test.droppedCounts, []);
  assert.equal(test.fileSystem.writesAfterClose, 0);
});

Deno.test("close() gives up on a stalled disk after waitMs, counting the records left as dropped", async () => {
  const test = await TestSink.open();
  test.fileSystem.block();
  test.writeAll(messages(5));
  await until(() => test.fileSystem.writesWaiting === 1, "the writer never began");
  test.writeAll(messages(3, "queued"));
  const startMs = performance.now();
  await test.sink.close({ waitMs: 50 });
  const tookMs = performance.now() - startMs;
  assert.ok(tookMs >= 40 && tookMs < 1_000, `close took ${tookMs} ms`);
  assert.equal(test.dropped, 8);
  assert.equal(test.sink.queuedBytes, 0);
  test.writeAll(["after close"]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(test.dropped, 8);
  assert.equal(test.sink.queuedBytes, 0);
  assert.equal(test.fileSystem.writeCalls, 1);
  assert.equal(test.fileSystem.text(), "");
});

Deno.test("a stalled write that ends after close() gave up leaves queuedBytes at 0", async () => {
  const test = await TestSink.open();
  test.fileSystem.block();
  test.writeAll(["stalled"]);
  await until(() => test.fileSystem.writesWaiting === 1, "the writer never began");
  await test.sink.close({ waitMs: 10 });
  assert.equal(test.sink.queuedBytes, 0);
  test.fileSystem.release();
  await until(() => test.fileSystem.writesWaiting === 0, "the write never ended");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(test.sink.queuedBytes, 0);
});

/** A batch wait the test ends by hand: each `sleep` of the sink's clock, with its signal. */
class BatchClock {
  readonly waits: Array<{ ms: number; signal: AbortSignal; end: () => void }> = [];
  readonly clock = {
    nowMs: () => 0,
    sleep: (ms: number, signal: AbortSignal) =>
      new Promise<void>((end) => {
        this.waits.push({ ms, signal, end });
        signal.addEventListener("abort", () => end(), { once: true });
      }),
  };
}

Deno.test("records of several turns within batchMs go out in one write", async () => {
  const batch = new BatchClock();
  const test = await TestSink.open({ batchMs: 10, waitClock: batch.clock });
  test.writeAll(["one"]);
  await until(() => batch.waits.length === 1, "the writer never waited for a batch");
  assert.equal(batch.waits[0].ms, 10);
  test.writeAll(["two"]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  test.writeAll(["three"]);
  assert.equal(test.fileSystem.writeCalls, 0);
  batch.waits[0].end();
  await test.idle();
  assert.equal(test.fileSystem.writeCalls, 1);
  assert.equal(test.fileSystem.text(), line("one") + line("two") + line("three"));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("a chunk that fills ends the batch wait at once", async () => {
  const batch = new BatchClock();
  const test = await TestSink.open({ batchMs: 10, waitClock: batch.clock });
  test.writeAll(["first"]);
  await until(() => batch.waits.length === 1, "the writer never waited for a batch");
  const many = messages(3_000); // well past one 64 KiB chunk
  test.writeAll(many);
  assert.ok(batch.waits[0].signal.aborted, "a full chunk left the batch waiting");
  // The full chunks go out without a wait; the last one, partly filled, waits for its batch.
  await until(() => batch.waits.length === 2, "the last chunk did not wait for a batch");
  const everything = [line("first"), ...many.map(line)].join("");
  const beforeLast = test.fileSystem.text()!;
  assert.ok(beforeLast.length > 64 * 1024, "the full chunks waited for the batch");
  assert.ok(everything.startsWith(beforeLast) && beforeLast !== everything);
  batch.waits[1].end();
  await test.idle();
  assert.equal(test.fileSystem.text(), everything);
  assert.equal(batch.waits.length, 2, "the writer waited while full chunks were queued");
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("records that come while a batch is written wait for a batch of their own", async () => {
  const batch = new BatchClock();
  const test = await TestSink.open({ batchMs: 10, waitClock: batch.clock });
  test.fileSystem.block();
  test.writeAll(["one"]);
  await until(() => batch.waits.length === 1, "the writer never waited for a batch");
  batch.waits[0].end();
  await until(() => test.fileSystem.writesWaiting === 1, "the first batch was not written");
  test.writeAll(["two"]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  test.writeAll(["three"]);
  test.fileSystem.release();
  await until(() => batch.waits.length === 2, "the later records did not wait for a batch");
  assert.equal(test.fileSystem.writeCalls, 1);
  batch.waits[1].end();
  await test.idle();
  assert.equal(test.fileSystem.writeCalls, 2, "the later records were not written together");
  assert.equal(test.fileSystem.text(), line("one") + line("two") + line("three"));
  await test.sink.close({ waitMs: 1_000 });
});

Deno.test("close() writes a batch at once, waiting for no timer", async () => {
  const batch = new BatchClock();
  const test = await TestSink.open({ batchMs: 60_000, waitClock: batch.clock });
  test.writeAll(["one", "two"]);
  await test.sink.close({ waitMs: 1_000 });
  assert.equal(test.fileSystem.text(), line("one") + line("two"));
  assert.deepEqual(test.droppedCounts, []);
});
