/**
 * The peer line format (lib/peer_protocol.ts): every valid line's message, a table of bad
 * lines each with its reason, format → parse round trips, the peer line limit against the
 * longest AT line, and parsing cost linear in the line's length.
 */
import assert from "node:assert/strict";
import {
  formatPeerLine,
  type ParsedPeerLine,
  parsePeerLine,
  PEER_PROTOCOL_VERSION,
  peerLineBytesMax,
  type PeerMessage,
  startsAsPeerHello,
} from "../lib/peer_protocol.ts";
import { formatAtLine, parseClientLine } from "../lib/protocol.ts";

const EPOCH = "0123456789abcdef";
const OTHER_EPOCH = "fedcba9876543210";
const HEX_64 = "0123456789abcdef".repeat(4);
const AT_LINE = "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997";

const VALID: Array<{ line: string; message: ParsedPeerLine }> = [
  { line: "PEER Hill 2", message: { kind: "PEER", name: "Hill", version: "2" } },
  // Another version parses, so that the refusal can name it.
  { line: "PEER Hill 1", message: { kind: "PEER", name: "Hill", version: "1" } },
  { line: `CHALLENGE ${HEX_64}`, message: { kind: "CHALLENGE", nonce: HEX_64 } },
  { line: `PROOF ${HEX_64}`, message: { kind: "PROOF", proof: HEX_64 } },
  {
    line: `HAVE ${EPOCH} ${OTHER_EPOCH} 42`,
    message: { kind: "HAVE", epoch: EPOCH, epochKnownOfYou: OTHER_EPOCH, seqKnownOfYou: 42 },
  },
  {
    line: `HAVE ${EPOCH} - 0`,
    message: { kind: "HAVE", epoch: EPOCH, epochKnownOfYou: undefined, seqKnownOfYou: 0 },
  },
  {
    line: `U 7 ${AT_LINE}`,
    message: { kind: "U", seq: 7, atLine: AT_LINE, clientId: "kiwi.cs.ucla.edu" },
  },
  {
    line: `U ${Number.MAX_SAFE_INTEGER} ${AT_LINE}`,
    message: {
      kind: "U",
      seq: Number.MAX_SAFE_INTEGER,
      atLine: AT_LINE,
      clientId: "kiwi.cs.ucla.edu",
    },
  },
  { line: "SYNCED 0", message: { kind: "SYNCED", seq: 0 } },
  { line: "SYNCED 123456", message: { kind: "SYNCED", seq: 123456 } },
  { line: "HB", message: { kind: "HB" } },
];

for (const { line, message } of VALID) {
  Deno.test(`parsePeerLine() reads ${JSON.stringify(line.slice(0, 40))}`, () => {
    assert.deepEqual(parsePeerLine(line), message);
  });
}

const BAD: Array<{ line: string; reason: string }> = [
  { line: "", reason: "empty line" },
  { line: " HB", reason: "empty field" },
  { line: "HELLO Hill 2", reason: "unknown command" },
  { line: "peer Hill 2", reason: "unknown command" },
  { line: "HB\t", reason: "unknown command" },
  // Field counts.
  { line: "PEER", reason: "PEER takes 2 fields" },
  { line: "PEER Hill", reason: "PEER takes 2 fields" },
  { line: "PEER Hill 2 x", reason: "PEER takes 2 fields" },
  { line: "CHALLENGE", reason: "CHALLENGE takes 1 field" },
  { line: `CHALLENGE ${HEX_64} ${HEX_64}`, reason: "CHALLENGE takes 1 field" },
  { line: "PROOF", reason: "PROOF takes 1 field" },
  { line: `HAVE ${EPOCH} - `, reason: "empty field" },
  { line: `HAVE ${EPOCH} -`, reason: "HAVE takes 3 fields" },
  { line: `HAVE ${EPOCH} - 0 0`, reason: "HAVE takes 3 fields" },
  { line: "U 7", reason: "U takes 2 fields" },
  { line: "U", reason: "U takes 2 fields" },
  { line: "SYNCED", reason: "SYNCED takes 1 field" },
  { line: "SYNCED 1 2", reason: "SYNCED takes 1 field" },
  { line: "HB 1", reason: "HB takes 0 fields" },
  { line: "HB ", reason: "HB takes 0 fields" },
  // Extra spaces and empty fields.
  { line: "PEER  Hill 2", reason: "empty field" },
  { line: "PEER Hill  2", reason: "empty field" },
  { line: "PEER Hill 2 ", reason: "empty field" },
  { line: "SYNCED ", reason: "empty field" },
  { line: "SYNCED  1", reason: "empty field" },
  { line: `U  7 ${AT_LINE}`, reason: "empty field" },
  { line: "U 7 ", reason: "empty field" },
  // Versions.
  { line: "PEER Hill x", reason: "bad version" },
  { line: "PEER Hill +2", reason: "bad version" },
  { line: "PEER Hill 2.0", reason: "bad version" },
  { line: "PEER Hill 1234567890", reason: "bad version" },
  // Nonces and proofs.
  { line: `CHALLENGE ${HEX_64.slice(1)}`, reason: "bad nonce" },
  { line: `CHALLENGE ${HEX_64.toUpperCase()}`, reason: "bad nonce" },
  { line: `PROOF ${HEX_64}0`, reason: "bad proof" },
  { line: `PROOF ${"g".repeat(64)}`, reason: "bad proof" },
  // Epochs.
  { line: `HAVE ${EPOCH.slice(1)} - 0`, reason: "bad epoch" },
  { line: `HAVE ${EPOCH.toUpperCase()} - 0`, reason: "bad epoch" },
  { line: `HAVE - - 0`, reason: "bad epoch" },
  { line: `HAVE ${EPOCH} ${EPOCH}0 3`, reason: "bad epoch known of you" },
  { line: `HAVE ${EPOCH} - 3`, reason: "a sequence number without an epoch" },
  // Sequence numbers: signs, a leading `+`, exponents, huge numbers, leading zeros.
  { line: "SYNCED -1", reason: "bad sequence number" },
  { line: "SYNCED +1", reason: "bad sequence number" },
  { line: "SYNCED 1e3", reason: "bad sequence number" },
  { line: "SYNCED 0x10", reason: "bad sequence number" },
  { line: "SYNCED 1.0", reason: "bad sequence number" },
  { line: "SYNCED 007", reason: "bad sequence number" },
  { line: "SYNCED 9007199254740992", reason: "bad sequence number" },
  { line: `SYNCED ${"9".repeat(400)}`, reason: "bad sequence number" },
  { line: `HAVE ${EPOCH} ${OTHER_EPOCH} -0`, reason: "bad sequence number" },
  { line: `U 0 ${AT_LINE}`, reason: "bad sequence number" },
  { line: `U +7 ${AT_LINE}`, reason: "bad sequence number" },
  { line: `U 1e3 ${AT_LINE}`, reason: "bad sequence number" },
  // AT lines: cut, with a field missing or doubled, with a bad time or skew.
  { line: `U 7 ${AT_LINE.slice(0, 40)}`, reason: "bad AT line" },
  { line: `U 7 ${AT_LINE.slice(0, AT_LINE.lastIndexOf(" "))}`, reason: "bad AT line" },
  { line: `U 7 ${AT_LINE.replace("AT ", "AT  ")}`, reason: "bad AT line" },
  { line: `U 7 ${AT_LINE} extra`, reason: "bad AT line" },
  { line: `U 7 ${AT_LINE.replace("1520023934.918963997", "152x")}`, reason: "bad AT line" },
  { line: `U 7 ${AT_LINE.replace("+0.263873386", "0.263873386")}`, reason: "bad AT line" },
  { line: `U 7 ${AT_LINE.replace("AT ", "IAMAT ")}`, reason: "bad AT line" },
];

Deno.test("parsePeerLine() refuses each bad line with its reason", () => {
  for (const { line, reason } of BAD) {
    assert.deepEqual(parsePeerLine(line), { kind: "invalid", reason }, JSON.stringify(line));
  }
});

Deno.test("formatPeerLine() and parsePeerLine() round-trip every message", () => {
  const messages: PeerMessage[] = [
    { kind: "PEER", name: "Singleton", version: PEER_PROTOCOL_VERSION },
    { kind: "CHALLENGE", nonce: HEX_64 },
    { kind: "PROOF", proof: HEX_64 },
    { kind: "HAVE", epoch: EPOCH, epochKnownOfYou: OTHER_EPOCH, seqKnownOfYou: 9 },
    { kind: "HAVE", epoch: EPOCH, epochKnownOfYou: undefined, seqKnownOfYou: 0 },
    { kind: "U", seq: 1, atLine: AT_LINE },
    { kind: "SYNCED", seq: Number.MAX_SAFE_INTEGER },
    { kind: "HB" },
  ];
  for (const message of messages) {
    const line = formatPeerLine(message);
    assert.ok(line.endsWith("\n") && line.indexOf("\n") === line.length - 1, line);
    const parsed = parsePeerLine(line.slice(0, -1));
    const expected = message.kind === "U" ? { ...message, clientId: "kiwi.cs.ucla.edu" } : message;
    assert.deepEqual(parsed, expected);
  }
});

Deno.test("startsAsPeerHello() is true for any line whose first field is PEER", () => {
  for (const line of ["PEER", "PEER Hill 2", "PEER x"]) assert.ok(startsAsPeerHello(line), line);
  for (const line of ["PEERS", " PEER Hill 2", "IAMAT PEER +1+1 1", "peer Hill 2"]) {
    assert.ok(!startsAsPeerHello(line), line);
  }
});

Deno.test("peerLineBytesMax() takes the U line of the longest IAMAT a client may send", () => {
  const lineBytesMax = 4096;
  const serverName = "Singleton";
  const limit = peerLineBytesMax(lineBytesMax, serverName.length);
  // A long time makes a long skew: the AT line is far longer than the client's line.
  const longest = [
    `IAMAT x +0+0 ${"9".repeat(lineBytesMax - "IAMAT x +0+0 ".length)}`,
    `IAMAT x +0+0 ${"9".repeat(lineBytesMax - "IAMAT x +0+0 .999999999".length)}.999999999`,
    `IAMAT ${"i".repeat(lineBytesMax - "IAMAT  +0+0 0".length)} +0+0 0`,
  ];
  for (const iamat of longest) {
    assert.equal(iamat.length, lineBytesMax);
    const message = parseClientLine(iamat);
    assert.equal(message.kind, "IAMAT");
    if (message.kind !== "IAMAT") continue;
    const atLine = formatAtLine(serverName, 1_700_000_000_000_000_000n, message);
    const line = formatPeerLine({ kind: "U", seq: Number.MAX_SAFE_INTEGER, atLine });
    assert.ok(line.length - 1 <= limit, `${line.length - 1} > ${limit}`);
    assert.equal(parsePeerLine(line.slice(0, -1)).kind, "U");
  }
  // The time of nines makes an AT line nearly twice the client line: the bound is tight.
  assert.ok(limit < 2 * lineBytesMax + 128, `${limit}`);
});

/** Lines of `bytes` bytes that make a parser work hardest, per command. */
function worstLines(bytes: number): string[] {
  const pad = (prefix: string, filler: string, suffix = "") =>
    prefix + filler.repeat(Math.ceil((bytes - prefix.length - suffix.length) / filler.length))
      .slice(0, bytes - prefix.length - suffix.length) +
    suffix;
  return [
    pad("U 7 AT Hill +0.000000001 ", "i", " +1+1 1"), // a long id
    pad("U 7 AT Hill +0.000000001 x +1+1 ", "9"), // a long time
    pad("U 7 AT Hill +", "9", ".000000001 x +1+1 1"), // a long skew
    pad("U 7 AT Hill +0.000000001 x +1.", "0", "+1 1"), // a long location
    pad("U ", "9", ` ${AT_LINE}`), // a long sequence number
    pad("HAVE ", " "), // spaces only
    pad("HAVE ", "a "), // many fields
    pad("PEER ", "x", " 2"), // a long name
    pad("SYNCED ", "1"),
    pad("CHALLENGE ", "a"),
    pad("", " "),
  ];
}

/** Nanoseconds per byte to parse `lines`, the best of a few rounds of enough repetitions. */
function parseCostNsPerByte(lines: string[]): number {
  const bytes = lines.reduce((sum, line) => sum + line.length, 0);
  const repetitions = Math.max(1, Math.ceil(4_000_000 / bytes));
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    for (let repetition = 0; repetition < repetitions; repetition++) {
      for (const line of lines) parsePeerLine(line);
    }
    best = Math.min(best, (performance.now() - started) * 1e6 / (repetitions * bytes));
  }
  return best;
}

Deno.test("parsePeerLine() costs time linear in the line's length, whatever the line", () => {
  // Each kind of line on its own, so one quadratic case is not hidden by the others.
  const small = worstLines(4 * 1024);
  const large = worstLines(64 * 1024);
  for (const [index, line] of small.entries()) {
    parseCostNsPerByte([line]); // warm up the JIT for this shape
    const ratio = parseCostNsPerByte([large[index]]) / parseCostNsPerByte([line]);
    assert.ok(ratio < 4, `line kind ${index}: per-byte cost ×${ratio.toFixed(1)} at 16× length`);
  }
});
