import assert from "node:assert/strict";
import KDBush from "kdbush";
import { KdSort } from "../../lib/places/offline_kdsort.ts";

/** A deterministic pseudo-random stream, so a failure can be replayed. */
function randomStream(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

function indexWith(points: number[][]): KDBush {
  const index = new KDBush(points.length, 16, Float64Array);
  for (const [x, y] of points) index.add(x, y);
  return index;
}

Deno.test("KdSort in small steps leaves exactly the layout of kdbush's finish()", () => {
  const random = randomStream(7);
  // Clustered and repeated points, like real places, with many equal coordinates.
  const points = Array.from(
    { length: 20_000 },
    (_, i) =>
      i % 5 === 0
        ? [Math.round(random() * 20), Math.round(random() * 10)]
        : [random() * 360 - 180, random() * 180 - 90],
  );
  const expected = indexWith(points).finish();
  const stepped = indexWith(points);
  const sort = new KdSort(stepped.ids, stepped.coords as Float64Array, points.length, 16);
  let steps = 1;
  while (!sort.step(0)) steps++;
  assert.ok(steps > 100, `${steps} steps`);
  assert.deepEqual(new Uint8Array(stepped.data), new Uint8Array(expected.data));
  const loaded = KDBush.from(stepped.data);
  assert.deepEqual(loaded.range(0, 0, 10, 5).sort(), expected.range(0, 0, 10, 5).sort());
});

Deno.test("KdSort of no items or fewer than a node's size is done at once", () => {
  for (const count of [0, 1, 16]) {
    const index = indexWith(Array.from({ length: count }, (_, i) => [i, -i]));
    assert.equal(new KdSort(index.ids, index.coords as Float64Array, count, 16).step(0), true);
  }
});
