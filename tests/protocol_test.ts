import assert from "node:assert/strict";
import {
  type ClientMessage,
  formatAtLine,
  formatPlacesBody,
  formatSkew,
  type IamatMessage,
  parseAtLine,
  parseClientLine,
  parseLocation,
  parseTimeNs,
} from "../lib/protocol.ts";

// Lines are wire text: one UTF-16 code unit per byte (latin1). A UTF-8 NBSP is two bytes.
const NBSP_LATIN1 = "\u00a0";
const NBSP_UTF8 = "\u00c2\u00a0";

const ID = "kiwi.cs.ucla.edu";
const LOC = "+34.068930-118.445127";
const TIME = "1621464827.959498503";
const TIME_NS = 1621464827_959498503n;

function iamat(clientId: string, location: string, time: string, timeNs: bigint): ClientMessage {
  return { kind: "IAMAT", clientId, location, time, timeNs };
}

function whatsat(clientId: string, radiusMetres: number, bound: number): ClientMessage {
  return { kind: "WHATSAT", clientId, radiusMetres, bound };
}

/** Parses a line that must be a valid IAMAT (for tests that need the message). */
function parseIamat(line: string): IamatMessage {
  const message = parseClientLine(line);
  assert.equal(message.kind, "IAMAT", `${JSON.stringify(line)} should be a valid IAMAT`);
  return message as IamatMessage;
}

// ---------------------------------------------------------------------------------------------
// parseClientLine: the valid space

const VALID_LINES: Array<{ name: string; line: string; expected: ClientMessage }> = [
  {
    name: "a plain IAMAT",
    line: `IAMAT ${ID} ${LOC} ${TIME}`,
    expected: iamat(ID, LOC, TIME, TIME_NS),
  },
  {
    name: "an IAMAT with a whole-second time",
    line: `IAMAT ${ID} ${LOC} 1700000000`,
    expected: iamat(ID, LOC, "1700000000", 1700000000_000000000n),
  },
  {
    name: "an IAMAT with time 0",
    line: `IAMAT ${ID} ${LOC} 0`,
    expected: iamat(ID, LOC, "0", 0n),
  },
  {
    name: "an IAMAT with a time of leading zeros, kept verbatim",
    line: `IAMAT ${ID} ${LOC} 0005.50`,
    expected: iamat(ID, LOC, "0005.50", 5_500000000n),
  },
  {
    name: "an IAMAT with one decimal in the time",
    line: `IAMAT ${ID} ${LOC} 5.5`,
    expected: iamat(ID, LOC, "5.5", 5_500000000n),
  },
  {
    name: "an IAMAT with nine decimals in the time",
    line: `IAMAT ${ID} ${LOC} 0.000000001`,
    expected: iamat(ID, LOC, "0.000000001", 1n),
  },
  {
    name: "an IAMAT with a time beyond 2^53 kept exact",
    line: `IAMAT ${ID} ${LOC} 9007199254740993.123456789`,
    expected: iamat(ID, LOC, "9007199254740993.123456789", 9007199254740993_123456789n),
  },
  {
    name: "latitude +90 exactly",
    line: `IAMAT ${ID} +90+0 5`,
    expected: iamat(ID, "+90+0", "5", 5_000000000n),
  },
  {
    name: "latitude +90.0 (equal to 90)",
    line: `IAMAT ${ID} +90.0+0 5`,
    expected: iamat(ID, "+90.0+0", "5", 5_000000000n),
  },
  {
    name: "latitude -90.000",
    line: `IAMAT ${ID} -90.000-0 5`,
    expected: iamat(ID, "-90.000-0", "5", 5_000000000n),
  },
  {
    name: "longitude +180",
    line: `IAMAT ${ID} +0+180 5`,
    expected: iamat(ID, "+0+180", "5", 5_000000000n),
  },
  {
    name: "longitude -180.0",
    line: `IAMAT ${ID} -1.5-180.0 5`,
    expected: iamat(ID, "-1.5-180.0", "5", 5_000000000n),
  },
  {
    name: "one-digit latitude and longitude",
    line: `IAMAT ${ID} +1-2 5`,
    expected: iamat(ID, "+1-2", "5", 5_000000000n),
  },
  {
    name: "a location with many decimals",
    line: `IAMAT ${ID} +12.123456789012345-123.000000000000001 5`,
    expected: iamat(ID, "+12.123456789012345-123.000000000000001", "5", 5_000000000n),
  },
  {
    name: "tab separators",
    line: `IAMAT\t${ID}\t${LOC}\t${TIME}`,
    expected: iamat(ID, LOC, TIME, TIME_NS),
  },
  {
    name: "CR, FF and VT as separators",
    line: `IAMAT\r${ID}\f${LOC}\v${TIME}`,
    expected: iamat(ID, LOC, TIME, TIME_NS),
  },
  {
    name: "runs of mixed separators",
    line: `IAMAT \t\r\f\v ${ID}  \t  ${LOC}\v\v\f${TIME}`,
    expected: iamat(ID, LOC, TIME, TIME_NS),
  },
  {
    name: "leading and trailing white space",
    line: ` \t\f\vIAMAT ${ID} ${LOC} ${TIME} \t\r\f\v`,
    expected: iamat(ID, LOC, TIME, TIME_NS),
  },
  {
    name: "a trailing CR (a second CR left by the line splitter)",
    line: `IAMAT ${ID} ${LOC} ${TIME}\r`,
    expected: iamat(ID, LOC, TIME, TIME_NS),
  },
  {
    name: "a client id holding a UTF-8 NBSP (an ordinary character)",
    line: `IAMAT a${NBSP_UTF8}b ${LOC} ${TIME}`,
    expected: iamat(`a${NBSP_UTF8}b`, LOC, TIME, TIME_NS),
  },
  {
    name: "a client id holding a latin1 NBSP byte (an ordinary character)",
    line: `IAMAT a${NBSP_LATIN1}b ${LOC} ${TIME}`,
    expected: iamat(`a${NBSP_LATIN1}b`, LOC, TIME, TIME_NS),
  },
  {
    name: "a client id of binary bytes that are not white space",
    line: `IAMAT \u0000\u0001\u007f\u0085\u00ff ${LOC} ${TIME}`,
    expected: iamat("\u0000\u0001\u007f\u0085\u00ff", LOC, TIME, TIME_NS),
  },
  {
    name: "a client id that is a command word",
    line: `IAMAT WHATSAT ${LOC} ${TIME}`,
    expected: iamat("WHATSAT", LOC, TIME, TIME_NS),
  },
  {
    name: "a one-byte client id",
    line: `IAMAT x ${LOC} ${TIME}`,
    expected: iamat("x", LOC, TIME, TIME_NS),
  },
  { name: "a plain WHATSAT", line: `WHATSAT ${ID} 10 5`, expected: whatsat(ID, 10_000, 5) },
  { name: "WHATSAT radius 50", line: `WHATSAT ${ID} 50 1`, expected: whatsat(ID, 50_000, 1) },
  { name: "WHATSAT radius 50.0", line: `WHATSAT ${ID} 50.0 1`, expected: whatsat(ID, 50_000, 1) },
  {
    name: "WHATSAT radius 50.000000",
    line: `WHATSAT ${ID} 50.000000 1`,
    expected: whatsat(ID, 50_000, 1),
  },
  { name: "WHATSAT radius 0.5", line: `WHATSAT ${ID} 0.5 1`, expected: whatsat(ID, 500, 1) },
  { name: "WHATSAT radius 0.001", line: `WHATSAT ${ID} 0.001 1`, expected: whatsat(ID, 1, 1) },
  { name: "WHATSAT radius 1.005", line: `WHATSAT ${ID} 1.005 1`, expected: whatsat(ID, 1005, 1) },
  {
    name: "WHATSAT radius 12.3456",
    line: `WHATSAT ${ID} 12.3456 1`,
    expected: whatsat(ID, 12345.6, 1),
  },
  {
    name: "WHATSAT radius with leading zeros",
    line: `WHATSAT ${ID} 0050 1`,
    expected: whatsat(ID, 50_000, 1),
  },
  { name: "WHATSAT bound 1", line: `WHATSAT ${ID} 10 1`, expected: whatsat(ID, 10_000, 1) },
  { name: "WHATSAT bound 20", line: `WHATSAT ${ID} 10 20`, expected: whatsat(ID, 10_000, 20) },
  {
    name: "WHATSAT bound 05 (two digits)",
    line: `WHATSAT ${ID} 10 05`,
    expected: whatsat(ID, 10_000, 5),
  },
  {
    name: "WHATSAT with tabs and edge white space",
    line: `\t WHATSAT\t\t${ID}\v10\f5 \r`,
    expected: whatsat(ID, 10_000, 5),
  },
  {
    name: "WHATSAT for a client id holding a UTF-8 NBSP",
    line: `WHATSAT x${NBSP_UTF8}y 10 5`,
    expected: whatsat(`x${NBSP_UTF8}y`, 10_000, 5),
  },
];

for (const { name, line, expected } of VALID_LINES) {
  Deno.test(`parseClientLine() accepts ${name}`, () => {
    assert.deepEqual(parseClientLine(line), expected);
  });
}

// ---------------------------------------------------------------------------------------------
// parseClientLine: the invalid space

function withTime(time: string): string {
  return `IAMAT ${ID} ${LOC} ${time}`;
}
function withLocation(location: string): string {
  return `IAMAT ${ID} ${location} ${TIME}`;
}
function withRadius(radius: string): string {
  return `WHATSAT ${ID} ${radius} 5`;
}
function withBound(bound: string): string {
  return `WHATSAT ${ID} 10 ${bound}`;
}

const INVALID_LINES: Array<{ name: string; line: string }> = [
  // time
  { name: "time in exponent form 1.7e9", line: withTime("1.7e9") },
  { name: "time 1e1", line: withTime("1e1") },
  { name: "time with a plus sign", line: withTime("+1700000000") },
  { name: "time with a minus sign", line: withTime("-1700000000") },
  { name: "time Infinity", line: withTime("Infinity") },
  { name: "time NaN", line: withTime("NaN") },
  { name: "time in hex 0x10", line: withTime("0x10") },
  { name: "time .5 (no whole part)", line: withTime(".5") },
  { name: "time 5. (no decimals after the point)", line: withTime("5.") },
  { name: "time with ten decimals", line: withTime("1700000000.1234567891") },
  { name: "time with two points", line: withTime("5.5.5") },
  { name: "time with a comma", line: withTime("5,5") },
  { name: "time with an underscore", line: withTime("1_000") },
  { name: "time with a UTF-8 NBSP glued on", line: withTime(`5${NBSP_UTF8}`) },
  { name: "time with a latin1 NBSP glued on", line: withTime(`${NBSP_LATIN1}5`) },
  // location
  { name: "location with only a latitude", line: withLocation("+34.068930") },
  { name: "location with a missing latitude sign", line: withLocation("34.068930-118.445127") },
  { name: "location with a missing longitude sign", line: withLocation("+34.068930118.445127") },
  { name: "location with a double sign", line: withLocation("++34+118") },
  { name: "location with a trailing sign", line: withLocation("+34+118+") },
  { name: "latitude 90.1", line: withLocation("+90.1+0") },
  { name: "latitude 90.000000001", line: withLocation("+90.000000001+0") },
  { name: "latitude -90.5", line: withLocation("-90.5+0") },
  { name: "latitude 91", line: withLocation("+91+0") },
  { name: "a three-digit latitude", line: withLocation("+100+0") },
  { name: "a three-digit latitude with leading zero", line: withLocation("+034+118") },
  { name: "longitude 180.0001", line: withLocation("+0+180.0001") },
  { name: "longitude -181", line: withLocation("+0-181") },
  { name: "a four-digit longitude", line: withLocation("+0+1000") },
  { name: "a four-digit longitude with leading zero", line: withLocation("+0+0118") },
  { name: "latitude .5", line: withLocation("+.5+0") },
  { name: "latitude 5. (no decimals after the point)", line: withLocation("+5.+0") },
  { name: "longitude .5", line: withLocation("+0+.5") },
  { name: "a latitude in exponent form", line: withLocation("+1e1+0") },
  { name: "a longitude in exponent form", line: withLocation("+0+1e1") },
  { name: "a latitude Infinity", line: withLocation("+Infinity+0") },
  { name: "a latitude in hex", line: withLocation("+0x1+0") },
  { name: "a location with two points", line: withLocation("+1.5.5+0") },
  { name: "a location with a comma", line: withLocation("+1,5+0") },
  // radius
  { name: "radius 0", line: withRadius("0") },
  { name: "radius 0.0", line: withRadius("0.0") },
  { name: "radius 00", line: withRadius("00") },
  { name: "radius 0.000", line: withRadius("0.000") },
  { name: "radius 50.0001", line: withRadius("50.0001") },
  { name: "radius 50.000000001", line: withRadius("50.000000001") },
  { name: "radius 51", line: withRadius("51") },
  { name: "radius 100", line: withRadius("100") },
  { name: "radius -1", line: withRadius("-1") },
  { name: "radius +1", line: withRadius("+1") },
  { name: "radius .5", line: withRadius(".5") },
  { name: "radius 1.", line: withRadius("1.") },
  { name: "radius 1e1", line: withRadius("1e1") },
  { name: "radius Infinity", line: withRadius("Infinity") },
  { name: "radius 0x10", line: withRadius("0x10") },
  { name: "radius 1,5", line: withRadius("1,5") },
  // bound
  { name: "bound 0", line: withBound("0") },
  { name: "bound 00", line: withBound("00") },
  { name: "bound 21", line: withBound("21") },
  { name: "bound 99", line: withBound("99") },
  { name: "bound of three digits 020", line: withBound("020") },
  { name: "bound 100", line: withBound("100") },
  { name: "bound 5.0", line: withBound("5.0") },
  { name: "bound +5", line: withBound("+5") },
  { name: "bound -1", line: withBound("-1") },
  { name: "bound 1e1", line: withBound("1e1") },
  { name: "bound 0x10", line: withBound("0x10") },
  { name: "bound .5", line: withBound(".5") },
  { name: "bound Infinity", line: withBound("Infinity") },
  // field counts
  { name: "IAMAT alone", line: "IAMAT" },
  { name: "IAMAT with one field", line: `IAMAT ${ID}` },
  { name: "IAMAT with two fields", line: `IAMAT ${ID} ${LOC}` },
  { name: "IAMAT with four fields", line: `IAMAT ${ID} ${LOC} ${TIME} extra` },
  { name: "WHATSAT alone", line: "WHATSAT" },
  { name: "WHATSAT with two fields", line: `WHATSAT ${ID} 10` },
  { name: "WHATSAT with four fields", line: `WHATSAT ${ID} 10 5 extra` },
  // commands
  { name: "a lower-case iamat", line: `iamat ${ID} ${LOC} ${TIME}` },
  { name: "a mixed-case Iamat", line: `Iamat ${ID} ${LOC} ${TIME}` },
  { name: "a lower-case whatsat", line: `whatsat ${ID} 10 5` },
  { name: "a command with a suffix", line: `IAMATX ${ID} ${LOC} ${TIME}` },
  { name: "an unknown command", line: "HELLO world" },
  { name: "an AT line", line: `AT Hill +0.263873386 ${ID} ${LOC} ${TIME}` },
  { name: "a peer hello", line: "PEER Hill 1" },
  // empty
  { name: "an empty line", line: "" },
  { name: "a line of one space", line: " " },
  { name: "a line of white space only", line: " \t\r\f\v  " },
  // separators that are not white space
  { name: "a latin1 NBSP as the first separator", line: `IAMAT${NBSP_LATIN1}${ID} ${LOC} ${TIME}` },
  { name: "a UTF-8 NBSP as the first separator", line: `IAMAT${NBSP_UTF8}${ID} ${LOC} ${TIME}` },
  { name: "a UTF-8 NBSP between id and location", line: `IAMAT ${ID}${NBSP_UTF8}${LOC} ${TIME}` },
  { name: "a UTF-8 NBSP before the bound", line: `WHATSAT ${ID} 10${NBSP_UTF8}5` },
  { name: "a NEL byte (0x85) as a separator", line: `IAMAT\u0085${ID} ${LOC} ${TIME}` },
  { name: "a UTF-8 EM SPACE as a separator", line: `IAMAT\u00e2\u0080\u0083${ID} ${LOC} ${TIME}` },
  { name: "a file-separator byte (0x1c) as a separator", line: `WHATSAT\u001c${ID} 10 5` },
  { name: "a NUL byte as a separator", line: `WHATSAT ${ID}\u000010 5` },
];

for (const { name, line } of INVALID_LINES) {
  Deno.test(`parseClientLine() refuses ${name}`, () => {
    const message = parseClientLine(line);
    assert.equal(message.kind, "invalid", `got ${JSON.stringify(message, replacer)}`);
    assert.equal(typeof (message as { reason: unknown }).reason, "string");
  });
}

function replacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}

Deno.test("parseClientLine() never throws on any single byte or pair of bytes", () => {
  for (let first = 0; first < 256; first++) {
    for (const second of [0x20, 0x30, 0x2b, 0x0a, 0xa0, 0xff]) {
      const message = parseClientLine(String.fromCharCode(first, second));
      assert.equal(message.kind, "invalid");
    }
  }
});

// ---------------------------------------------------------------------------------------------
// formatSkew

const SKEWS: Array<{ name: string; skewNs: bigint; expected: string }> = [
  { name: "zero is +0.000000000", skewNs: 0n, expected: "+0.000000000" },
  { name: "the contract's positive example", skewNs: 263873386n, expected: "+0.263873386" },
  { name: "the contract's negative example", skewNs: -12000n, expected: "-0.000012000" },
  { name: "one nanosecond", skewNs: 1n, expected: "+0.000000001" },
  { name: "minus one nanosecond", skewNs: -1n, expected: "-0.000000001" },
  { name: "one second", skewNs: 1_000000000n, expected: "+1.000000000" },
  { name: "minus one and a half seconds", skewNs: -1_500000000n, expected: "-1.500000000" },
  { name: "just under a second", skewNs: 999999999n, expected: "+0.999999999" },
  {
    name: "a skew of many seconds",
    skewNs: 1700000000_123456789n,
    expected: "+1700000000.123456789",
  },
  {
    name: "a negative skew of many seconds",
    skewNs: -1700000000_000000001n,
    expected: "-1700000000.000000001",
  },
];

for (const { name, skewNs, expected } of SKEWS) {
  Deno.test(`formatSkew() writes ${name}`, () => {
    assert.equal(formatSkew(skewNs), expected);
  });
}

// ---------------------------------------------------------------------------------------------
// formatAtLine

const AT_LINES: Array<
  { name: string; server: string; receivedNs: bigint; line: string; at: string }
> = [
  {
    name: "the contract's example",
    server: "Hill",
    receivedNs: 1621464828_223371889n,
    line: `IAMAT ${ID} ${LOC} ${TIME}`,
    at: `AT Hill +0.263873386 ${ID} ${LOC} ${TIME}`,
  },
  {
    name: "a client ahead of the server (negative skew)",
    server: "Smith",
    receivedNs: 1700000000_000000000n,
    line: `IAMAT ${ID} ${LOC} 1700000000.000012`,
    at: `AT Smith -0.000012000 ${ID} ${LOC} 1700000000.000012`,
  },
  {
    name: "equal times (zero skew)",
    server: "Jaquez",
    receivedNs: 5_500000000n,
    line: `IAMAT ${ID} ${LOC} 5.50`,
    at: `AT Jaquez +0.000000000 ${ID} ${LOC} 5.50`,
  },
  {
    name: "a location and time written with extra zeros, echoed verbatim",
    server: "Campbell",
    receivedNs: 6_000000000n,
    line: "IAMAT id +34.50-118.0 0005.500",
    at: "AT Campbell +0.500000000 id +34.50-118.0 0005.500",
  },
  {
    name: "a line with tabs and edge white space (fields single-spaced)",
    server: "Singleton",
    receivedNs: 10_000000000n,
    line: "\t IAMAT\tid\v+1+1\f\f9 \r",
    at: "AT Singleton +1.000000000 id +1+1 9",
  },
  {
    name: "a client id of non-ASCII bytes, byte for byte",
    server: "Hill",
    receivedNs: 10_000000000n,
    line: `IAMAT caf\u00c3\u00a9${NBSP_UTF8}\u00ff +1+1 10`,
    at: `AT Hill +0.000000000 caf\u00c3\u00a9${NBSP_UTF8}\u00ff +1+1 10`,
  },
];

for (const { name, server, receivedNs, line, at } of AT_LINES) {
  Deno.test(`formatAtLine() echoes ${name}`, () => {
    assert.equal(formatAtLine(server, receivedNs, parseIamat(line)), at);
  });
}

// ---------------------------------------------------------------------------------------------
// parseTimeNs

const EQUAL_TIMES: Array<[string, string]> = [
  ["5.5", "5.50"],
  ["5.5", "5.500000000"],
  ["5", "5.0"],
  ["5", "005"],
  ["0", "0.000000000"],
  ["1621464827.95949850", "1621464827.959498500"],
];

for (const [a, b] of EQUAL_TIMES) {
  Deno.test(`parseTimeNs() holds ${a} and ${b} equal`, () => {
    const aNs = parseTimeNs(a);
    assert.notEqual(aNs, undefined);
    assert.equal(aNs, parseTimeNs(b));
  });
}

const UNEQUAL_TIMES: Array<[string, string]> = [
  ["5.5", "5.500000001"],
  ["5", "50"],
  // Equal as doubles; different as exact decimals.
  ["1621464827.959498503", "1621464827.959498504"],
  ["9007199254740993", "9007199254740992"],
];

for (const [a, b] of UNEQUAL_TIMES) {
  Deno.test(`parseTimeNs() tells ${a} from ${b}`, () => {
    const aNs = parseTimeNs(a);
    const bNs = parseTimeNs(b);
    assert.notEqual(aNs, undefined);
    assert.notEqual(bNs, undefined);
    assert.notEqual(aNs, bNs);
  });
}

Deno.test("parseTimeNs() returns exact nanoseconds", () => {
  const cases: Array<[string, bigint]> = [
    ["0", 0n],
    ["0.000000001", 1n],
    ["5.5", 5_500000000n],
    [TIME, TIME_NS],
    ["9007199254740993", 9007199254740993_000000000n],
  ];
  for (const [time, ns] of cases) assert.equal(parseTimeNs(time), ns, time);
});

Deno.test("parseTimeNs() returns undefined outside the time grammar", () => {
  for (const time of ["", "1.7e9", "+5", "-5", ".5", "5.", "0x10", "Infinity", "5.1234567891"]) {
    assert.equal(parseTimeNs(time), undefined, time);
  }
});

// ---------------------------------------------------------------------------------------------
// parseLocation

const EQUAL_LOCATIONS: Array<[string, string]> = [
  ["+34.50-118.0", "+34.5-118"],
  ["+34.5-118", "+34.500000-118.000000"],
  ["+01+001", "+1+1"],
  ["-0+0", "+0.0-0.00"],
  ["+90.0-180", "+90-180.000"],
];

for (const [a, b] of EQUAL_LOCATIONS) {
  Deno.test(`parseLocation() gives ${a} and ${b} the same key`, () => {
    const aCoordinates = parseLocation(a);
    const bCoordinates = parseLocation(b);
    assert.ok(aCoordinates !== undefined && bCoordinates !== undefined);
    assert.equal(aCoordinates.key, bCoordinates.key);
    assert.equal(aCoordinates.latitude, bCoordinates.latitude);
    assert.equal(aCoordinates.longitude, bCoordinates.longitude);
  });
}

const UNEQUAL_LOCATIONS: Array<[string, string]> = [
  ["+34.5-118", "+34.51-118"],
  ["+34.5-118", "-34.5-118"],
  ["+34.5-118", "+34.5+118"],
  ["+1+11", "+11+1"],
  ["+34.068930000000001-118", "+34.06893-118"],
];

for (const [a, b] of UNEQUAL_LOCATIONS) {
  Deno.test(`parseLocation() gives ${a} and ${b} different keys`, () => {
    const aCoordinates = parseLocation(a);
    const bCoordinates = parseLocation(b);
    assert.ok(aCoordinates !== undefined && bCoordinates !== undefined);
    assert.notEqual(aCoordinates.key, bCoordinates.key);
  });
}

Deno.test("parseLocation() returns the latitude and longitude as numbers", () => {
  const coordinates = parseLocation(LOC);
  assert.ok(coordinates !== undefined);
  assert.equal(coordinates.latitude, 34.06893);
  assert.equal(coordinates.longitude, -118.445127);
});

Deno.test("parseLocation() returns undefined outside the grammar or the globe", () => {
  for (const location of ["", "+34", "34-118", "+90.1+0", "-91+0", "+0+180.0001", "+100+0"]) {
    assert.equal(parseLocation(location), undefined, location);
  }
});

// ---------------------------------------------------------------------------------------------
// formatPlacesBody

function results(count: number): Array<{ name: string; place_id: string }> {
  return Array.from({ length: count }, (_, index) => ({
    name: `place ${index}`,
    place_id: `id${index}`,
  }));
}

for (
  const [available, bound, kept] of [[20, 5, 5], [20, 20, 20], [25, 20, 20], [3, 10, 3], [0, 1, 0]]
) {
  Deno.test(`formatPlacesBody() keeps ${kept} of ${available} results for bound ${bound}`, () => {
    const body = { html_attributions: [], results: results(available), status: "OK" };
    const parsed = JSON.parse(formatPlacesBody(body, bound));
    assert.deepEqual(parsed.results, results(available).slice(0, kept));
    assert.equal(parsed.status, "OK");
  });
}

Deno.test("formatPlacesBody() keeps the keys in their order and the other fields unchanged", () => {
  const body = {
    html_attributions: ["<a>data</a>"],
    next_page_token: "token-1",
    results: results(4),
    status: "OK",
    extra: { nested: [1, 2, 3] },
  };
  const parsed = JSON.parse(formatPlacesBody(body, 2));
  assert.deepEqual(Object.keys(parsed), [
    "html_attributions",
    "next_page_token",
    "results",
    "status",
    "extra",
  ]);
  assert.deepEqual(parsed, { ...body, results: results(2) });
});

Deno.test("formatPlacesBody() holds no empty line, even when upstream strings hold one", () => {
  const body = {
    html_attributions: ["line one\n\nline two"],
    results: [{ name: "a\n\nb", vicinity: "\r\n\r\n" }],
    status: "OK",
  };
  const text = formatPlacesBody(body, 20);
  assert.equal(text.includes("\n\n"), false);
  assert.equal(text.includes("\n"), false);
  assert.deepEqual(JSON.parse(text), body);
});

Deno.test("formatPlacesBody() keeps non-ASCII text as characters", () => {
  const body = {
    html_attributions: [],
    results: [{ name: "Café Zürich 東京 🍣" }],
    status: "OK",
  };
  const text = formatPlacesBody(body, 1);
  assert.ok(text.includes("Café Zürich 東京 🍣"), text);
});

Deno.test("formatPlacesBody() does not cut the body it was given (shared by other waiters)", () => {
  const body = { html_attributions: [], results: results(20), status: "OK" };
  formatPlacesBody(body, 3);
  assert.equal(body.results.length, 20);
  assert.equal(JSON.parse(formatPlacesBody(body, 20)).results.length, 20);
});

Deno.test("formatPlacesBody() passes a status other than OK through", () => {
  for (const status of ["ZERO_RESULTS", "OVER_QUERY_LIMIT", "REQUEST_DENIED", "INVALID_REQUEST"]) {
    const body = { html_attributions: [], results: [], status };
    assert.deepEqual(JSON.parse(formatPlacesBody(body, 5)), body);
  }
});

// ---------------------------------------------------------------------------------------------
// parseAtLine

const ROUND_TRIPS = [
  `IAMAT ${ID} ${LOC} ${TIME}`,
  "IAMAT id +34.50-118.0 0005.500",
  "IAMAT x -90+180 0",
  `IAMAT caf\u00c3\u00a9${NBSP_UTF8}\u00ff\u0000 +1+1 10.000000001`,
];

for (const line of ROUND_TRIPS) {
  Deno.test(`parseAtLine() recovers the fields formatAtLine() wrote for ${JSON.stringify(line)}`, () => {
    const message = parseIamat(line);
    for (const receivedNs of [0n, message.timeNs, message.timeNs + 1n, 9999999999_000000000n]) {
      const fields = parseAtLine(formatAtLine("Hill", receivedNs, message));
      assert.deepEqual(fields, {
        clientId: message.clientId,
        location: message.location,
        timeNs: message.timeNs,
      });
    }
  });
}

const BAD_AT_LINES: Array<{ name: string; atLine: string }> = [
  { name: "an empty line", atLine: "" },
  { name: "too few fields", atLine: `AT Hill +0.1 ${ID} ${LOC}` },
  { name: "too many fields", atLine: `AT Hill +0.1 ${ID} ${LOC} ${TIME} x` },
  { name: "another first word", atLine: `IAMAT Hill +0.1 ${ID} ${LOC} ${TIME}` },
  { name: "a bad time", atLine: `AT Hill +0.1 ${ID} ${LOC} 1.7e9` },
  { name: "a bad location", atLine: `AT Hill +0.1 ${ID} +91+0 ${TIME}` },
  { name: "an empty client id", atLine: `AT Hill +0.1  ${LOC} ${TIME}` },
];

for (const { name, atLine } of BAD_AT_LINES) {
  Deno.test(`parseAtLine() refuses ${name}`, () => {
    assert.equal(parseAtLine(atLine), undefined);
  });
}
