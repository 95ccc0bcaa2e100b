/**
 * Property tests (fast-check) of the client protocol, contract §3: every valid IAMAT and
 * WHATSAT the grammar allows is accepted with its fields echoed verbatim; an AT line reads
 * back to the fields it was made from; the skew is exact for any clock and client time, however
 * many digits; no AT line is longer than `atLineBytesMax` allows;
 * every line one mutation away from valid — for each kind of fault — is refused, answered
 * `? ` + the line, and stores nothing; no input whatever makes a parse function throw; and
 * the line splitter cuts any bytes fed in any chunks into the same lines. A failure prints
 * the seed and the counterexample.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { getLogger } from "@logtape/logtape";
import fc from "fast-check";
import { Counters } from "../lib/counters.ts";
import { type Line, LineSplitter } from "../lib/lines.ts";
import type { PlacesProvider } from "../lib/places/provider.ts";
import { SharedLookups } from "../lib/places/shared.ts";
import {
  atLineBytesMax,
  formatAtLine,
  formatSkew,
  type IamatMessage,
  isAtLineBytes,
  isLocation,
  parseAtLine,
  parseClientLine,
  parseLocation,
  splitFields,
} from "../lib/protocol.ts";
import { HerdService } from "../lib/service.ts";
import { ClientStore } from "../lib/store.ts";
import {
  clientId,
  iamatCase,
  INVALID_CASES,
  lineByte,
  time,
  whatsatCase,
} from "./support/protocol_arbitraries.ts";
import { wireBytes, wireText } from "./support/wire_client.ts";

const RUNS = { numRuns: 1000 };
const SERVER = "Smith";

/** A server name: any bytes but a space, the one separator of an AT line. */
const serverName = fc.string({
  unit: fc.integer({ min: 0x21, max: 0xff }).map((code) => String.fromCharCode(code)),
  minLength: 1,
});

/** A clock in integer nanoseconds: near the client's time, or anywhere. */
function clockNear(clientNs: bigint): fc.Arbitrary<bigint> {
  return fc.oneof(
    fc.bigInt(-(10n ** 12n), 10n ** 12n).map((offset) => clientNs + offset),
    fc.bigInt(0n, 10n ** 22n),
  );
}

/**
 * The skew as the contract writes it, built from the digits: sign, then the magnitude's
 * digits with a point before the last nine.
 */
/** A time of the grammar as exact nanoseconds, by BigInt: fine as a reference in a test. */
function referenceTimeNs(time: string): bigint {
  const [seconds, fraction = ""] = time.split(".");
  return BigInt(seconds) * 1_000_000_000n + BigInt(fraction.padEnd(9, "0"));
}

function skewReference(clockNs: bigint, clientNs: bigint): string {
  const skewNs = clockNs - clientNs;
  const magnitude = (skewNs < 0n ? -skewNs : skewNs).toString().padStart(10, "0");
  return `${skewNs < 0n ? "-" : "+"}${magnitude.slice(0, -9)}.${magnitude.slice(-9)}`;
}

/** A service on an empty store with a fixed clock; WHATSAT lookups answer at once. */
function newService(clockNs = 0n): { service: HerdService; store: ClientStore } {
  const store = new ClientStore({ clientsMax: 1000 });
  const counters = new Counters();
  const provider: PlacesProvider = {
    name: "offline",
    lookup: () => Promise.resolve({ html_attributions: [], results: [], status: "ZERO_RESULTS" }),
  };
  const service = new HerdService({
    serverName: SERVER,
    store,
    places: new SharedLookups(provider, counters),
    placesTimeoutMs: 1000,
    clockNs: () => clockNs,
    flood: () => {},
    logger: getLogger(["herd", "property-test"]),
    counters,
  });
  return { service, store };
}

/** The service's immediate reply to `line`, as wire text. */
function replyNow(service: HerdService, line: string): string {
  const reply = service.handleLine(line, { signal: new AbortController().signal });
  assert.ok(typeof reply === "string", `${JSON.stringify(line)} got no immediate reply`);
  return reply;
}

Deno.test("parseClientLine() accepts every valid IAMAT and keeps its fields verbatim", () => {
  fc.assert(
    fc.property(iamatCase(), ({ line, clientId, location, time }) => {
      const echo = `${clientId} ${location} ${time}`;
      assert.deepEqual(parseClientLine(line), { kind: "IAMAT", clientId, location, time, echo });
    }),
    RUNS,
  );
});

Deno.test("parseClientLine() accepts every valid WHATSAT with its exact radius and bound", () => {
  fc.assert(
    fc.property(whatsatCase(), ({ line, clientId, radiusMetres, bound }) => {
      assert.deepEqual(parseClientLine(line), { kind: "WHATSAT", clientId, radiusMetres, bound });
    }),
    RUNS,
  );
});

Deno.test("parseAtLine() reads back the fields of any AT line formatAtLine() wrote", () => {
  const atLineCase = iamatCase().chain((iamat) =>
    fc.tuple(fc.constant(iamat), serverName, clockNear(iamat.timeNs))
  );
  fc.assert(
    fc.property(atLineCase, ([iamat, server, clockNs]) => {
      const message = parseClientLine(iamat.line) as IamatMessage;
      const atLine = formatAtLine(server, clockNs, message);
      assert.deepEqual(parseAtLine(atLine), {
        serverName: server,
        skew: skewReference(clockNs, iamat.timeNs),
        clientId: iamat.clientId,
        location: iamat.location,
        time: iamat.time,
      });
    }),
    RUNS,
  );
});

/** Pieces an AT line is made of, and near misses of each, to join into texts at random. */
const atLinePiece = fc.constantFrom(
  "AT",
  "At",
  " ",
  "  ",
  "Hill",
  "+",
  "-",
  ".",
  "0",
  "9",
  "90",
  "180",
  "181",
  "000000000",
  "00000000",
  "\r",
  "\t",
  "\u00ff",
  "x",
);

Deno.test("isAtLineBytes() accepts exactly the AT lines parseAtLine() accepts", () => {
  const atLineCase = iamatCase().chain((iamat) =>
    fc.tuple(fc.constant(iamat), serverName, clockNear(iamat.timeNs))
  ).map(([iamat, server, clockNs]) =>
    formatAtLine(server, clockNs, parseClientLine(iamat.line) as IamatMessage)
  );
  const anyText = fc.oneof(
    atLineCase,
    // One byte of a valid line changed: the near misses where the grammar is decided.
    fc.tuple(atLineCase, fc.nat(), lineByte).map(([line, at, byte]) =>
      line.slice(0, at % line.length) + byte + line.slice(at % line.length + 1)
    ),
    fc.array(atLinePiece, { maxLength: 24 }).map((pieces) => pieces.join("")),
  );
  fc.assert(
    fc.property(anyText, (text) => {
      const bytes = Buffer.from(`x${text}y`, "latin1");
      assert.equal(isAtLineBytes(bytes, 1, 1 + text.length), parseAtLine(text) !== undefined);
    }),
    { numRuns: 5000 },
  );
});

Deno.test("an IAMAT is answered with the exact skew for any clock and client time", () => {
  const clocked = iamatCase().chain((iamat) =>
    fc.tuple(fc.constant(iamat), clockNear(iamat.timeNs))
  );
  fc.assert(
    fc.property(clocked, ([iamat, clockNs]) => {
      const skew = skewReference(clockNs, iamat.timeNs);
      assert.equal(formatSkew(clockNs, iamat.time), skew);
      const { service } = newService(clockNs);
      assert.equal(
        replyNow(service, iamat.line),
        `AT ${SERVER} ${skew} ${iamat.clientId} ${iamat.location} ${iamat.time}\n`,
      );
    }),
    RUNS,
  );
});

/** A time of the grammar with 1 to `wholeDigitsMax` digits before the point. */
function timeOfGrammar(wholeDigitsMax: number): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.string({
        unit: fc.constantFrom(..."0123456789"),
        minLength: 1,
        maxLength: wholeDigitsMax,
      }),
      fc.option(fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 9 })),
    )
    .map(([whole, fraction]) => (fraction === null ? whole : `${whole}.${fraction}`));
}

/** A time of the grammar with up to 80 digits before the point. */
const longTime = timeOfGrammar(80);

Deno.test("formatSkew() agrees with BigInt arithmetic for long times and any clock", () => {
  fc.assert(
    fc.property(longTime, fc.bigInt(-(10n ** 60n), 10n ** 60n), (time, clockNs) => {
      assert.equal(formatSkew(clockNs, time), skewReference(clockNs, referenceTimeNs(time)));
    }),
    RUNS,
  );
});

/** 1–17 digits before the point: either side of 15, where doubles stop being exact. */
const timeAroundDoubles = timeOfGrammar(17);

Deno.test("formatSkew() agrees with BigInt arithmetic either side of the limits of its double-precision path", () => {
  const clock = fc.oneof(
    fc.bigInt(0n, 10n ** 19n),
    fc.bigInt(10n ** 24n - 10n ** 10n, 10n ** 24n + 10n ** 10n),
  );
  fc.assert(
    fc.property(timeAroundDoubles, clock, (time, clockNs) => {
      assert.equal(formatSkew(clockNs, time), skewReference(clockNs, referenceTimeNs(time)));
    }),
    RUNS,
  );
});

Deno.test("atLineBytesMax() bounds the AT line of any IAMAT within the line limit", () => {
  const atLineCase = fc.tuple(iamatCase(), serverName, fc.bigInt(0n, 10n ** 29n - 1n));
  fc.assert(
    fc.property(atLineCase, ([iamat, server, clockNs]) => {
      const atLine = formatAtLine(server, clockNs, parseClientLine(iamat.line) as IamatMessage);
      assert.ok(atLine.length <= atLineBytesMax(iamat.line.length, server.length));
    }),
    RUNS,
  );
});

for (const [fault, invalidLine] of Object.entries(INVALID_CASES)) {
  Deno.test(`every line with ${fault} is refused, answered \`? line\`, and stores nothing`, () => {
    fc.assert(
      fc.property(invalidLine, ({ line, clientId }) => {
        const message = parseClientLine(line);
        assert.equal(message.kind, "invalid", `accepted as ${message.kind}`);
        const { service, store } = newService();
        // Its client is known, so a WHATSAT is refused for its own fault alone.
        if (clientId !== undefined) replyNow(service, `IAMAT ${clientId} +1+1 1`);
        const held = clientId === undefined ? undefined : store.get(clientId)?.atLine;
        const sizeBefore = store.size;
        assert.equal(replyNow(service, line), `? ${line}\n`);
        assert.equal(store.size, sizeBefore, "a client was added");
        if (clientId !== undefined) assert.equal(store.get(clientId)?.atLine, held);
      }),
      RUNS,
    );
  });
}

Deno.test("a valid WHATSAT for a client nobody announced is answered `? line`", () => {
  fc.assert(
    fc.property(whatsatCase(), ({ line }) => {
      assert.equal(replyNow(newService().service, line), `? ${line}\n`);
    }),
    RUNS,
  );
});

Deno.test("no input makes a parse function throw, and the service answers it", () => {
  const anyText = fc.oneof(
    fc.string({ unit: "binary", size: "medium" }),
    fc.string({ unit: "binary-ascii", size: "medium" }),
    fc.uint8Array({ size: "medium" }).map(wireText),
    // Pieces of valid lines glued together reach deeper into the grammar.
    fc.array(
      fc.oneof(
        iamatCase().map(({ line }) => line),
        whatsatCase().map(({ line }) => line),
        time.map(({ text }) => text),
        clientId,
        fc.string({ unit: lineByte, maxLength: 5 }),
      ),
      { maxLength: 4 },
    ).map((pieces) => pieces.join("")),
  );
  fc.assert(
    fc.property(anyText, (text) => {
      const message = parseClientLine(text);
      assert.ok(["IAMAT", "WHATSAT", "invalid"].includes(message.kind));
      splitFields(text);
      isLocation(text);
      parseLocation(text);
      parseAtLine(text);
      if ([...text].some((char) => char.charCodeAt(0) > 0xff || char === "\n")) return;
      // Wire text without `\n` is a line the server could read: it gets a reply, never a throw.
      const reply = replyNow(newService().service, text);
      if (message.kind === "invalid") assert.equal(reply, `? ${text}\n`);
      else assert.match(reply, /^(AT |\? )/);
    }),
    { numRuns: 5000 },
  );
});

/** The splitter's contract applied to the whole input at once. */
function referenceLines(input: string, lineBytesMax: number): Line[] {
  const cut = (text: string): Line => ({
    text: text.slice(0, lineBytesMax),
    tooLong: text.length > lineBytesMax,
  });
  const pieces = input.split("\n");
  const last = pieces.pop()!;
  const lines = pieces.map((piece) => cut(piece.endsWith("\r") ? piece.slice(0, -1) : piece));
  // No `\n` follows the last piece, so its trailing `\r` stays.
  return last === "" ? lines : [...lines, cut(last)];
}

Deno.test("LineSplitter cuts any bytes, fed in any chunks, into the lines of the whole", () => {
  const byteChar = fc.oneof(
    fc.constantFrom("\n", "\r", "a", " "),
    fc.integer({ min: 0, max: 0xff }).map((code) => String.fromCharCode(code)),
  );
  const fed = fc.tuple(
    fc.integer({ min: 1, max: 12 }),
    fc.string({ unit: byteChar, maxLength: 120 }),
    fc.array(fc.nat(120), { maxLength: 10 }),
  );
  fc.assert(
    fc.property(fed, ([lineBytesMax, input, cuts]) => {
      const splitter = new LineSplitter(lineBytesMax);
      const lines: Line[] = [];
      const points = [...new Set(cuts.map((at) => at % (input.length + 1)))].sort((a, b) => a - b);
      let start = 0;
      for (const point of [...points, input.length]) {
        lines.push(...splitter.push(wireBytes(input.slice(start, point))));
        start = point;
      }
      const last = splitter.end();
      if (last !== undefined) lines.push(last);
      assert.deepEqual(lines, referenceLines(input, lineBytesMax));
    }),
    { numRuns: 5000 },
  );
});
