/**
 * The offline provider's WHATSAT JSON for a few fixed queries, byte for byte as recorded
 * before the loader and the lookup path were reworked for speed and memory
 * (offline_fixed_replies.json): ranking, ties, bound, names with non-ASCII letters and
 * ZERO_RESULTS must not drift while the code under them changes.
 */

import assert from "node:assert/strict";
import { loadOfflineProvider } from "../../lib/places/offline.ts";
import { formatPlacesBody } from "../../lib/protocol.ts";

interface FixedReply {
  query: { latitude: number; longitude: number; radiusMetres: number };
  bound: number;
  reply: string;
}

const FIXED_REPLIES: FixedReply[] = JSON.parse(
  await Deno.readTextFile(new URL("./offline_fixed_replies.json", import.meta.url)),
);

Deno.test("offline WHATSAT JSON for fixed queries is byte-identical to the recorded replies", async () => {
  const places = await loadOfflineProvider();
  for (const { query, bound, reply } of FIXED_REPLIES) {
    const body = await places.lookup(query, new AbortController().signal);
    assert.equal(formatPlacesBody(body, bound), reply, JSON.stringify(query));
  }
});

Deno.test("offline WHATSAT JSON is the same on the second ask (cached formatting included)", async () => {
  const places = await loadOfflineProvider();
  for (let round = 0; round < 2; round++) {
    for (const { query, bound, reply } of FIXED_REPLIES) {
      const body = await places.lookup(query, new AbortController().signal);
      assert.equal(formatPlacesBody(body, bound), reply, JSON.stringify(query));
    }
  }
});
