import assert from "node:assert/strict";
import { SlotIndex } from "../lib/slot_index.ts";
import { NumberChunks } from "../lib/number_chunks.ts";

/** An index of string keys kept in `keys` by slot, with the hash the caller chooses. */
function indexOf(keys: string[]): SlotIndex<string> {
  return new SlotIndex<string>({ matches: (slot, key) => keys[slot] === key });
}

/** Adds `key` unless held; returns its slot. */
function put(index: SlotIndex<string>, keys: string[], key: string, hash: number): number {
  const found = index.find(hash, key);
  if (found >= 0) return found;
  const slot = index.add(hash, -1 - found);
  keys[slot] = key;
  return slot;
}

Deno.test("SlotIndex finds every key through its doublings, each one's slot the order it came in", () => {
  const keys: string[] = [];
  const index = indexOf(keys);
  // Few distinct hashes: long probe runs, and equal hashes told apart by `matches`.
  const hashOf = (n: number) => (n % 37) * 0x9e3779b1; // not a 32-bit integer: the index makes it one
  const count = 20_000;
  for (let n = 0; n < count; n++) {
    assert.equal(put(index, keys, `k${n}`, hashOf(n)), n);
    // While a doubling is under way, keys in the old table and the new are all found: the
    // latest are the last to move, the lowest moved first.
    for (let m = n; m >= 0 && m > n - 8; m--) assert.equal(index.find(hashOf(m), `k${m}`), m);
    if (n % 97 === 0) {
      for (let m = 0; m <= n; m += 13) assert.equal(index.find(hashOf(m), `k${m}`), m);
    }
  }
  assert.equal(index.size, count);
  for (let n = 0; n < count; n++) assert.equal(index.find(hashOf(n), `k${n}`), n);
  assert.ok(index.find(hashOf(1), "absent") < 0, "a key never added is not found");
  assert.ok(index.room >= count, `room ${index.room}`);
});

Deno.test("SlotIndex with random hashes: a key added twice keeps its one slot", () => {
  const keys: string[] = [];
  const index = indexOf(keys);
  const hashes = new Map<string, number>();
  const hashOf = (key: string) => {
    if (!hashes.has(key)) hashes.set(key, (Math.random() * 2 ** 32) | 0);
    return hashes.get(key)!;
  };
  for (let round = 0; round < 3; round++) {
    for (let n = 0; n < 5000; n++) put(index, keys, `k${n}`, hashOf(`k${n}`));
  }
  assert.equal(index.size, 5000);
  assert.deepEqual(new Set(keys).size, 5000);
});

Deno.test("SlotIndex.reserve() sizes the table once, also in the middle of a doubling", () => {
  const keys: string[] = [];
  const index = indexOf(keys);
  // 513 additions start a doubling of the first table (1024 entries); no lookup moves it on.
  for (let n = 0; n < 513; n++) put(index, keys, `k${n}`, n * 7919);
  index.reserve(100_000);
  const room = index.room;
  assert.ok(room >= 100_000, `room ${room}`);
  for (let n = 513; n < 100_000; n++) put(index, keys, `k${n}`, n * 7919);
  assert.equal(index.room, room, "no doubling after the reservation");
  for (let n = 0; n < 100_000; n += 7) assert.equal(index.find(n * 7919, `k${n}`), n);
});

Deno.test("NumberChunks holds numbers past one chunk, zero until written, of its array's kind", () => {
  const numbers = new NumberChunks((length) => new Uint16Array(length));
  assert.equal(numbers.capacity, 0);
  numbers.reserve(70_000);
  assert.ok(numbers.capacity >= 70_000);
  const capacity = numbers.capacity;
  numbers.reserve(10);
  assert.equal(numbers.capacity, capacity, "a reservation within the room adds nothing");
  for (let index = 0; index < 70_000; index += 3) numbers.set(index, index);
  for (let index = 0; index < 70_000; index++) {
    assert.equal(numbers.at(index), index % 3 === 0 ? index & 0xffff : 0);
  }
});
