/**
 * `herd client`'s interactive mode as pure functions: a typed command → the protocol line to
 * send (or a message saying what is wrong with it), and the replies as they arrive → what to
 * show (a WHATSAT asked with the `whatsat` helper as a readable list of places). Knows the
 * protocol's grammar and reply framing; knows no sockets, no terminal and no real clock —
 * the caller passes the time in.
 */
import { BOUND_MAX, isLocation, parseAtLine, parseClientLine, parseLocation } from "./protocol.ts";

/** What one typed line asks for. */
export type TypedCommand =
  /** Send `line` (no `\n`); `readable` when its WHATSAT reply is to be shown as a list. */
  | { kind: "send"; line: string; readable: boolean }
  /** Nothing is sent: `message` says what is wrong. */
  | { kind: "mistake"; message: string }
  | { kind: "quit" };

export const IAMAT_HELP = "iamat ID LAT LNG  (decimal degrees, e.g. iamat kiwi 34.0689 -118.4451)";
export const WHATSAT_HELP =
  `whatsat ID RADIUS_KM BOUND  (0 < RADIUS_KM <= 50, 1 <= BOUND <= ${BOUND_MAX})`;

const NANOSECONDS_PER_SECOND = 1_000_000_000n;
const EARTH_RADIUS_KM = 6371;
/** A degree as the user types it: optional sign, digits, optional fraction — no exponent. */
const DEGREES = /^[+-]?[0-9]+(\.[0-9]+)?$/;

/**
 * Reads one typed line: `iamat ID LAT LNG` and `whatsat ID RADIUS BOUND` are helpers, `quit`
 * ends, anything else is sent as typed. `nowNs` is the current POSIX time in nanoseconds.
 *
 * @example
 * ```ts
 * readTypedLine("iamat kiwi 34.0689 -118.4451", 1700000000_500000000n);
 * // { kind: "send", line: "IAMAT kiwi +34.0689-118.4451 1700000000.500000000", readable: false }
 * ```
 */
export function readTypedLine(typed: string, nowNs: bigint): TypedCommand {
  const words = typed.trim().split(/\s+/);
  switch (words[0]) {
    case "quit":
      return words.length === 1 ? { kind: "quit" } : sendAsTyped(typed);
    case "iamat":
      return iamatCommand(words.slice(1), nowNs);
    case "whatsat":
      return whatsatCommand(words.slice(1));
    default:
      return sendAsTyped(typed);
  }
}

function sendAsTyped(typed: string): TypedCommand {
  return { kind: "send", line: typed, readable: false };
}

function iamatCommand(fields: string[], nowNs: bigint): TypedCommand {
  if (fields.length !== 3) return mistake(`iamat takes 3 fields: ${IAMAT_HELP}`);
  const [clientId, latitude, longitude] = fields;
  if (!DEGREES.test(latitude) || !DEGREES.test(longitude)) {
    return mistake(`LAT and LNG must be decimal numbers: ${IAMAT_HELP}`);
  }
  const location = `${signed(latitude)}${signed(longitude)}`;
  if (!isLocation(location)) {
    return mistake(
      `LAT must be from -90 to 90 (at most 2 whole digits) and LNG from -180 to 180 (at most 3): ${IAMAT_HELP}`,
    );
  }
  return {
    kind: "send",
    line: `IAMAT ${clientId} ${location} ${formatPosixTime(nowNs)}`,
    readable: false,
  };
}

function whatsatCommand(fields: string[]): TypedCommand {
  if (fields.length !== 3) return mistake(`whatsat takes 3 fields: ${WHATSAT_HELP}`);
  const line = `WHATSAT ${fields.join(" ")}`;
  // The server's own parser decides, so the helper never refuses what the server accepts.
  const parsed = parseClientLine(line);
  if (parsed.kind === "invalid") return mistake(`${parsed.reason}: ${WHATSAT_HELP}`);
  return { kind: "send", line, readable: true };
}

function mistake(message: string): TypedCommand {
  return { kind: "mistake", message };
}

/** A degree with the sign the grammar requires: `34.0689` → `+34.0689`. */
function signed(degrees: string): string {
  return degrees.startsWith("+") || degrees.startsWith("-") ? degrees : `+${degrees}`;
}

/** POSIX nanoseconds as the grammar's time with nine decimals: `1700000000.000000001`. */
export function formatPosixTime(nowNs: bigint): string {
  const fraction = (nowNs % NANOSECONDS_PER_SECOND).toString().padStart(9, "0");
  return `${nowNs / NANOSECONDS_PER_SECOND}.${fraction}`;
}

/**
 * The great-circle distance between two points in km (haversine formula, on a sphere of the
 * Earth's mean radius: within 0.5% of the ellipsoid, plenty for "how far is it").
 */
export function greatCircleKm(
  from: { latitude: number; longitude: number },
  to: { latitude: number; longitude: number },
): number {
  const radians = (degrees: number) => degrees * Math.PI / 180;
  const halfChordSquared = Math.sin(radians(to.latitude - from.latitude) / 2) ** 2 +
    Math.cos(radians(from.latitude)) * Math.cos(radians(to.latitude)) *
      Math.sin(radians(to.longitude - from.longitude) / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, halfChordSquared)));
}

/**
 * A whole WHATSAT reply (AT line, JSON body line, empty line) as people read it: the AT line,
 * then one numbered line per place with its name, its distance from the client's location
 * in the AT line, and its vicinity — or the status when it is not OK. Anything it cannot
 * read (a `?` reply, a body that is not JSON) is returned as it came.
 *
 * @example
 * ```ts
 * formatPlacesReply('AT Hill +0.1 kiwi +34.0689-118.4451 1700000000\n{"results":[],"status":"ZERO_RESULTS"}\n\n');
 * // "AT Hill +0.1 kiwi +34.0689-118.4451 1700000000\nno places: ZERO_RESULTS\n"
 * ```
 */
export function formatPlacesReply(reply: string): string {
  const firstNewline = reply.indexOf("\n");
  if (firstNewline === -1) return reply;
  const atLine = reply.slice(0, firstNewline);
  const at = parseAtLine(atLine);
  const body = parseBody(reply.slice(firstNewline + 1).trimEnd());
  if (at === undefined || body === undefined) return reply;
  if (body.status !== "OK") return `${atLine}\nno places: ${body.status}\n`;
  const origin = parseLocation(at.location)!;
  const places = body.results.map((place, index) => {
    const name = typeof place?.name === "string" ? place.name : "(no name)";
    const point = place?.geometry?.location;
    const distance = typeof point?.lat === "number" && typeof point?.lng === "number"
      ? `${greatCircleKm(origin, { latitude: point.lat, longitude: point.lng }).toFixed(2)} km`
      : "? km";
    const vicinity = typeof place?.vicinity === "string" ? ` — ${place.vicinity}` : "";
    return `${String(index + 1).padStart(2)}. ${name} — ${distance}${vicinity}`;
  });
  const count = `${places.length} ${places.length === 1 ? "place" : "places"}`;
  return `${atLine}\n${count} near ${at.location}:\n${places.map((line) => `${line}\n`).join("")}`;
}

/** The parts of a result a list shows; any may be missing from an upstream body. */
interface PlaceFields {
  name?: unknown;
  vicinity?: unknown;
  geometry?: { location?: { lat?: unknown; lng?: unknown } };
}

function parseBody(text: string): { status: string; results: PlaceFields[] } | undefined {
  try {
    const body = JSON.parse(text);
    if (typeof body?.status !== "string" || !Array.isArray(body.results)) return undefined;
    return body;
  } catch {
    return undefined;
  }
}

/**
 * Frames the replies of an interactive session as they arrive: each sent line expects one
 * reply, in order (the server keeps that order). A WHATSAT's reply runs to its empty line,
 * unless it is a one-line `?`; any other reply is one line. Each complete reply is shown at
 * once — raw, or as a list for the `whatsat` helper; bytes beyond what was expected are shown
 * line by line, raw.
 */
export class ReplyFramer {
  #expected: Array<{ isWhatsat: boolean; readable: boolean }> = [];
  #received = "";

  /** Notes a line that was sent; its reply is framed by what the line is. */
  expect(line: string, readable: boolean): void {
    this.#expected.push({ isWhatsat: parseClientLine(line).kind === "WHATSAT", readable });
  }

  /** Appends received text; returns what to show now, each piece ending in `\n`. */
  receive(text: string): string[] {
    this.#received += text;
    const shown: string[] = [];
    while (true) {
      const next = this.#expected[0] ?? { isWhatsat: false, readable: false };
      const end = replyEnd(this.#received, next.isWhatsat);
      if (end === -1) return shown;
      const reply = this.#received.slice(0, end);
      this.#received = this.#received.slice(end);
      this.#expected.shift();
      shown.push(next.readable ? formatPlacesReply(reply) : reply);
    }
  }

  /** What arrived after the last complete reply (the server closed mid-reply). */
  rest(): string {
    return this.#received;
  }
}

/** The index just after the reply at the start of `received`, or -1 while it is incomplete. */
function replyEnd(received: string, isWhatsat: boolean): number {
  const lineEnd = received.indexOf("\n");
  if (lineEnd === -1) return -1;
  if (!isWhatsat || received.startsWith("? ")) return lineEnd + 1;
  const emptyLine = received.indexOf("\n\n", lineEnd);
  return emptyLine === -1 ? -1 : emptyLine + 2;
}
