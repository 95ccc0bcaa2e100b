/**
 * The answer cache: what it keeps is returned as kept, its bytes never pass the bound, the
 * oldest entries go first, and a body past the bound alone is not kept at all.
 */
import assert from "node:assert/strict";
import { AnswerCache } from "../../lib/places/answer_cache.ts";

/** A body of `bytes` bytes, each `fill`. */
function body(bytes: number, fill = 1): string {
  return String.fromCharCode(fill).repeat(bytes);
}

Deno.test("a kept body is returned for its key, and nothing for another", () => {
  const cache = new AnswerCache({ bytesMax: 10_000 });
  cache.set("a|10|20", body(100, 7));
  assert.deepEqual(cache.get("a|10|20"), body(100, 7));
  assert.equal(cache.get("a|10|19"), undefined);
  assert.equal(cache.size, 1);
});

Deno.test("the bytes held never pass bytesMax; the oldest entries are dropped first", () => {
  const cache = new AnswerCache({ bytesMax: 5_000 });
  for (let index = 0; index < 200; index++) {
    cache.set(`key ${index}`, body(100 + (index % 7) * 50));
    assert.ok(cache.bytes <= 5_000, `${cache.bytes} bytes after ${index + 1} entries`);
  }
  assert.ok(cache.size > 1 && cache.size < 200, `${cache.size} entries`);
  assert.notEqual(cache.get("key 199"), undefined, "the newest was dropped");
  assert.equal(cache.get("key 0"), undefined, "the oldest was kept");
  // What is kept is a run of the newest.
  const kept = Array.from({ length: 200 }, (_, index) => cache.get(`key ${index}`) !== undefined);
  assert.equal(kept.indexOf(true), 200 - cache.size);
});

Deno.test("a body past bytesMax on its own is not kept, and drops nothing", () => {
  const cache = new AnswerCache({ bytesMax: 1_000 });
  cache.set("small", body(100));
  cache.set("huge", body(1_000));
  assert.equal(cache.get("huge"), undefined);
  assert.notEqual(cache.get("small"), undefined);
});

Deno.test("keeping a key again changes nothing", () => {
  const cache = new AnswerCache({ bytesMax: 10_000 });
  cache.set("a", body(100, 1));
  const bytes = cache.bytes;
  cache.set("a", body(300, 2));
  assert.deepEqual(cache.get("a"), body(100, 1));
  assert.equal(cache.bytes, bytes);
});
