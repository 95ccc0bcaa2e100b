/**
 * A fake Google Places server for tests, on 127.0.0.1 (port 0 unless told): it speaks the
 * legacy `GET /maps/api/place/nearbysearch/json` and the New `POST /v1/places:searchNearby`,
 * checks what a real one would (key, field mask, body), records every request, and answers
 * each one as programmed — a queue of behaviours, then a default. Nothing here ever talks to
 * Google. Providers are pointed at it with `baseUrl` / `--places-url`.
 *
 * Owns: both APIs' wire shapes as Google sends them (generated, deterministic places) and
 * the misbehaviours tests need (delays, 5xx, 429, garbage, resets, key echoes). Must not
 * know: herd, its providers or its legacy mapping.
 *
 * Standalone, for manual checks: `deno run -A tests/fake_places.ts [--port N] [--default SPEC]`
 * prints its URL and one line per request (key redacted); SPEC is `places`, `places:N`,
 * `status:CODE`, `garbage`, `not-places`, `reset`, `echo-key` or `delay:MS`.
 */
import { sleep } from "../lib/abortable.ts";

/** Which API a request was for, by method and path. */
export type FakeApi = "legacy" | "new" | "unknown";

/** One request as the fake received it. */
export interface FakeRequest {
  api: FakeApi;
  method: string;
  path: string;
  /** Query parameters (the last value of each). */
  query: Record<string, string>;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The body parsed as JSON; its text when it is not JSON; `undefined` when empty. */
  body: unknown;
  /** `performance.now()` when the request arrived. */
  atMs: number;
}

/** How the fake answers one request. */
export type FakeBehaviour =
  /** A realistic answer in the request's API shape: `count` places (default 20) around its point. */
  | { kind: "places"; count?: number }
  /** This JSON, with this HTTP status (default 200) and extra headers. */
  | { kind: "json"; body: unknown; httpStatus?: number; headers?: Record<string, string> }
  /** This text (default content type text/html), with this HTTP status (default 200). */
  | {
    kind: "text";
    body: string;
    httpStatus?: number;
    contentType?: string;
    headers?: Record<string, string>;
  }
  /** The API's own error for an HTTP status: an HTML page (legacy) or `{"error": …}` (New). */
  | { kind: "status"; httpStatus: number }
  /** Non-JSON text with HTTP 200. */
  | { kind: "garbage" }
  /** JSON with HTTP 200 that is not a Places answer in either API. */
  | { kind: "not-places" }
  /** Headers promising a body, then the connection drops: the client's read fails. */
  | { kind: "reset" }
  /** The API's "bad key" error quoting the key it was sent (to test redaction). */
  | { kind: "echo-key" }
  /** Waits `delayMs` (cut short when the fake closes), then answers as `then` (default places). */
  | { kind: "delay"; delayMs: number; then?: FakeBehaviour };

/** Picks a behaviour per request; `undefined` means the built-in `places` answer. */
export type FakeResponder = (request: FakeRequest) => FakeBehaviour | undefined;

/** Options of {@link startFakePlaces}. */
export interface FakePlacesOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** The only key accepted; default: any non-empty key. */
  apiKey?: string;
  /** Called with each request as it arrives (e.g. to print it). */
  onRequest?: (request: FakeRequest) => void;
}

/** A running fake; close it with `close()` or `await using`. */
export interface FakePlaces extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` — what `baseUrl` / `--places-url` should be. */
  readonly url: string;
  readonly port: number;
  /** Every request so far, oldest first. */
  readonly requests: readonly FakeRequest[];
  /** Answers the next requests with these behaviours, in order, before the default. */
  enqueue(...behaviours: FakeBehaviour[]): void;
  /** How requests are answered once the queue is empty (initially `{ kind: "places" }`). */
  setDefault(behaviour: FakeBehaviour | FakeResponder): void;
  /** Resolves with the requests once at least `count` have arrived; rejects after `timeoutMs`. */
  waitForRequests(count: number, timeoutMs?: number): Promise<readonly FakeRequest[]>;
  /** Ends pending delays, stops the server and waits for it; safe to call twice. */
  close(): Promise<void>;
}

/** Where the legacy API answers. */
export const FAKE_LEGACY_PATH = "/maps/api/place/nearbysearch/json";
/** Where the New API answers. */
export const FAKE_NEW_PATH = "/v1/places:searchNearby";
/** The most places a generated answer holds (Google's page size). */
export const FAKE_PLACES_MAX = 20;
/** The legacy API's largest radius; the New API's too. */
const RADIUS_METRES_MAX = 50_000;
const METRES_PER_DEGREE_LATITUDE = 111_320;
const GOLDEN_ANGLE_DEGREES = 137.508;
const WAIT_TIMEOUT_MS_DEFAULT = 5000;
/** A request body longer than this is recorded cut (a runaway client must not fill memory). */
const BODY_CHARS_RECORDED_MAX = 1024 * 1024;

const PLACE_NAMES = [
  "Royce Hall Café",
  "Westwood Books",
  "Café Zoë & Söhne",
  "Sunset Laundromat",
  "Bruin Plaza Pharmacy",
  "Hilgard Avenue Bakery",
  "西木寿司",
  'The "Quoted" Diner',
  "Gayley Gym",
  "Le Conte Hardware",
];
const PLACE_TYPES = [
  ["cafe", "food", "point_of_interest", "establishment"],
  ["book_store", "store", "point_of_interest", "establishment"],
  ["restaurant", "food", "point_of_interest", "establishment"],
  ["laundry", "point_of_interest", "establishment"],
  ["pharmacy", "health", "store", "point_of_interest", "establishment"],
];
const BUSINESS_STATUSES = ["OPERATIONAL", "OPERATIONAL", "OPERATIONAL", "CLOSED_TEMPORARILY"];
const PRICE_LEVELS = [
  "PRICE_LEVEL_FREE",
  "PRICE_LEVEL_INEXPENSIVE",
  "PRICE_LEVEL_MODERATE",
  "PRICE_LEVEL_EXPENSIVE",
  "PRICE_LEVEL_VERY_EXPENSIVE",
];
const NEW_ERROR_STATUSES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** One generated place, in neither API's shape yet. */
export interface FakePlace {
  id: string;
  name: string;
  latitude: number;
  longitude: number;
  shortAddress: string;
  fullAddress: string;
  types: string[];
  businessStatus: string;
  rating: number;
  userRatingCount: number;
  /** 0 … 4 */
  priceLevel: number;
  openNow: boolean;
}

/**
 * `count` deterministic places within `radiusMetres` of a point (the same input gives the
 * same places), spread on a spiral from near to far.
 *
 * @example
 * ```ts
 * const places = generatePlaces(34.06893, -118.445127, 10_000, 20);
 * ```
 */
export function generatePlaces(
  latitude: number,
  longitude: number,
  radiusMetres: number,
  count: number,
): FakePlace[] {
  const places: FakePlace[] = [];
  for (let index = 0; index < count; index++) {
    const distanceMetres = radiusMetres * 0.9 * (index + 1) / (count + 1);
    const bearingRadians = (index * GOLDEN_ANGLE_DEGREES) * Math.PI / 180;
    const placeLatitude = clamp(
      latitude + distanceMetres * Math.cos(bearingRadians) / METRES_PER_DEGREE_LATITUDE,
      -90,
      90,
    );
    const metresPerDegreeLongitude = METRES_PER_DEGREE_LATITUDE *
      Math.max(Math.cos(latitude * Math.PI / 180), 0.01);
    const placeLongitude = wrapLongitude(
      longitude + distanceMetres * Math.sin(bearingRadians) / metresPerDegreeLongitude,
    );
    const street = `${100 + index * 7} Fake Street`;
    places.push({
      id: `ChIJfake${hash(`${latitude},${longitude},${radiusMetres},${index}`)}`,
      name: `${PLACE_NAMES[index % PLACE_NAMES.length]} ${index + 1}`,
      latitude: round7(placeLatitude),
      longitude: round7(placeLongitude),
      shortAddress: `${street}, Westwood`,
      fullAddress: `${street}, Los Angeles, CA 90024, USA`,
      types: PLACE_TYPES[index % PLACE_TYPES.length],
      businessStatus: BUSINESS_STATUSES[index % BUSINESS_STATUSES.length],
      rating: Math.round(30 + index % 21) / 10,
      userRatingCount: 10 + index * 37,
      priceLevel: index % PRICE_LEVELS.length,
      openNow: index % 3 !== 0,
    });
  }
  return places;
}

/** Places as the legacy API writes them, with its envelope. */
export function legacyAnswer(places: FakePlace[]): Record<string, unknown> {
  const results = places.map((place) => ({
    business_status: place.businessStatus,
    geometry: {
      location: { lat: place.latitude, lng: place.longitude },
      viewport: {
        northeast: { lat: round7(place.latitude + 0.0013), lng: round7(place.longitude + 0.0013) },
        southwest: { lat: round7(place.latitude - 0.0013), lng: round7(place.longitude - 0.0013) },
      },
    },
    icon: "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/generic_business-71.png",
    icon_background_color: "#7B9EB0",
    name: place.name,
    opening_hours: { open_now: place.openNow },
    place_id: place.id,
    price_level: place.priceLevel,
    rating: place.rating,
    reference: place.id,
    scope: "GOOGLE",
    types: place.types,
    user_ratings_total: place.userRatingCount,
    vicinity: place.shortAddress,
  }));
  return {
    html_attributions: [],
    ...(places.length === FAKE_PLACES_MAX
      ? { next_page_token: `fake-page-2-${places[0].id}` }
      : {}),
    results,
    status: places.length > 0 ? "OK" : "ZERO_RESULTS",
  };
}

/**
 * Places as the New API writes them, only with the fields `fieldMask` asks for
 * (`places.*` or `*` for all); no places is `{}`, as Google answers.
 */
export function newAnswer(places: FakePlace[], fieldMask: string): Record<string, unknown> {
  if (places.length === 0) return {};
  const fields = new Set(fieldMask.split(",").map((field) => field.trim()));
  const all = fields.has("*") || fields.has("places.*") || fields.has("places");
  const full = places.map((place) => ({
    id: place.id,
    types: place.types,
    formattedAddress: place.fullAddress,
    location: { latitude: place.latitude, longitude: place.longitude },
    rating: place.rating,
    businessStatus: place.businessStatus,
    priceLevel: PRICE_LEVELS[place.priceLevel],
    userRatingCount: place.userRatingCount,
    displayName: { text: place.name, languageCode: "en" },
    currentOpeningHours: {
      openNow: place.openNow,
      weekdayDescriptions: ["Monday: 8:00 AM – 6:00 PM"],
    },
    shortFormattedAddress: place.shortAddress,
  }));
  return {
    places: full.map((place) =>
      Object.fromEntries(
        Object.entries(place).filter(([name]) => all || fields.has(`places.${name}`)),
      )
    ),
  };
}

/**
 * Starts a fake Places server. Close it when done (`await using fake = await startFakePlaces()`
 * closes it at the end of the scope).
 *
 * @example
 * ```ts
 * await using fake = await startFakePlaces();
 * fake.enqueue({ kind: "status", httpStatus: 503 }); // first request fails, the next get places
 * const provider = createGoogleLegacyProvider({ apiKey: "test-key", baseUrl: fake.url });
 * ```
 */
export function startFakePlaces(options: FakePlacesOptions = {}): Promise<FakePlaces> {
  const closing = new AbortController();
  const requests: FakeRequest[] = [];
  const queue: FakeBehaviour[] = [];
  const watchers = new Set<() => void>();
  let responder: FakeResponder = () => undefined;

  const handle = async (request: Request): Promise<Response> => {
    const recorded = await record(request);
    requests.push(recorded);
    options.onRequest?.(recorded);
    for (const watcher of [...watchers]) watcher();
    const invalid = validate(recorded, options.apiKey);
    if (invalid !== undefined) return invalid;
    const behaviour = queue.shift() ?? responder(recorded) ?? { kind: "places" };
    return await respond(recorded, behaviour, closing.signal);
  };

  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: "127.0.0.1",
        port: options.port ?? 0,
        signal: closing.signal,
        onListen: () => {},
        onError: (error) => new Response(`fake places: ${error}`, { status: 500 }),
      }, handle);
      const url = `http://127.0.0.1:${server.addr.port}`;
      let closed: Promise<void> | undefined;
      const close = () => {
        closed ??= (async () => {
          closing.abort();
          await server.finished;
        })();
        return closed;
      };
      resolve({
        url,
        port: server.addr.port,
        requests,
        enqueue: (...behaviours) => queue.push(...behaviours),
        setDefault: (behaviour) => {
          responder = typeof behaviour === "function" ? behaviour : () => behaviour;
        },
        waitForRequests: (count, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT) =>
          new Promise((done, fail) => {
            if (requests.length >= count) return done(requests);
            const timer = setTimeout(() => {
              watchers.delete(check);
              fail(
                new Error(
                  `fake places: ${requests.length} of ${count} requests after ${timeoutMs} ms`,
                ),
              );
            }, timeoutMs);
            function check() {
              if (requests.length < count) return;
              clearTimeout(timer);
              watchers.delete(check);
              done(requests);
            }
            watchers.add(check);
          }),
        close,
        [Symbol.asyncDispose]: close,
      });
    } catch (error) {
      reject(error);
    }
  });
}

/**
 * A URL on 127.0.0.1 where nothing listens (a port just freed), for connect-error tests.
 *
 * @example
 * ```ts
 * const provider = createGoogleLegacyProvider({ apiKey: "k", baseUrl: closedPortUrl() });
 * ```
 */
export function closedPortUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return `http://127.0.0.1:${port}`;
}

async function record(request: Request): Promise<FakeRequest> {
  const url = new URL(request.url);
  const text = (await request.text()).slice(0, BODY_CHARS_RECORDED_MAX);
  let body: unknown = text === "" ? undefined : text;
  if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      // Kept as text: a test may want to see exactly what was sent.
    }
  }
  const api: FakeApi = request.method === "GET" && url.pathname === FAKE_LEGACY_PATH
    ? "legacy"
    : request.method === "POST" && url.pathname === FAKE_NEW_PATH
    ? "new"
    : "unknown";
  return {
    api,
    method: request.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(request.headers),
    body,
    atMs: performance.now(),
  };
}

/** The answer a real server gives a malformed or unauthorised request, if this one is. */
function validate(request: FakeRequest, apiKey: string | undefined): Response | undefined {
  switch (request.api) {
    case "unknown":
      return new Response(`fake places: no ${request.method} ${request.path}`, { status: 404 });
    case "legacy":
      return validateLegacy(request, apiKey);
    case "new":
      return validateNew(request, apiKey);
  }
}

function validateLegacy(request: FakeRequest, apiKey: string | undefined): Response | undefined {
  const { key, location, radius } = request.query;
  if (key === undefined || key === "") {
    return legacyError("REQUEST_DENIED", "You must use an API key to authenticate each request.");
  }
  if (apiKey !== undefined && key !== apiKey) {
    return legacyError("REQUEST_DENIED", "The provided API key is invalid.");
  }
  const point = (location ?? "").split(",").map(Number);
  const radiusMetres = Number(radius);
  if (
    point.length !== 2 || !point.every(Number.isFinite) || Math.abs(point[0]) > 90 ||
    Math.abs(point[1]) > 180
  ) return legacyError("INVALID_REQUEST", "Invalid request. Invalid 'location' parameter.");
  if (!(radiusMetres > 0 && radiusMetres <= RADIUS_METRES_MAX)) {
    return legacyError("INVALID_REQUEST", "Invalid request. Invalid 'radius' parameter.");
  }
  return undefined;
}

function validateNew(request: FakeRequest, apiKey: string | undefined): Response | undefined {
  const key = request.headers["x-goog-api-key"];
  if (key === undefined || key === "") {
    return newError(403, "The request is missing a valid API key.");
  }
  if (apiKey !== undefined && key !== apiKey) {
    return newError(400, "API key not valid. Please pass a valid API key.");
  }
  if (!request.headers["x-goog-fieldmask"]) {
    return newError(
      400,
      "FieldMask is a required parameter. See https://cloud.google.com/apis/docs/system-parameters.",
    );
  }
  if (!(request.headers["content-type"] ?? "").startsWith("application/json")) {
    return newError(400, "Invalid JSON payload received. Unexpected content type.");
  }
  const circle = newCircle(request.body);
  if (circle === undefined) {
    return newError(400, "Invalid JSON payload received: locationRestriction.circle is required.");
  }
  const maxResultCount = (request.body as Record<string, unknown>).maxResultCount;
  if (
    maxResultCount !== undefined &&
    !(Number.isInteger(maxResultCount) && (maxResultCount as number) >= 1 &&
      (maxResultCount as number) <= FAKE_PLACES_MAX)
  ) return newError(400, "maxResultCount must be between 1 and 20, inclusive.");
  if (!(circle.radius > 0 && circle.radius <= RADIUS_METRES_MAX)) {
    return newError(
      400,
      "locationRestriction.circle.radius must be between 0.0 and 50000.0, inclusive.",
    );
  }
  return undefined;
}

/** The search circle of a New body, if it has one of the right types. */
function newCircle(
  body: unknown,
): { latitude: number; longitude: number; radius: number } | undefined {
  const circle = (body as { locationRestriction?: { circle?: Record<string, unknown> } })
    ?.locationRestriction?.circle;
  const center = circle?.center as Record<string, unknown> | undefined;
  const [latitude, longitude, radius] = [center?.latitude, center?.longitude, circle?.radius];
  if (typeof latitude !== "number" || typeof longitude !== "number" || typeof radius !== "number") {
    return undefined;
  }
  return { latitude, longitude, radius };
}

async function respond(
  request: FakeRequest,
  behaviour: FakeBehaviour,
  signal: AbortSignal,
): Promise<Response> {
  switch (behaviour.kind) {
    case "places":
      return placesResponse(request, Math.min(behaviour.count ?? FAKE_PLACES_MAX, FAKE_PLACES_MAX));
    case "json":
      return Response.json(behaviour.body, {
        status: behaviour.httpStatus ?? 200,
        headers: behaviour.headers,
      });
    case "text":
      return new Response(behaviour.body, {
        status: behaviour.httpStatus ?? 200,
        headers: {
          "content-type": behaviour.contentType ?? "text/html; charset=UTF-8",
          ...behaviour.headers,
        },
      });
    case "status":
      return request.api === "new"
        ? newError(behaviour.httpStatus, `fake failure ${behaviour.httpStatus}`)
        : new Response(htmlErrorPage(behaviour.httpStatus), {
          status: behaviour.httpStatus,
          headers: { "content-type": "text/html; charset=UTF-8" },
        });
    case "garbage":
      return new Response('<html><body>502 Bad Gateway {"status": "OK"', {
        headers: { "content-type": "text/html" },
      });
    case "not-places":
      return Response.json({ data: [1, 2, 3], ok: true });
    case "reset":
      return new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"html_attributions": [], "res'));
            controller.close();
          },
        }),
        { headers: { "content-type": "application/json", "content-length": "4096" } },
      );
    case "echo-key":
      return request.api === "new"
        ? newError(
          400,
          `API key not valid. Please pass a valid API key. (got ${
            request.headers["x-goog-api-key"]
          })`,
        )
        : legacyError("REQUEST_DENIED", `The provided API key is invalid: ${request.query.key}`);
    case "delay":
      await sleep(behaviour.delayMs, signal);
      if (signal.aborted) return new Response("fake places: closing", { status: 503 });
      return respond(request, behaviour.then ?? { kind: "places" }, signal);
  }
}

function placesResponse(request: FakeRequest, count: number): Response {
  if (request.api === "legacy") {
    const [latitude, longitude] = request.query.location.split(",").map(Number);
    const places = generatePlaces(latitude, longitude, Number(request.query.radius), count);
    return Response.json(legacyAnswer(places));
  }
  const circle = newCircle(request.body)!;
  const maxResultCount = (request.body as { maxResultCount?: number }).maxResultCount ??
    FAKE_PLACES_MAX;
  const places = generatePlaces(
    circle.latitude,
    circle.longitude,
    circle.radius,
    Math.min(count, maxResultCount),
  );
  return Response.json(newAnswer(places, request.headers["x-goog-fieldmask"]));
}

function legacyError(status: string, message: string): Response {
  return Response.json({ error_message: message, html_attributions: [], results: [], status });
}

function newError(httpStatus: number, message: string): Response {
  const status = NEW_ERROR_STATUSES[httpStatus] ?? "UNKNOWN";
  return Response.json({ error: { code: httpStatus, message, status } }, { status: httpStatus });
}

function htmlErrorPage(httpStatus: number): string {
  return `<!DOCTYPE html>\n<html lang=en><title>Error ${httpStatus} (Server Error)!!1</title>` +
    `<p><b>${httpStatus}.</b> <ins>That’s an error.</ins></html>`;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function wrapLongitude(longitude: number): number {
  return ((longitude + 540) % 360) - 180;
}

function round7(value: number): number {
  return Math.round(value * 1e7) / 1e7;
}

/** A short stable hex digest (FNV-1a, 32 bits, twice) — enough to make ids look distinct. */
function hash(text: string): string {
  let first = 0x811c9dc5;
  let second = 0x01000193;
  for (let index = 0; index < text.length; index++) {
    first = Math.imul(first ^ text.charCodeAt(index), 0x01000193) >>> 0;
    second = Math.imul(second ^ text.charCodeAt(index), 0x811c9dc5) >>> 0;
  }
  return first.toString(16).padStart(8, "0") + second.toString(16).padStart(8, "0");
}

/** `--default` of the standalone fake → a behaviour. */
function parseBehaviourSpec(spec: string): FakeBehaviour {
  const [kind, argument] = spec.split(":");
  switch (kind) {
    case "places":
      return { kind: "places", count: argument === undefined ? undefined : Number(argument) };
    case "status":
      return { kind: "status", httpStatus: Number(argument) };
    case "delay":
      return { kind: "delay", delayMs: Number(argument) };
    case "garbage":
    case "not-places":
    case "reset":
    case "echo-key":
      return { kind };
    default:
      throw new Error(`fake places: unknown --default ${spec}`);
  }
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const index = args.indexOf(name);
    return index === -1 ? undefined : args[index + 1];
  };
  const fake = await startFakePlaces({
    port: Number(flag("--port") ?? 0),
    onRequest: (request) => {
      const query = new URLSearchParams(request.query);
      if (query.has("key")) query.set("key", "REDACTED");
      const shown = request.api === "new" ? JSON.stringify(request.body) : query.toString();
      console.log(`${new Date().toISOString()} ${request.method} ${request.path} ${shown}`);
    },
  });
  const spec = flag("--default");
  if (spec !== undefined) fake.setDefault(parseBehaviourSpec(spec));
  console.log(`fake places listening on ${fake.url}`);
  Deno.addSignalListener("SIGINT", () => fake.close().then(() => Deno.exit(0)));
}
