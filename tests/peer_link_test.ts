/**
 * One peer link (lib/peer_link.ts) over an in-memory connection, the neighbour played by the
 * test line by line, time stepped by a manual clock: HAVE first, catch-up of only what the
 * neighbour lacks in batches bounded by bytes, updates stored and handed on, the watermark,
 * every kind of bad line closing the link with a warning (and a cut AT line never stored),
 * heartbeats sent and expected, and no expiry while the read gate holds the link.
 */
import assert from "node:assert/strict";
import { type ByteConn, LineConnection } from "../lib/connection.ts";
import { Counters } from "../lib/counters.ts";
import {
  CATCH_UP_BATCH_BYTES,
  PeerLink,
  peerLinkLimits,
  type Watermark,
} from "../lib/peer_link.ts";
import { parsePeerLine } from "../lib/peer_protocol.ts";
import { ClientStore, type StoredUpdate } from "../lib/store.ts";
import { type CapturedLog, captureLog } from "./support/captured_log.ts";
import { ManualClock, settle } from "./support/manual_clock.ts";
import { memoryConnPair } from "./support/memory_conn.ts";

const PEER = "Hill";
const EPOCH = "00000000000000aa";
const NEIGHBOUR_EPOCH = "00000000000000bb";
const HEARTBEAT_MS = 1000;
const LIMITS = peerLinkLimits({ lineBytesMax: 256, serverNameBytesMax: 8 });
/** Far above anything a test sends: the neighbour's own end never cuts or closes. */
const NEIGHBOUR_LIMITS = { lineBytesMax: 1 << 28, outputBytesMax: 1 << 30 };

function atLine(clientId: string, time = "1700000000", origin = "Smith"): string {
  return `AT ${origin} +0.000000001 ${clientId} +1+1 ${time}`;
}

/** The test's end of the link: what it sent and received, line by line. */
class Neighbour {
  readonly received: string[] = [];
  readonly connection: LineConnection;
  readonly #reading: Promise<void>;

  constructor(conn: ByteConn) {
    this.connection = new LineConnection(conn, NEIGHBOUR_LIMITS);
    this.#reading = this.#read();
  }

  send(...lines: string[]): void {
    this.connection.sendText(lines.map((line) => `${line}\n`).join(""));
  }

  async close(): Promise<void> {
    this.connection.close();
    await this.#reading;
  }

  async #read(): Promise<void> {
    for (let lines = await this.connection.readLines(); lines !== null;) {
      this.received.push(...lines.map((line) => line.text));
      lines = await this.connection.readLines();
    }
  }
}

interface Harness extends AsyncDisposable {
  link: PeerLink;
  neighbour: Neighbour;
  store: ClientStore;
  clock: ManualClock;
  counters: Counters;
  log: CapturedLog;
  watermarks: Map<string, Watermark>;
  /** Updates the link handed on to be flooded. */
  handedOn: StoredUpdate[];
  /** The size of every write the link made to its socket. */
  writes: number[];
}

/** A started link to {@link PEER} whose other end is the test's. */
async function startLink(
  options: {
    store?: ClientStore;
    readGate?: () => Promise<void> | undefined;
    receiveBytesMax?: number;
  } = {},
): Promise<Harness> {
  const log = await captureLog();
  const [linkEnd, neighbourEnd] = memoryConnPair({ receiveBytesMax: options.receiveBytesMax });
  const writes: number[] = [];
  const recorded: ByteConn = {
    remoteAddr: linkEnd.remoteAddr,
    readChunk: () => linkEnd.readChunk(),
    write: (bytes) => {
      writes.push(bytes.length);
      return linkEnd.write(bytes);
    },
    close: () => linkEnd.close(),
  };
  const store = options.store ?? new ClientStore({ clientsMax: 1000 });
  const clock = new ManualClock();
  const counters = new Counters();
  const watermarks = new Map<string, Watermark>();
  const handedOn: StoredUpdate[] = [];
  const link = new PeerLink({
    peer: PEER,
    connection: new LineConnection(recorded, LIMITS),
    pendingLines: [],
    store,
    epoch: EPOCH,
    watermarks,
    heartbeatMs: HEARTBEAT_MS,
    clock,
    readGate: options.readGate,
    onStored: (update) => handedOn.push(update),
    logger: log.logger("Jaquez"),
    counters,
  });
  const neighbour = new Neighbour(neighbourEnd);
  link.start();
  await settle();
  return {
    link,
    neighbour,
    store,
    clock,
    counters,
    log,
    watermarks,
    handedOn,
    writes,
    [Symbol.asyncDispose]: async () => {
      link.close("test over");
      await neighbour.close();
      await log[Symbol.asyncDispose]();
    },
  };
}

/** A store that was told `count` client updates (sequence numbers 1…count). */
function storeWith(clientIds: string[]): ClientStore {
  const store = new ClientStore({ clientsMax: 100_000, storeBytesMax: 2 ** 40 });
  for (const clientId of clientIds) store.offer({ clientId, atLine: atLine(clientId) });
  return store;
}

/** Resolves with the link's close reason, or "open" if it has not closed by now. */
async function closeReason(link: PeerLink): Promise<string> {
  return await Promise.race([link.closed, settle().then(() => "open")]);
}

Deno.test("a link sends HAVE first, then what the neighbour lacks of this epoch, then SYNCED", async () => {
  await using h = await startLink({ store: storeWith(["a", "b", "c"]) });
  assert.deepEqual(h.neighbour.received, [`HAVE ${EPOCH} - 0`]);
  // The neighbour already has this epoch's change 1.
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} ${EPOCH} 1`);
  await settle();
  assert.deepEqual(h.neighbour.received.slice(1), [
    `U 2 ${atLine("b")}`,
    `U 3 ${atLine("c")}`,
    "SYNCED 3",
  ]);
});

Deno.test("a neighbour that knows another epoch of this server gets everything", async () => {
  await using h = await startLink({ store: storeWith(["a", "b"]) });
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} ffffffffffffffff 2`);
  await settle();
  assert.deepEqual(h.neighbour.received.slice(1), [
    `U 1 ${atLine("a")}`,
    `U 2 ${atLine("b")}`,
    "SYNCED 2",
  ]);
});

Deno.test("a neighbour's updates are stored and handed on; SYNCED sets the watermark", async () => {
  await using h = await startLink();
  h.neighbour.send(
    `HAVE ${NEIGHBOUR_EPOCH} - 0`,
    `U 4 ${atLine("kiwi", "1700000001")}`,
    `U 5 ${atLine("kiwi", "1700000000")}`, // older: not stored, not handed on
    "SYNCED 5",
    `U 9 ${atLine("lime")}`, // a live flood after SYNCED moves the watermark on
  );
  await settle();
  assert.equal(h.store.get("kiwi")?.atLine, atLine("kiwi", "1700000001"));
  assert.equal(h.store.get("kiwi")?.fromPeer, PEER);
  assert.deepEqual(h.handedOn.map((update) => update.atLine), [
    atLine("kiwi", "1700000001"),
    atLine("lime"),
  ]);
  // Handed on as the store holds it: its local sequence number, the neighbour it came from.
  for (const update of h.handedOn) {
    const held = h.store.get(update.clientId)!;
    assert.deepEqual([update.seq, update.fromPeer], [held.seq, PEER]);
  }
  assert.deepEqual(h.watermarks.get(PEER), { epoch: NEIGHBOUR_EPOCH, seq: 9 });
  assert.equal(await closeReason(h.link), "open");
});

Deno.test("a catch-up of long ids goes in batches bounded by bytes that wait for the socket", async () => {
  const ids = Array.from({ length: 40 }, (_, index) => `${index}.${"i".repeat(60_000)}`);
  // The neighbour's end holds 64 KiB unread: every batch waits for it to read.
  await using h = await startLink({ store: storeWith(ids), receiveBytesMax: 64 * 1024 });
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} - 0`);
  await settle();
  for (let turn = 0; turn < 100 && h.neighbour.received.at(-1) !== "SYNCED 40"; turn++) {
    await settle();
  }
  const updates = h.neighbour.received.filter((line) => line.startsWith("U "));
  assert.equal(updates.length, ids.length);
  assert.equal(h.neighbour.received.at(-1), "SYNCED 40");
  const longestLine = Math.max(...updates.map((line) => line.length + 1));
  const writeBytesMax = Math.max(...h.writes);
  assert.ok(
    writeBytesMax <= CATCH_UP_BATCH_BYTES + longestLine,
    `a write of ${writeBytesMax} bytes`,
  );
  assert.ok(h.writes.length >= 2, "the catch-up went in one write");
  assert.equal(await closeReason(h.link), "open");
});

/** Lines that close the link, each with the reason it is closed for. */
const BAD_SEQUENCES: Array<{ name: string; lines: string[]; why: string }> = [
  {
    name: "a malformed update",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, `U +1 ${atLine("bad")}`],
    why: "a malformed line (bad sequence number)",
  },
  {
    name: "an update with a broken AT line",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, `U 1 ${atLine("bad").replace("+1+1 ", "")}`],
    why: "a malformed line (bad AT line)",
  },
  {
    name: "an unknown command",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, "HELLO there"],
    why: "a malformed line (unknown command)",
  },
  {
    name: "an empty line",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, ""],
    why: "a malformed line (empty line)",
  },
  { name: "an update before HAVE", lines: [`U 1 ${atLine("bad")}`], why: "U before HAVE" },
  { name: "a heartbeat before HAVE", lines: ["HB"], why: "HB before HAVE" },
  {
    name: "a second HAVE",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, `HAVE ${NEIGHBOUR_EPOCH} - 0`, `U 1 ${atLine("bad")}`],
    why: "a second HAVE",
  },
  {
    name: "a hello after the handshake",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, "PEER Hill 2", `U 1 ${atLine("bad")}`],
    why: "PEER after the handshake",
  },
  {
    name: "a challenge after the handshake",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, `CHALLENGE ${"a".repeat(64)}`],
    why: "CHALLENGE after the handshake",
  },
  {
    name: "a line of binary bytes",
    lines: [`HAVE ${NEIGHBOUR_EPOCH} - 0`, "\u0000\u00ff\r\u0001 U 1"],
    why: "a malformed line (unknown command)",
  },
];

for (const { name, lines, why } of BAD_SEQUENCES) {
  Deno.test(`${name} closes the link with a warning; nothing is stored`, async () => {
    await using h = await startLink();
    h.neighbour.send(...lines);
    assert.equal(await closeReason(h.link), why);
    assert.equal(h.store.get("bad"), undefined);
    assert.equal(h.handedOn.length, 0);
    assert.equal(h.counters.get("peer_lines_refused"), 1);
    assert.ok(
      h.log.lines().some((line) => line.startsWith("WARNING Jaquez: link to Hill closed: ")),
      h.log.lines().join("\n"),
    );
  });
}

Deno.test("a flood of HAVEs gets one catch-up and a closed link", async () => {
  await using h = await startLink({ store: storeWith(["a"]) });
  h.neighbour.send(...Array.from({ length: 50 }, () => `HAVE ${NEIGHBOUR_EPOCH} - 0`));
  assert.equal(await closeReason(h.link), "a second HAVE");
  await settle();
  assert.ok(h.neighbour.received.filter((line) => line.startsWith("SYNCED")).length <= 1);
  assert.equal(h.counters.get("catch_up_updates_sent"), 1);
});

Deno.test("a line over the peer limit closes the link; its cut AT line, valid, is not stored", async () => {
  await using h = await startLink();
  // Cut at the limit inside the time's decimals, what is left is a well-formed update.
  const prefix = "U 1 AT Smith +0.000000001 ";
  const suffix = " +1+1 1700000000.123456789";
  const id = "c".repeat(LIMITS.lineBytesMax + 5 - prefix.length - suffix.length);
  const line = `${prefix}${id}${suffix}`;
  const cut = line.slice(0, LIMITS.lineBytesMax);
  assert.equal(parsePeerLine(cut).kind, "U", "the cut line must parse for this test to bite");
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} - 0`, line);
  assert.equal(await closeReason(h.link), "a line over the peer line limit");
  assert.equal(h.store.get(id), undefined);
  assert.ok(h.log.lines().some((logged) => logged.includes("over the peer line limit")));
});

Deno.test("an idle link sends heartbeats; one that hears nothing for 3 intervals closes", async () => {
  await using h = await startLink();
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} - 0`);
  await settle();
  const sentBefore = h.neighbour.received.length;
  await h.clock.advance(HEARTBEAT_MS * 1.25, HEARTBEAT_MS / 4);
  assert.deepEqual(h.neighbour.received.slice(sentBefore), ["HB"]);
  await h.clock.advance(HEARTBEAT_MS * 1.5, HEARTBEAT_MS / 4);
  assert.equal(await closeReason(h.link), "open", "closed before 3 intervals of silence");
  await h.clock.advance(HEARTBEAT_MS * 0.5, HEARTBEAT_MS / 4);
  assert.equal(await closeReason(h.link), "no heartbeat");
  assert.equal(h.counters.get("peer_heartbeats_missed"), 1);
  assert.ok(h.log.lines().some((line) => /nothing received for 3\d{3} ms/.test(line)));
});

Deno.test("a link whose neighbour sends heartbeats stays up however long it is idle", async () => {
  await using h = await startLink();
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} - 0`);
  for (let interval = 0; interval < 20; interval++) {
    await h.clock.advance(HEARTBEAT_MS, HEARTBEAT_MS / 4);
    h.neighbour.send("HB");
  }
  assert.equal(await closeReason(h.link), "open");
});

Deno.test("no heartbeat expiry while the read gate holds the link; lines wait for it", async () => {
  let gate: PromiseWithResolvers<void> | undefined;
  await using h = await startLink({ readGate: () => gate?.promise });
  h.neighbour.send(`HAVE ${NEIGHBOUR_EPOCH} - 0`);
  await settle();
  gate = Promise.withResolvers<void>();
  h.neighbour.send(`U 1 ${atLine("gated")}`);
  await h.clock.advance(HEARTBEAT_MS * 10, HEARTBEAT_MS / 4);
  assert.equal(await closeReason(h.link), "open", "timed out while this server held it");
  assert.equal(h.store.get("gated"), undefined, "read while the gate held the link");
  const held = gate;
  gate = undefined;
  held.resolve();
  await settle();
  assert.equal(h.store.get("gated")?.atLine, atLine("gated"));
  // Released, silence counts again from the release.
  await h.clock.advance(HEARTBEAT_MS * 2.5, HEARTBEAT_MS / 4);
  assert.equal(await closeReason(h.link), "open");
  await h.clock.advance(HEARTBEAT_MS * 0.75, HEARTBEAT_MS / 4);
  assert.equal(await closeReason(h.link), "no heartbeat");
});
