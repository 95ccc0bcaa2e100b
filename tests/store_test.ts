import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  ClientStore,
  type ClientUpdate,
  compareTimeTexts,
  compareUpdates,
  type OfferResult,
  STORED_CLIENT_OVERHEAD_BYTES,
  storedClientBytes,
  type StoredUpdate,
} from "../lib/store.ts";

const CLIENTS_MAX = 1_000;

/** An update with its exact time beside it, to check what the store reports. */

/** An update as an origin server would announce it for `clientId` at `time` seconds. */
function update(
  clientId: string,
  time: string,
  origin = "Hill",
  skew = "+0.000000001",
): ClientUpdate {
  return { clientId, atLine: `AT ${origin} ${skew} ${clientId} +1+1 ${time}` };
}

/** Restores an AT line as a restart does: from bytes (here a buffer of its own). */
function restoreText(store: ClientStore, atLine: string): OfferResult {
  return store.restore(Buffer.from(atLine, "latin1"), 0, atLine.length);
}

/** A stored update's fields as a plain object, to compare with the update offered. */
function fieldsOf(stored: StoredUpdate | undefined) {
  if (stored === undefined) return undefined;
  const { clientId, atLine, fromPeer, seq } = stored;
  return { clientId, atLine, fromPeer, seq };
}

function seqsOf(store: ClientStore, afterSeq: number): Array<[string, number]> {
  return [...store.changesAfter(afterSeq)].map((stored) => [stored.clientId, stored.seq]);
}

// ---------------------------------------------------------------------------------------------
// A client's own IAMAT: strictly newer time only

const CLIENT_OFFERS: Array<
  { name: string; held: ClientUpdate; offered: ClientUpdate; result: string }
> = [
  {
    name: "a later time is stored",
    held: update("a", "5"),
    offered: update("a", "6"),
    result: "stored",
  },
  {
    name: "a time one nanosecond later is stored",
    held: update("a", "5.000000001"),
    offered: update("a", "5.000000002"),
    result: "stored",
  },
  {
    name: "an older time is stale",
    held: update("a", "6"),
    offered: update("a", "5"),
    result: "stale",
  },
  {
    name: "an equal time is stale",
    held: update("a", "5"),
    offered: update("a", "5"),
    result: "stale",
  },
  {
    name: "an equal time written differently (5.5 vs 5.50) is stale",
    held: update("a", "5.5"),
    offered: update("a", "5.50"),
    result: "stale",
  },
  {
    name: "an equal time is stale even when its AT line sorts higher",
    held: update("a", "5", "Campbell"),
    offered: update("a", "5", "Smith"),
    result: "stale",
  },
  {
    name: "an equal time is stale even when its AT line holds a higher byte",
    held: update("a", "5", "Hill", "+0.000000001"),
    offered: update("a", "5", "Hill\u00ff", "+0.000000001"),
    result: "stale",
  },
];

for (const { name, held, offered, result } of CLIENT_OFFERS) {
  Deno.test(`ClientStore.offer() from a client: ${name}`, () => {
    const store = new ClientStore({ clientsMax: CLIENTS_MAX });
    assert.equal(store.offer(held), "stored");
    assert.equal(store.offer(offered), result);
    const winner = result === "stored" ? offered : held;
    assert.equal(store.get("a")?.atLine, winner.atLine);
    assert.equal(store.lastSeq, result === "stored" ? 2 : 1);
  });
}

Deno.test("ClientStore.offer() stores a client's first IAMAT with no peer", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  const first = update("a", "5");
  assert.equal(store.offer(first), "stored");
  assert.deepEqual(fieldsOf(store.get("a")), { ...first, fromPeer: undefined, seq: 1 });
  assert.equal(store.size, 1);
});

// ---------------------------------------------------------------------------------------------
// Between servers: time, then AT line bytes

const PEER_OFFERS: Array<
  { name: string; held: ClientUpdate; offered: ClientUpdate; result: string }
> = [
  {
    name: "a later time is stored whatever its AT line",
    held: update("a", "5", "Smith"),
    offered: update("a", "6", "Campbell"),
    result: "stored",
  },
  {
    name: "an older time is dropped whatever its AT line",
    held: update("a", "6", "Campbell"),
    offered: update("a", "5", "Smith"),
    result: "stale",
  },
  {
    name: "an equal time with a higher AT line is stored",
    held: update("a", "5", "Campbell"),
    offered: update("a", "5", "Smith"),
    result: "stored",
  },
  {
    name: "an equal time with a lower AT line is dropped",
    held: update("a", "5", "Smith"),
    offered: update("a", "5", "Campbell"),
    result: "stale",
  },
  {
    name: "the identical update is dropped (stops the flood)",
    held: update("a", "5", "Smith"),
    offered: update("a", "5", "Smith"),
    result: "stale",
  },
  {
    name: "an equal time written differently with a higher AT line is stored",
    held: update("a", "5.5", "Hill"),
    offered: update("a", "5.50", "Hill"),
    result: "stored",
  },
  {
    name: "an AT line with a byte 0xff sorts above one with 0x7e",
    held: update("a", "5", "Hill~"),
    offered: update("a", "5", "Hill\u00ff"),
    result: "stored",
  },
  {
    name: "an AT line with a byte 0x7e sorts below one with 0xe9",
    held: update("a", "5", "Hill\u00e9"),
    offered: update("a", "5", "Hill~"),
    result: "stale",
  },
];

for (const { name, held, offered, result } of PEER_OFFERS) {
  Deno.test(`ClientStore.offer() from a peer: ${name}`, () => {
    const store = new ClientStore({ clientsMax: CLIENTS_MAX });
    assert.equal(store.offer(held, { fromPeer: "Jaquez" }), "stored");
    assert.equal(store.offer(offered, { fromPeer: "Singleton" }), result);
    const winner = result === "stored" ? offered : held;
    assert.equal(store.get("a")?.atLine, winner.atLine);
    assert.equal(store.get("a")?.fromPeer, result === "stored" ? "Singleton" : "Jaquez");
  });
}

Deno.test("compareUpdates() orders by time first, then by the AT line's bytes", () => {
  assert.ok(compareUpdates(update("a", "5", "Smith"), update("a", "6", "Campbell")) < 0);
  assert.ok(compareUpdates(update("a", "6", "Campbell"), update("a", "5", "Smith")) > 0);
  assert.ok(compareUpdates(update("a", "5", "Campbell"), update("a", "5", "Smith")) < 0);
  assert.ok(compareUpdates(update("a", "5", "Smith"), update("a", "5", "Campbell")) > 0);
  assert.equal(compareUpdates(update("a", "5", "Smith"), update("a", "5", "Smith")), 0);
  // 5.5 and 5.50 are equal times: the AT line decides, and "5.50" sorts after "5.5".
  assert.ok(compareUpdates(update("a", "5.5"), update("a", "5.50")) < 0);
});

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [
      item,
      ...rest,
    ])
  );
}

const CONVERGING_SETS: Array<{ name: string; updates: ClientUpdate[]; winner: number }> = [
  {
    name: "three equal-time updates from different origins",
    updates: [update("a", "5", "Hill"), update("a", "5", "Smith"), update("a", "5", "Campbell")],
    winner: 1,
  },
  {
    name: "three equal-time updates differing only in skew",
    updates: [
      update("a", "5", "Hill", "+0.000000003"),
      update("a", "5", "Hill", "-0.000000009"),
      update("a", "5", "Hill", "+0.000000001"),
    ],
    winner: 1, // "-" is byte 0x2d, above "+" (0x2b)
  },
  {
    name: "three equal times written differently",
    updates: [
      update("a", "5.5", "Hill"),
      update("a", "5.500", "Hill"),
      update("a", "5.50", "Hill"),
    ],
    winner: 1,
  },
  {
    name: "a later time beats higher AT lines",
    updates: [
      update("a", "5", "Smith"),
      update("a", "6", "Campbell"),
      update("a", "5", "Singleton"),
    ],
    winner: 1,
  },
];

for (const { name, updates, winner } of CONVERGING_SETS) {
  Deno.test(`ClientStore converges on one winner in every arrival order: ${name}`, () => {
    const orders = permutations(updates);
    assert.equal(orders.length, 6);
    for (const order of orders) {
      const store = new ClientStore({ clientsMax: CLIENTS_MAX });
      for (const [index, offered] of order.entries()) {
        store.offer(offered, { fromPeer: `peer${index}` });
      }
      assert.equal(
        store.get("a")?.atLine,
        updates[winner].atLine,
        order.map((u) => u.atLine).join(" | "),
      );
    }
  });
}

// ---------------------------------------------------------------------------------------------
// clientsMax

Deno.test("ClientStore.offer() is full for a new client past clientsMax", () => {
  const store = new ClientStore({ clientsMax: 2 });
  assert.equal(store.offer(update("a", "1")), "stored");
  assert.equal(store.offer(update("b", "1")), "stored");
  assert.equal(store.offer(update("c", "1")), "clientsMax");
  assert.equal(store.get("c"), undefined);
  assert.equal(store.size, 2);
  assert.equal(store.lastSeq, 2);
});

Deno.test("ClientStore.offer() still updates existing clients when full", () => {
  const store = new ClientStore({ clientsMax: 2 });
  store.offer(update("a", "1"));
  store.offer(update("b", "1"));
  assert.equal(store.offer(update("a", "2")), "stored");
  assert.equal(store.offer(update("b", "2", "Smith"), { fromPeer: "Smith" }), "stored");
  assert.equal(store.get("a")?.atLine, update("a", "2").atLine);
  assert.equal(store.get("b")?.atLine, update("b", "2", "Smith").atLine);
  assert.equal(store.size, 2);
});

Deno.test("ClientStore.offer() judges staleness before fullness for a held client", () => {
  const store = new ClientStore({ clientsMax: 1 });
  store.offer(update("a", "5"));
  assert.equal(store.offer(update("a", "4")), "stale");
  assert.equal(store.offer(update("b", "9")), "clientsMax");
});

Deno.test("ClientStore with clientsMax 1 holds one client", () => {
  const store = new ClientStore({ clientsMax: 1 });
  assert.equal(store.offer(update("only", "1")), "stored");
  assert.equal(store.offer(update("other", "1")), "clientsMax");
  assert.equal(store.size, 1);
});

Deno.test("ClientStore finds each of many clients, ids that are prefixes of others apart", () => {
  const clients = 20_000;
  const store = new ClientStore({ clientsMax: clients });
  // "c1", "c10", "c100", …: each id begins another, so only the whole field may match.
  const ids = Array.from({ length: clients }, (_, i) => `c${i}`);
  for (const id of ids) assert.equal(restoreText(store, update(id, "1").atLine), "stored");
  assert.equal(store.size, clients);
  for (const id of ids) assert.equal(store.get(id)?.clientId, id);
  for (const id of ["c", "c0 ", "c0 +1+1", `c${clients}`, "", "1"]) {
    assert.equal(store.get(id), undefined);
  }
  assert.equal(store.offer(update("c1", "2")), "stored");
  assert.equal(store.offer(update("c10", "1")), "stale");
  assert.equal(store.offer(update("new", "1")), "clientsMax");
  assert.equal(store.get("c1")?.atLine, update("c1", "2").atLine);
  assert.equal(store.size, clients);
});

// ---------------------------------------------------------------------------------------------
// storeBytesMax

Deno.test("ClientStore counts each client as twice its AT line and the fixed overhead", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  const a = update("a", "1");
  store.offer(a);
  assert.equal(store.bytes, 2 * a.atLine.length + STORED_CLIENT_OVERHEAD_BYTES);
  assert.equal(store.bytes, storedClientBytes(a));
  const longer = update("a", "2.123456789");
  store.offer(longer);
  assert.equal(store.bytes, storedClientBytes(longer), "a replaced line counts once");
  store.offer(update("a", "3"));
  assert.equal(store.bytes, storedClientBytes(update("a", "3")), "a shorter line frees bytes");
});

Deno.test("ClientStore.offer() refuses a new client that would pass storeBytesMax", () => {
  const one = storedClientBytes(update("a", "1"));
  const store = new ClientStore({ clientsMax: CLIENTS_MAX, storeBytesMax: 2 * one });
  assert.equal(store.offer(update("a", "1")), "stored");
  assert.equal(store.offer(update("b", "1"), { fromPeer: "Hill" }), "stored");
  assert.equal(store.bytes, 2 * one);
  assert.equal(store.offer(update("c", "1")), "storeBytesMax");
  assert.equal(store.offer(update("c", "1"), { fromPeer: "Hill" }), "storeBytesMax");
  assert.equal(store.get("c"), undefined);
  assert.equal(store.lastSeq, 2, "a refused update takes no sequence number");
  assert.equal(store.bytes, 2 * one);
  assert.equal(store.offer(update("a", "2")), "stored", "same-size updates still fit");
});

Deno.test("ClientStore.offer() refuses an update that grows a held line past storeBytesMax", () => {
  const store = new ClientStore({
    clientsMax: CLIENTS_MAX,
    storeBytesMax: storedClientBytes(update("a", "1")) + 2 * 3,
  });
  store.offer(update("a", "1"));
  assert.equal(store.offer(update("a", "2.12")), "stored", "3 bytes more (counted twice) fit");
  assert.equal(store.offer(update("a", "3.123")), "storeBytesMax");
  assert.equal(store.get("a")?.atLine, update("a", "2.12").atLine);
  assert.equal(store.offer(update("a", "4")), "stored", "a shorter line always fits");
});

// ---------------------------------------------------------------------------------------------
// Change sequence

Deno.test("ClientStore.lastSeq is 0 for an empty store and counts stored changes only", () => {
  const store = new ClientStore({ clientsMax: 2 });
  assert.equal(store.lastSeq, 0);
  store.offer(update("a", "5"));
  assert.equal(store.lastSeq, 1);
  store.offer(update("a", "5")); // stale
  store.offer(update("a", "4"), { fromPeer: "Hill" }); // stale
  assert.equal(store.lastSeq, 1);
  store.offer(update("b", "5"));
  store.offer(update("c", "5")); // full
  assert.equal(store.lastSeq, 2);
  store.offer(update("a", "6"), { fromPeer: "Smith" });
  assert.equal(store.lastSeq, 3);
});

Deno.test("ClientStore.changesAfter() returns only later changes, in change order", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  store.offer(update("a", "1"));
  store.offer(update("b", "1"));
  store.offer(update("c", "1"));
  assert.deepEqual(seqsOf(store, 0), [["a", 1], ["b", 2], ["c", 3]]);
  assert.deepEqual(seqsOf(store, 1), [["b", 2], ["c", 3]]);
  assert.deepEqual(seqsOf(store, 2), [["c", 3]]);
  assert.deepEqual(seqsOf(store, 3), []);
});

Deno.test("ClientStore.changesAfter(): a changed entry moves to the end with a new seq", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  store.offer(update("a", "1"));
  store.offer(update("b", "1"));
  store.offer(update("c", "1"));
  store.offer(update("a", "2"), { fromPeer: "Hill" });
  assert.deepEqual(seqsOf(store, 0), [["b", 2], ["c", 3], ["a", 4]]);
  assert.deepEqual(seqsOf(store, 3), [["a", 4]]);
  store.offer(update("b", "2"));
  assert.deepEqual(seqsOf(store, 0), [["c", 3], ["a", 4], ["b", 5]]);
  assert.deepEqual(seqsOf(store, 4), [["b", 5]]);
  assert.equal(store.lastSeq, 5);
});

Deno.test("ClientStore.changesAfter(): a stale offer does not move or renumber an entry", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  store.offer(update("a", "5"));
  store.offer(update("b", "5"));
  store.offer(update("a", "5"));
  store.offer(update("a", "1", "Smith"), { fromPeer: "Smith" });
  assert.deepEqual(seqsOf(store, 0), [["a", 1], ["b", 2]]);
  assert.deepEqual(seqsOf(store, 1), [["b", 2]]);
});

Deno.test("ClientStore.changesAfter() yields the stored update with its origin", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  const fromSmith = update("a", "5", "Smith");
  store.offer(fromSmith, { fromPeer: "Smith" });
  assert.deepEqual([...store.changesAfter(0)].map(fieldsOf), [
    { ...fromSmith, fromPeer: "Smith", seq: 1 },
  ]);
});

Deno.test("ClientStore: after many changes of few clients, changesAfter is still exact", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  const latestSeq = new Map<string, number>();
  // Far more changes than clients: stale journal entries are dropped along the way.
  for (let i = 1; i <= 20_000; i++) {
    const clientId = `c${(i * 7) % 30}`;
    assert.equal(store.offer(update(clientId, String(i)), undefined), "stored");
    latestSeq.set(clientId, store.lastSeq);
  }
  const expected = (afterSeq: number) =>
    [...latestSeq].filter(([, seq]) => seq > afterSeq).sort((a, b) => a[1] - b[1]);
  for (const afterSeq of [0, 1, 19_970, 19_990, 19_999, 20_000]) {
    assert.deepEqual(seqsOf(store, afterSeq), expected(afterSeq), `after ${afterSeq}`);
  }
});

Deno.test("ClientStore.changesAfter(): a walk meets changes made while it runs", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  for (let i = 0; i < 100; i++) store.offer(update(`c${i}`, "1"));
  const met = new Map<string, string>();
  let time = 2;
  let steps = 0;
  for (const stored of store.changesAfter(0)) {
    met.set(stored.clientId, stored.atLine);
    // The first steps change clients already met, often enough to drop stale journal entries.
    if (++steps > 50) continue;
    for (let k = 0; k < 30; k++) store.offer(update(`c${k % 10}`, String(time++)), undefined);
  }
  assert.ok(steps < 200, `${steps} steps`);
  assert.equal(met.size, 100);
  for (const [clientId, atLine] of met) assert.equal(atLine, store.get(clientId)!.atLine);
});

const TIME_ORDER: Array<[string, string, number]> = [
  ["5.5", "5.50", 0],
  ["5", "5.000000000", 0],
  ["005.1", "5.1", 0],
  ["0", "0.000000001", -1],
  ["10", "9.999999999", 1],
  ["1700000000.123456789", "1700000000.12345679", -1],
  ["99999999999999999999", "99999999999999999998.9", 1],
  ["1.2", "1.19", 1],
];

for (const [a, b, sign] of TIME_ORDER) {
  Deno.test(`compareTimeTexts() orders ${a} and ${b} as exact decimals`, () => {
    assert.equal(Math.sign(compareTimeTexts(a, b)), sign);
    assert.equal(Math.sign(compareTimeTexts(b, a)), sign === 0 ? 0 : -sign);
  });
}

Deno.test("ClientStore keeps any id of wire bytes exactly, quotes and control bytes included", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  const ids = [
    '"quoted"',
    "back\\slash",
    "\u0001\u001f\u007f",
    "\u00e9\u00ff\u00a0",
    "x".repeat(300),
  ];
  for (const id of ids) store.offer(update(id, "1"));
  for (const id of ids) assert.equal(store.get(id)?.clientId, id);
  assert.deepEqual([...store.changesAfter(0)].map((stored) => stored.clientId), ids);
});

// ---------------------------------------------------------------------------------------------
// Restoring from bytes

Deno.test("ClientStore.restore() copies the AT line out of the bytes it is given", () => {
  const stored: string[] = [];
  const store = new ClientStore({ clientsMax: CLIENTS_MAX, onStored: (line) => stored.push(line) });
  const a = update("a", "5").atLine;
  const bytes = Buffer.from(`junk ${a}\njunk`, "latin1");
  assert.equal(store.restore(bytes, 5, 5 + a.length), "stored");
  bytes.fill(0x7a);
  assert.deepEqual(fieldsOf(store.get("a")), {
    clientId: "a",
    atLine: a,
    fromPeer: undefined,
    seq: 1,
  });
  assert.deepEqual(stored, [], "a restored update is already on disk: onStored is not told");
});

Deno.test("ClientStore.restore() keeps the greatest update by the full order, as offer() between servers", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  assert.equal(restoreText(store, update("a", "5", "Smith").atLine), "stored");
  assert.equal(restoreText(store, update("a", "4", "Smith").atLine), "stale");
  assert.equal(restoreText(store, update("a", "5", "Campbell").atLine), "stale");
  assert.equal(restoreText(store, update("a", "5", "Zed").atLine), "stored");
  assert.equal(store.get("a")?.atLine, update("a", "5", "Zed").atLine);
  assert.equal(store.size, 1);
});

Deno.test("ClientStore.restore() refuses past clientsMax and storeBytesMax like offer()", () => {
  const one = storedClientBytes(update("a", "1"));
  const store = new ClientStore({ clientsMax: 2, storeBytesMax: one + 1 });
  assert.equal(restoreText(store, update("a", "1").atLine), "stored");
  assert.equal(restoreText(store, update("b", "1").atLine), "storeBytesMax");
  assert.equal(new ClientStore({ clientsMax: 1 }).restore(Buffer.from("x"), 0, 0), "stored");
});

Deno.test("ClientStore.reserve() makes room without changing what is held", () => {
  const store = new ClientStore({ clientsMax: 10_000 });
  store.offer(update("a", "1"));
  store.reserve({ clients: 5000 });
  assert.ok(store.clientRoom >= 5001, `room for ${store.clientRoom}`);
  for (let i = 0; i < 5000; i++) restoreText(store, update(`c${i}`, "1").atLine);
  assert.equal(store.size, 5001);
  assert.ok(store.clientRoom < 2 * 5001, "the arrays grew again past what was reserved");
  assert.equal(store.get("a")?.atLine, update("a", "1").atLine);
  assert.equal(store.get("c4999")?.seq, 5001);
});

Deno.test("ClientStore.reserve() makes no more room than clientsMax lets in", () => {
  const store = new ClientStore({ clientsMax: 2000 });
  store.reserve({ clients: 10_000_000 });
  assert.ok(store.clientRoom <= 2048, `room for ${store.clientRoom}`);
});

// ---------------------------------------------------------------------------------------------
// The arena of AT lines: garbage of replaced lines stays bounded

/** A line of `clientId` at `time` whose length is set by a location of `digits` decimals. */
function lineOfLength(clientId: string, time: number, digits: number): ClientUpdate {
  return {
    clientId,
    atLine: `AT Hill +0.000000001 ${clientId} +1.${"5".repeat(digits)}+1 ${time}`,
  };
}

Deno.test("ClientStore: one client replaced many times with lines of varying length leaves bounded garbage", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  let appendedBytes = 0;
  for (let time = 1; time <= 20_000; time++) {
    const line = lineOfLength("hot", time, (time * 7919) % 1500);
    assert.equal(store.offer(line), "stored");
    appendedBytes += line.atLine.length;
  }
  assert.ok(appendedBytes > 10 * 1024 * 1024, "lines written add up to far more than the bound");
  // Live: one line. Bound: garbage at most 1 MiB (the floor) before it is compacted, and a
  // capacity at most double what was ever written.
  assert.ok(store.arenaBytes <= 4 * 1024 * 1024, `arena ${store.arenaBytes} bytes`);
  assert.equal(
    store.get("hot")?.atLine,
    lineOfLength("hot", 20_000, (20_000 * 7919) % 1500).atLine,
  );
});

Deno.test("ClientStore: clients whose new lines are as long as their last are updated in place, the arena never growing", () => {
  const clients = 1000;
  const store = new ClientStore({ clientsMax: clients });
  for (let client = 0; client < clients; client++) {
    store.offer(lineOfLength(`c${client}`, 1_000_000, 40));
  }
  const arenaBytes = store.arenaBytes;
  // 100 rounds of one more update per client: ~7 MB of lines, 7 times the first arena.
  for (let time = 1_000_001; time <= 1_000_100; time++) {
    for (let client = 0; client < clients; client++) {
      assert.equal(store.offer(lineOfLength(`c${client}`, time, 40)), "stored");
    }
  }
  assert.equal(store.arenaBytes, arenaBytes);
  assert.equal(store.get("c999")?.atLine, lineOfLength("c999", 1_000_100, 40).atLine);
  assert.equal(store.get("c0")?.seq, clients * 101 - (clients - 1));
  // A line that needs more room moves to the end of the arena; the next one as long stays there.
  store.offer(lineOfLength("c0", 2_000_000, 100));
  store.offer(lineOfLength("c0", 2_000_001, 100));
  assert.equal(store.get("c0")?.atLine, lineOfLength("c0", 2_000_001, 100).atLine);
  assert.deepEqual(
    [...store.atLines()].slice(-1),
    [lineOfLength("c0", 2_000_001, 100).atLine],
  );
});

Deno.test("ClientStore: many clients replaced with lines of varying length keep every latest line through compactions", () => {
  const clients = 2000;
  const store = new ClientStore({ clientsMax: clients });
  const latest = new Map<string, string>();
  let liveBytesMax = 0;
  for (let round = 1; round <= 30; round++) {
    // A different order each round, and a third left alone: live and dead records interleave.
    for (let i = 0; i < clients; i++) {
      const client = (i * 733 + round * 101) % clients;
      if ((client + round) % 3 === 0 && round > 1) continue;
      const line = lineOfLength(`c${client}`, round, (client * round * 31) % 700);
      assert.equal(store.offer(line), "stored");
      latest.set(line.clientId, line.atLine);
    }
    const liveBytes = [...latest.values()].reduce((sum, line) => sum + line.length + 8, 0);
    liveBytesMax = Math.max(liveBytesMax, liveBytes);
  }
  for (const [clientId, atLine] of latest) assert.equal(store.get(clientId)?.atLine, atLine);
  assert.deepEqual([...store.atLines()].sort(), [...latest.values()].sort());
  // Written at most: the live records, a third more of garbage, and the 1 MiB floor; the
  // capacity at most double that. Without compaction it would be all 30 rounds (~21 MB).
  const boundBytes = 2 * ((4 / 3) * liveBytesMax + 1024 * 1024);
  assert.ok(store.arenaBytes <= boundBytes, `arena ${store.arenaBytes} > ${boundBytes}`);
});

Deno.test("ClientStore: across many arena blocks, replaced lines of every length keep the latest of each client, within the bound", () => {
  const clients = 20_000;
  const store = new ClientStore({ clientsMax: clients });
  const latest = new Map<string, string>();
  let arenaBytesMax = 0;
  let liveBytesMax = 0;
  for (let round = 1; round <= 8; round++) {
    for (let i = 0; i < clients; i++) {
      const client = (i * 7919 + round * 13) % clients;
      const line = lineOfLength(`c${client}`, round, (client * round * 97) % 500);
      assert.equal(store.offer(line), "stored");
      latest.set(line.clientId, line.atLine);
    }
    const liveBytes = [...latest.values()].reduce((sum, line) => sum + line.length + 16, 0);
    liveBytesMax = Math.max(liveBytesMax, liveBytes);
    arenaBytesMax = Math.max(arenaBytesMax, store.arenaBytes);
  }
  for (const [clientId, atLine] of latest) assert.equal(store.get(clientId)?.atLine, atLine);
  assert.equal(store.size, clients);
  // 4/3 of the live records, 1 MiB of garbage and the block appended to, one block of slack.
  const boundBytes = (4 / 3) * liveBytesMax + 3 * 1024 * 1024;
  assert.ok(liveBytesMax > 4 * 1024 * 1024, "the records span several blocks");
  assert.ok(arenaBytesMax <= boundBytes, `arena ${arenaBytesMax} > ${boundBytes}`);
});

Deno.test("ClientStore: a walk of changes in progress reads the right lines across a compaction", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  for (let client = 0; client < 100; client++) store.offer(lineOfLength(`c${client}`, 1, 10));
  const walk = store.changesAfter(0);
  const seen = [walk.next().value!.atLine];
  // Replacements enough to compact (past the 1 MiB floor) while the walk is paused.
  for (let time = 2; time < 3000; time++) store.offer(lineOfLength("c99", time, 500));
  for (const update of walk) seen.push(update.atLine);
  assert.equal(seen[0], lineOfLength("c0", 1, 10).atLine);
  assert.deepEqual(
    seen.slice(1, 99),
    Array.from({ length: 98 }, (_, i) => lineOfLength(`c${i + 1}`, 1, 10).atLine),
  );
  assert.equal(seen.at(-1), lineOfLength("c99", 2999, 500).atLine);
  assert.equal(seen.length, 100);
});

Deno.test("ClientStore holds an id longer than its lookup buffer (64 KiB) and the biggest numbers", () => {
  const store = new ClientStore({ clientsMax: CLIENTS_MAX });
  const id = "i".repeat(100_000);
  const nines = "9".repeat(50_000);
  const held = {
    clientId: id,
    atLine: `AT Hill -${nines}.999999999 ${id} -90+180 ${nines}.999999999`,
  };
  assert.equal(store.offer(held), "stored");
  assert.equal(store.get(id)?.atLine, held.atLine);
  assert.equal(store.get(id.slice(1)), undefined);
  const later = { clientId: id, atLine: `AT Hill -${nines}.999999999 ${id} -90+180 1${nines}` };
  assert.equal(store.offer(later), "stored");
  assert.equal(store.offer(held), "stale");
  assert.equal(store.get(id)?.atLine, later.atLine);
});
