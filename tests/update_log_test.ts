/**
 * The data dir's update log: records round-trip byte for byte, a torn, damaged, too long or
 * malformed record is skipped rather than fatal, the format header is written and checked,
 * opening rewrites the file with only the latest updates, appends made in one turn share one
 * write and one fdatasync (group commit), and a compaction while appends go on loses none of
 * them. With faults injected: a failing write is retried without losing or duplicating an
 * update, a compaction failing at any step leaves the old file complete and in use, the
 * directory is synced after every create and rename, and the backlog is bounded.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { getLogger } from "@logtape/logtape";
import { Counters } from "../lib/counters.ts";
import { isAtLineBytes } from "../lib/protocol.ts";
import { ClientStore } from "../lib/store.ts";
import {
  type AcceptRecord,
  formatRecord,
  parseRecord,
  RECORD_PREFIX_BYTES,
  recordRoomOf,
  UpdateLog,
  type UpdateLogOptions,
  updateLogPath,
} from "../lib/update_log.ts";
import {
  type FailureOptions,
  FaultyFileSystem,
  type FileCall,
  SteppedClock,
} from "./support/faulty_file_system.ts";

const logger = getLogger(["test"]);
const CLIENTS_MAX = 1_000_000;
const RECORD_BYTES_MAX = 1024 * 1024;
const HEADER = "herd-updates 2\n";
const NEW_FILE = "Hill.updates.new";
/** An AT line with bytes a UTF-8 round trip would change (wire text is one byte per char). */
const ODD_BYTES_LINE = "AT Hill +0.000000001 c\u00e9\u00ff\u0001 +34.1-118.2 1700000000.5";

/** A store holding `atLines`, each a different client's (what a log is compacted to). */
function storeOf(atLines: readonly string[] = []): ClientStore {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  for (const atLine of atLines) restoreText(store, atLine);
  return store;
}

function clientIdOf(atLine: string): string {
  return atLine.split(" ")[3];
}

/** The last line of each client in `atLines`. */
function lastByClient(atLines: readonly string[]): Map<string, string> {
  return new Map(atLines.map((atLine) => [clientIdOf(atLine), atLine]));
}

/** Restores an AT line given as text, as a restart restores it from the file's bytes. */
function restoreText(store: ClientStore, atLine: string): void {
  store.restore(Buffer.from(atLine, "latin1"), 0, atLine.length);
}

/** `accept` for `load`, given each record's AT line as text. */
function asText(accept: (atLine: string) => boolean): AcceptRecord {
  return (bytes, start, end) => accept(Buffer.from(bytes.subarray(start, end)).toString("latin1"));
}

/** Options for a log at `path`: those a test does not give are the server's defaults. */
function logOptions(path: string, options: Partial<UpdateLogOptions> = {}): UpdateLogOptions {
  return {
    path,
    latest: storeOf(),
    logger,
    counters: new Counters(),
    recordBytesMax: RECORD_BYTES_MAX,
    backlogMax: 100_000,
    ...options,
  };
}

async function withDir(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "herd-update-log-" });
  try {
    await body(updateLogPath(dir, "Hill"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function loaded(path: string): Promise<{ lines: string[]; skipped: number }> {
  const lines: string[] = [];
  const log = new UpdateLog(logOptions(path));
  const report = await log.load(asText((line) => {
    lines.push(line);
    return true;
  }));
  assert.equal(report.records, lines.length);
  return { lines, skipped: report.skipped };
}

/** A log loaded, opened (a missing file is created empty) and with `atLines` appended. */
async function opened(path: string, atLines: string[] = [], options?: Partial<UpdateLogOptions>) {
  const log = new UpdateLog(logOptions(path, options));
  await log.load(isAtLineBytes);
  await log.open();
  for (const line of atLines) log.append(line);
  await log.committed();
  return log;
}

function atLine(index: number, clientId = `client${index}`): string {
  return `AT Hill +0.100000000 ${clientId} +34.068930-118.445127 ${1700000000 + index}`;
}

/** Whether `promise` settles within one turn of the event loop. */
async function settlesNow(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 0));
  return settled;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * A server's log in miniature, on a {@link FaultyFileSystem}: every update a client store
 * stores is appended, a compaction starts after a few dozen records, and retries wait on a
 * {@link SteppedClock}. The file exists (with its header) before it is opened, so the handle
 * in use is the file's own and no compaction runs at open.
 */
class FaultyServerLog {
  readonly fileSystem = new FaultyFileSystem();
  readonly clock = new SteppedClock();
  readonly counters = new Counters();
  readonly store: ClientStore;
  readonly log: UpdateLog;
  /** Updates stored so far, all of them acknowledged once `round` returns. */
  updates = 0;
  static readonly CLIENTS = 5;

  private constructor(path: string, options: Partial<UpdateLogOptions>) {
    this.store = new ClientStore({
      clientsMax: CLIENTS_MAX,
      onStored: (atLine) => this.log.append(atLine),
    });
    this.log = new UpdateLog(logOptions(path, {
      latest: this.store,
      counters: this.counters,
      fileSystem: this.fileSystem,
      clock: this.clock,
      random: () => 1,
      compactionRecordsMin: 20,
      ...options,
    }));
  }

  static async open(path: string, options: Partial<UpdateLogOptions> = {}) {
    await Deno.writeTextFile(path, HEADER);
    const serverLog = new FaultyServerLog(path, options);
    await serverLog.log.load(isAtLineBytes);
    await serverLog.log.open();
    return serverLog;
  }

  /** Stores an update of every client and waits until it is acknowledged. */
  async round(): Promise<void> {
    for (let client = 0; client < FaultyServerLog.CLIENTS; client++) {
      this.updates += 1;
      this.store.offer({ clientId: `c${client}`, atLine: atLine(this.updates, `c${client}`) });
    }
    await this.log.committed();
  }

  /** Rounds until `done`, a bounded number of times. */
  async roundsUntil(done: () => boolean): Promise<void> {
    for (let round = 0; !done(); round++) {
      assert.ok(round < 1000, "never happened");
      await this.round();
    }
  }

  /** Reloads the file from disk: it must hold every client's latest (acknowledged) update. */
  async assertHoldsLatest(path: string): Promise<string[]> {
    const { lines, skipped } = await loaded(path);
    assert.equal(skipped, 0);
    const latest = lastByClient(lines);
    assert.equal(latest.size, this.store.size);
    for (const [clientId, line] of latest) assert.equal(this.store.get(clientId)?.atLine, line);
    return lines;
  }
}

Deno.test("a record parses back to its AT line; a changed byte is caught", () => {
  const record = formatRecord(ODD_BYTES_LINE).slice(0, -1);
  assert.equal(parseRecord(record), ODD_BYTES_LINE);
  for (let at = 0; at < record.length; at++) {
    const flipped = record.slice(0, at) + String.fromCharCode(record.charCodeAt(at) ^ 1) +
      record.slice(at + 1);
    assert.equal(parseRecord(flipped), undefined, `byte ${at} flipped`);
  }
  assert.equal(parseRecord(""), undefined);
  assert.equal(parseRecord("deadbeef"), undefined);
});

Deno.test("appended updates load back in order, byte for byte, after close", async () => {
  await withDir(async (path) => {
    assert.deepEqual(await loaded(path), { lines: [], skipped: 0 });
    const log = await opened(path);
    const lines = [ODD_BYTES_LINE, ...Array.from({ length: 100 }, (_, i) => atLine(i))];
    for (const line of lines) log.append(line);
    await log.close();
    assert.deepEqual(await loaded(path), { lines, skipped: 0 });
    assert.ok(Deno.readTextFileSync(path).startsWith(HEADER));
  });
});

Deno.test("committed() resolves only once the appended updates are in the file", async () => {
  await withDir(async (path) => {
    const log = await opened(path);
    log.append(atLine(1));
    const onDisk = log.committed();
    await onDisk;
    assert.deepEqual((await loaded(path)).lines, [atLine(1)]);
    await log.close();
  });
});

Deno.test("appends made in one turn share one write (group commit)", async () => {
  await withDir(async (path) => {
    const counters = new Counters();
    const log = await opened(path, [], { counters });
    for (let i = 0; i < 1000; i++) log.append(atLine(i));
    await log.committed();
    assert.equal(counters.get("data_dir_updates"), 1000);
    assert.equal(counters.get("data_dir_writes"), 1);
    // Appends arriving while that write is in flight go out together in the next one.
    log.append(atLine(1000));
    const first = log.committed();
    for (let i = 1001; i < 1100; i++) log.append(atLine(i));
    await Promise.all([first, log.committed()]);
    assert.ok(counters.get("data_dir_writes") <= 3, counters.format());
    await log.close();
  });
});

Deno.test("a torn last record is skipped, the rest loaded", async () => {
  await withDir(async (path) => {
    await (await opened(path, [atLine(1), atLine(2)])).close();
    const whole = formatRecord(atLine(3));
    await Deno.writeTextFile(path, whole.slice(0, whole.length - 7), { append: true });
    assert.deepEqual(await loaded(path), { lines: [atLine(1), atLine(2)], skipped: 1 });
  });
});

Deno.test("a damaged record in the middle is skipped, the records after it kept", async () => {
  await withDir(async (path) => {
    await (await opened(path, [atLine(1), atLine(2), atLine(3)])).close();
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace("client2", "client9"));
    assert.deepEqual(await loaded(path), { lines: [atLine(1), atLine(3)], skipped: 1 });
  });
});

Deno.test("a record with a good checksum but a malformed AT line counts as damaged and is rewritten", async () => {
  await withDir(async (path) => {
    const malformed = "AT Hill +0.1 client2 +34.1-118.2 1700000002";
    await Deno.writeTextFile(
      path,
      HEADER + [atLine(1), malformed, atLine(3)].map(formatRecord).join(""),
    );
    const store = storeOf();
    const log = new UpdateLog(logOptions(path, { latest: store }));
    const report = await log.load((bytes, start, end) => {
      if (!isAtLineBytes(bytes, start, end)) return false;
      store.restore(bytes, start, end);
      return true;
    });
    assert.deepEqual(report, { records: 2, skipped: 1, malformed: 1, bytes: report.bytes });
    await log.open();
    await log.close();
    assert.equal(
      Deno.readTextFileSync(path),
      HEADER + [atLine(1), atLine(3)].map(formatRecord).join(""),
    );
  });
});

Deno.test("a record up to recordBytesMax loads; one byte longer is damaged", async () => {
  await withDir(async (path) => {
    const atLineBytesMax = 200;
    const lineOf = (bytes: number, letter: string) =>
      atLine(1, letter.repeat(bytes - atLine(1, "").length));
    const longest = lineOf(atLineBytesMax, "a");
    const tooLong = lineOf(atLineBytesMax + 1, "b");
    assert.equal(formatRecord(longest).length - 1, RECORD_PREFIX_BYTES + atLineBytesMax);
    await Deno.writeTextFile(
      path,
      HEADER + [tooLong, longest, atLine(2)].map(formatRecord).join(""),
    );
    const log = new UpdateLog(
      logOptions(path, { recordBytesMax: RECORD_PREFIX_BYTES + atLineBytesMax }),
    );
    const lines: string[] = [];
    const report = await log.load(asText((line) => {
      lines.push(line);
      return true;
    }));
    assert.deepEqual(lines, [longest, atLine(2)]);
    assert.equal(report.skipped, 1);
  });
});

/**
 * What a line-by-line reading of `text` finds (the loader's contract, read the slow way):
 * each line with one `\r` before its `\n` dropped is a record when no longer than
 * `recordBytesMax` and `parseRecord` takes it; bytes after the last `\n` are one torn record.
 */
function readLineByLine(text: string, recordBytesMax: number) {
  const lines: string[] = [];
  let skipped = 0;
  const pieces = text.split("\n");
  if (pieces.pop() !== "") skipped += 1;
  for (const [index, piece] of pieces.entries()) {
    const line = piece.endsWith("\r") ? piece.slice(0, -1) : piece;
    if (index === 0 && line === HEADER.slice(0, -1)) continue;
    const atLine = line.length <= recordBytesMax ? parseRecord(line) : undefined;
    if (atLine === undefined) skipped += 1;
    else lines.push(atLine);
  }
  return { lines, skipped };
}

Deno.test("records load the same whatever the read size: long, too long, CRLF, odd bytes, torn, damaged", async () => {
  await withDir(async (path) => {
    const atLineBytesMax = 200;
    const recordBytesMax = RECORD_PREFIX_BYTES + atLineBytesMax;
    const longest = atLine(1, "a".repeat(atLineBytesMax - atLine(1, "").length));
    const damaged = formatRecord(atLine(7)).replace("client7", "client8");
    const pieces = [
      HEADER,
      ...Array.from({ length: 30 }, (_, i) => formatRecord(atLine(i))),
      formatRecord(ODD_BYTES_LINE),
      formatRecord(longest),
      formatRecord(longest).replace("\n", "\r\n"),
      formatRecord(atLine(2, "b".repeat(3 * recordBytesMax))),
      formatRecord(atLine(3)).replace("\n", "\r\r\n"),
      damaged,
      "\n",
      "deadbeef\n",
      "DEADBEEF " + atLine(4) + "\n",
      formatRecord(atLine(5)),
      "x".repeat(5 * recordBytesMax),
    ];
    const text = pieces.join("");
    await Deno.writeFile(path, Buffer.from(text, "latin1"));
    const expected = readLineByLine(text, recordBytesMax);
    assert.equal(expected.lines.length, 34);
    assert.equal(expected.skipped, 7);
    // The read buffer holds the longest line that may be a record, so these sizes move every
    // line across a chunk boundary somewhere.
    for (const bytesMax of [recordBytesMax, recordBytesMax + 1, recordBytesMax + 57, 4096]) {
      const log = new UpdateLog(logOptions(path, { recordBytesMax: bytesMax }));
      const lines: string[] = [];
      const report = await log.load(asText((line) => lines.push(line) > 0));
      assert.deepEqual({ lines, skipped: report.skipped }, readLineByLine(text, bytesMax));
      assert.equal(report.bytes, text.length);
    }
  });
});

Deno.test("a record longer than a read chunk loads; a line past recordBytesMax is skipped whole", async () => {
  await withDir(async (path) => {
    const huge = atLine(1, "h".repeat(5 * 1024 * 1024));
    const tooLong = atLine(2, "t".repeat(6 * 1024 * 1024));
    await Deno.writeFile(
      path,
      Buffer.from(HEADER + [huge, tooLong, atLine(3)].map(formatRecord).join(""), "latin1"),
    );
    const log = new UpdateLog(logOptions(path, { recordBytesMax: 6 * 1024 * 1024 }));
    const lines: string[] = [];
    const report = await log.load(asText((line) => lines.push(line) > 0));
    assert.equal(report.skipped, 1);
    assert.deepEqual(lines.map((line) => line.length), [huge.length, atLine(3).length]);
    assert.equal(lines[0], huge);
  });
});

Deno.test("a file in a newer format, or with an unknown header, is refused in one line", async () => {
  await withDir(async (path) => {
    const refusals: Array<[header: string, message: RegExp]> = [
      ["herd-updates 3\n", /format 3, written by a newer herd/],
      ["herd-updates 12345678901234567890\n", /format 12345678901234567890, written by a newer/],
      ["herd-updates 2 x\n", /unknown format header "herd-updates 2 x"/],
      ["herd-updates \u0001\u001b\n", /unknown format header "herd-updates \\u0001\\u001b"/],
    ];
    for (const [header, message] of refusals) {
      await Deno.writeTextFile(path, header + formatRecord(atLine(1)));
      const log = new UpdateLog(logOptions(path));
      await assert.rejects(log.load(isAtLineBytes), (error: Error) => {
        assert.doesNotMatch(error.message, /[\r\n]/);
        assert.match(error.message, message);
        return true;
      });
    }
  });
});

Deno.test("an older herd's file without a header loads, is appended to, and gets the header when compacted", async () => {
  await withDir(async (path) => {
    const old = [atLine(1), atLine(2)];
    await Deno.writeTextFile(path, old.map(formatRecord).join(""));
    const store = storeOf(old);
    const log = new UpdateLog(logOptions(path, { latest: store, compactionRecordsMin: 3 }));
    assert.equal((await log.load(isAtLineBytes)).records, 2);
    await log.open();
    log.append(atLine(3));
    await log.committed();
    assert.ok(Deno.readTextFileSync(path).startsWith(formatRecord(atLine(1))));
    // Past compactionRecordsMin + 2 per client (2 clients held): the file is compacted.
    restoreText(store, atLine(3));
    for (let i = 4; i < 11; i++) log.append(atLine(i, "client1"));
    await log.committed();
    await log.close();
    const text = Deno.readTextFileSync(path);
    assert.ok(text.startsWith(HEADER), JSON.stringify(text.slice(0, 40)));
  });
});

Deno.test("open() compacts a file that is mostly stale, and keeps one that is not", async () => {
  await withDir(async (path) => {
    // Enough stale records of one client to pass the compaction threshold.
    const stale = Array.from({ length: 120_000 }, (_, i) => atLine(i, "hot"));
    const fresh = [atLine(1), atLine(2)];
    await Deno.writeTextFile(path, [...stale, ...fresh].map(formatRecord).join(""));

    const store = storeOf();
    const reopened = new UpdateLog(logOptions(path, { latest: store }));
    await reopened.load((bytes, start, end) => {
      store.restore(bytes, start, end);
      return true;
    });
    await reopened.open();
    await reopened.close();
    const latest = [stale.at(-1)!, ...fresh];
    assert.deepEqual(await loaded(path), { lines: latest, skipped: 0 });
    assert.deepEqual([...Deno.readDirSync(path.slice(0, path.lastIndexOf("/")))].length, 1);

    const { mtime } = await Deno.stat(path);
    const again = await opened(path, [], { latest: storeOf(latest) });
    again.append(atLine(3));
    await again.close();
    assert.deepEqual((await loaded(path)).lines, [...latest, atLine(3)]);
    assert.ok((await Deno.stat(path)).mtime! >= mtime!);
  });
});

Deno.test("a compaction while appends go on keeps every client's latest update", async () => {
  await withDir(async (path) => {
    const counters = new Counters();
    let log: UpdateLog | undefined = undefined;
    const store = new ClientStore({
      clientsMax: CLIENTS_MAX,
      onStored: (line) => log!.append(line),
    });
    log = new UpdateLog(logOptions(path, { latest: store, counters }));
    await log.open();
    // Each step stores one new client (written once, so a lost record shows) and three
    // updates of a hot one: the file passes its compaction threshold while steps go on.
    const steps = 80_000;
    const add = (line: string) => store.offer({ clientId: clientIdOf(line), atLine: line });
    for (let step = 0; step < steps; step++) {
      add(atLine(0, `new${step}`));
      for (let k = 0; k < 3; k++) add(atLine(3 * step + k, "hot"));
      if (step % 500 === 0) await log.committed();
    }
    await log.close();
    const { lines, skipped } = await loaded(path);
    assert.equal(skipped, 0);
    assert.ok(lines.length < steps * 3, `${lines.length} records: never compacted`);
    const loadedLast = lastByClient(lines);
    assert.equal(loadedLast.size, store.size);
    for (const [clientId, line] of loadedLast) assert.equal(store.get(clientId)?.atLine, line);
    assert.equal(counters.get("data_dir_updates"), steps * 4);
  });
});

const WRITE_FAULTS: Array<
  { fault: string; inject: (fs: FaultyFileSystem) => void; waitsMs: number[] }
> = [
  { fault: "a write that fails", inject: (fs) => fs.fail("write"), waitsMs: [50] },
  {
    fault: "a write that reaches the file, then fails",
    inject: (fs) => fs.fail("write", { afterTakingEffect: true }),
    waitsMs: [50],
  },
  { fault: "an fdatasync that fails", inject: (fs) => fs.fail("syncData"), waitsMs: [50] },
  {
    fault: "a failed write whose cut-off fails too",
    inject: (fs) => {
      fs.fail("write", { afterTakingEffect: true });
      fs.fail("truncate");
    },
    waitsMs: [50, 100],
  },
  {
    fault: "two writes that fail in a row",
    inject: (fs) => fs.fail("write", { times: 2 }),
    waitsMs: [50, 100],
  },
];

for (const { fault, inject, waitsMs } of WRITE_FAULTS) {
  Deno.test(`${fault} is retried with backoff; no update is lost or written twice`, async () => {
    await withDir(async (path) => {
      const server = await FaultyServerLog.open(path);
      await server.round();
      inject(server.fileSystem);
      const round = server.round();
      for (let retry = 1; retry <= waitsMs.length; retry++) {
        await server.clock.sleptTimes(retry);
        assert.equal(await settlesNow(round), false, "acknowledged before it was on disk");
        server.clock.wake();
      }
      await round;
      assert.deepEqual(server.clock.sleepsMs, waitsMs);
      assert.equal(server.counters.get("data_dir_write_failures"), waitsMs.length);
      await server.round();
      // No compaction ran: the file holds every update once, in order.
      const lines = await server.assertHoldsLatest(path);
      assert.deepEqual(
        lines,
        Array.from({ length: server.updates }, (_, i) => atLine(i + 1, `c${i % 5}`)),
      );
      await server.log.close();
    });
  });
}

const COMPACTION_FAULTS: Array<{ step: string; call: FileCall; options: FailureOptions }> = [
  { step: "opening .new", call: "openAppend", options: { file: NEW_FILE } },
  { step: "emptying .new", call: "truncate", options: { file: NEW_FILE } },
  { step: "writing the header", call: "write", options: { file: NEW_FILE } },
  {
    step: "writing the last records while batches wait",
    call: "write",
    options: { file: NEW_FILE, skip: 1 },
  },
  { step: "syncing .new", call: "syncData", options: { file: NEW_FILE } },
  { step: "the rename", call: "rename", options: { file: NEW_FILE } },
];

for (const { step, call, options } of COMPACTION_FAULTS) {
  Deno.test(`a compaction failing at ${step} keeps the old file complete and in use, removes .new, and is retried`, async () => {
    await withDir(async (path) => {
      const server = await FaultyServerLog.open(path);
      server.fileSystem.fail(call, options);
      await server.roundsUntil(() => server.clock.sleepsMs.length > 0);
      assert.equal(server.counters.get("data_dir_compaction_failures"), 1);
      assert.ok(server.clock.sleepsMs[0] >= 1000, "retried without backing off");
      assert.equal(exists(`${path}.new`), false, ".new left behind");
      // Appends go on to the old file, at the path: nothing is lost, nothing compacted away.
      await server.round();
      assert.equal((await server.assertHoldsLatest(path)).length, server.updates);

      const renames = () =>
        server.fileSystem.calls.filter((c) => c === `rename ${NEW_FILE}`).length;
      const renamesFailed = renames();
      server.clock.wake();
      await server.roundsUntil(() => renames() > renamesFailed);
      await server.round();
      await server.log.close();
      assert.ok((await server.assertHoldsLatest(path)).length < server.updates, "never compacted");
      assert.ok(Deno.readTextFileSync(path).startsWith(HEADER));
      assert.equal(exists(`${path}.new`), false);
    });
  });
}

Deno.test("a rename that fails after taking effect is noticed: the new file is used", async () => {
  await withDir(async (path) => {
    const server = await FaultyServerLog.open(path);
    server.fileSystem.fail("rename", { afterTakingEffect: true });
    await server.roundsUntil(() => server.fileSystem.calls.includes(`rename ${NEW_FILE}`));
    await server.round();
    await server.round();
    assert.equal(server.counters.get("data_dir_compaction_failures"), 0);
    const lines = await server.assertHoldsLatest(path);
    assert.ok(lines.length < server.updates, "not compacted");
    await server.log.close();
    await server.assertHoldsLatest(path);
  });
});

Deno.test("after a rename whose directory sync fails, writes sync the directory before acknowledging", async () => {
  await withDir(async (path) => {
    const server = await FaultyServerLog.open(path);
    server.fileSystem.fail("syncDirectory");
    const directorySyncs = () =>
      server.fileSystem.calls.filter((c) => c.startsWith("syncDirectory ")).length;
    await server.roundsUntil(() => directorySyncs() > 0);
    const { calls } = server.fileSystem;
    assert.equal(
      calls[calls.indexOf(`rename ${NEW_FILE}`) + 1],
      calls.find((c) => c.startsWith("syncDirectory ")),
    );
    // Whatever the round that saw the rename wrote after it was acknowledged only after a sync.
    await server.round();
    const afterRename = calls.slice(calls.indexOf(`rename ${NEW_FILE}`) + 2);
    const firstDataSync = afterRename.findIndex((c) => c.startsWith("syncData "));
    assert.ok(afterRename[firstDataSync + 1].startsWith("syncDirectory "), afterRename.join(", "));
    // Once synced, writes no longer sync the directory.
    const syncs = directorySyncs();
    await server.round();
    assert.equal(directorySyncs(), syncs);
    await server.log.close();
    await server.assertHoldsLatest(path);
  });
});

Deno.test("a new file is created with its header and its directory synced before an update is acknowledged", async () => {
  await withDir(async (path) => {
    const fileSystem = new FaultyFileSystem();
    fileSystem.fail("syncDirectory");
    const log = new UpdateLog(logOptions(path, { fileSystem, clock: new SteppedClock() }));
    await log.load(isAtLineBytes);
    await log.open();
    assert.equal(Deno.readTextFileSync(path), HEADER);
    const { calls } = fileSystem;
    assert.equal(calls.at(-2), `rename ${NEW_FILE}`);
    assert.ok(calls.at(-1)!.startsWith("syncDirectory "), calls.join(", "));
    log.append(atLine(1));
    await log.committed();
    assert.ok(calls.at(-1)!.startsWith("syncDirectory "), calls.join(", "));
    await log.close();
    assert.deepEqual((await loaded(path)).lines, [atLine(1)]);
  });
});

Deno.test("updates waiting on a failing disk are counted against backlogMax, and drain", async () => {
  await withDir(async (path) => {
    const server = await FaultyServerLog.open(path, { backlogMax: 6 });
    const { log, clock, fileSystem } = server;
    fileSystem.fail("write", { times: Infinity });
    const first = server.round();
    await clock.sleptTimes(1);
    assert.equal(log.backlog, 5);
    assert.equal(log.backlogged, false);
    assert.equal(await settlesNow(log.whenBelowBacklog()), true);
    const second = server.round();
    assert.equal(log.backlog, 10);
    assert.equal(log.backlogged, true);
    const below = log.whenBelowBacklog();
    clock.wake();
    await clock.sleptTimes(2);
    assert.equal(await settlesNow(below), false);
    fileSystem.heal();
    clock.wake();
    await below;
    await Promise.all([first, second]);
    assert.equal(log.backlog, 0);
    await log.close();
    assert.equal((await server.assertHoldsLatest(path)).length, 10);
  });
});

Deno.test("recordRoomOf() estimates a file's records from the lines it starts with, never past the shortest records' bound", async () => {
  await withDir(async (path) => {
    assert.deepEqual(await recordRoomOf(path), { clients: 0 });
    const shortest = "AT a +0.000000000 b +0+0 0";
    assert.equal(formatRecord(shortest).length, 36, "the shortest record, as recordRoomOf counts");
    // Records of one length: the estimate is their count, the header line counted as one.
    const records = Array.from({ length: 5000 }, (_, index) => formatRecord(atLine(index)));
    await Deno.writeTextFile(path, HEADER + records.join(""));
    const { clients } = await recordRoomOf(path);
    assert.ok(clients >= 5000 && clients <= 5000 * 1.05, `${clients} for 5000 records`);
    // Short records first, long ones after: the estimate is too high, but never past the bound.
    const text = HEADER + Array(2000).fill(formatRecord(shortest)).join("") + records.join("");
    await Deno.writeTextFile(path, text);
    assert.equal((await recordRoomOf(path)).clients, Math.floor(text.length / 36));
    // One line longer than the sample: only the bound is known.
    await Deno.writeTextFile(path, "x".repeat(100_000));
    assert.equal((await recordRoomOf(path)).clients, Math.floor(100_000 / 36));
  });
});
