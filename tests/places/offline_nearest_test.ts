/**
 * nearestPlaces() against the search it replaced — geokdbush's `around` over a kdbush index
 * of the same places, fetching more while a tie straddles the cut — on the real data set,
 * for query points at places (exact ties at distance 0), near them, at random, near the
 * poles and across the antimeridian.
 */

import assert from "node:assert/strict";
import KDBush from "kdbush";
import { around } from "geokdbush";
import { defaultOfflineDataUrl } from "../../lib/places/offline.ts";
import { distanceKmFromHaversine, nearestPlaces } from "../../lib/places/offline_nearest.ts";
import { loadColumns } from "../../lib/places/offline_columns.ts";

const RADIANS_PER_DEGREE = Math.PI / 180;
const COUNT_MAX = 20;

const columns = await loadColumns(new URL(defaultOfflineDataUrl()));
/** [longitude, latitude] by place number. */
const locations: number[][] = [];
for (let position = 0; position < columns.count; position++) {
  locations[columns.ids[position]] = [
    columns.coords[2 * position],
    columns.coords[2 * position + 1],
  ];
}
const index = new KDBush(columns.count, 64, Float64Array);
for (const [longitude, latitude] of locations) index.add(longitude, latitude);
index.finish();

/** Equal distances by a fixed scramble of place numbers, not their order. */
const tieOrder = (place1: number, place2: number) =>
  (Math.imul(place1, 2654435761) >>> 0) - (Math.imul(place2, 2654435761) >>> 0);

function haverSin(angleRadians: number): number {
  const s = Math.sin(angleRadians / 2);
  return s * s;
}

/** The replaced search, as offline.ts had it. */
function reference(latitude: number, longitude: number, radiusKm: number): number[][] {
  const cosLatitude = Math.cos(latitude * RADIANS_PER_DEGREE);
  for (let wanted = COUNT_MAX + 1;; wanted *= 2) {
    const places: number[] = around(index, longitude, latitude, wanted, radiusKm);
    const found: number[][] = [];
    for (const place of places) {
      const [placeLongitude, placeLatitude] = locations[place];
      const distanceKm = distanceKmFromHaversine(
        cosLatitude * Math.cos(placeLatitude * RADIANS_PER_DEGREE) *
            haverSin((longitude - placeLongitude) * RADIANS_PER_DEGREE) +
          haverSin((latitude - placeLatitude) * RADIANS_PER_DEGREE),
      );
      if (distanceKm > radiusKm) break;
      found.push([place, distanceKm]);
    }
    const complete = places.length < wanted || found.length < places.length ||
      found[found.length - 1][1] > found[COUNT_MAX - 1][1];
    if (!complete) continue;
    found.sort((a, b) => a[1] - b[1] || tieOrder(a[0], b[0]));
    return found.slice(0, COUNT_MAX);
  }
}

function search(latitude: number, longitude: number, radiusKm: number): number[][] {
  const { positions, distancesKm } = nearestPlaces(
    columns,
    latitude,
    longitude,
    radiusKm,
    COUNT_MAX,
    (position1, position2) => tieOrder(columns.ids[position1], columns.ids[position2]),
  );
  return positions.map((position, i) => [columns.ids[position], distancesKm[i]]);
}

Deno.test("nearestPlaces() finds what geokdbush's around finds, in the same order", () => {
  let state = 12345;
  const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const radiiKm = [0.05, 1, 2.5, 10, 25, 50];
  let full = 0;
  for (let i = 0; i < 3000; i++) {
    const [placeLongitude, placeLatitude] = locations[Math.floor(random() * columns.count)];
    let latitude = placeLatitude;
    let longitude = placeLongitude;
    if (i % 3 === 1) {
      latitude = Math.max(-90, Math.min(90, latitude + (random() - 0.5) * 0.2));
      longitude = Math.max(-180, Math.min(180, longitude + (random() - 0.5) * 0.2));
    } else if (i % 3 === 2) {
      latitude = i % 2 ? random() * 180 - 90 : (random() < 0.5 ? -1 : 1) * (80 + 10 * random());
      longitude = i % 5 ? random() * 360 - 180 : (random() < 0.5 ? -1 : 1) * (179.5 + random() / 2);
    }
    const radiusKm = radiiKm[i % radiiKm.length];
    const found = search(latitude, longitude, radiusKm);
    if (found.length === COUNT_MAX) full++;
    assert.deepEqual(found, reference(latitude, longitude, radiusKm), `${latitude} ${longitude}`);
  }
  assert.ok(full > 300, `${full} searches filled all ${COUNT_MAX} places`);
});

Deno.test("nearestPlaces() over no places finds none", () => {
  const empty = { ids: new Uint32Array(0), coords: new Float64Array(0), nodeSize: 64 };
  assert.deepEqual(nearestPlaces(empty, 0, 0, 50, COUNT_MAX, tieOrder), {
    positions: [],
    distancesKm: [],
  });
});
