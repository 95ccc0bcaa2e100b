/**
 * Catch-up at scale, between two real processes whose one link (Hill–Jaquez) runs through
 * a cuttable, byte-counting proxy in each direction (contract §5): with 100k clients held
 * on both sides, a link that comes back after k updates sends about k records, not the
 * store — also after a catch-up that live floods overtook. While the whole store streams
 * to a restarted neighbour, a client of the sending server is answered (the batches
 * yield), and the catch-up completes even while clients keep writing.
 */
import assert from "node:assert/strict";
import { type Herd, pollUntil, startHerd } from "../support/herd_processes.ts";
import { LinkProxies } from "../support/link_proxy.ts";
import { exchangeOneLineReplies, heldAtLines, WireClient } from "../support/wire_client.ts";

const SENDER = "Hill";
const RECEIVER = "Jaquez";
const CLIENTS = 100_000;
/** Updates made at the sender while the link is cut (k). */
const UPDATES = 1000;
/** Updates made while a catch-up streams, as live floods that overtake it. */
const OVERTAKING_UPDATES = 5000;
/** Connections the 100k IAMATs are pipelined over. */
const LOAD_CONNECTIONS = 4;
const LOCATION = "+34.068930-118.445127";
const MOVED_LOCATION = "+34.070000-118.440000";
const TIME = 1700000000;
/** Room for a catch-up sent twice (two links dialled at once) and a few live floods. */
const CATCH_UP_RECORDS_MAX = 2 * UPDATES + 16;
/** A generous size of one `U <seq> <AT line>\n` record here (they are about 80 bytes). */
const RECORD_BYTES_MAX = 128;
/** Ids checked at the receiver, spread over the store. */
const SAMPLE_SIZE = 200;
const LOAD_TIMEOUT_MS = 40_000;
const SYNC_TIMEOUT_MS = 20_000;
/** How long the whole store may take to reach the restarted receiver: liveness only. */
const FULL_CATCH_UP_TIMEOUT_MS = 20_000;
/** How long a client of the sender may wait for an AT reply: liveness, not performance. */
const REPLY_MS_MAX = 2000;
/** Pings answered inside the full catch-up's window: more than one that slipped in. */
const PINGS_DURING_CATCH_UP_MIN = 3;
/** How often the sender's log is read between pings. */
const LOG_READ_INTERVAL_MS = 100;
/**
 * Clients writing at the sender while the whole store streams, each one's batches and the pause
 * after each: live floods all along, at a pace (≤ 10k lines/s) whose log records the disk takes.
 * Flat out, the sender logged faster than the disk wrote, and the bounded log queue dropped
 * records — the catch-up's own line among them, once in a few runs.
 */
const WRITERS = 2;
const WRITER_BATCH_LINES = 1000;
const WRITER_PAUSE_MS = 200;
const WRITER_BATCHES_MAX = 200;

const ids = Array.from({ length: CLIENTS }, (_, index) => `scale.${index}`);
const sampleIds = Array.from(
  { length: SAMPLE_SIZE },
  (_, index) => ids[Math.floor(index * CLIENTS / SAMPLE_SIZE)],
).concat(ids[CLIENTS - 1]);

/** IAMAT `lines` at the sender over a few pipelined connections; returns the AT replies. */
async function iamatsAtSender(herd: Herd, lines: string[], connections: number) {
  const perConnection = Math.ceil(lines.length / connections);
  const parts = Array.from(
    { length: Math.ceil(lines.length / perConnection) },
    (_, index) => lines.slice(index * perConnection, (index + 1) * perConnection),
  );
  const replies = (await Promise.all(
    parts.map((part) =>
      exchangeOneLineReplies(herd.port(SENDER), part, { timeoutMs: LOAD_TIMEOUT_MS })
    ),
  )).flat();
  const refused = replies.findIndex((reply) => !reply.startsWith(`AT ${SENDER} `));
  assert.equal(refused, -1, `IAMAT ${lines[refused]} got ${replies[refused]}`);
  return replies;
}

/** Polls until the receiver holds, for each of `clientIds`, what the sender holds. */
async function waitReceiverHoldsSenders(herd: Herd, clientIds: string[]): Promise<void> {
  const expected = await heldAtLines(herd.port(SENDER), clientIds);
  let wrong = clientIds.length;
  await pollUntil(async () => {
    const held = await heldAtLines(herd.port(RECEIVER), clientIds);
    wrong = held.filter((line, index) => line !== expected[index]).length;
    return wrong === 0;
  }, {
    timeoutMs: SYNC_TIMEOUT_MS,
    intervalMs: 100,
    what: () => `${RECEIVER} to hold ${clientIds.length} updates (${wrong} still differ)`,
  });
}

/** A catch-up as its sender logs it: when it ended (Date.now() scale), what it sent. */
interface CatchUpLogged {
  atMs: number;
  records: number;
  /** The changes it started after: 0 for a whole store. */
  afterSeq: number;
}

/** The lines of a log saying it sent a catch-up to `to`, oldest first. */
function catchUpsIn(logText: string, to: string): CatchUpLogged[] {
  const event = `catch-up to ${to}: sent (\\d+) updates after seq (\\d+)`;
  return logEvents(logText, event).map(({ atMs, captured }) => ({
    atMs,
    records: Number(captured[0]),
    afterSeq: Number(captured[1]),
  }));
}

/** When a log says its link to `to` came up, oldest first. */
function linkUpsIn(logText: string, to: string): number[] {
  return logEvents(logText, `link to ${to} up `).map(({ atMs }) => atMs);
}

/** The time and captured groups of each line of a log that matches `event`. */
function logEvents(logText: string, event: string) {
  const pattern = new RegExp(`^(\\S+) .*${event}`, "gm");
  return [...logText.matchAll(pattern)].map((match) => ({
    atMs: Date.parse(match[1]),
    captured: match.slice(2),
  }));
}

/**
 * Follows a growing log: each call returns the whole lines appended since the last one
 * (the first, those since this was called), so a long log is not read again and again. A
 * log rotated meanwhile (`NAME.log` → `NAME.log.1`, at 100 MiB) is told by its inode, followed
 * to its end there, then read from the start of the new file.
 */
async function followLog(path: string): Promise<() => Promise<string>> {
  let { ino, size: offset } = await Deno.stat(path);
  return async () => {
    let text = "";
    const now = await Deno.stat(path);
    if (now.ino !== ino) {
      const rotated = await Deno.stat(`${path}.1`).catch(() => undefined);
      if (rotated?.ino === ino) text = (await wholeLinesFrom(`${path}.1`, offset)).text;
      ino = now.ino;
      offset = 0;
    }
    const appended = await wholeLinesFrom(path, offset);
    offset += appended.bytes;
    return text + appended.text;
  };
}

/** The whole lines of the file at `path` from byte `offset` on, and how many bytes they are. */
async function wholeLinesFrom(path: string, offset: number) {
  using file = await Deno.open(path);
  const bytes = new Uint8Array(Math.max(0, (await file.stat()).size - offset));
  await file.seek(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < bytes.length) {
    const count = await file.read(bytes.subarray(read));
    if (count === null) break;
    read += count;
  }
  const end = bytes.subarray(0, read).lastIndexOf(0x0a) + 1;
  return { text: new TextDecoder().decode(bytes.subarray(0, end)), bytes: end };
}

/** The records `from` logged sending to `to` in catch-ups after the first `seen`, once any. */
async function recordsSentAfter(herd: Herd, from: string, to: string, seen: number) {
  const added = await pollUntil(async () => {
    const all = catchUpsIn(await herd.readLog(from), to);
    return all.length > seen && all.slice(seen);
  }, { timeoutMs: SYNC_TIMEOUT_MS, what: `a new catch-up from ${from} to ${to} in its log` });
  return added.reduce((sum, catchUp) => sum + catchUp.records, 0);
}

/** Polls until `from`'s latest link to `to` has finished its catch-up. */
async function waitCaughtUp(herd: Herd, from: string, to: string): Promise<void> {
  let dropped = false;
  await pollUntil(async () => {
    const log = await herd.readLog(from);
    dropped = log.includes("log records dropped");
    const [ups, catchUps] = [linkUpsIn(log, to), catchUpsIn(log, to)];
    return ups.length > 0 && catchUps.length > 0 && catchUps.at(-1)!.atMs >= ups.at(-1)!;
  }, {
    timeoutMs: SYNC_TIMEOUT_MS,
    what: () =>
      `${from}'s catch-up to ${to} on its latest link` +
      (dropped ? ` (${from} dropped log records: its disk could not keep up)` : ""),
  });
}

/** Moves the writer's share of the clients at the sender, batch after batch, while `going`. */
async function keepWriting(herd: Herd, writer: number, going: () => boolean): Promise<void> {
  const share = ids.filter((_, index) => index % WRITERS === writer);
  for (let batch = 0; going() && batch < WRITER_BATCHES_MAX; batch++) {
    const start = (batch * WRITER_BATCH_LINES) % share.length;
    const lines = share.slice(start, start + WRITER_BATCH_LINES)
      .map((id) => `IAMAT ${id} ${LOCATION} ${TIME + 10 + batch}`);
    await iamatsAtSender(herd, lines, 1);
    await new Promise((resolve) => setTimeout(resolve, WRITER_PAUSE_MS));
  }
}

/**
 * Cuts the link, moves UPDATES clients at the sender (to `time`), restores the link and
 * checks the catch-up: the receiver gets them all, from about UPDATES records (the
 * sender's log and the bytes through the proxies say), and sends nothing back.
 */
async function cutForUpdates(herd: Herd, proxies: LinkProxies, time: number): Promise<void> {
  const catchUpsBefore = catchUpsIn(await herd.readLog(SENDER), RECEIVER).length;
  const backCatchUpsBefore = catchUpsIn(await herd.readLog(RECEIVER), SENDER).length;
  proxies.cut(SENDER, RECEIVER);
  const moved = ids.slice(0, UPDATES);
  await iamatsAtSender(herd, moved.map((id) => `IAMAT ${id} ${MOVED_LOCATION} ${time}`), 1);
  const [outbound, inbound] = proxies.between(SENDER, RECEIVER);
  const bytesToReceiver = () => outbound.bytes.toTarget + inbound.bytes.fromTarget;
  const bytesBefore = bytesToReceiver();
  proxies.restore(SENDER, RECEIVER);
  await waitReceiverHoldsSenders(herd, moved);
  const bytes = bytesToReceiver() - bytesBefore;

  const sent = await recordsSentAfter(herd, SENDER, RECEIVER, catchUpsBefore);
  assert.ok(
    sent >= UPDATES && sent <= CATCH_UP_RECORDS_MAX,
    `${SENDER} sent ${sent} records for ${UPDATES} updates (store: ${CLIENTS})`,
  );
  const sentBack = await recordsSentAfter(herd, RECEIVER, SENDER, backCatchUpsBefore);
  assert.equal(sentBack, 0, `${RECEIVER} had nothing new, yet sent ${sentBack} records`);
  assert.ok(
    bytes <= CATCH_UP_RECORDS_MAX * RECORD_BYTES_MAX,
    `${bytes} bytes crossed the link for ${UPDATES} updates`,
  );
}

/** A ping: one IAMAT at the sender, and when it was sent and answered (Date.now()). */
interface Ping {
  sentMs: number;
  answeredMs: number;
}

/**
 * SIGKILLs the receiver, starts it again and pings the sender, one IAMAT at a time (each
 * answered within REPLY_MS_MAX), until the sender logs the catch-up of its whole store
 * (after seq 0) to the receiver. Returns the pings, that log, and when the receiver asked
 * for the catch-up (it started just after).
 */
async function restartReceiverWhilePinging(herd: Herd) {
  const newSenderLog = await followLog(herd.logPath(SENDER));
  await herd.kill(RECEIVER, "SIGKILL");
  await using client = await WireClient.connect(herd.port(SENDER));
  const restarted = herd.start(RECEIVER);
  const pings: Ping[] = [];
  let fullCatchUp: CatchUpLogged | undefined;
  const deadlineMs = Date.now() + FULL_CATCH_UP_TIMEOUT_MS;
  let logReadMs = Date.now();
  try {
    while (fullCatchUp === undefined && Date.now() < deadlineMs) {
      const sentMs = Date.now();
      await client.write(`IAMAT ping ${LOCATION} ${(sentMs / 1000).toFixed(3)}\n`);
      await client.readAtReply({ timeoutMs: REPLY_MS_MAX });
      pings.push({ sentMs, answeredMs: Date.now() });
      if (Date.now() - logReadMs >= LOG_READ_INTERVAL_MS) {
        const logText = await newSenderLog();
        fullCatchUp = catchUpsIn(logText, RECEIVER).find((catchUp) => catchUp.afterSeq === 0);
        logReadMs = Date.now();
      }
    }
  } finally {
    await restarted;
  }
  if (fullCatchUp === undefined) {
    const dropped = (await herd.readLog(SENDER)).includes("log records dropped");
    throw new Error(
      `no catch-up of the whole store to ${RECEIVER} logged within ${FULL_CATCH_UP_TIMEOUT_MS} ms` +
        (dropped ? ` (${SENDER} dropped log records: its disk could not keep up)` : ""),
    );
  }
  // The receiver asks for the catch-up as its link comes up: the sender starts it after.
  const { atMs } = fullCatchUp;
  const startMs = linkUpsIn(await herd.readLog(RECEIVER), SENDER).findLast((upMs) => upMs <= atMs);
  assert.ok(startMs !== undefined, `${RECEIVER} logged no link up before the catch-up ended`);
  return { pings, startMs, fullCatchUp };
}

Deno.test("catch-up after a cut sends what changed, not the 100k-client store", async (t) => {
  using proxies = new LinkProxies();
  await using herd = await startHerd({
    names: [SENDER, RECEIVER],
    configSeenBy: proxies.route,
    args: ["--places", "offline"],
  });

  await t.step(`${CLIENTS} clients at ${SENDER} reach ${RECEIVER}`, async () => {
    // The link's first catch-up (of nothing) is logged before the load: flat out, the load
    // can log faster than the disk takes, and a catch-up line logged then may be dropped.
    await waitCaughtUp(herd, SENDER, RECEIVER);
    await iamatsAtSender(
      herd,
      ids.map((id) => `IAMAT ${id} ${LOCATION} ${TIME}`),
      LOAD_CONNECTIONS,
    );
    // Had the link come up again during the load, its catch-up must be over before the cut.
    await waitCaughtUp(herd, SENDER, RECEIVER);
    await waitReceiverHoldsSenders(herd, sampleIds);
  });

  await t.step(`a link cut for ${UPDATES} updates sends about ${UPDATES} records`, async () => {
    await cutForUpdates(herd, proxies, TIME + 1);
  });

  await t.step("live floods that overtake a catch-up leave the link in sync", async () => {
    // While the link is cut every client moves; when it is back, more move while that
    // catch-up streams, and none after. The receiver then has it all: the next cut costs
    // about k records again.
    proxies.cut(SENDER, RECEIVER);
    const everyone = ids.map((id) => `IAMAT ${id} ${LOCATION} ${TIME + 2}`);
    await iamatsAtSender(herd, everyone, LOAD_CONNECTIONS);
    const newSenderLog = await followLog(herd.logPath(SENDER));
    proxies.restore(SENDER, RECEIVER);
    await pollUntil(async () => linkUpsIn(await newSenderLog(), RECEIVER).length > 0, {
      timeoutMs: SYNC_TIMEOUT_MS,
      intervalMs: 5,
      what: `${SENDER}'s link to ${RECEIVER} to come back`,
    });
    const overtaking = ids.slice(0, OVERTAKING_UPDATES);
    await iamatsAtSender(herd, overtaking.map((id) => `IAMAT ${id} ${LOCATION} ${TIME + 3}`), 1);
    await waitCaughtUp(herd, SENDER, RECEIVER);
    await cutForUpdates(herd, proxies, TIME + 4);
  });

  await t.step("a client of the sender is answered while the whole store streams", async () => {
    const { pings, startMs, fullCatchUp } = await restartReceiverWhilePinging(herd);
    assert.ok(
      fullCatchUp.records >= CLIENTS,
      `the catch-up to the restarted ${RECEIVER} sent only ${fullCatchUp.records} records`,
    );
    const during = pings.filter((ping) =>
      ping.sentMs > startMs && ping.answeredMs < fullCatchUp.atMs
    );
    assert.ok(
      during.length >= PINGS_DURING_CATCH_UP_MIN,
      `${during.length} pings answered while ${fullCatchUp.records} records streamed ` +
        `(${fullCatchUp.atMs - startMs} ms)`,
    );
    await waitReceiverHoldsSenders(herd, sampleIds);
  });

  await t.step("the whole store reaches a restarted neighbour while clients write", async () => {
    // Live floods keep the link busy all along: the catch-up must still get its turn.
    let writing = true;
    const writers = Array.from(
      { length: WRITERS },
      (_, writer) => keepWriting(herd, writer, () => writing),
    );
    try {
      await restartReceiverWhilePinging(herd);
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    await waitReceiverHoldsSenders(herd, sampleIds);
  });
});
