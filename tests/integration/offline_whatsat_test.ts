/**
 * WHATSAT with the offline provider (no Google key) against a real server process: places
 * within the radius, at most `bound`, nearest first, the result shape of contract §4, and
 * ZERO_RESULTS far from land.
 */
import assert from "node:assert/strict";
import { startHerd } from "../support/herd_processes.ts";
import { type PlacesBodyJson, WireClient } from "../support/wire_client.ts";

const EARTH_RADIUS_KM = 6371.0088;
/** Rounding of coordinates and of the Earth's radius between implementations. */
const DISTANCE_SLACK_KM = 0.05;

interface LatLng {
  lat: number;
  lng: number;
}

function greatCircleKm(a: LatLng, b: LatLng): number {
  const radians = Math.PI / 180;
  const dLat = (b.lat - a.lat) * radians;
  const dLng = (b.lng - a.lng) * radians;
  const h = Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * radians) * Math.cos(b.lat * radians) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

function locationOf(result: Record<string, unknown>): LatLng {
  const geometry = result.geometry as { location?: LatLng } | undefined;
  const location = geometry?.location;
  assert.ok(
    location && typeof location.lat === "number" && typeof location.lng === "number",
    `result without geometry.location: ${JSON.stringify(result)}`,
  );
  return location;
}

/** Checks every contract rule of an OK offline body around `centre`. */
function assertOfflineBody(body: PlacesBodyJson, centre: LatLng, radiusKm: number, bound: number) {
  assert.equal(body.status, "OK");
  assert.ok(body.results.length >= 1 && body.results.length <= bound, `${body.results.length}`);
  assert.ok(body.html_attributions.length > 0, "offline answers name their source");
  assert.match(JSON.stringify(body.html_attributions), /geonames/i);
  let previousKm = 0;
  for (const result of body.results) {
    const km = greatCircleKm(centre, locationOf(result));
    assert.ok(
      km <= radiusKm + DISTANCE_SLACK_KM,
      `${result.name} is ${km} km away, radius ${radiusKm}`,
    );
    assert.ok(km + DISTANCE_SLACK_KM >= previousKm, `${result.name} is out of distance order`);
    previousKm = km;
    assert.equal(typeof result.name, "string");
    assert.match(String(result.place_id), /^geonames:[0-9a-f]{16}$/);
    assert.match(String(result.vicinity), /^[^,]*, [A-Z]{2}$/);
    assert.deepEqual(result.types, ["locality", "political"]);
  }
}

Deno.test("offline WHATSAT: nearest places within the radius, cut to the bound", async (t) => {
  await using herd = await startHerd({ names: ["Smith"], links: [] });
  assert.match(
    herd.process("Smith").stdout,
    /\(places: offline, /,
    "auto without a key is offline",
  );
  await using client = await WireClient.connect(herd.port("Smith"));
  const ucla = { lat: 34.06893, lng: -118.445127 };
  await client.write("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1700000000.5\n");
  const at = await client.readAtReply();

  await t.step("results are within the radius, nearest first, at most bound", async () => {
    for (const [radiusKm, bound] of [[10, 5], [50, 20], [2.5, 20], [0.5, 1]] as const) {
      await client.write(`WHATSAT kiwi.cs.ucla.edu ${radiusKm} ${bound}\n`);
      const reply = await client.readWhatsatReply({ timeoutMs: 10_000 });
      assert.equal(reply.atLine, at);
      if (reply.body.status === "ZERO_RESULTS") {
        assert.ok(radiusKm < 3, `ZERO_RESULTS for ${radiusKm} km around UCLA`);
        continue;
      }
      assertOfflineBody(reply.body, ucla, radiusKm, bound);
      if (radiusKm === 50) assert.equal(reply.body.results.length, 20, "Los Angeles has 20+");
    }
  });

  await t.step("a smaller bound gives a prefix of the larger one's results", async () => {
    await client.write("WHATSAT kiwi.cs.ucla.edu 30 20\nWHATSAT kiwi.cs.ucla.edu 30 3\n");
    const all = await client.readWhatsatReply();
    const three = await client.readWhatsatReply();
    assert.deepEqual(three.body.results, all.body.results.slice(0, 3));
    assert.deepEqual(three.body.html_attributions, all.body.html_attributions);
  });

  await t.step("the reply is AT line, one JSON line, empty line — nothing more", async () => {
    await client.write("WHATSAT kiwi.cs.ucla.edu 20 7\nIAMAT after +1+1 1\n");
    const reply = await client.readWhatsatReply();
    assert.equal(reply.raw, `${at}\n${reply.bodyText}\n\n`);
    assert.ok(!reply.bodyText.includes("\n"), "the body holds no newline");
    assert.match(await client.readLine(), /^AT Smith \S+ after \+1\+1 1$/, "nothing between");
  });

  await t.step("the middle of the Pacific has ZERO_RESULTS", async () => {
    await client.write("IAMAT pacific -30.0-140.0 1700000001\nWHATSAT pacific 50 20\n");
    await client.readAtReply();
    const reply = await client.readWhatsatReply();
    assert.equal(reply.body.status, "ZERO_RESULTS");
    assert.deepEqual(reply.body.results, []);
    assert.ok(reply.raw.endsWith("}\n\n"));
  });

  await t.step("the poles and the date line are answered", async () => {
    const edges = ["+90+180", "-90-180", "+00-180", "+64.1-21.9"];
    for (const [index, location] of edges.entries()) {
      // Each IAMAT is newer than the one before, so it replaces the stored location.
      await client.write(`IAMAT edge ${location} ${1700000002 + index}\nWHATSAT edge 50 20\n`);
      const edgeAt = await client.readAtReply();
      const reply = await client.readWhatsatReply();
      assert.equal(reply.atLine, edgeAt);
      assert.ok(
        ["OK", "ZERO_RESULTS"].includes(reply.body.status),
        `${location}: ${reply.body.status}`,
      );
    }
    // The last one is Reykjavik: it has places.
    await client.write("WHATSAT edge 10 5\n");
    assertOfflineBody((await client.readWhatsatReply()).body, { lat: 64.1, lng: -21.9 }, 10, 5);
  });
});
