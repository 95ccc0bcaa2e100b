import assert from "node:assert/strict";
import { backoffDelayMs } from "../lib/backoff.ts";

Deno.test("backoffDelayMs() doubles from 100 ms, caps at 1000 ms, and jitters in the upper half", () => {
  const table: Array<[number, number, number]> = [
    [1, 0, 50],
    [1, 0.999999, 99.99995],
    [2, 0, 100],
    [2, 0.5, 150],
    [3, 0.5, 300],
    [4, 0.5, 600],
    [5, 0, 500],
    [5, 0.5, 750],
    [9, 0.5, 750],
    [40, 1, 1000],
  ];
  for (const [retry, random, expectedMs] of table) {
    assert.ok(
      Math.abs(backoffDelayMs(retry, random, { firstMs: 100, maxMs: 1000 }) - expectedMs) < 1e-6,
      `retry ${retry} random ${random}: ${
        backoffDelayMs(retry, random, { firstMs: 100, maxMs: 1000 })
      } ms, not ${expectedMs}`,
    );
  }
});

Deno.test("backoffDelayMs() never waits past maxMs, however many retries, and clamps random", () => {
  const options = { firstMs: 50, maxMs: 2000 };
  assert.equal(backoffDelayMs(1_000_000, 1, options), 2000);
  assert.equal(backoffDelayMs(Number.MAX_SAFE_INTEGER, 0, options), 1000);
  assert.equal(backoffDelayMs(1, 7, options), 50);
  assert.equal(backoffDelayMs(1, -3, options), 25);
  assert.equal(backoffDelayMs(0, 1, options), 50);
});
