/**
 * The data dir's update log: records round-trip byte for byte, a torn or damaged record is
 * skipped rather than fatal, a rewrite keeps only what it is given, and appends made in one
 * turn share one write and one fdatasync (group commit).
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { Counters } from "../lib/counters.ts";
import { formatRecord, parseRecord, UpdateLog, updateLogPath } from "../lib/update_log.ts";

const logger = getLogger(["test"]);
/** An AT line with bytes a UTF-8 round trip would change (wire text is one byte per char). */
const ODD_BYTES_LINE = "AT Hill +0.000000001 c\u00e9\u00ff\u0001 +34.1-118.2 1700000000.5";

async function withLog(
  body: (log: UpdateLog, path: string, counters: Counters) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "herd-update-log-" });
  const path = updateLogPath(dir, "Hill");
  const counters = new Counters();
  try {
    await body(new UpdateLog(path, logger, counters), path, counters);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function loaded(path: string): Promise<{ lines: string[]; skipped: number }> {
  const lines: string[] = [];
  const report = await new UpdateLog(path, logger, new Counters()).load((line) => lines.push(line));
  assert.equal(report.records, lines.length);
  return { lines, skipped: report.skipped };
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
  await withLog(async (log, path) => {
    assert.deepEqual(await loaded(path), { lines: [], skipped: 0 });
    await log.rewrite([]);
    const lines = [ODD_BYTES_LINE, ...Array.from({ length: 100 }, (_, i) => atLine(i))];
    for (const line of lines) log.append(line);
    await log.close();
    assert.deepEqual(await loaded(path), { lines, skipped: 0 });
  });
});

Deno.test("committed() resolves only once the appended updates are in the file", async () => {
  await withLog(async (log, path) => {
    await log.rewrite([]);
    log.append(atLine(1));
    const onDisk = log.committed();
    await onDisk;
    assert.deepEqual((await loaded(path)).lines, [atLine(1)]);
    await log.close();
  });
});

Deno.test("appends made in one turn share one write (group commit)", async () => {
  await withLog(async (log, _path, counters) => {
    await log.rewrite([]);
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
  await withLog(async (log, path) => {
    await log.rewrite([atLine(1), atLine(2)]);
    await log.close();
    const whole = formatRecord(atLine(3));
    await Deno.writeTextFile(path, whole.slice(0, whole.length - 7), { append: true });
    assert.deepEqual(await loaded(path), { lines: [atLine(1), atLine(2)], skipped: 1 });
  });
});

Deno.test("a damaged record in the middle is skipped, the records after it kept", async () => {
  await withLog(async (log, path) => {
    await log.rewrite([atLine(1), atLine(2), atLine(3)]);
    await log.close();
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace("client2", "client9"));
    assert.deepEqual(await loaded(path), { lines: [atLine(1), atLine(3)], skipped: 1 });
  });
});

Deno.test("rewrite replaces the file with exactly what it is given", async () => {
  await withLog(async (log, path) => {
    await log.rewrite([atLine(1), atLine(2)]);
    log.append(atLine(3));
    await log.close();
    const again = new UpdateLog(path, logger, new Counters());
    await again.rewrite([atLine(3)]);
    await again.close();
    assert.deepEqual(await loaded(path), { lines: [atLine(3)], skipped: 0 });
    assert.deepEqual([...Deno.readDirSync(path.slice(0, path.lastIndexOf("/")))].length, 1);
  });
});
