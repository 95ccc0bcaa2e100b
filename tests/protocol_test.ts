import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  atLineBytesMax,
  type ClientMessage,
  formatAtLine,
  formatPlacesBody,
  formatSkew,
  type IamatMessage,
  isAtLineBytes,
  parseAtLine,
  parseClientLine,
  parseLocation,
} from "../lib/protocol.ts";
import { hostileAtLines, hostileLines } from "./support/hostile_lines.ts";
import { compareTimeTexts } from "../lib/store.ts";

// Lines are wire text: one UTF-16 code unit per byte (latin1). A UTF-8 NBSP is two bytes.
const NBSP_LATIN1 = "\u00a0";
const NBSP_UTF8 = "\u00c2\u00a0";

const ID = "kiwi.cs.ucla.edu";
const LOC = "+34.068930-118.445127";
const TIME = "1621464827.959498503";
/** Long runs for the table rows below; the cost of runs as long as a line: protocol_cost_test.ts. */
const RUN = 1000;
const ZEROS = "0".repeat(RUN);
const SPACES = " ".repeat(RUN);
/** The size of the worst-case lines read here (each exactly this many bytes). */
const HOSTILE_LINE_BYTES = 4096;

function iamat(clientId: string, location: string, time: string): ClientMessage {
  return { kind: "IAMAT", clientId, location, time, echo: `${clientId} ${location} ${time}` };
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
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "an IAMAT with a whole-second time",
    line: `IAMAT ${ID} ${LOC} 1700000000`,
    expected: iamat(ID, LOC, "1700000000"),
  },
  {
    name: "an IAMAT with time 0",
    line: `IAMAT ${ID} ${LOC} 0`,
    expected: iamat(ID, LOC, "0"),
  },
  {
    name: "an IAMAT with a time of leading zeros, kept verbatim",
    line: `IAMAT ${ID} ${LOC} 0005.50`,
    expected: iamat(ID, LOC, "0005.50"),
  },
  {
    name: "an IAMAT with one decimal in the time",
    line: `IAMAT ${ID} ${LOC} 5.5`,
    expected: iamat(ID, LOC, "5.5"),
  },
  {
    name: "an IAMAT with nine decimals in the time",
    line: `IAMAT ${ID} ${LOC} 0.000000001`,
    expected: iamat(ID, LOC, "0.000000001"),
  },
  {
    name: "an IAMAT with a time beyond 2^53 kept exact",
    line: `IAMAT ${ID} ${LOC} 9007199254740993.123456789`,
    expected: iamat(ID, LOC, "9007199254740993.123456789"),
  },
  {
    name: "latitude +90 exactly",
    line: `IAMAT ${ID} +90+0 5`,
    expected: iamat(ID, "+90+0", "5"),
  },
  {
    name: "latitude +90.0 (equal to 90)",
    line: `IAMAT ${ID} +90.0+0 5`,
    expected: iamat(ID, "+90.0+0", "5"),
  },
  {
    name: "latitude -90.000",
    line: `IAMAT ${ID} -90.000-0 5`,
    expected: iamat(ID, "-90.000-0", "5"),
  },
  {
    name: "longitude +180",
    line: `IAMAT ${ID} +0+180 5`,
    expected: iamat(ID, "+0+180", "5"),
  },
  {
    name: "longitude -180.0",
    line: `IAMAT ${ID} -1.5-180.0 5`,
    expected: iamat(ID, "-1.5-180.0", "5"),
  },
  {
    name: "one-digit latitude and longitude",
    line: `IAMAT ${ID} +1-2 5`,
    expected: iamat(ID, "+1-2", "5"),
  },
  {
    name: "a location with many decimals",
    line: `IAMAT ${ID} +12.123456789012345-123.000000000000001 5`,
    expected: iamat(ID, "+12.123456789012345-123.000000000000001", "5"),
  },
  {
    name: "tab separators",
    line: `IAMAT\t${ID}\t${LOC}\t${TIME}`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "CR, FF and VT as separators",
    line: `IAMAT\r${ID}\f${LOC}\v${TIME}`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "runs of mixed separators",
    line: `IAMAT \t\r\f\v ${ID}  \t  ${LOC}\v\v\f${TIME}`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "leading and trailing white space",
    line: ` \t\f\vIAMAT ${ID} ${LOC} ${TIME} \t\r\f\v`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "a trailing CR (a second CR left by the line splitter)",
    line: `IAMAT ${ID} ${LOC} ${TIME}\r`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "a client id holding a UTF-8 NBSP (an ordinary character)",
    line: `IAMAT a${NBSP_UTF8}b ${LOC} ${TIME}`,
    expected: iamat(`a${NBSP_UTF8}b`, LOC, TIME),
  },
  {
    name: "a client id holding a latin1 NBSP byte (an ordinary character)",
    line: `IAMAT a${NBSP_LATIN1}b ${LOC} ${TIME}`,
    expected: iamat(`a${NBSP_LATIN1}b`, LOC, TIME),
  },
  {
    name: "a client id of binary bytes that are not white space",
    line: `IAMAT \u0000\u0001\u007f\u0085\u00ff ${LOC} ${TIME}`,
    expected: iamat("\u0000\u0001\u007f\u0085\u00ff", LOC, TIME),
  },
  {
    name: "a client id that is a command word",
    line: `IAMAT WHATSAT ${LOC} ${TIME}`,
    expected: iamat("WHATSAT", LOC, TIME),
  },
  {
    name: "a one-byte client id",
    line: `IAMAT x ${LOC} ${TIME}`,
    expected: iamat("x", LOC, TIME),
  },
  {
    name: "a long run of spaces between fields",
    line: `IAMAT${SPACES}${ID}${SPACES}${LOC}${SPACES}${TIME}`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "long runs of white space around the fields",
    line: `${" \t\r\f\v".repeat(RUN)}IAMAT ${ID} ${LOC} ${TIME}${" \t\f\v".repeat(RUN)}`,
    expected: iamat(ID, LOC, TIME),
  },
  {
    name: "many zeros after the point in a latitude and a longitude",
    line: `IAMAT ${ID} +1.${ZEROS}1-2.${ZEROS}1 5`,
    expected: iamat(ID, `+1.${ZEROS}1-2.${ZEROS}1`, "5"),
  },
  {
    name: "latitude 90 followed by many zeros",
    line: `IAMAT ${ID} +90.${ZEROS}+0 5`,
    expected: iamat(ID, `+90.${ZEROS}+0`, "5"),
  },
  {
    name: "a time of many nines",
    line: `IAMAT ${ID} ${LOC} ${"9".repeat(RUN)}.999999999`,
    expected: iamat(ID, LOC, `${"9".repeat(RUN)}.999999999`),
  },
  {
    name: "a time of many leading zeros",
    line: `IAMAT ${ID} ${LOC} ${ZEROS}1`,
    expected: iamat(ID, LOC, `${ZEROS}1`),
  },
  {
    name: "a long client id",
    line: `IAMAT ${"x".repeat(RUN)} ${LOC} ${TIME}`,
    expected: iamat("x".repeat(RUN), LOC, TIME),
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
    name: "WHATSAT radius with many leading zeros",
    line: `WHATSAT ${ID} ${ZEROS}50 1`,
    expected: whatsat(ID, 50_000, 1),
  },
  {
    name: "WHATSAT radius 1 followed by many zeros and a 1",
    line: `WHATSAT ${ID} 1.${ZEROS}1 1`,
    expected: whatsat(ID, 1000, 1),
  },
  {
    name: "WHATSAT radius 50 followed by many zeros",
    line: `WHATSAT ${ID} 50.${ZEROS} 1`,
    expected: whatsat(ID, 50_000, 1),
  },
  {
    name: "WHATSAT with long runs of spaces",
    line: `${SPACES}WHATSAT${SPACES}${ID}${SPACES}10${SPACES}5${SPACES}`,
    expected: whatsat(ID, 10_000, 5),
  },
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

for (const { name, line, kind, echo } of hostileLines(HOSTILE_LINE_BYTES)) {
  Deno.test(`parseClientLine() reads a worst-case line (${name}) as ${kind}`, () => {
    const message = parseClientLine(line);
    assert.equal(message.kind, kind);
    if (message.kind === "IAMAT") {
      assert.equal(`${message.clientId} ${message.location} ${message.time}`, echo);
    }
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
  { name: "time 1. followed by many zeros and a 1", line: withTime(`1.${ZEROS}1`) },
  { name: "time of many digits then a point", line: withTime(`${"9".repeat(RUN)}.`) },
  { name: "time of many points", line: withTime(`1${".".repeat(RUN)}`) },
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
  { name: "latitude 90 followed by many zeros and a 1", line: withLocation(`+90.${ZEROS}1+0`) },
  { name: "longitude 180 followed by many zeros and a 1", line: withLocation(`+0-180.${ZEROS}1`) },
  { name: "a latitude of many leading zeros", line: withLocation(`+${ZEROS}1+0`) },
  { name: "a location of many signs", line: withLocation("+".repeat(RUN)) },
  { name: "a location of signed numbers repeated", line: withLocation("+1".repeat(RUN)) },
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
  { name: "radius 50 followed by many zeros and a 1", line: withRadius(`50.${ZEROS}1`) },
  { name: "radius 0 followed by many zeros", line: withRadius(`0.${ZEROS}`) },
  { name: "radius of many leading zeros then 51", line: withRadius(`${ZEROS}51`) },
  // Past 15 significant digits the whole part is not converted: it is above any radius.
  { name: "radius of 16 digits", line: withRadius("1000000000000000") },
  { name: "radius of many nines", line: withRadius("9".repeat(RUN)) },
  { name: "radius of points and digits", line: withRadius("1.1".repeat(RUN)) },
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
  { name: "bound 1. followed by many zeros and a 1", line: withBound(`1.${ZEROS}1`) },
  { name: "bound of many leading zeros", line: withBound(`${ZEROS}5`) },
  // field counts
  { name: "IAMAT alone", line: "IAMAT" },
  { name: "IAMAT with one field", line: `IAMAT ${ID}` },
  { name: "IAMAT with two fields", line: `IAMAT ${ID} ${LOC}` },
  { name: "IAMAT with four fields", line: `IAMAT ${ID} ${LOC} ${TIME} extra` },
  { name: "WHATSAT alone", line: "WHATSAT" },
  { name: "WHATSAT with two fields", line: `WHATSAT ${ID} 10` },
  { name: "WHATSAT with four fields", line: `WHATSAT ${ID} 10 5 extra` },
  { name: "IAMAT with many fields", line: `IAMAT${" a".repeat(RUN)}` },
  { name: "a long run of spaces between two words", line: `x${SPACES}y` },
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

const SKEWS: Array<{ name: string; receivedNs: bigint; time: string; expected: string }> = [
  { name: "zero as +0.000000000", receivedNs: 5_500000000n, time: "5.5", expected: "+0.000000000" },
  { name: "zero at time 0", receivedNs: 0n, time: "0", expected: "+0.000000000" },
  {
    name: "the contract's positive example",
    receivedNs: 1621464828_223371889n,
    time: TIME,
    expected: "+0.263873386",
  },
  {
    name: "the contract's negative example",
    receivedNs: 1700000000_000000000n,
    time: "1700000000.000012",
    expected: "-0.000012000",
  },
  { name: "one nanosecond", receivedNs: 1n, time: "0", expected: "+0.000000001" },
  { name: "minus one nanosecond", receivedNs: 0n, time: "0.000000001", expected: "-0.000000001" },
  { name: "one second", receivedNs: 1_000000000n, time: "0", expected: "+1.000000000" },
  {
    name: "minus one and a half seconds",
    receivedNs: 0n,
    time: "1.5",
    expected: "-1.500000000",
  },
  {
    name: "just under a second",
    receivedNs: 1_000000000n,
    time: "0.000000001",
    expected: "+0.999999999",
  },
  {
    name: "a borrow through every column",
    receivedNs: 1000_000000000n,
    time: "999.999999999",
    expected: "+0.000000001",
  },
  {
    name: "a skew of many seconds",
    receivedNs: 1700000000_123456789n,
    time: "0",
    expected: "+1700000000.123456789",
  },
  {
    name: "a negative skew of many seconds",
    receivedNs: 0n,
    time: "1700000000.000000001",
    expected: "-1700000000.000000001",
  },
  {
    name: "a time written with leading and trailing zeros",
    receivedNs: 6_000000000n,
    time: "0005.500",
    expected: "+0.500000000",
  },
  {
    name: "a client time of 40 digits",
    receivedNs: 1700000000_000000000n,
    time: "9".repeat(40),
    expected: "-9999999999999999999999999999998299999999.000000000",
  },
  {
    name: "a receive time far past a short client time",
    receivedNs: 10n ** 30n,
    time: "1",
    expected: "+999999999999999999999.000000000",
  },
  {
    name: "a receive time before the epoch",
    receivedNs: -1_000000000n,
    time: "1.5",
    expected: "-2.500000000",
  },
  {
    name: "a client time just past what a double holds exactly (2^53 + 1 s)",
    receivedNs: 0n,
    time: "9007199254740993.5",
    expected: "-9007199254740993.500000000",
  },
  {
    name: "the largest 15-digit client time, against this era's clock",
    receivedNs: 1700000000_000000001n,
    time: "999999999999999.999999999",
    expected: "-999998299999999.999999998",
  },
  {
    name: "a receive time of 2^53 + 1 s, past what a double holds exactly",
    receivedNs: 9007199254740993_000000003n,
    time: "1.000000001",
    expected: "+9007199254740992.000000002",
  },
  {
    name: "a carry through every column",
    receivedNs: -1n,
    time: "999.999999999",
    expected: "-1000.000000000",
  },
];

for (const { name, receivedNs, time, expected } of SKEWS) {
  Deno.test(`formatSkew() writes ${name}`, () => {
    assert.equal(formatSkew(receivedNs, time), expected);
  });
}

Deno.test("formatSkew() is exact for a client time as long as a line", () => {
  const time = `${"9".repeat(HOSTILE_LINE_BYTES)}.5`;
  assert.equal(formatSkew(0n, time), `-${"9".repeat(HOSTILE_LINE_BYTES)}.500000000`);
  assert.equal(
    formatSkew(1_500000000n, time),
    `-${"9".repeat(HOSTILE_LINE_BYTES - 1)}8.000000000`,
  );
  assert.equal(formatSkew(0n, `${ZEROS}1`), "-1.000000000");
});

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
    name: "one tab as a separator (a line as long as single separators would make it, or not)",
    server: "Hill",
    receivedNs: 9_000000000n,
    line: "IAMAT id\t+1+1 9",
    at: "AT Hill +0.000000000 id +1+1 9",
  },
  {
    name: "a tab before the time (a line as long as single separators would make it, or not)",
    server: "Hill",
    receivedNs: 9_000000000n,
    line: "IAMAT id +1+1\t9",
    at: "AT Hill +0.000000000 id +1+1 9",
  },
  {
    name: "two spaces after IAMAT (a line as long as single separators would make it, or not)",
    server: "Hill",
    receivedNs: 9_000000000n,
    line: "IAMAT  id +1+1 9",
    at: "AT Hill +0.000000000 id +1+1 9",
  },
  {
    name:
      "two spaces before the location (a line as long as single separators would make it, or not)",
    server: "Hill",
    receivedNs: 9_000000000n,
    line: "IAMAT id  +1+1 9",
    at: "AT Hill +0.000000000 id +1+1 9",
  },
  {
    name: "a trailing space (a line as long as single separators would make it, or not)",
    server: "Hill",
    receivedNs: 9_000000000n,
    line: "IAMAT id +1+1 9 ",
    at: "AT Hill +0.000000000 id +1+1 9",
  },
  {
    name: "a tab after IAMAT (a line as long as single separators would make it, or not)",
    server: "Hill",
    receivedNs: 9_000000000n,
    line: "IAMAT\tid +1+1 9",
    at: "AT Hill +0.000000000 id +1+1 9",
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
// Times compared as exact decimals

const EQUAL_TIMES: Array<[string, string]> = [
  ["5.5", "5.50"],
  ["5.5", "5.500000000"],
  ["5", "5.0"],
  ["5", "005"],
  ["0", "0.000000000"],
  ["1621464827.95949850", "1621464827.959498500"],
];

for (const [a, b] of EQUAL_TIMES) {
  Deno.test(`compareTimeTexts() holds ${a} and ${b} equal`, () => {
    assert.equal(compareTimeTexts(a, b), 0);
    assert.equal(compareTimeTexts(b, a), 0);
  });
}

const UNEQUAL_TIMES: Array<[string, string]> = [
  ["5.5", "5.500000001"],
  ["5", "50"],
  // Equal as doubles; different as exact decimals (each pair in increasing order).
  ["1621464827.959498503", "1621464827.959498504"],
  ["9007199254740992", "9007199254740993"],
];

for (const [a, b] of UNEQUAL_TIMES) {
  Deno.test(`compareTimeTexts() tells ${a} from ${b}`, () => {
    assert.ok(compareTimeTexts(a, b) < 0);
    assert.ok(compareTimeTexts(b, a) > 0);
  });
}

Deno.test("an IAMAT with a time outside the grammar is invalid: bad time", () => {
  for (const time of ["", "1.7e9", "+5", "-5", ".5", "5.", "0x10", "Infinity", "5.1234567891"]) {
    assert.deepEqual(parseClientLine(`IAMAT x +1+1 ${time}`), {
      kind: "invalid",
      reason: time === "" ? "IAMAT takes 3 fields" : "bad time",
    }, time);
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
    const [seconds, fraction = ""] = message.time.split(".");
    const timeNs = BigInt(seconds) * 1_000_000_000n + BigInt(fraction.padEnd(9, "0"));
    for (const receivedNs of [0n, timeNs, timeNs + 1n, 9999999999_000000000n]) {
      const fields = parseAtLine(formatAtLine("Hill", receivedNs, message));
      assert.deepEqual(fields, {
        serverName: "Hill",
        skew: formatSkew(receivedNs, message.time),
        clientId: message.clientId,
        location: message.location,
        time: message.time,
      });
    }
  });
}

Deno.test("parseAtLine() reads the contract's example field by field", () => {
  assert.deepEqual(parseAtLine(`AT Hill +0.263873386 ${ID} ${LOC} ${TIME}`), {
    serverName: "Hill",
    skew: "+0.263873386",
    clientId: ID,
    location: LOC,
    time: TIME,
  });
});

const SKEW = "+0.100000000";

const BAD_AT_LINES: Array<{ name: string; atLine: string }> = [
  { name: "an empty line", atLine: "" },
  { name: "too few fields", atLine: `AT Hill ${SKEW} ${ID} ${LOC}` },
  { name: "too many fields", atLine: `AT Hill ${SKEW} ${ID} ${LOC} ${TIME} x` },
  { name: "another first word", atLine: `IAMAT Hill ${SKEW} ${ID} ${LOC} ${TIME}` },
  { name: "a lower-case first word", atLine: `at Hill ${SKEW} ${ID} ${LOC} ${TIME}` },
  { name: "an empty server name", atLine: `AT  ${SKEW} ${ID} ${LOC} ${TIME}` },
  { name: "a skew without a sign", atLine: `AT Hill 0.100000000 ${ID} ${LOC} ${TIME}` },
  { name: "a skew of eight decimals", atLine: `AT Hill +0.10000000 ${ID} ${LOC} ${TIME}` },
  { name: "a skew of ten decimals", atLine: `AT Hill +0.1000000000 ${ID} ${LOC} ${TIME}` },
  { name: "a skew without a point", atLine: `AT Hill +100000000 ${ID} ${LOC} ${TIME}` },
  { name: "a skew without whole digits", atLine: `AT Hill +.100000000 ${ID} ${LOC} ${TIME}` },
  { name: "a skew with two signs", atLine: `AT Hill +-0.100000000 ${ID} ${LOC} ${TIME}` },
  { name: "a skew in exponent form", atLine: `AT Hill +1e1.000000000 ${ID} ${LOC} ${TIME}` },
  { name: "a bad time", atLine: `AT Hill ${SKEW} ${ID} ${LOC} 1.7e9` },
  { name: "a time of ten decimals", atLine: `AT Hill ${SKEW} ${ID} ${LOC} 1.1234567891` },
  { name: "a bad location", atLine: `AT Hill ${SKEW} ${ID} +91+0 ${TIME}` },
  { name: "an empty client id", atLine: `AT Hill ${SKEW}  ${LOC} ${TIME}` },
  { name: "a tab between fields", atLine: `AT\tHill ${SKEW} ${ID} ${LOC} ${TIME}` },
  { name: "two spaces between fields", atLine: `AT Hill  ${SKEW} ${ID} ${LOC} ${TIME}` },
  { name: "a leading space", atLine: ` AT Hill ${SKEW} ${ID} ${LOC} ${TIME}` },
  { name: "a trailing space", atLine: `AT Hill ${SKEW} ${ID} ${LOC} ${TIME} ` },
  { name: "a trailing CR", atLine: `AT Hill ${SKEW} ${ID} ${LOC} ${TIME}\r` },
];

for (const { name, atLine } of BAD_AT_LINES) {
  Deno.test(`parseAtLine() refuses ${name}`, () => {
    assert.equal(parseAtLine(atLine), undefined);
  });
}

for (const { name, atLine, valid } of hostileAtLines(HOSTILE_LINE_BYTES)) {
  Deno.test(`parseAtLine() ${valid ? "accepts" : "refuses"} a worst-case AT line: ${name}`, () => {
    assert.equal(parseAtLine(atLine) !== undefined, valid);
  });

  Deno.test(`isAtLineBytes() ${valid ? "accepts" : "refuses"} a worst-case AT line: ${name}`, () => {
    assert.equal(isAtLineBytes(Buffer.from(atLine, "latin1"), 0, atLine.length), valid);
  });
}

/** AT lines that one rule of the grammar refuses, each beside the same line made valid. */
const AT_LINE_EDGES: Array<{ name: string; valid: string; invalid: string }> = [
  {
    name: "the command",
    valid: "AT S +0.000000000 c +1+1 1",
    invalid: "At S +0.000000000 c +1+1 1",
  },
  {
    name: "an empty server",
    valid: "AT S +0.000000000 c +1+1 1",
    invalid: "AT  +0.000000000 c +1+1 1",
  },
  {
    name: "an empty id",
    valid: "AT S +0.000000000 c +1+1 1",
    invalid: "AT S +0.000000000  +1+1 1",
  },
  {
    name: "eight skew decimals",
    valid: "AT S -10.000000000 c +1+1 1",
    invalid: "AT S -10.00000000 c +1+1 1",
  },
  {
    name: "a skew without sign",
    valid: "AT S +1.000000000 c +1+1 1",
    invalid: "AT S 1.000000000 c +1+1 1",
  },
  {
    name: "latitude 90 and a bit",
    valid: "AT S +0.000000000 c -90.000+1 1",
    invalid: "AT S +0.000000000 c -90.001+1 1",
  },
  {
    name: "longitude 180 and a bit",
    valid: "AT S +0.000000000 c +1+180.0 1",
    invalid: "AT S +0.000000000 c +1+180.01 1",
  },
  {
    name: "three latitude digits",
    valid: "AT S +0.000000000 c +09+1 1",
    invalid: "AT S +0.000000000 c +009+1 1",
  },
  {
    name: "four longitude digits",
    valid: "AT S +0.000000000 c +1-099 1",
    invalid: "AT S +0.000000000 c +1-0099 1",
  },
  {
    name: "a point with no digit",
    valid: "AT S +0.000000000 c +1.5+1 1",
    invalid: "AT S +0.000000000 c +1.+1 1",
  },
  {
    name: "ten time decimals",
    valid: "AT S +0.000000000 c +1+1 1.123456789",
    invalid: "AT S +0.000000000 c +1+1 1.1234567890",
  },
  {
    name: "a seventh field",
    valid: "AT S +0.000000000 c +1+1 1",
    invalid: "AT S +0.000000000 c +1+1 1 ",
  },
  {
    name: "a time ending in a point",
    valid: "AT S +0.000000000 c +1+1 7",
    invalid: "AT S +0.000000000 c +1+1 7.",
  },
];

for (const { name, valid, invalid } of AT_LINE_EDGES) {
  Deno.test(`isAtLineBytes() and parseAtLine() agree on ${name}`, () => {
    for (const [atLine, isValid] of [[valid, true], [invalid, false]] as const) {
      assert.equal(parseAtLine(atLine) !== undefined, isValid, atLine);
      // Inside a larger buffer: nothing before `start` or from `end` on is read.
      const bytes = Buffer.from(`AT ${atLine} x`, "latin1");
      assert.equal(isAtLineBytes(bytes, 3, 3 + atLine.length), isValid, atLine);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// atLineBytesMax

/** A server name at its longest in these tests. */
const LONG_SERVER_NAME = "S".repeat(64);

/**
 * IAMATs of exactly `lineBytesMax` bytes that make the longest AT lines: the longest time (of
 * nines, whose skew at time 0 is as long), a time of `lineBytesMax - 30` digits, the longest
 * id, the longest location, and the worst-case lines of the cost paragraph.
 */
function longestIamats(lineBytesMax: number): string[] {
  const fill = (prefix: string, suffix: string, unit: string) =>
    prefix + unit.repeat(lineBytesMax - prefix.length - suffix.length) + suffix;
  return [
    fill("IAMAT x +0+0 ", "", "9"),
    `IAMAT x +0+0 ${"9".repeat(lineBytesMax - 30)}`,
    fill("IAMAT x +0+0 ", ".999999999", "9"),
    fill("IAMAT ", " +0+0 1", "x"),
    fill("IAMAT x +0.", "+0 0", "0"),
    ...hostileLines(lineBytesMax).filter(({ kind }) => kind === "IAMAT").map(({ line }) => line),
  ];
}

/** Receive times: the epoch, today, and just under 10^20 s (as far as the bound holds). */
const RECEIVE_TIMES_NS = [0n, 1_700_000_000_000_000_000n, 10n ** 29n - 1n];

for (const lineBytesMax of [64, 1024, 4096, 65536]) {
  Deno.test(`atLineBytesMax() is the longest AT line made from ${lineBytesMax}-byte lines`, () => {
    const bound = atLineBytesMax(lineBytesMax, LONG_SERVER_NAME.length);
    let longest = 0;
    for (const line of longestIamats(lineBytesMax)) {
      assert.ok(line.length <= lineBytesMax);
      for (const receivedNs of RECEIVE_TIMES_NS) {
        const atLine = formatAtLine(LONG_SERVER_NAME, receivedNs, parseIamat(line));
        assert.ok(atLine.length <= bound, `${atLine.length} > ${bound} for ${line.slice(0, 40)}`);
        longest = Math.max(longest, atLine.length);
      }
    }
    // Exact, not merely safe: the longest time at time 0 reaches it.
    assert.equal(longest, bound);
    assert.ok(bound <= 2 * lineBytesMax + LONG_SERVER_NAME.length + 64);
  });
}

Deno.test("atLineBytesMax() leaves room for a 20-digit receive time when lines are short", () => {
  const lineBytesMax = 24;
  const line = "IAMAT xxxxxxxxxxx +0+0 1";
  assert.equal(line.length, lineBytesMax);
  const atLine = formatAtLine("Hill", 10n ** 29n - 1n, parseIamat(line));
  assert.equal(atLine.length, atLineBytesMax(lineBytesMax, "Hill".length));
});
