/**
 * The client wire protocol as pure functions: one complete line in, a typed message or the
 * reason it is invalid out; AT, WHATSAT and `?` replies formatted; AT lines read back. Knows
 * no sockets, no store and no clock — the caller passes the receive time in.
 *
 * Lines are "wire text": every byte is one UTF-16 code unit 0–255 (latin1), so client ids,
 * locations and times are echoed byte for byte whatever their encoding.
 *
 * Cost (contract §3): every function here is linear in its input, because a line may be as
 * long as `lineBytesMax` (up to 64 MiB). Fields are read by character loops, never by regular
 * expressions (a backtracking trim made one 64 KiB line of spaces cost 3.3 s), and times stay
 * decimal digit text: the skew is column arithmetic on digits, not BigInt (printing a BigInt
 * of n digits costs more than n steps).
 */

import { wireBytesInto } from "./lines.ts";

/** IAMAT as read: raw fields kept verbatim for the echo; `time` is checked, digits only. */
export interface IamatMessage {
  kind: "IAMAT";
  clientId: string;
  location: string;
  time: string;
  /** `client-id location time` as an AT line echoes them: single spaces between. */
  echo: string;
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

/** The fields of an AT line, verbatim; `skew` is `[+-]digits.9digits`. */
export interface AtLineFields {
  serverName: string;
  skew: string;
  clientId: string;
  location: string;
  time: string;
}

export const SPACE = 0x20;
const TAB = 0x09;
const VERTICAL_TAB = 0x0b;
const FORM_FEED = 0x0c;
const CARRIAGE_RETURN = 0x0d;
export const DIGIT_ZERO = 0x30;
const DIGIT_NINE = 0x39;
export const POINT = 0x2e;
const PLUS = 0x2b;
const MINUS = 0x2d;

/** How many digits each part of a number may have (contract §3's grammar). */
interface DigitLimits {
  wholeDigitsMax: number;
  fractionDigitsMax: number;
}

const LATITUDE_DIGITS: DigitLimits = { wholeDigitsMax: 2, fractionDigitsMax: Infinity };
const LONGITUDE_DIGITS: DigitLimits = { wholeDigitsMax: 3, fractionDigitsMax: Infinity };
const TIME_DIGITS: DigitLimits = { wholeDigitsMax: Infinity, fractionDigitsMax: 9 };
const RADIUS_DIGITS: DigitLimits = { wholeDigitsMax: Infinity, fractionDigitsMax: Infinity };
const BOUND_DIGITS_MAX = 2;
/** Digits after the point of a time at most, and of a skew always: nanoseconds. */
const NANOSECOND_DIGITS = 9;

const LATITUDE_DEGREES_MAX = 90;
const LONGITUDE_DEGREES_MAX = 180;
const RADIUS_KM_MAX = 50;
export const BOUND_MAX = 20;
const IAMAT_PREFIX = "IAMAT ";
/** IAMAT and WHATSAT both take a command word and three fields. */
const CLIENT_MESSAGE_FIELDS = 4;
/** `AT <server> <skew> <client-id> <location> <time>`. */
const AT_LINE_FIELDS = 6;
/**
 * Digits of the receive time's whole seconds that {@link atLineBytesMax} allows for: any
 * clock before the year 3·10^12 — the real one has 10 digits until the year 2286.
 */
const RECEIVE_SECONDS_DIGITS_MAX = 20;

const digitsDecoder = new TextDecoder();

/** The contract's white space: space, tab, CR, FF, VT — and no other byte. */
function isWhiteSpace(code: number): boolean {
  return code === SPACE || code === TAB || code === CARRIAGE_RETURN || code === FORM_FEED ||
    code === VERTICAL_TAB;
}

function isDigit(code: number): boolean {
  return code >= DIGIT_ZERO && code <= DIGIT_NINE;
}

function isSign(code: number): boolean {
  return code === PLUS || code === MINUS;
}

/**
 * Splits a line into fields on runs of the contract's white space (ASCII only), ignoring it
 * at either end. Like `String.prototype.split`, stops after `limit` fields: a parser that
 * needs four asks for five, and a line of thousands of words costs it no more.
 */
export function splitFields(line: string, limit = Infinity): string[] {
  const fields: string[] = [];
  let index = 0;
  while (fields.length < limit) {
    while (index < line.length && isWhiteSpace(line.charCodeAt(index))) index++;
    if (index === line.length) break;
    const start = index;
    while (index < line.length && !isWhiteSpace(line.charCodeAt(index))) index++;
    fields.push(line.slice(start, index));
  }
  return fields;
}

/**
 * Parses one client line (terminator and the `\r` before it already removed).
 * Never throws; anything outside the grammar yields `{ kind: "invalid" }`.
 */
export function parseClientLine(line: string): ClientMessage {
  const fields = splitFields(line, CLIENT_MESSAGE_FIELDS + 1);
  switch (fields[0]) {
    case "IAMAT":
      return parseIamat(fields, line);
    case "WHATSAT":
      return parseWhatsat(fields);
    case undefined:
      return invalid("empty line");
    default:
      return invalid("unknown command");
  }
}

function parseIamat(fields: string[], line: string): IamatMessage | InvalidMessage {
  if (fields.length !== CLIENT_MESSAGE_FIELDS) return invalid("IAMAT takes 3 fields");
  const [, clientId, location, time] = fields;
  if (!isLocation(location)) return invalid("bad location");
  if (!isTime(time)) return invalid("bad time");
  return { kind: "IAMAT", clientId, location, time, echo: echoOf(line, clientId, location, time) };
}

/**
 * The echo of a valid IAMAT's fields: the line's own text after `IAMAT ` when single spaces
 * already separate them and nothing surrounds them (the usual case: nothing is copied), else
 * the fields joined. The fields are the line's white-space runs apart, so a line exactly as
 * long as they and three separators has single ones, and nothing before or after.
 */
function echoOf(line: string, clientId: string, location: string, time: string): string {
  const locationStart = IAMAT_PREFIX.length + clientId.length + 1;
  const timeStart = locationStart + location.length + 1;
  const isCanonical = line.length === timeStart + time.length && line.startsWith(IAMAT_PREFIX) &&
    line.charCodeAt(locationStart - 1) === SPACE && line.charCodeAt(timeStart - 1) === SPACE;
  return isCanonical ? line.slice(IAMAT_PREFIX.length) : `${clientId} ${location} ${time}`;
}

function parseWhatsat(fields: string[]): WhatsatMessage | InvalidMessage {
  if (fields.length !== CLIENT_MESSAGE_FIELDS) return invalid("WHATSAT takes 3 fields");
  const [, clientId, radius, bound] = fields;
  const radiusMetres = parseRadiusMetres(radius);
  if (radiusMetres === undefined) return invalid("bad radius");
  if (bound.length > BOUND_DIGITS_MAX || digitsEnd(bound, 0) !== bound.length) {
    return invalid("bad bound");
  }
  const boundCount = Number(bound);
  if (boundCount < 1 || boundCount > BOUND_MAX) return invalid("bound out of range");
  return { kind: "WHATSAT", clientId, radiusMetres, bound: boundCount };
}

function invalid(reason: string): InvalidMessage {
  return { kind: "invalid", reason };
}

/** A number of the grammar `1*DIGIT ["." 1*DIGIT]` found in a text, and where it ends. */
interface Decimal {
  negative: boolean;
  whole: string;
  /** The digits after the point; "" when there is no point. */
  fraction: string;
  /** The index just past its last digit. */
  end: number;
}

/** The index of the first byte at or after `start` that is not a digit. */
function digitsEnd(text: string, start: number): number {
  let index = start;
  while (index < text.length && isDigit(text.charCodeAt(index))) index++;
  return index;
}

/**
 * Reads `1*DIGIT ["." 1*DIGIT]` at `start`, taking every digit there is (what follows must
 * then be a non-digit, so this decides as the grammar does without ever looking back).
 * Undefined when there is no digit, a point with no digit after it, or too many digits.
 */
function readDecimal(text: string, start: number, limits: DigitLimits): Decimal | undefined {
  const wholeEnd = digitsEnd(text, start);
  const wholeDigits = wholeEnd - start;
  if (wholeDigits === 0 || wholeDigits > limits.wholeDigitsMax) return undefined;
  const whole = text.slice(start, wholeEnd);
  if (text.charCodeAt(wholeEnd) !== POINT) {
    return { negative: false, whole, fraction: "", end: wholeEnd };
  }
  const fractionEnd = digitsEnd(text, wholeEnd + 1);
  const fractionDigits = fractionEnd - wholeEnd - 1;
  if (fractionDigits === 0 || fractionDigits > limits.fractionDigitsMax) return undefined;
  const fraction = text.slice(wholeEnd + 1, fractionEnd);
  return { negative: false, whole, fraction, end: fractionEnd };
}

/** Reads `sign 1*DIGIT ["." 1*DIGIT]` at `start`. */
function readSignedDecimal(text: string, start: number, limits: DigitLimits): Decimal | undefined {
  const sign = text.charCodeAt(start);
  if (!isSign(sign)) return undefined;
  const magnitude = readDecimal(text, start + 1, limits);
  return magnitude && { ...magnitude, negative: sign === MINUS };
}

/** True when `time` is `1*DIGIT ["." 1*9DIGIT]`: POSIX seconds, up to nanoseconds. */
function isTime(time: string): boolean {
  return decimalBytesEnd(wireBytesOf(time), 0, time.length, TIME_DIGITS) === time.length;
}

/**
 * True when `location` is `±DD.ddd±DDD.ddd` on the globe, checked by the byte scanners an AT
 * line's bytes are (no string, number or object is made).
 */
export function isLocation(location: string): boolean {
  return locationBytesEnd(wireBytesOf(location), 0, location.length) === location.length;
}

/** What {@link wireBytesOf} writes short text into: reused, so a check allocates nothing. */
const scratchBytes = new Uint8Array(256);

/** Wire text as bytes for the byte scanners (valid until the next call). */
function wireBytesOf(text: string): Uint8Array {
  return wireBytesInto(text, scratchBytes);
}

/** Parses `±DD.ddd±DDD.ddd`; undefined when outside the grammar or the globe. */
export function parseLocation(location: string): Coordinates | undefined {
  const parts = readLocation(location);
  if (parts === undefined) return undefined;
  const latitude = canonicalDecimal(parts.latitude);
  const longitude = canonicalDecimal(parts.longitude);
  return {
    latitude: Number(latitude),
    longitude: Number(longitude),
    key: `${latitude},${longitude}`,
  };
}

function readLocation(location: string): { latitude: Decimal; longitude: Decimal } | undefined {
  const latitude = readSignedDecimal(location, 0, LATITUDE_DIGITS);
  if (latitude === undefined) return undefined;
  const longitude = readSignedDecimal(location, latitude.end, LONGITUDE_DIGITS);
  if (longitude === undefined || longitude.end !== location.length) return undefined;
  if (exceeds(latitude, LATITUDE_DEGREES_MAX) || exceeds(longitude, LONGITUDE_DEGREES_MAX)) {
    return undefined;
  }
  return { latitude, longitude };
}

/** The index of the first byte of `digits` that is not a zero (`digits.length` if none). */
function leadingZerosEnd(digits: string): number {
  let index = 0;
  while (index < digits.length && digits.charCodeAt(index) === DIGIT_ZERO) index++;
  return index;
}

function hasNonZeroDigit(digits: string): boolean {
  return leadingZerosEnd(digits) < digits.length;
}

/** A decimal in canonical form: no leading or trailing zeros, zero unsigned (`-0.0` → `0`). */
function canonicalDecimal({ negative, whole, fraction }: Decimal): string {
  const wholeText = whole.slice(Math.min(leadingZerosEnd(whole), whole.length - 1));
  let fractionEnd = fraction.length;
  while (fractionEnd > 0 && fraction.charCodeAt(fractionEnd - 1) === DIGIT_ZERO) fractionEnd--;
  const fractionDigits = fraction.slice(0, fractionEnd);
  const isZero = wholeText === "0" && fractionDigits === "";
  const signText = negative && !isZero ? "-" : "";
  return fractionDigits === ""
    ? `${signText}${wholeText}`
    : `${signText}${wholeText}.${fractionDigits}`;
}

/**
 * True when the magnitude of `decimal` is above the whole number `max`, exactly, for any
 * number of digits: past 15 significant whole digits it is far above every max here.
 */
function exceeds({ whole, fraction }: Decimal, max: number): boolean {
  const significant = whole.length - leadingZerosEnd(whole);
  const wholeValue = significant > 15 ? Infinity : Number(whole);
  return wholeValue > max || (wholeValue === max && hasNonZeroDigit(fraction));
}

/** Parses a radius in km (0 < r ≤ 50) and returns it in metres. */
function parseRadiusMetres(radius: string): number | undefined {
  const kilometres = readDecimal(radius, 0, RADIUS_DIGITS);
  if (kilometres === undefined || kilometres.end !== radius.length) return undefined;
  const { whole, fraction } = kilometres;
  if (exceeds(kilometres, RADIUS_KM_MAX)) return undefined;
  if (!hasNonZeroDigit(whole) && !hasNonZeroDigit(fraction)) return undefined;
  // Shift the decimal point by three digits so metres stay exact: 1.005 km → 1005 m.
  return Number(canonicalDecimal({
    negative: false,
    whole: whole + fraction.slice(0, 3).padEnd(3, "0"),
    fraction: fraction.slice(3),
    end: kilometres.end,
  }));
}

/**
 * A time of the grammar as integer nanoseconds in decimal digits, without leading zeros
 * ("" for zero).
 */
function timeNsDigits(time: string): string {
  const point = time.indexOf(".");
  const whole = point === -1 ? time : time.slice(0, point);
  const fraction = point === -1 ? "" : time.slice(point + 1);
  const digits = whole + fraction.padEnd(NANOSECOND_DIGITS, "0");
  return digits.slice(leadingZerosEnd(digits));
}

/** Orders two digit strings without leading zeros by value. */
function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The value of `digits[index]` (0 before the first digit). */
function digitAt(digits: string, index: number): number {
  return index < 0 ? 0 : digits.charCodeAt(index) - DIGIT_ZERO;
}

/**
 * `a + b`, or `a - b` when a ≥ b, for digit strings of any length: one pass from the last
 * column with a carry (or borrow). The result may start with zeros.
 */
function addOrSubtractDigits(a: string, b: string, operation: "add" | "subtract"): string {
  const columns = Math.max(a.length, b.length) + 1;
  const digits = new Uint8Array(columns);
  let carry = 0;
  for (let place = 1; place <= columns; place++) {
    const aDigit = digitAt(a, a.length - place);
    const bDigit = digitAt(b, b.length - place);
    let column = operation === "add" ? aDigit + bDigit + carry : aDigit - bDigit + carry;
    carry = column >= 10 ? 1 : column < 0 ? -1 : 0;
    column -= carry * 10;
    digits[columns - place] = DIGIT_ZERO + column;
  }
  return digitsDecoder.decode(digits);
}

/** Nanoseconds in digits as seconds with nine decimals: `263873386` → `0.263873386`. */
function secondsText(nanosecondDigits: string): string {
  const digits = nanosecondDigits.slice(leadingZerosEnd(nanosecondDigits))
    .padStart(NANOSECOND_DIGITS + 1, "0");
  return `${digits.slice(0, -NANOSECOND_DIGITS)}.${digits.slice(-NANOSECOND_DIGITS)}`;
}

/**
 * The skew of an IAMAT: the receive time (integer nanoseconds) minus the client's `time`
 * (of the grammar, any number of digits), exactly, with a sign and nine decimals:
 * `+0.263873386`, `-0.000012000`, and `+0.000000000` for zero. Linear in the digits.
 */
export function formatSkew(receivedNs: bigint, time: string): string {
  return formatSkewInDoubles(receivedNs, time) ?? formatSkewInDigits(receivedNs, time);
}

/** 10^9 as a BigInt, for splitting a receive time into seconds and nanoseconds. */
const NS_PER_SECOND_BIG = 1_000_000_000n;
const NS_PER_SECOND = 1e9;
/** Receive times below this (10^15 s) have whole seconds exact in a double. */
const RECEIVED_NS_IN_DOUBLES_MAX = 10n ** 24n;
/** Whole-second digits of a client time (leading zeros aside) exact in a double. */
const SECONDS_DIGITS_IN_DOUBLES_MAX = 15;
/** 10^k for k = 0 … 9: scales a fraction of k digits to nanoseconds. */
const FRACTION_SCALES = [1e9, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 1e2, 1e1, 1e0];

/**
 * {@link formatSkew} in plain numbers, for the usual case: a receive time from this era and a
 * client time whose whole seconds have at most 15 digits, where every whole second count and
 * difference is an integer a double holds exactly (below 2^53). Undefined outside it, for the
 * digit-string arithmetic to do.
 */
function formatSkewInDoubles(receivedNs: bigint, time: string): string | undefined {
  if (receivedNs < 0n || receivedNs >= RECEIVED_NS_IN_DOUBLES_MAX) return undefined;
  const point = time.indexOf(".");
  const wholeEnd = point === -1 ? time.length : point;
  const wholeStart = Math.min(leadingZerosEnd(time), wholeEnd);
  const fractionDigits = point === -1 ? 0 : time.length - point - 1;
  if (wholeEnd - wholeStart > SECONDS_DIGITS_IN_DOUBLES_MAX) return undefined;
  if (fractionDigits > NANOSECOND_DIGITS) return undefined;
  let clientSeconds = 0;
  for (let index = wholeStart; index < wholeEnd; index++) {
    clientSeconds = clientSeconds * 10 + (time.charCodeAt(index) - DIGIT_ZERO);
  }
  let clientNs = 0;
  for (let index = wholeEnd + 1; index < time.length; index++) {
    clientNs = clientNs * 10 + (time.charCodeAt(index) - DIGIT_ZERO);
  }
  clientNs *= FRACTION_SCALES[fractionDigits];
  let seconds = Number(receivedNs / NS_PER_SECOND_BIG) - clientSeconds;
  let ns = Number(receivedNs % NS_PER_SECOND_BIG) - clientNs;
  if (ns < 0) {
    ns += NS_PER_SECOND;
    seconds -= 1;
  }
  // seconds + ns / 10^9 with 0 ≤ ns < 10^9: negative exactly when seconds is.
  if (seconds >= 0) return `+${seconds}.${String(ns).padStart(NANOSECOND_DIGITS, "0")}`;
  if (ns === 0) return `-${-seconds}.000000000`;
  return `-${-seconds - 1}.${String(NS_PER_SECOND - ns).padStart(NANOSECOND_DIGITS, "0")}`;
}

/** {@link formatSkew} for any number of digits, in decimal digit strings. */
function formatSkewInDigits(receivedNs: bigint, time: string): string {
  const clientNs = timeNsDigits(time);
  const receivedText = (receivedNs < 0n ? -receivedNs : receivedNs).toString();
  const received = receivedText.slice(leadingZerosEnd(receivedText));
  if (receivedNs < 0n) return `-${secondsText(addOrSubtractDigits(received, clientNs, "add"))}`;
  return compareDigits(received, clientNs) >= 0
    ? `+${secondsText(addOrSubtractDigits(received, clientNs, "subtract"))}`
    : `-${secondsText(addOrSubtractDigits(clientNs, received, "subtract"))}`;
}

/** The AT line for an accepted IAMAT (no terminator). */
export function formatAtLine(
  serverName: string,
  receivedNs: bigint,
  message: IamatMessage,
): string {
  // The echo is made of the client's line (a slice of it, or of its fields): nothing more.
  return `AT ${serverName} ${formatSkew(receivedNs, message.time)} ${message.echo}`;
}

/**
 * The longest AT line, in bytes, that a server named in at most `serverNameBytesMax` bytes
 * makes from a client line of at most `lineBytesMax` bytes — for limits on what is stored
 * and sent to neighbours. Exact while the receive time is below 10^20 s.
 *
 * Derivation, with L = lineBytesMax. `IAMAT id location time` and three separators leave
 * id + location + time ≤ L − 8 bytes; the id takes at least 1 and a location at least 4
 * (`+0+0`), so the time has at most L − 13 digits before its point. The AT line is
 * `AT ` server ` ` skew ` ` id ` ` location ` ` time: server + skew + (L − 8) + 7 bytes. The
 * skew's magnitude is at most the larger of the receive time and the client's time (both
 * are ≥ 0), so its whole seconds have at most max(L − 13, 20) digits, and the skew adds a
 * sign, a point and nine decimals: server + L − 1 + 11 + max(L − 13, 20) in all. For
 * L ≥ 33 that is 2L + server − 3, reached by `IAMAT x +0+0 99…9` received at time 0.
 *
 * @example
 * ```ts
 * atLineBytesMax(65536, 64); // 131133
 * ```
 */
export function atLineBytesMax(lineBytesMax: number, serverNameBytesMax: number): number {
  const fieldsBytesMax = lineBytesMax - "IAMAT".length - 3;
  const timeWholeDigitsMax = fieldsBytesMax - "x".length - "+0+0".length;
  const skewBytesMax = 1 + Math.max(timeWholeDigitsMax, RECEIVE_SECONDS_DIGITS_MAX) + 1 +
    NANOSECOND_DIGITS;
  return "AT ".length + serverNameBytesMax + 1 + skewBytesMax + 1 + fieldsBytesMax + 2;
}

/** True when `skew` is `[+-]1*DIGIT "." 9DIGIT`, as {@link formatSkew} writes it. */
function isSkew(skew: string): boolean {
  return skewBytesEnd(wireBytesOf(skew), 0, skew.length) === skew.length;
}

/**
 * Reads an AT line as {@link formatAtLine} writes it: six fields separated by single spaces,
 * `AT`, a server name, a skew, a client id, a location and a time of the grammar. Undefined
 * when it is anything else.
 */
export function parseAtLine(atLine: string): AtLineFields | undefined {
  const fields = atLine.split(" ", AT_LINE_FIELDS + 1);
  if (fields.length !== AT_LINE_FIELDS) return undefined;
  const [command, serverName, skew, clientId, location, time] = fields;
  if (command !== "AT" || serverName === "" || clientId === "") return undefined;
  if (!isSkew(skew) || !isLocation(location) || !isTime(time)) return undefined;
  return { serverName, skew, clientId, location, time };
}

/**
 * Whether `bytes[start, end)` (wire text, one byte per character) is an AT line that
 * {@link parseAtLine} accepts: the same grammar checked on the bytes, with no string made —
 * for a restart, which checks every stored line before it serves. One pass, no look-back.
 */
export function isAtLineBytes(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start < 3 || bytes[start] !== LETTER_A || bytes[start + 1] !== LETTER_T) return false;
  if (bytes[start + 2] !== SPACE) return false;
  const serverEnd = fieldEnd(bytes, start + 3, end);
  if (serverEnd === start + 3 || serverEnd === end) return false;
  const skewEnd = skewBytesEnd(bytes, serverEnd + 1, end);
  if (skewEnd === -1 || bytes[skewEnd] !== SPACE) return false;
  const idEnd = fieldEnd(bytes, skewEnd + 1, end);
  if (idEnd === skewEnd + 1 || idEnd === end) return false;
  const locationEnd = locationBytesEnd(bytes, idEnd + 1, end);
  if (locationEnd === -1 || bytes[locationEnd] !== SPACE) return false;
  return decimalBytesEnd(bytes, locationEnd + 1, end, TIME_DIGITS) === end;
}

/** Where a location (`±DD.ddd±DDD.ddd` on the globe) at `start` ends, or -1. */
function locationBytesEnd(bytes: Uint8Array, start: number, end: number): number {
  const latitudeEnd = degreesBytesEnd(bytes, start, end, LATITUDE_DIGITS, LATITUDE_DEGREES_MAX);
  if (latitudeEnd === -1) return -1;
  return degreesBytesEnd(bytes, latitudeEnd, end, LONGITUDE_DIGITS, LONGITUDE_DEGREES_MAX);
}

const LETTER_A = 0x41;
const LETTER_T = 0x54;

/** The index of the first space at or after `start` (`end` if none): where a field ends. */
export function fieldEnd(bytes: Uint8Array, start: number, end: number): number {
  let index = start;
  while (index < end && bytes[index] !== SPACE) index++;
  return index;
}

/** The index of the first byte at or after `start` that is not a digit (at most `end`). */
function digitBytesEnd(bytes: Uint8Array, start: number, end: number): number {
  let index = start;
  while (index < end && isDigit(bytes[index])) index++;
  return index;
}

/**
 * Where `1*DIGIT ["." 1*DIGIT]` at `start` ends (taking every digit there is, as
 * `readDecimal` does), or -1 when there is none or it has too many digits.
 */
function decimalBytesEnd(
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: DigitLimits,
): number {
  const wholeEnd = digitBytesEnd(bytes, start, end);
  if (wholeEnd === start || wholeEnd - start > limits.wholeDigitsMax) return -1;
  if (wholeEnd === end || bytes[wholeEnd] !== POINT) return wholeEnd;
  const fractionEnd = digitBytesEnd(bytes, wholeEnd + 1, end);
  const fractionDigits = fractionEnd - wholeEnd - 1;
  return fractionDigits === 0 || fractionDigits > limits.fractionDigitsMax ? -1 : fractionEnd;
}

/** Where a skew (`[+-]1*DIGIT "." 9DIGIT`) at `start` ends, or -1. */
function skewBytesEnd(bytes: Uint8Array, start: number, end: number): number {
  if (start >= end || !isSign(bytes[start])) return -1;
  const skewEnd = decimalBytesEnd(bytes, start + 1, end, TIME_DIGITS);
  const point = skewEnd - NANOSECOND_DIGITS - 1;
  return skewEnd !== -1 && point > start + 1 && bytes[point] === POINT ? skewEnd : -1;
}

/**
 * Where a signed coordinate at `start` ends, or -1 when it is outside the grammar or its
 * magnitude is above `degreesMax` (whole digits are few here: their value is exact).
 */
function degreesBytesEnd(
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: DigitLimits,
  degreesMax: number,
): number {
  if (start >= end || !isSign(bytes[start])) return -1;
  const numberEnd = decimalBytesEnd(bytes, start + 1, end, limits);
  if (numberEnd === -1) return -1;
  const wholeEnd = digitBytesEnd(bytes, start + 1, numberEnd);
  let whole = 0;
  for (let index = start + 1; index < wholeEnd; index++) {
    whole = whole * 10 + bytes[index] - DIGIT_ZERO;
  }
  if (whole < degreesMax) return numberEnd;
  if (whole > degreesMax) return -1;
  for (let index = wholeEnd + 1; index < numberEnd; index++) {
    if (bytes[index] !== DIGIT_ZERO) return -1;
  }
  return numberEnd;
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
