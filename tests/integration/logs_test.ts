/**
 * The server's log end to end, on real processes: rotation by size keeps the newest records
 * whole and in order across `--log-files` files; a full log disk costs records (counted,
 * reported on stderr, then owned up to in the log) but neither replies nor unbounded memory;
 * `--log-format json` is one parseable object per line showing wire text safely.
 */
import assert from "node:assert/strict";
import type { ServerStatus } from "../../lib/server_status.ts";
import { type Herd, pollUntil, startHerd } from "../support/herd_processes.ts";
import {
  exchangeOneLineReplies,
  streamOneLineReplies,
  WireClient,
} from "../support/wire_client.ts";

const LOCATION = "+34.068930-118.445127";
/** A text record's start: ISO-8601 time in UTC, then the level. */
const TEXT_RECORD_START = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(TRC|DBG|INF|WRN|ERR|FTL)\] /;
const ISO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The lines of a log text; throws unless it ends in a newline (a record cut short). */
function completeLines(text: string, what: string): string[] {
  if (text.length === 0) return [];
  assert.ok(text.endsWith("\n"), `${what} does not end with a newline: ${text.slice(-200)}`);
  return text.slice(0, -1).split("\n");
}

/**
 * The client id of each IAMAT in the client records among `lines` (text format: one record
 * per read, its lines separated by ` ⏎ `), in order.
 */
function loggedIamatIds(lines: readonly string[]): string[] {
  const ids: string[] = [];
  for (const line of lines) {
    const record = line.match(/\] client 127\.0\.0\.1:\d+: (.*)$/);
    if (record === null) continue;
    for (const exchange of record[1].split(" ⏎ ")) {
      const iamat = exchange.match(/^IAMAT (\S+) /);
      if (iamat !== null) ids.push(iamat[1]);
    }
  }
  return ids;
}

async function statusOf(herd: Herd, name: string): Promise<ServerStatus> {
  const response = await fetch(`http://${herd.config.servers[name].monitor}/status`);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

/** Resident memory of process `pid` in bytes, from /proc. */
async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = status.match(/^VmRSS:\s+(\d+) kB$/m);
  if (kb === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}

/** Runs a command to completion; throws with its stderr unless it exits 0. */
async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${output.code}: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
}

// --- rotation -------------------------------------------------------------------------------

const ROTATE_MAX_BYTES = 4096;
const ROTATE_FILES = 3;
/** Far more than three 4 KiB files hold (a client record is about 180 bytes). */
const ROTATE_IAMATS = 3000;

Deno.test("rotation under load keeps --log-files whole files of the newest records, in order", async () => {
  await using herd = await startHerd({
    names: ["Hill"],
    links: [],
    args: [
      "--places",
      "offline",
      "--log-max-bytes",
      String(ROTATE_MAX_BYTES),
      "--log-files",
      String(ROTATE_FILES),
    ],
  });
  const idOf = (index: number) => `rot-${String(index).padStart(5, "0")}`;
  const lines = Array.from(
    { length: ROTATE_IAMATS },
    (_, index) => `IAMAT ${idOf(index)} ${LOCATION} 1700000000.${String(index).padStart(4, "0")}`,
  );
  const replies = await exchangeOneLineReplies(herd.port("Hill"), lines);
  for (const [index, reply] of replies.entries()) {
    assert.match(reply, new RegExp(`^AT Hill \\S+ ${idOf(index)} `), `reply ${index}`);
  }
  assert.equal((await herd.kill("Hill", "SIGTERM")).code, 0, "Hill did not stop cleanly");

  const names: string[] = [];
  for await (const entry of Deno.readDir(herd.logDir)) names.push(entry.name);
  assert.deepEqual(names.sort(), ["Hill.log", "Hill.log.1", "Hill.log.2"]);
  let totalBytes = 0;
  const idsByFile: string[][] = [];
  for (const name of ["Hill.log.2", "Hill.log.1", "Hill.log"]) {
    const bytes = await Deno.readFile(`${herd.logDir}/${name}`);
    assert.ok(bytes.length <= ROTATE_MAX_BYTES, `${name} holds ${bytes.length} bytes`);
    assert.ok(bytes.length > 0, `${name} is empty`);
    totalBytes += bytes.length;
    const fileLines = completeLines(new TextDecoder().decode(bytes), name);
    for (const line of fileLines) {
      assert.match(line, TEXT_RECORD_START, `${name}: not a whole record: ${line}`);
    }
    idsByFile.push(loggedIamatIds(fileLines));
  }
  assert.ok(totalBytes <= ROTATE_FILES * ROTATE_MAX_BYTES, `${totalBytes} bytes kept`);
  // The two older files were filled by the load; the newest may hold only what the stop logs
  // (a record lists up to 2 KiB of one read's lines: two of them nearly fill a 4 KiB file).
  for (const [index, ids] of idsByFile.slice(0, -1).entries()) {
    assert.ok(ids.length > 0, `file ${index} of the oldest-first three has no client record`);
  }
  const kept = idsByFile.flat();
  const first = ROTATE_IAMATS - kept.length;
  assert.ok(first > 0, "the earliest records should have been rotated away");
  assert.deepEqual(
    kept,
    Array.from({ length: kept.length }, (_, offset) => idOf(first + offset)),
    "the kept client records are not one run of the newest ids, oldest file first",
  );
});

// --- a full disk ----------------------------------------------------------------------------

/**
 * The log disk: it must take the 8 MiB the queue holds once it has room again (plus the
 * drop warning and later records) — a 1 MiB disk would fill again before the warning is due
 * (it is queued once the queue is below half its bound).
 */
const TMPFS_BYTES = 24 * 1024 * 1024;
const FILLER_CHUNK_BYTES = 64 * 1024;
/** Ids the load cycles through: few, so the store stays small and only the log could grow. */
const FLOOD_IDS = 64;
/** Long enough that each line and its reply are cut to 200 bytes in the log record. */
const FLOOD_ID_CHARS = 180;
/**
 * Lines of load. Each client record is about 460 bytes of log text (measured below), so this
 * is about 230 MB of records: a queue without its 8 MiB bound would hold that much, in byte
 * chunks outside the V8 heap.
 */
const FLOOD_IAMATS = 500_000;
/**
 * The server's V8 heap is capped (64 MB old space, 1 MB semi-spaces) so that garbage from
 * the load cannot grow RSS without bound: uncapped, V8 grows the heap by 60 to 160 MB under
 * this load whatever the log does, and no RSS bound could tell a leak from lazy collection.
 * Capped, the same load with logging off grows RSS by about 50 MB, with the full disk by
 * about 70 MB, then stays flat.
 */
const SERVER_V8_FLAGS = "--max-old-space-size=64,--max-semi-space-size=1";
/** The check's bound on RSS growth: above the capped heap's growth, under the records'. */
const RSS_GROWTH_BYTES_MAX = 120 * 1024 * 1024;
/** What the check must be able to tell apart: the load's records without the bound. */
const UNBOUNDED_BYTES_MIN = 200 * 1000 * 1000;
const RSS_SAMPLE_MS = 100;
const FLOOD_TIMEOUT_MS = 240_000;
const AFTER_IAMATS = 5;

Deno.test("a full log disk drops and counts records, keeps replies and memory bounded, then says so", async () => {
  await using herd = await startHerd({
    names: ["Hill"],
    links: [],
    monitors: true,
    env: { DENO_V8_FLAGS: SERVER_V8_FLAGS },
    // One file as large as it likes: the disk, not rotation, is what fills.
    args: ["--places", "offline", "--log-max-bytes", String(2 ** 40)],
    start: [],
  });
  await Deno.mkdir(herd.logDir);
  // Root is needed; a machine that cannot mount fails this test rather than skipping it.
  await run("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_BYTES}`, "tmpfs", herd.logDir]);
  const fillerPath = `${herd.logDir}/filler`;
  try {
    const server = await herd.start("Hill");
    await pollUntil(async () => (await herd.readLog("Hill")).includes("started Hill"), {
      what: "the start-up records in Hill.log",
    });
    // Fill what is left; the bound is the chunks the whole disk holds.
    {
      // Closed at the end of this block: a removed file still open would keep its space.
      using filler = await Deno.open(fillerPath, { create: true, write: true });
      const zeros = new Uint8Array(FILLER_CHUNK_BYTES);
      let full = false;
      for (let chunk = 0; chunk <= TMPFS_BYTES / FILLER_CHUNK_BYTES + 2 && !full; chunk++) {
        try {
          await filler.write(zeros);
        } catch {
          full = true;
        }
      }
      assert.ok(full, "the filler never filled the disk");
      await assert.rejects(filler.write(new Uint8Array(1)), "the disk is not full");
    }

    const rssBeforeBytes = await rssBytes(server.pid);
    let rssMaxBytes = rssBeforeBytes;
    const sampler = setInterval(() => {
      rssBytes(server.pid).then((bytes) => (rssMaxBytes = Math.max(rssMaxBytes, bytes)), () => {});
    }, RSS_SAMPLE_MS);
    const ids = Array.from(
      { length: FLOOD_IDS },
      (_, index) => `flood-${index}-`.padEnd(FLOOD_ID_CHARS, "x"),
    );
    // Times rise, so every line is a newer update of its id: each gets a reply and a record.
    const lineOf = (index: number) =>
      `IAMAT ${ids[index % FLOOD_IDS]} ${LOCATION} ${1_700_000_000 + index / 1000}`;
    const startedMs = Date.now();
    try {
      await streamOneLineReplies(herd.port("Hill"), {
        count: FLOOD_IAMATS,
        lineOf,
        onReply: (index, reply) => {
          if (!reply.startsWith("AT Hill ") || !reply.includes(` ${ids[index % FLOOD_IDS]} `)) {
            throw new Error(`reply ${index} is not its AT: ${reply.slice(0, 300)}`);
          }
        },
        timeoutMs: FLOOD_TIMEOUT_MS,
      });
    } finally {
      clearInterval(sampler);
    }
    const floodMs = Date.now() - startedMs;
    rssMaxBytes = Math.max(rssMaxBytes, await rssBytes(server.pid));

    const dropped = (await statusOf(herd, "Hill")).counters.log_records_dropped ?? 0;
    assert.ok(dropped > 0, "no log record was counted as dropped on a full disk");
    const logPath = herd.logPath("Hill");
    assert.ok(
      server.stderr.includes(`herd: Hill: log write to ${logPath} failed: `) &&
        server.stderr.includes("; records wait"),
      `stderr does not report the failing disk: ${server.stderr.slice(0, 2000)}`,
    );

    // Room again: the queue drains and the drop is owned up to. Lines sent before it has
    // drained below its bound may still be dropped, so the later lines wait for the warning.
    await Deno.remove(fillerPath);
    let seen = "";
    const describeLog = () =>
      `Hill.log: ${seen.length} chars, ending ${JSON.stringify(seen.slice(-600))}; stderr ${
        JSON.stringify(server.stderr.slice(-1000))
      }`;
    await pollUntil(async () => {
      seen = await herd.readLog("Hill");
      return seen.includes("log records dropped: writing could not keep up");
    }, { timeoutMs: 30_000, what: () => `the drop warning (${describeLog()})` });
    await using client = await WireClient.connect(herd.port("Hill"));
    const afterIds = Array.from({ length: AFTER_IAMATS }, (_, index) => `after-${index}`);
    for (const id of afterIds) {
      await client.write(`IAMAT ${id} ${LOCATION} 1800000000\n`);
      assert.match(await client.readAtReply(), new RegExp(` ${id} `));
    }
    const log = await pollUntil(async () => {
      seen = await herd.readLog("Hill");
      return afterIds.every((id) => seen.includes(`IAMAT ${id} `)) && seen;
    }, { timeoutMs: 30_000, what: () => `the later records (${describeLog()})` });
    const warningPattern =
      /^\S+ \[WRN\] (\d+) log records dropped: writing could not keep up \((.*)\)$/;
    const finalDropped = (await statusOf(herd, "Hill")).counters.log_records_dropped ?? 0;

    const lines = completeLines(log, "Hill.log");
    for (const line of lines) {
      assert.match(line, TEXT_RECORD_START, `not a whole record: ${line.slice(0, 300)}`);
    }
    const warnings = lines.flatMap((line) => {
      const match = line.match(warningPattern);
      return match === null ? [] : [{ count: Number(match[1]), cause: match[2] }];
    });
    assert.ok(warnings.length > 0, "no well-formed drop warning");
    const warned = warnings.reduce((sum, warning) => sum + warning.count, 0);
    assert.ok(warnings.every((warning) => warning.count > 0), JSON.stringify(warnings));
    assert.ok(warned <= finalDropped, `warnings say ${warned}, counter ${finalDropped}`);
    // A client record lists the lines of one read; lines written are some of those sent (their
    // shown text is cut before the time, so which ones is not told apart here).
    const clientRecords = lines.filter((line) => line.includes("] client 127.0.0.1:"));
    const writtenFloodLines = clientRecords.reduce(
      (sum, line) =>
        sum + line.split(" ⏎ IAMAT flood-").length - 1 +
        (line.includes(": IAMAT flood-") ? 1 : 0),
      0,
    );
    assert.ok(writtenFloodLines > 0, "no flood line was written");
    assert.ok(writtenFloodLines < FLOOD_IAMATS, "every line was written on a full disk");
    const floodRecords = clientRecords.filter((line) => line.includes("IAMAT flood-"));
    const recordBytes = floodRecords.reduce((sum, line) => sum + line.length + 1, 0) /
      writtenFloodLines;
    const unboundedBytes = recordBytes * FLOOD_IAMATS;
    const growthBytes = rssMaxBytes - rssBeforeBytes;
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    console.log(
      `full disk: ${FLOOD_IAMATS} IAMATs in ${floodMs} ms; RSS before ${
        mb(rssBeforeBytes)
      } MB, max ${mb(rssMaxBytes)} MB, growth ${mb(growthBytes)} MB (bound ${
        mb(RSS_GROWTH_BYTES_MAX)
      } MB); ~${recordBytes.toFixed(0)} B of log per line, ${
        mb(unboundedBytes)
      } MB unbounded; dropped ${finalDropped}, warned ${warned} in ${warnings.length} warning(s)`,
    );
    // The check below means something only if an unbounded queue would have failed it.
    assert.ok(
      unboundedBytes >= UNBOUNDED_BYTES_MIN,
      `the load is too small to tell: ${mb(unboundedBytes)} MB of records`,
    );
    assert.ok(
      growthBytes < RSS_GROWTH_BYTES_MAX,
      `RSS grew by ${mb(growthBytes)} MB under load on a full disk`,
    );
    const metrics = await (await fetch(`http://${herd.config.servers.Hill.monitor}/metrics`))
      .text();
    assert.equal(
      Number(metrics.match(/^herd_log_records_dropped_total (\d+)$/m)?.[1]),
      finalDropped,
      "herd_log_records_dropped_total is not the /status counter",
    );
    assert.equal((await herd.kill("Hill", "SIGTERM")).code, 0, "Hill did not stop cleanly");
    // The counters line logged at the stop carries the count too.
    const logged = [...(await herd.readLog("Hill")).matchAll(/ log_records_dropped=(\d+)/g)];
    assert.ok(logged.length > 0, "no counters line names log_records_dropped");
    assert.ok(Number(logged.at(-1)![1]) >= finalDropped, `counters line: ${logged.at(-1)![0]}`);
  } finally {
    // The mount must go before the herd removes its directory; its files go with it.
    await herd.stopAll();
    await run("umount", [herd.logDir]);
  }
});

// --- JSON -----------------------------------------------------------------------------------

/** What a log shows of wire text, written out by hand: `\xNN`, `\\`, cut to 200 bytes. */
const JSON_CASES: ReadonlyArray<{ line: string; shown: string; reply: RegExp }> = [
  { line: `IAMAT json-a ${LOCATION} 1700000000`, shown: "", reply: /^AT Hill / },
  { line: `IAMAT json-b ${LOCATION} 1700000001`, shown: "", reply: /^AT Hill / },
  {
    line: `NOPE {"a": "b"} {x} "quoted" caf\xe9 back\\slash \x01`,
    shown: `NOPE {"a": "b"} {x} "quoted" caf\\xe9 back\\\\slash \\x01`,
    reply: /^\? NOPE /,
  },
  {
    line: `NOPE ${"y".repeat(295)}`,
    shown: `NOPE ${"y".repeat(195)}…`,
    reply: /^\? NOPE /,
  },
];

Deno.test("--log-format json writes one object per line with the wire text shown safely", async () => {
  await using herd = await startHerd({
    names: ["Hill"],
    links: [],
    args: ["--places", "offline", "--log-format", "json"],
  });
  await using client = await WireClient.connect(herd.port("Hill"));
  for (const { line, reply } of JSON_CASES) {
    await client.write(`${line}\n`);
    assert.match(await client.readLine(), reply, line);
  }
  // Two lines in one write: read together, logged as one record listing both.
  const pair = [`IAMAT json-c ${LOCATION} 1700000002`, `IAMAT json-d ${LOCATION} 1700000003`];
  await client.write(`${pair.join("\n")}\n`);
  for (const _ of pair) assert.match(await client.readLine(), /^AT Hill /);
  const whatsat = "WHATSAT json-a 10 2";
  await client.write(`${whatsat}\n`);
  const whatsatReply = await client.readWhatsatReply();
  assert.match(whatsatReply.atLine, /^AT Hill .* json-a /);
  assert.equal((await herd.kill("Hill", "SIGTERM")).code, 0, "Hill did not stop cleanly");

  const lines = completeLines(await herd.readLog("Hill"), "Hill.log");
  assert.ok(lines.length > 0, "Hill.log is empty");
  const records = lines.map((line) => {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new Error(`not JSON (${error}): ${line}`);
    }
    assert.equal(typeof record.timestamp, "string", line);
    assert.match(record.timestamp as string, ISO_TIMESTAMP, line);
    assert.equal(new Date(record.timestamp as string).toISOString(), record.timestamp, line);
    assert.ok(
      ["trace", "debug", "info", "warning", "error", "fatal"].includes(record.level as string),
      line,
    );
    assert.equal(record.server, "Hill", line);
    assert.equal(typeof record.message, "string", line);
    return record;
  });
  type Exchange = { line: string; reply: string | null };
  const clientRecords = records.filter((record) =>
    (record.message as string).startsWith("client ")
  );
  for (const record of clientRecords) {
    assert.match(String(record.remote), /^127\.0\.0\.1:\d+$/, JSON.stringify(record));
    assert.ok(Array.isArray(record.lines) && record.lines.length > 0, JSON.stringify(record));
    const shown = (record.lines as Exchange[]).map(({ line, reply }) =>
      `${line} -> ${reply ?? "(reply follows)"}`
    );
    assert.equal(record.message, `client ${record.remote}: ${shown.join(" ⏎ ")}`);
  }
  const exchanges = clientRecords.flatMap((record) => record.lines as Exchange[]);
  const expected = [...JSON_CASES.map(({ line, shown }) => shown || line), ...pair, whatsat];
  assert.deepEqual(
    exchanges.map((exchange) => exchange.line),
    expected,
    "the client records do not show every line sent, in order",
  );
  assert.ok(
    clientRecords.some((record) =>
      (record.lines as Exchange[]).map((exchange) => exchange.line).join("\n") === pair.join("\n")
    ),
    "the two lines of one read are not one record",
  );
  for (const exchange of exchanges.slice(0, -1)) {
    // Immediate replies are logged with their line.
    assert.equal(typeof exchange.reply, "string", JSON.stringify(exchange));
  }
  assert.match(String(exchanges[2].reply), /^\? NOPE \{"a": "b"\} .*caf\\xe9/);
  // The WHATSAT's reply comes later, with its own record (or with its line when immediate).
  const whatsatRecord = clientRecords.at(-1)!;
  const whatsatExchange = exchanges.at(-1)!;
  const whatsatReplyRecord = whatsatExchange.reply === null
    ? records.find((record) => (record.message as string).startsWith("reply to "))
    : { reply: whatsatExchange.reply, remote: whatsatRecord.remote };
  assert.ok(whatsatReplyRecord !== undefined, "the WHATSAT reply was not logged");
  assert.match(String(whatsatReplyRecord.reply), /^AT Hill .* json-a /);
  assert.equal(whatsatReplyRecord.remote, whatsatRecord.remote);
});
