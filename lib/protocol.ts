/**
 * The client wire protocol as pure functions: one complete line in, a typed message or the
 * reason it is invalid out; AT, WHATSAT and `?` replies formatted. Knows no sockets, no store
 * and no clock — the caller passes the receive time in.
 *
 * Lines are "wire text": every byte is one UTF-16 code unit 0–255 (latin1), so client ids,
 * locations and times are echoed byte for byte whatever their encoding.
 */

/** IAMAT as read: raw fields kept verbatim for the echo, exact values for comparison. */
export interface IamatMessage {
  kind: "IAMAT";
  clientId: string;
  location: string;
  time: string;
  timeNs: bigint;
}

/** WHATSAT as read; `radiusMetres` is exact (≤ 50 000, at most the digits the client sent). */
export interface WhatsatMessage {
  kind: "WHATSAT";
  clientId: string;
  radiusMetres: number;
  bound: number;
}

/** A line that is not a valid client message, with a reason for the log. */
export interface InvalidMessage {
  kind: "invalid";
  reason: string;
}

export type ClientMessage = IamatMessage | WhatsatMessage | InvalidMessage;

/** A location split into exact parts; `key` is the same for equal decimals (`+1.50` = `+1.5`). */
export interface Coordinates {
  latitude: number;
  longitude: number;
  key: string;
}

const FIELD_SEPARATOR = /[ \t\r\f\v]+/;
const EDGE_WHITE_SPACE = /^[ \t\r\f\v]+|[ \t\r\f\v]+$/g;
const LOCATION = /^([+-])(\d{1,2})(?:\.(\d+))?([+-])(\d{1,3})(?:\.(\d+))?$/;
const TIME = /^(\d+)(?:\.(\d{1,9}))?$/;
const RADIUS = /^(\d+)(?:\.(\d+))?$/;
const BOUND = /^\d{1,2}$/;

const LATITUDE_DEGREES_MAX = 90;
const LONGITUDE_DEGREES_MAX = 180;
const RADIUS_KM_MAX = 50;
export const BOUND_MAX = 20;
const NANOSECONDS_PER_SECOND = 1_000_000_000n;

/** Splits a line into fields on runs of the contract's white space (ASCII only). */
export function splitFields(line: string): string[] {
  const trimmed = line.replace(EDGE_WHITE_SPACE, "");
  return trimmed === "" ? [] : trimmed.split(FIELD_SEPARATOR);
}

/**
 * Parses one client line (terminator and the `\r` before it already removed).
 * Never throws; anything outside the grammar yields `{ kind: "invalid" }`.
 */
export function parseClientLine(line: string): ClientMessage {
  const fields = splitFields(line);
  switch (fields[0]) {
    case "IAMAT":
      return parseIamat(fields);
    case "WHATSAT":
      return parseWhatsat(fields);
    case undefined:
      return invalid("empty line");
    default:
      return invalid("unknown command");
  }
}

function parseIamat(fields: string[]): IamatMessage | InvalidMessage {
  if (fields.length !== 4) return invalid("IAMAT takes 3 fields");
  const [, clientId, location, time] = fields;
  if (!isLocation(location)) return invalid("bad location");
  const timeNs = parseTimeNs(time);
  if (timeNs === undefined) return invalid("bad time");
  return { kind: "IAMAT", clientId, location, time, timeNs };
}

function parseWhatsat(fields: string[]): WhatsatMessage | InvalidMessage {
  if (fields.length !== 4) return invalid("WHATSAT takes 3 fields");
  const [, clientId, radius, bound] = fields;
  const radiusMetres = parseRadiusMetres(radius);
  if (radiusMetres === undefined) return invalid("bad radius");
  if (!BOUND.test(bound)) return invalid("bad bound");
  const boundCount = Number(bound);
  if (boundCount < 1 || boundCount > BOUND_MAX) return invalid("bound out of range");
  return { kind: "WHATSAT", clientId, radiusMetres, bound: boundCount };
}

function invalid(reason: string): InvalidMessage {
  return { kind: "invalid", reason };
}

/** True when `location` is `±DD.ddd±DDD.ddd` on the globe (cheap: no numbers are built). */
export function isLocation(location: string): boolean {
  return matchLocation(location) !== undefined;
}

/** Parses `±DD.ddd±DDD.ddd`; undefined when outside the grammar or the globe. */
export function parseLocation(location: string): Coordinates | undefined {
  const match = matchLocation(location);
  if (match === undefined) return undefined;
  const [, latSign, latWhole, latFraction = "", lngSign, lngWhole, lngFraction = ""] = match;
  const latitude = canonicalDecimal(latSign, latWhole, latFraction);
  const longitude = canonicalDecimal(lngSign, lngWhole, lngFraction);
  return {
    latitude: Number(latitude),
    longitude: Number(longitude),
    key: `${latitude},${longitude}`,
  };
}

function matchLocation(location: string): RegExpExecArray | undefined {
  const match = LOCATION.exec(location);
  if (match === null) return undefined;
  const [, , latWhole, latFraction, , lngWhole, lngFraction] = match;
  if (exceeds(latWhole, latFraction, LATITUDE_DEGREES_MAX)) return undefined;
  if (exceeds(lngWhole, lngFraction, LONGITUDE_DEGREES_MAX)) return undefined;
  return match;
}

/** A decimal in canonical form: no leading or trailing zeros, zero unsigned (`-0.0` → `0`). */
function canonicalDecimal(sign: string, whole: string, fraction: string): string {
  const wholeText = whole.replace(/^0+(?=\d)/, "");
  const fractionDigits = fraction.replace(/0+$/, "");
  const isZero = wholeText === "0" && fractionDigits === "";
  const signText = sign === "-" && !isZero ? "-" : "";
  return fractionDigits === ""
    ? `${signText}${wholeText}`
    : `${signText}${wholeText}.${fractionDigits}`;
}

/**
 * True when the decimal `whole.fraction` (digits only) is above the whole number `max`.
 * Digit strings of any length compare exactly: past 2^53 they are far above every max here.
 */
function exceeds(whole: string, fraction: string | undefined, max: number): boolean {
  const wholeValue = Number(whole);
  return wholeValue > max ||
    (wholeValue === max && fraction !== undefined && /[1-9]/.test(fraction));
}

/** Parses POSIX seconds with up to 9 decimals into exact integer nanoseconds. */
export function parseTimeNs(time: string): bigint | undefined {
  const match = TIME.exec(time);
  if (match === null) return undefined;
  const [, seconds, fraction = ""] = match;
  return BigInt(seconds) * NANOSECONDS_PER_SECOND + BigInt(fraction.padEnd(9, "0"));
}

/** Parses a radius in km (0 < r ≤ 50) and returns it in metres. */
function parseRadiusMetres(radius: string): number | undefined {
  const match = RADIUS.exec(radius);
  if (match === null) return undefined;
  const [, whole, fraction = ""] = match;
  if (exceeds(whole, fraction, RADIUS_KM_MAX) || !/[1-9]/.test(whole + fraction)) return undefined;
  // Shift the decimal point by three digits so metres stay exact: 1.005 km → 1005 m.
  return Number(
    canonicalDecimal("+", whole + fraction.slice(0, 3).padEnd(3, "0"), fraction.slice(3)),
  );
}

/** Formats nanoseconds as seconds with a sign and nine decimals: `+0.263873386`. */
export function formatSkew(skewNs: bigint): string {
  const sign = skewNs < 0n ? "-" : "+";
  const magnitude = skewNs < 0n ? -skewNs : skewNs;
  const seconds = magnitude / NANOSECONDS_PER_SECOND;
  const fraction = (magnitude % NANOSECONDS_PER_SECOND).toString().padStart(9, "0");
  return `${sign}${seconds}.${fraction}`;
}

/** The AT line for an accepted IAMAT (no terminator). */
export function formatAtLine(
  serverName: string,
  receivedNs: bigint,
  message: IamatMessage,
): string {
  const skew = formatSkew(receivedNs - message.timeNs);
  // join() builds one flat string; a template literal would keep a rope of slices of the
  // client's whole line alive for as long as the update is stored.
  return ["AT", serverName, skew, message.clientId, message.location, message.time].join(" ");
}

/** The fields of a stored AT line, recovered for updates that arrive from peers. */
export interface AtLineFields {
  clientId: string;
  location: string;
  timeNs: bigint;
}

/** Parses an AT line as produced by {@link formatAtLine}; undefined when malformed. */
export function parseAtLine(atLine: string): AtLineFields | undefined {
  const fields = atLine.split(" ");
  if (fields.length !== 6 || fields[0] !== "AT") return undefined;
  const [, , , clientId, location, time] = fields;
  const timeNs = parseTimeNs(time);
  if (timeNs === undefined || clientId === "" || !isLocation(location)) {
    return undefined;
  }
  return { clientId, location, timeNs };
}

/** The reply to an invalid line: `? ` and the line's raw bytes. */
export function formatInvalidReply(line: string): string {
  return `? ${line}\n`;
}

/**
 * Serialises a Places body as the single JSON line of a WHATSAT reply, results cut to
 * `bound`. Compact JSON holds no raw newline, so the reply's closing empty line is unique.
 */
export function formatPlacesBody(body: { results: unknown[] }, bound: number): string {
  return JSON.stringify({ ...body, results: body.results.slice(0, bound) });
}
