/**
 * The data dir's update log: records round-trip byte for byte, a torn or damaged record is
 * skipped rather than fatal, opening rewrites the file with only the latest updates, appends
 * made in one turn share one write and one fdatasync (group commit), and a compaction while
 * appends go on loses none of them.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { Counters } from "../lib/counters.ts";
import { ClientStore } from "../lib/store.ts";
import {
  formatRecord,
  type LatestUpdates,
  parseRecord,
  UpdateLog,
  updateLogPath,
} from "../lib/update_log.ts";

const logger = getLogger(["test"]);
const CLIENTS_MAX = 1_000_000;
/** An AT line with bytes a UTF-8 round trip would change (wire text is one byte per char). */
const ODD_BYTES_LINE = "AT Hill +0.000000001 c\u00e9\u00ff\u0001 +34.1-118.2 1700000000.5";

/** A store holding `atLines`, each a different client's (what a log is compacted to). */
function storeOf(atLines: readonly string[] = []): ClientStore {
  const store = new ClientStore(CLIENTS_MAX);
  for (const atLine of atLines) store.restore({ clientId: clientIdOf(atLine), atLine });
  return store;
}

function clientIdOf(atLine: string): string {
  return atLine.split(" ")[3];
}

/** The last line of each client in `atLines`. */
function lastByClient(atLines: readonly string[]): Map<string, string> {
  return new Map(atLines.map((atLine) => [clientIdOf(atLine), atLine]));
}

async function withLog(
  body: (
    openLog: (latest?: LatestUpdates) => UpdateLog,
    path: string,
    counters: Counters,
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "herd-update-log-" });
  const path = updateLogPath(dir, "Hill");
  const counters = new Counters();
  try {
    await body(
      (latest = storeOf()) => new UpdateLog(path, latest, logger, counters),
      path,
      counters,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function loaded(path: string): Promise<{ lines: string[]; skipped: number }> {
  const lines: string[] = [];
  const log = new UpdateLog(path, storeOf(), logger, new Counters());
  const report = await log.load((line) => lines.push(line));
  assert.equal(report.records, lines.length);
  return { lines, skipped: report.skipped };
}

/** A log opened over `atLines`, ready to append to. */
/** A log over a store of `atLines`, loaded, opened and with those lines appended. */
async function opened(makeLog: (latest?: LatestUpdates) => UpdateLog, atLines: string[] = []) {
  const log = makeLog(storeOf(atLines));
  await log.load(() => {});
  await log.open();
  for (const line of atLines) log.append(line);
  await log.committed();
  return log;
}

function atLine(index: number): string {
  return `AT Hill +0.100000000 client${index} +34.068930-118.445127 ${1700000000 + index}`;
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
  await withLog(async (makeLog, path) => {
    assert.deepEqual(await loaded(path), { lines: [], skipped: 0 });
    const log = await opened(makeLog);
    const lines = [ODD_BYTES_LINE, ...Array.from({ length: 100 }, (_, i) => atLine(i))];
    for (const line of lines) log.append(line);
    await log.close();
    assert.deepEqual(await loaded(path), { lines, skipped: 0 });
  });
});

Deno.test("committed() resolves only once the appended updates are in the file", async () => {
  await withLog(async (makeLog, path) => {
    const log = await opened(makeLog);
    log.append(atLine(1));
    const onDisk = log.committed();
    await onDisk;
    assert.deepEqual((await loaded(path)).lines, [atLine(1)]);
    await log.close();
  });
});

Deno.test("appends made in one turn share one write (group commit)", async () => {
  await withLog(async (makeLog, _path, counters) => {
    const log = await opened(makeLog);
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
  await withLog(async (makeLog, path) => {
    await (await opened(makeLog, [atLine(1), atLine(2)])).close();
    const whole = formatRecord(atLine(3));
    await Deno.writeTextFile(path, whole.slice(0, whole.length - 7), { append: true });
    assert.deepEqual(await loaded(path), { lines: [atLine(1), atLine(2)], skipped: 1 });
  });
});

Deno.test("a damaged record in the middle is skipped, the records after it kept", async () => {
  await withLog(async (makeLog, path) => {
    await (await opened(makeLog, [atLine(1), atLine(2), atLine(3)])).close();
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace("client2", "client9"));
    assert.deepEqual(await loaded(path), { lines: [atLine(1), atLine(3)], skipped: 1 });
  });
});

Deno.test("open() compacts a file that is mostly stale, and keeps one that is not", async () => {
  await withLog(async (makeLog, path) => {
    // Enough stale records of one client to pass the compaction threshold.
    const stale = Array.from({ length: 120_000 }, (_, i) => `AT Hill +0.1 hot +34.1-118.2 ${i}`);
    const fresh = [atLine(1), atLine(2)];
    await Deno.writeTextFile(path, [...stale, ...fresh].map(formatRecord).join(""));

    const store = storeOf();
    const reopened = makeLog(store);
    await reopened.load((line) => store.restore({ clientId: clientIdOf(line), atLine: line }));
    await reopened.open();
    await reopened.close();
    const latest = [stale.at(-1)!, ...fresh];
    assert.deepEqual(await loaded(path), { lines: latest, skipped: 0 });
    assert.deepEqual([...Deno.readDirSync(path.slice(0, path.lastIndexOf("/")))].length, 1);

    const { mtime } = await Deno.stat(path);
    const again = makeLog(storeOf(latest));
    await again.load(() => {});
    await again.open();
    again.append(atLine(3));
    await again.close();
    assert.deepEqual((await loaded(path)).lines, [...latest, atLine(3)]);
    assert.ok((await Deno.stat(path)).mtime! >= mtime!);
  });
});

Deno.test("a compaction while appends go on keeps every client's latest update", async () => {
  await withLog(async (makeLog, path, counters) => {
    let log: UpdateLog | undefined = undefined;
    const store = new ClientStore(CLIENTS_MAX, (atLine) => log!.append(atLine));
    log = makeLog(store);
    await log.open();
    // Each step stores one new client (written once, so a lost record shows) and three
    // updates of a hot one: the file passes its compaction threshold while steps go on.
    const steps = 80_000;
    const add = (atLine: string) =>
      store.offer({ clientId: clientIdOf(atLine), atLine }, undefined);
    for (let step = 0; step < steps; step++) {
      add(`AT Hill +0.1 new${step} +34.1-118.2 1700000000`);
      for (let k = 0; k < 3; k++) add(`AT Hill +0.1 hot +34.1-118.2 ${1700000000 + 3 * step + k}`);
      if (step % 500 === 0) await log.committed();
    }
    await log.close();
    const { lines, skipped } = await loaded(path);
    assert.equal(skipped, 0);
    assert.ok(lines.length < steps * 3, `${lines.length} records: never compacted`);
    const loadedLast = lastByClient(lines);
    assert.equal(loadedLast.size, store.size);
    for (const [clientId, atLine] of loadedLast) assert.equal(store.get(clientId)?.atLine, atLine);
    assert.equal(counters.get("data_dir_updates"), steps * 4);
  });
});
