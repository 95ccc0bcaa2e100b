/**
 * ClientSession over a LineConnection over an in-memory ByteConn pair, with a fake service
 * whose slow replies the test gives by hand and a stall clock the test steps: pipelining past
 * linesInFlightMax with late, out-of-order replies, half-close and stop, and the slow-reader
 * pause — no sockets, no sleeps.
 */
import assert from "node:assert/strict";
import { getLogger, type Logger } from "@logtape/logtape";
import type { WaitClock } from "../lib/abortable.ts";
import { ClientSession } from "../lib/client_session.ts";
import { type CloseReason, LineConnection } from "../lib/connection.ts";
import { Counters } from "../lib/counters.ts";
import type { HandleLineOptions, HerdService, Reply } from "../lib/service.ts";
import { type MemoryConn, memoryConnPair } from "./support/memory_conn.ts";
import { wireBytes, wireText } from "./support/wire_client.ts";
import { captureLog } from "./support/captured_log.ts";

/**
 * Microtask turns that let every chain one step starts run to its end: everything here is
 * promises and microtasks, so a step's effects are done after these turns, or never — except
 * a session's rest after 2 ms of work (on the test's clock), a timer tick.
 */
const SETTLE_TURNS = 200;
/** Timer ticks in a settle, each followed by the microtask turns: a rest or two is over. */
const SETTLE_TICKS = 2;

async function settle(): Promise<void> {
  for (let tick = 0; tick <= SETTLE_TICKS; tick++) {
    if (tick > 0) await new Promise((resolve) => setTimeout(resolve, 0));
    for (let turn = 0; turn < SETTLE_TURNS; turn++) await Promise.resolve();
  }
}

/**
 * Acts on lines as the test wants: `now …` is answered at once, any other line by a promise
 * the test settles with `answer`. A reply is its line, padded with dots to `replyBytes`.
 */
class FakeService {
  readonly linesActedOn: string[] = [];
  readonly #unanswered = new Map<string, (reply: string) => void>();
  readonly #replyBytes: number;

  constructor(options: { replyBytes?: number } = {}) {
    this.#replyBytes = options.replyBytes ?? 0;
  }

  handleLine(line: string): Reply {
    this.linesActedOn.push(line);
    if (line.startsWith("now ")) return this.replyTo(line);
    return new Promise((resolve) => this.#unanswered.set(line, resolve));
  }

  /** Lines acted on whose replies are still to come, oldest first. */
  get unanswered(): string[] {
    return [...this.#unanswered.keys()];
  }

  answer(line: string): void {
    const resolve = this.#unanswered.get(line);
    assert.ok(resolve !== undefined, `no reply owed to ${line}`);
    this.#unanswered.delete(line);
    resolve(this.replyTo(line));
  }

  replyTo(line: string): string {
    return `${line}${".".repeat(Math.max(0, this.#replyBytes - line.length - 1))}\n`;
  }
}

/**
 * A WaitClock whose sleeps end only when the test says that their time has passed, and whose
 * time moves only when the test moves it (`nowMs` times each line's handling).
 */
class StepClock implements WaitClock {
  #sleeps: Array<{ wake: () => void; signal: AbortSignal; index: number }> = [];
  #begun = 0;
  #nowMs = 0;

  nowMs(): number {
    return this.#nowMs;
  }

  /** Moves the time on, as work that takes `ms` would. */
  advance(ms: number): void {
    this.#nowMs += ms;
  }

  sleep(_ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((wake) => {
      signal.addEventListener("abort", () => wake(), { once: true });
      this.#sleeps.push({ wake, signal, index: this.#begun++ });
    });
  }

  /** Sleeps neither ended nor cut short. */
  get sleeping(): number {
    return this.#sleeps.filter((sleep) => !sleep.signal.aborted).length;
  }

  /** Sleeps begun so far, ended or not: a mark for `elapse`. */
  get begun(): number {
    return this.#begun;
  }

  /** Ends the sleeps begun before `mark` (default: all), as if their time had passed. */
  elapse(mark = Infinity): void {
    const ending = this.#sleeps.filter((sleep) => sleep.index < mark);
    this.#sleeps = this.#sleeps.filter((sleep) => sleep.index >= mark);
    for (const sleep of ending) sleep.wake();
  }
}

/** The client's end of the connection: sends lines, reads when the test says so. */
class TestClient {
  received = "";
  sawEnd = false;
  readonly end: MemoryConn;

  constructor(end: MemoryConn) {
    this.end = end;
  }

  /** Sends the lines in one write (the server's end holds them whole). */
  async send(lines: readonly string[]): Promise<void> {
    await this.end.write(wireBytes(lines.map((line) => `${line}\n`).join("")));
  }

  /** Takes the bytes received so far, not those they make room for: a client that reads now and then. */
  async takeReceived(): Promise<void> {
    for (let unread = this.end.unreadBytes; unread > 0;) {
      const chunk = (await this.end.readChunk())!;
      this.received += wireText(chunk);
      unread -= chunk.length;
    }
  }

  /** Reads everything from now on, to the end of the stream: a client that keeps reading. */
  keepReading(): void {
    (async () => {
      for (
        let chunk = await this.end.readChunk();
        chunk !== null;
        chunk = await this.end.readChunk()
      ) {
        this.received += wireText(chunk);
      }
      this.sawEnd = true;
    })();
  }
}

interface Harness {
  session: ClientSession;
  client: TestClient;
  clock: StepClock;
  /** Why the server closed the connection, once it did. */
  closeReason: () => CloseReason | undefined;
  /** True once `serve()` has returned. */
  served: () => boolean;
}

function startSession(
  service: Pick<HerdService, "handleLine">,
  options: {
    linesInFlightMax: number;
    outputBytesMax?: number;
    receiveBytesMax?: number;
    /** Default true; false leaves the session as the server holds it before the first read. */
    serving?: boolean;
    /** Default: a logger nothing is configured for. */
    logger?: Logger;
    /** Default: a new one. */
    clock?: StepClock;
  },
): Harness {
  const [serverEnd, clientEnd] = memoryConnPair({ receiveBytesMax: options.receiveBytesMax });
  const connection = new LineConnection(serverEnd, {
    lineBytesMax: 1024,
    outputBytesMax: options.outputBytesMax ?? 1024 * 1024,
  });
  let closeReason: CloseReason | undefined;
  connection.onClose((reason) => (closeReason = reason));
  const clock = options.clock ?? new StepClock();
  const session = new ClientSession(connection, {
    service,
    linesInFlightMax: options.linesInFlightMax,
    logger: options.logger ?? getLogger(["test"]),
    counters: new Counters(),
    clockMs: () => 0,
    stopSignal: new AbortController().signal,
    waitClock: clock,
  });
  let served = false;
  if (options.serving ?? true) session.serve([]).then(() => (served = true));
  return {
    session,
    client: new TestClient(clientEnd),
    clock,
    closeReason: () => closeReason,
    served: () => served,
  };
}

/** `count` lines: every third answered at once, the others late. */
function mixedLines(count: number): string[] {
  return Array.from(
    { length: count },
    (_, index) => `${index % 3 === 0 ? "now" : "late"} ${index}`,
  );
}

/**
 * Answers the lines the service waits on, each pair in swapped order and one at a time,
 * until it has acted on `lineCount` lines and owes nothing: so replies become ready out of
 * order, and the front of the order one by one.
 */
async function answerOutOfOrder(service: FakeService, lineCount: number): Promise<void> {
  for (let round = 0; round <= lineCount; round++) {
    await settle();
    const waiting = service.unanswered;
    if (waiting.length === 0 && service.linesActedOn.length === lineCount) return;
    for (let index = 0; index < waiting.length; index += 2) {
      for (const line of waiting.slice(index, index + 2).reverse()) {
        service.answer(line);
        await settle();
      }
    }
  }
  assert.fail(`acted on ${service.linesActedOn.length} of ${lineCount} lines, then stuck`);
}

/**
 * Sends `count` mixed lines in one go and half-closes, then answers the late ones out of order
 * until none is owed; returns the lines.
 */
async function pipelineThenHalfClose(
  service: FakeService,
  client: TestClient,
  count: number,
): Promise<string[]> {
  const lines = mixedLines(count);
  client.keepReading();
  await client.send(lines);
  client.end.halfClose();
  await answerOutOfOrder(service, lines.length);
  await settle();
  return lines;
}

Deno.test("pipelined lines past linesInFlightMax, answered late and out of order, then half-close: every reply in order, then EOF", async () => {
  const service = new FakeService();
  const { client, served, closeReason } = startSession(service, { linesInFlightMax: 4 });
  const lines = await pipelineThenHalfClose(service, client, 30);
  assert.equal(client.received, lines.map((line) => service.replyTo(line)).join(""));
  assert.ok(client.sawEnd, "the server did not close after the last reply");
  assert.equal(closeReason(), "done");
  assert.ok(served());
});

Deno.test("stop() mid-batch: lines already read are answered, later ones are not read, then the connection closes", async () => {
  const service = new FakeService();
  const { session, client, served } = startSession(service, { linesInFlightMax: 4 });
  const lines = mixedLines(30);
  client.keepReading();
  await client.send(lines);
  await settle();
  assert.ok(service.linesActedOn.length < lines.length, "the batch waits under linesInFlightMax");
  session.stop();
  await client.send(["now after.stop"]);
  await answerOutOfOrder(service, lines.length);
  await settle();
  assert.equal(client.received, lines.map((line) => service.replyTo(line)).join(""));
  assert.ok(client.sawEnd, "the server did not close after the last reply");
  assert.ok(served());
});

Deno.test("stop() while the session waits for input closes the connection at once", async () => {
  const service = new FakeService();
  const { session, client, served } = startSession(service, { linesInFlightMax: 4 });
  client.keepReading();
  await client.send(["now 1", "now 2"]);
  await settle();
  session.stop();
  await settle();
  assert.equal(client.received, "now 1\nnow 2\n");
  assert.ok(client.sawEnd);
  assert.ok(served());
});

Deno.test("stop() before serving closes the connection: no line was read, none is owed a reply", async () => {
  const service = new FakeService();
  const { session, client, closeReason } = startSession(service, {
    linesInFlightMax: 4,
    serving: false,
  });
  client.keepReading();
  session.stop();
  await settle();
  assert.ok(client.sawEnd);
  assert.equal(closeReason(), "done");
});

Deno.test("replies held behind a slow one count toward the slow-reader pause, which ends once they are sent", async () => {
  // Pauses past 500 bytes not taken: three held replies of 200 bytes are past it.
  const service = new FakeService({ replyBytes: 200 });
  const { client, clock, closeReason } = startSession(service, {
    linesInFlightMax: 100,
    outputBytesMax: 1000,
  });
  const lines = ["late 0", ...Array.from({ length: 9 }, (_, index) => `now ${index + 1}`)];
  client.keepReading();
  await client.send(lines);
  await settle();
  assert.deepEqual(service.linesActedOn, lines.slice(0, 4), "acted on past the held bytes");
  // Held replies cannot be taken: however long the lookup lasts, the client is not judged.
  for (let period = 0; period < 5; period++) {
    clock.elapse();
    await settle();
  }
  assert.equal(service.linesActedOn.length, 4);
  assert.equal(client.received, "");
  service.answer("late 0");
  await settle();
  assert.deepEqual(service.linesActedOn, lines);
  client.end.halfClose();
  await settle();
  assert.equal(client.received, lines.map((line) => service.replyTo(line)).join(""));
  assert.ok(client.sawEnd);
  assert.equal(closeReason(), "done");
});

Deno.test("a client that reads nothing is paused, then closed at outputBytesMax", async () => {
  const service = new FakeService({ replyBytes: 100 });
  const { client, clock, closeReason, served } = startSession(service, {
    linesInFlightMax: 100,
    outputBytesMax: 1000,
    receiveBytesMax: 300,
  });
  await client.send(Array.from({ length: 100 }, (_, index) => `now ${index}`));
  await settle();
  const actedOnWhilePaused = service.linesActedOn.length;
  assert.ok(actedOnWhilePaused < 20, `acted on ${actedOnWhilePaused} lines without a pause`);
  assert.equal(clock.sleeping, 1, "not waiting for the client to read");
  assert.equal(closeReason(), undefined);
  clock.elapse(); // a stall period in which the client read nothing
  await settle();
  assert.equal(closeReason(), "output limit");
  assert.ok(served());
  assert.ok(service.linesActedOn.length < 100);
});

Deno.test("a slow client that takes some of its replies in every stall period is never closed", async () => {
  const service = new FakeService({ replyBytes: 100 });
  const { client, clock, closeReason } = startSession(service, {
    linesInFlightMax: 100,
    outputBytesMax: 1000,
    receiveBytesMax: 300,
  });
  // Two slow replies among quick ones: when the second is answered while the first's batch
  // is still being written, a second batch waits behind it, so a stall period ends with
  // some bytes taken but not all.
  const lines = [
    ...Array.from({ length: 6 }, (_, index) => `now a${index}`),
    "late 1",
    ...Array.from({ length: 3 }, (_, index) => `now b${index}`),
    "late 2",
    ...Array.from({ length: 30 }, (_, index) => `now c${index}`),
  ];
  await client.send(lines);
  await settle();
  service.answer("late 1");
  await settle();
  service.answer("late 2");
  for (let period = 0; period < 50 && service.linesActedOn.length < lines.length; period++) {
    await settle();
    const beforeReading = clock.begun;
    await client.takeReceived();
    await settle();
    clock.elapse(beforeReading); // the client took some replies in each of these periods
  }
  await settle();
  client.keepReading();
  client.end.halfClose();
  await settle();
  assert.equal(closeReason(), "done");
  assert.equal(client.received, lines.map((line) => service.replyTo(line)).join(""));
  assert.ok(client.sawEnd);
});

Deno.test("replies held behind slow ones go out as the client takes them: a burst past outputBytesMax does not close a reader", async () => {
  // Eight lookups in flight whose 300-byte replies all become ready in one turn: 2400 bytes,
  // past outputBytesMax, which a reading client must never be closed for.
  const service = new FakeService({ replyBytes: 300 });
  const { client, closeReason } = startSession(service, {
    linesInFlightMax: 8,
    outputBytesMax: 1024,
    receiveBytesMax: 400,
  });
  const lines = Array.from({ length: 8 }, (_, index) => `late ${index}`);
  await client.send(lines);
  await settle();
  assert.equal(service.unanswered.length, 8);
  for (const line of lines) service.answer(line);
  await settle();
  assert.equal(closeReason(), undefined, "closed for a burst it could not have read yet");
  client.keepReading();
  client.end.halfClose();
  await settle();
  assert.equal(client.received, lines.map((line) => service.replyTo(line)).join(""));
  assert.equal(closeReason(), "done");
});

Deno.test("the lines of one read are one log record, split before a wait; every line logged once, in order", async () => {
  await using log = await captureLog();
  const service = new FakeService();
  const { client } = startSession(service, {
    linesInFlightMax: 4,
    logger: log.logger("Hill"),
  });
  const lines = await pipelineThenHalfClose(service, client, 30);
  const records = log.lines().filter((line) => line.startsWith("INFO Hill: client "));
  const logged = records.flatMap((record) =>
    record.slice(record.indexOf(": ", "INFO Hill: client ".length) + 2).split(" ⏎ ")
  );
  assert.deepEqual(
    logged.map((exchange) => exchange.slice(0, exchange.indexOf(" -> "))),
    lines,
    "every line once, in order",
  );
  for (const [index, exchange] of logged.entries()) {
    const reply = lines[index].startsWith("now ")
      ? service.replyTo(lines[index]).slice(0, -1)
      : "(reply follows)";
    assert.equal(exchange, `${lines[index]} -> ${reply}`);
  }
  assert.ok(records.length < lines.length, `${records.length} records for ${lines.length} lines`);
  // Reading paused at linesInFlightMax on the way; the lines before each pause were logged
  // before it.
  const all = log.lines();
  const firstPause = all.findIndex((line) => line.includes("linesInFlightMax reached"));
  assert.ok(firstPause > 0, "reading never paused");
  assert.ok(all.slice(0, firstPause).some((line) => line.includes(`${lines[0]} -> `)));
});

/** Answers every line at once, its handling taking `busyMs` on the session's clock. */
class BusyService implements Pick<HerdService, "handleLine"> {
  constructor(readonly clock: StepClock, readonly busyMs: number) {}

  handleLine(line: string): Reply {
    this.clock.advance(this.busyMs);
    return `${line}\n`;
  }
}

/** Lines of 0.2 ms of work each: 30 of them keep the session busy well past its 2 ms. */
const BUSY_LINES = Array.from({ length: 30 }, (_, index) => `busy ${index}`);

/** Resolves with true if a timer tick passed while `run` ran (everything else is microtasks). */
async function tickedDuring(run: () => Promise<void>): Promise<boolean> {
  let ticked = false;
  const timer = setTimeout(() => (ticked = true), 0);
  await run();
  clearTimeout(timer);
  return ticked;
}

Deno.test("a client that waits for each reply is never made to rest, however long it keeps the session busy", async () => {
  const clock = new StepClock();
  const service = new BusyService(clock, 0.2);
  const { client } = startSession(service, { linesInFlightMax: 4, clock });
  const ticked = await tickedDuring(async () => {
    for (const line of BUSY_LINES) {
      await client.send([line]);
      const reply = await client.end.readChunk();
      assert.equal(wireText(reply!), `${line}\n`);
    }
  });
  assert.equal(ticked, false, "the session rested for a timer tick");
  client.end.close();
});

Deno.test("a client whose lines are all there already rests for a timer tick after 2 ms of work", async () => {
  const clock = new StepClock();
  const service = new BusyService(clock, 0.2);
  const { client } = startSession(service, { linesInFlightMax: 4, clock });
  const ticked = await tickedDuring(async () => {
    for (const line of BUSY_LINES) await client.send([line]);
    client.keepReading();
    const expected = BUSY_LINES.map((line) => `${line}\n`).join("");
    for (let tick = 0; tick < 1_000 && client.received !== expected; tick++) await settle();
    assert.equal(client.received, expected);
  });
  assert.equal(ticked, true, "the session never rested");
  client.end.close();
});

/** Keeps each line's lookup signal, read when the line is handled as a lookup would read it. */
class SignalService implements Pick<HerdService, "handleLine"> {
  readonly signals: AbortSignal[] = [];

  handleLine(_line: string, options: HandleLineOptions): Reply {
    this.signals.push(options.signal);
    return new Promise(() => {});
  }
}

Deno.test("a pending lookup's signal aborts when the connection closes (the idle timeout, say)", async () => {
  const service = new SignalService();
  const { client, session } = startSession(service, { linesInFlightMax: 4 });
  await client.send(["WHATSAT kiwi 10 5", "WHATSAT kiwi 10 6"]);
  await settle();
  assert.equal(service.signals.length, 2);
  assert.equal(service.signals[1], service.signals[0], "one signal per session");
  assert.equal(service.signals[0].aborted, false);
  session.connection.close("idle timeout");
  await settle();
  assert.equal(service.signals[0].aborted, true);
});
