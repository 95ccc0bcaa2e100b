/**
 * The client protocol's cost (contract §3): handling a line costs time linear in its length.
 * For every worst-case line of tests/support/hostile_lines.ts — parsed, and for an IAMAT its
 * AT line formatted and read back as a WHATSAT reads it — and every worst-case AT line a
 * neighbour may send, the cost per byte at 64 KiB is compared with that at 4 KiB: linear
 * work keeps the ratio near 1, a quadratic scan makes it ~16. Only that ratio is asserted,
 * never a time, so a slow or busy machine cannot fail it.
 */
import assert from "node:assert/strict";
import { formatAtLine, parseAtLine, parseClientLine, parseLocation } from "../lib/protocol.ts";
import { hostileAtLines, hostileLines } from "./support/hostile_lines.ts";

const SMALL_BYTES = 4 * 1024;
const LARGE_BYTES = 64 * 1024;
/** Cost per byte at 64 KiB over that at 4 KiB still taken as linear (quadratic gives ~16). */
const PER_BYTE_RATIO_MAX = 4;
/** Bytes handled per timed sample: many runs of a 4 KiB line, so the timer's grain is noise. */
const SAMPLE_BYTES = 256 * 1024;
/** Samples of which the best counts: the others met a collection or another process. */
const SAMPLES_MAX = 15;
/** Sampling stops after this long, so a quadratic case fails in seconds rather than minutes. */
const SAMPLING_MS_MAX = 2000;
/** A clock in nanoseconds near today's, so skews are long only when the client's time is. */
const RECEIVED_NS = 1_700_000_000_000_000_000n;

/** The cost per byte, in nanoseconds, of one sample: `handle(text)` over SAMPLE_BYTES. */
function sampleNsPerByte(handle: (text: string) => number, text: string): number {
  const runs = Math.max(1, Math.round(SAMPLE_BYTES / text.length));
  let checksum = 0;
  const startMs = performance.now();
  for (let run = 0; run < runs; run++) checksum += handle(text);
  const elapsedMs = performance.now() - startMs;
  // Using every result keeps the compiler from dropping work whose result it could see unused.
  assert.ok(checksum > 0);
  return elapsedMs * 1e6 / (runs * text.length);
}

/**
 * Fails unless handling `large` costs at most PER_BYTE_RATIO_MAX times more per byte than
 * `small`. Samples of the two alternate, so both meet the same load from other processes,
 * and the best of each counts; sampling stops as soon as the ratio is under the limit.
 */
function assertLinear(handle: (text: string) => number, small: string, large: string): void {
  // Run both once first: the first calls pay for compilation, not for the input.
  handle(small);
  handle(large);
  const startedMs = performance.now();
  let smallNsPerByte = Infinity;
  let largeNsPerByte = Infinity;
  for (let sample = 0; sample < SAMPLES_MAX; sample++) {
    smallNsPerByte = Math.min(smallNsPerByte, sampleNsPerByte(handle, small));
    largeNsPerByte = Math.min(largeNsPerByte, sampleNsPerByte(handle, large));
    if (largeNsPerByte / smallNsPerByte < PER_BYTE_RATIO_MAX) return;
    if (performance.now() - startedMs > SAMPLING_MS_MAX) break;
  }
  assert.fail(
    `${smallNsPerByte.toFixed(2)} ns/byte at ${small.length} bytes, ` +
      `${largeNsPerByte.toFixed(2)} ns/byte at ${large.length}: ` +
      `${(largeNsPerByte / smallNsPerByte).toFixed(1)}× (limit ${PER_BYTE_RATIO_MAX}×), ` +
      "which is not linear",
  );
}

/** What a server does with a client line: parse it; for an IAMAT, its AT line both ways. */
function handleClientLine(line: string): number {
  const message = parseClientLine(line);
  if (message.kind !== "IAMAT") return message.kind.length;
  const atLine = formatAtLine("Hill", RECEIVED_NS, message);
  // A WHATSAT reads the location of the AT line it holds.
  const coordinates = parseLocation(parseAtLine(atLine)!.location)!;
  return atLine.length + coordinates.key.length;
}

/** What a server does with an AT line from a neighbour or its data dir. */
function handleAtLine(atLine: string): number {
  return parseAtLine(atLine)?.clientId.length ?? 1;
}

const smallLines = hostileLines(SMALL_BYTES);
const largeLines = hostileLines(LARGE_BYTES);
for (const [index, { name, kind }] of smallLines.entries()) {
  Deno.test(`a client line costs linear time: ${name}`, () => {
    const [small, large] = [smallLines[index].line, largeLines[index].line];
    assert.equal(parseClientLine(large).kind, kind);
    assertLinear(handleClientLine, small, large);
  });
}

const smallAtLines = hostileAtLines(SMALL_BYTES);
const largeAtLines = hostileAtLines(LARGE_BYTES);
for (const [index, { name, valid }] of smallAtLines.entries()) {
  Deno.test(`an AT line costs linear time: ${name}`, () => {
    const [small, large] = [smallAtLines[index].atLine, largeAtLines[index].atLine];
    assert.equal(parseAtLine(large) !== undefined, valid);
    assertLinear(handleAtLine, small, large);
  });
}
