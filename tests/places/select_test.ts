import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { DEFAULT_LIMITS } from "../../lib/config.ts";
import { Counters } from "../../lib/counters.ts";
import { PLACES_STATUSES, placesStatusLabel } from "../../lib/places/provider.ts";
import { createPlacesProvider } from "../../lib/places/select.ts";
import { startFakePlaces } from "../fake_places.ts";

Deno.test("placesStatusLabel() keeps the six Places statuses and calls anything else other", () => {
  assert.equal(PLACES_STATUSES.length, 6);
  for (const status of PLACES_STATUSES) assert.equal(placesStatusLabel(status), status);
  for (const status of ["", "ok", "NOT_FOUND", "OK ", "toString", "__proto__", "A\nB"]) {
    assert.equal(placesStatusLabel(status), "other", JSON.stringify(status));
  }
});

Deno.test("an upstream status outside the fixed set is counted as places_status_other", async () => {
  await using fake = await startFakePlaces();
  const counters = new Counters();
  const provider = createPlacesProvider("google", {
    apiKey: "test-key",
    baseUrl: fake.url,
    fieldTier: "pro",
    limits: DEFAULT_LIMITS,
    logger: getLogger(["herd", "test"]),
    counters,
  });
  const weirdStatus = "WEIRD_STATUS_FROM_UPSTREAM";
  fake.enqueue({ kind: "json", body: { html_attributions: [], results: [], status: weirdStatus } });
  const query = { latitude: 34.06893, longitude: -118.445127, radiusMetres: 1000 };
  await provider.lookup(query, AbortSignal.timeout(5000));
  assert.equal(counters.get("places_status_other"), 1);
  assert.ok(!counters.format().includes(weirdStatus), counters.format());
});
