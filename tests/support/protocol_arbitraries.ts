/**
 * fast-check arbitraries for herd's client lines (contract §3), shared by the protocol's
 * property tests and the live-server fuzz test: valid IAMAT and WHATSAT lines that carry the
 * values a test checks them against, and invalid lines made from valid ones by one mutation
 * each that the grammar forbids. Lines are wire text (one code unit per byte, latin1) and
 * never hold `\n`, like the lines the splitter hands on.
 */
import fc from "fast-check";

/** The contract's white space; every other byte (NBSP, NEL, NUL, …) is an ordinary one. */
const WHITE_SPACE = [" ", "\t", "\r", "\f", "\v"] as const;

/** Bytes and UTF-8 sequences that look like spaces but are ordinary characters. */
const SPACE_LOOKALIKES = [
  "\u00a0", // NBSP (latin1), which JavaScript's \s matches
  "\u00c2\u00a0", // NBSP (UTF-8)
  "\u0085", // NEL (latin1)
  "\u00c2\u0085", // NEL (UTF-8)
  "\u00e2\u0080\u0083", // EM SPACE (UTF-8)
  "\u00e3\u0080\u0080", // IDEOGRAPHIC SPACE (UTF-8)
  "\u00e2\u0080\u008b", // ZERO WIDTH SPACE (UTF-8)
  "\u00ef\u00bb\u00bf", // BOM (UTF-8)
  "\u001c", // FILE SEPARATOR, which Python's str.split() splits on
  "\u001f",
  "\u0000",
  "_",
];

const NANOSECONDS_PER_SECOND = 1_000_000_000n;
const NEWLINE_CODE = 0x0a;
const WHITE_SPACE_CODES = new Set<number>(WHITE_SPACE.map((space) => space.charCodeAt(0)));

const byteCode = fc.integer({ min: 0, max: 0xff });

/** Any byte of a line: everything but `\n`. */
export const lineByte: fc.Arbitrary<string> = byteCode
  .filter((code) => code !== NEWLINE_CODE)
  .map((code) => String.fromCharCode(code));

/** A byte a field may hold: not white space, not `\n`; printable ASCII half the time. */
const fieldByte: fc.Arbitrary<string> = fc
  .oneof(fc.integer({ min: 0x21, max: 0x7e }), byteCode)
  .filter((code) => code !== NEWLINE_CODE && !WHITE_SPACE_CODES.has(code))
  .map((code) => String.fromCharCode(code));

/** A field byte that no number or location can hold (not a digit, sign or point). */
const foreignByte = fieldByte.filter((byte) => !/[0-9+\-.]/.test(byte));

const digit = fc.constantFrom(..."0123456789");
const nonZeroDigit = fc.constantFrom(..."123456789");
const sign = fc.constantFrom("+", "-");

function digits(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: digit, minLength, maxLength });
}

function whiteSpaceRun(minLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...WHITE_SPACE), minLength, maxLength: minLength + 3 });
}

/** A client id: one or more bytes that are not white space. */
export const clientId: fc.Arbitrary<string> = fc.string({
  unit: fieldByte,
  minLength: 1,
  maxLength: 24,
});

/** `.digits`, or nothing. */
const fraction = fc.option(digits(1, 12).map((text) => `.${text}`), { nil: "" });
/** `.000…`, or nothing: the only fractions a coordinate at its maximum may have. */
const zeroFraction = fc.option(fc.integer({ min: 1, max: 6 }).map((n) => `.${"0".repeat(n)}`), {
  nil: "",
});

/** `value` with leading zeros up to a width of 1..`widthMax` digits. */
function padded(value: fc.Arbitrary<number>, widthMax: number): fc.Arbitrary<string> {
  return fc.tuple(value, fc.integer({ min: 1, max: widthMax }))
    .map(([whole, width]) => String(whole).padStart(width, "0"));
}

/** An unsigned coordinate text from 0 to `max` inclusive, in 1..`widthMax` whole digits. */
function coordinate(max: number, widthMax: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(padded(fc.integer({ min: 0, max: max - 1 }), widthMax), fraction)
      .map(([whole, decimals]) => whole + decimals),
    zeroFraction.map((decimals) => `${max}${decimals}`),
  );
}

/** `±lat±lng` within the globe: |lat| ≤ 90 in 1–2 whole digits, |lng| ≤ 180 in 1–3. */
const location: fc.Arbitrary<string> = fc
  .tuple(sign, coordinate(90, 2), sign, coordinate(180, 3))
  .map((parts) => parts.join(""));

/** A client time as written and its exact value in nanoseconds. */
export interface TimeCase {
  text: string;
  ns: bigint;
}

/** POSIX seconds with 0–9 decimals and maybe leading zeros, now-ish or anywhere up to 10^13. */
export const time: fc.Arbitrary<TimeCase> = fc
  .tuple(
    fc.nat(2),
    fc.oneof(fc.bigInt(1_600_000_000n, 1_800_000_000n), fc.bigInt(0n, 10n ** 13n)),
    fc.integer({ min: 0, max: 9 }).chain((decimals) =>
      fc.tuple(fc.constant(decimals), fc.bigInt(0n, 10n ** BigInt(decimals) - 1n))
    ),
  )
  .map(([zeros, seconds, [decimals, fractionValue]]) => ({
    text: "0".repeat(zeros) + seconds +
      (decimals === 0 ? "" : `.${String(fractionValue).padStart(decimals, "0")}`),
    ns: seconds * NANOSECONDS_PER_SECOND + fractionValue * 10n ** BigInt(9 - decimals),
  }));

/** A radius in km as written (0 < r ≤ 50, maybe leading zeros) and its value in metres. */
const radius: fc.Arbitrary<{ text: string; metres: number }> = fc
  .oneof(
    fc.tuple(padded(fc.integer({ min: 0, max: 49 }), 4), fraction)
      .map(([whole, decimals]) => whole + decimals)
      .filter((text) => /[1-9]/.test(text)),
    fc.tuple(padded(fc.constant(50), 4), zeroFraction).map(([whole, decimals]) => whole + decimals),
  )
  .map((text) => ({ text, metres: metresOf(text) }));

/** km text → metres, the nearest double to the exact decimal, built with BigInt. */
function metresOf(kmText: string): number {
  const [whole, decimals = ""] = kmText.split(".");
  const scaled = BigInt(whole + decimals);
  if (decimals.length <= 3) return Number(scaled * 10n ** BigInt(3 - decimals.length));
  const text = scaled.toString().padStart(decimals.length - 2, "0");
  const point = text.length - (decimals.length - 3);
  return Number(`${text.slice(0, point)}.${text.slice(point)}`);
}

/** A bound (1–20) as written, in one or two digits, and its value. */
const bound: fc.Arbitrary<{ text: string; value: number }> = fc
  .integer({ min: 1, max: 20 })
  .chain((value) => padded(fc.constant(value), 2).map((text) => ({ text, value })));

/** A line as its words and the white-space runs around them (`gaps.length` = words + 1). */
export interface LineParts {
  words: string[];
  gaps: string[];
}

/** The line `parts` stands for. */
function render({ words, gaps }: LineParts): string {
  return gaps[0] + words.map((word, index) => word + gaps[index + 1]).join("");
}

/** Runs of white space around `wordCount` words: mostly one space between, none outside. */
function gapsFor(wordCount: number): fc.Arbitrary<string[]> {
  const inner = fc.oneof({ arbitrary: fc.constant(" "), weight: 3 }, whiteSpaceRun(1));
  const outer = fc.oneof({ arbitrary: fc.constant(""), weight: 3 }, whiteSpaceRun(1));
  return fc
    .tuple(outer, fc.array(inner, { minLength: wordCount - 1, maxLength: wordCount - 1 }), outer)
    .map(([lead, between, trail]) => [lead, ...between, trail]);
}

/** A valid IAMAT line and what it says. */
export interface IamatCase {
  line: string;
  parts: LineParts;
  clientId: string;
  location: string;
  time: string;
  timeNs: bigint;
}

/** Valid IAMAT lines, for client ids from `ids` (any by default). */
export function iamatCase(ids: fc.Arbitrary<string> = clientId): fc.Arbitrary<IamatCase> {
  return fc.tuple(ids, location, time, gapsFor(4)).map(([id, where, when, gaps]) => {
    const parts = { words: ["IAMAT", id, where, when.text], gaps };
    return {
      line: render(parts),
      parts,
      clientId: id,
      location: where,
      time: when.text,
      timeNs: when.ns,
    };
  });
}

/** A valid WHATSAT line and what it asks. */
export interface WhatsatCase {
  line: string;
  parts: LineParts;
  clientId: string;
  radiusMetres: number;
  bound: number;
}

/** Valid WHATSAT lines, for client ids from `ids` (any by default). */
export function whatsatCase(ids: fc.Arbitrary<string> = clientId): fc.Arbitrary<WhatsatCase> {
  return fc.tuple(ids, radius, bound, gapsFor(4)).map(([id, km, count, gaps]) => {
    const parts = { words: ["WHATSAT", id, km.text, count.text], gaps };
    return {
      line: render(parts),
      parts,
      clientId: id,
      radiusMetres: km.metres,
      bound: count.value,
    };
  });
}

/** `text` with `byte` put in at any position. */
function withByte(text: string, byte: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(fc.integer({ min: 0, max: text.length }), byte)
    .map(([at, inserted]) => text.slice(0, at) + inserted + text.slice(at));
}

/** Mutations every number field shares: a sign, an exponent, a foreign byte, a bare point. */
function badNumber(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(sign, valid).map(([signText, text]) => signText + text),
    fc.tuple(valid, fc.constantFrom("e", "E", "e+", "e-"), digits(1, 3)).map((p) => p.join("")),
    valid.chain((text) => withByte(text, foreignByte)),
    valid.map((text) => `.${text}`),
    valid.map((text) => `${text}.`),
  );
}

const NOT_NUMBERS = [
  ".5",
  "5.",
  "Infinity",
  "-Infinity",
  "NaN",
  "0x10",
  "1_000",
  "5,5",
  "1.5.5",
  "",
  ".",
];

/** Locations outside the grammar or the globe. */
const badLocation: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "+.5+0",
    "+0+.5",
    "+5.+0",
    "+0+5.",
    "+1e1+0",
    "+0+1e1",
    "+Infinity+0",
    "+0x1+0",
    "+1,5+0",
    "+1.5.5+0",
    "+34",
    "34-118",
    "+34+118+",
  ),
  // Latitude past 90: 91–99, 90 and a non-zero fraction, or three and more digits.
  fc.tuple(sign, fc.integer({ min: 91, max: 99 }), fraction, sign, coordinate(180, 3))
    .map((parts) => parts.join("")),
  fc.tuple(sign, digits(0, 3), nonZeroDigit, sign, coordinate(180, 3))
    .map(([latSign, zeros, last, lngSign, lng]) => `${latSign}90.${zeros}${last}${lngSign}${lng}`),
  fc.tuple(sign, wideWhole(3), sign, coordinate(180, 3)).map((parts) => parts.join("")),
  // Longitude past 180: 181–999, 180 and a non-zero fraction, or four and more digits.
  fc.tuple(sign, coordinate(90, 2), sign, fc.integer({ min: 181, max: 999 }), fraction)
    .map((parts) => parts.join("")),
  fc.tuple(sign, coordinate(90, 2), sign, digits(0, 3), nonZeroDigit)
    .map(([latSign, lat, lngSign, zeros, last]) => `${latSign}${lat}${lngSign}180.${zeros}${last}`),
  fc.tuple(sign, coordinate(90, 2), sign, wideWhole(4)).map((parts) => parts.join("")),
  // A sign replaced, added or removed: a valid location has exactly two.
  location.chain((text) =>
    fc.tuple(fc.constantFrom(...signPositions(text)), foreignByte)
      .map(([at, byte]) => text.slice(0, at) + byte + text.slice(at + 1))
  ),
  location.chain((text) => withByte(text, sign)),
  location.map((text) => text.slice(1)),
  location.chain((text) => withByte(text, foreignByte)),
  location.map((text) => `${text}e1`),
);

/** Where the two signs of a valid location are. */
function signPositions(text: string): number[] {
  return [0, 1 + text.slice(1).search(/[+-]/)];
}

/** A whole number of at least `widthMin` digits (leading zeros count), any fraction. */
function wideWhole(widthMin: number): fc.Arbitrary<string> {
  return fc.tuple(padded(fc.integer({ min: 0, max: 10 ** widthMin - 1 }), widthMin + 1), fraction)
    .filter(([whole]) => whole.length >= widthMin)
    .map(([whole, decimals]) => whole + decimals);
}

/** Times outside the grammar: signs, exponents, `.5`, `5.`, ten decimals, … */
const badTime: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("1.7e9", "1e1", "+1700000000", "-1", ...NOT_NUMBERS),
  badNumber(time.map((t) => t.text)),
  fc.tuple(digits(1, 10), digits(10, 14)).map(([seconds, decimals]) => `${seconds}.${decimals}`),
);

/** Radii outside the grammar or (0, 50]. */
const badRadius: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("0", "00", "0.0", "0.000", "51", "100", "1e1", ...NOT_NUMBERS),
  fc.tuple(fc.integer({ min: 1, max: 3 }), zeroFraction)
    .map(([width, decimals]) => "0".repeat(width) + decimals),
  fc.tuple(digits(0, 4), nonZeroDigit).map(([zeros, last]) => `50.${zeros}${last}`),
  fc.tuple(fc.integer({ min: 51, max: 1_000_000 }), fraction).map((parts) => parts.join("")),
  badNumber(radius.map((r) => r.text)),
);

/** Bounds outside 1–20 or not one or two digits. */
const badBound: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("0", "00", "21", "99", "020", "100", "5.0", "1.5", ...NOT_NUMBERS),
  fc.integer({ min: 21, max: 99 }).map(String),
  padded(fc.integer({ min: 0, max: 99_999 }), 6).filter((text) => text.length >= 3),
  badNumber(bound.map((b) => b.text)),
);

/** A command other than `command`: its case changed, glued bytes, or the other command. */
function badCommand(command: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.mixedCase(fc.constant(command)).filter((text) => text !== command),
    fc.constantFrom("AT", "PEER", command === "IAMAT" ? "WHATSAT" : "IAMAT"),
    withByte(command, fieldByte),
    fc.integer({ min: 0, max: command.length - 1 }).map((at) =>
      command.slice(0, at) + command.slice(at + 1)
    ),
  );
}

/** Replaces one word; the others and the gaps stay. */
function withWord(parts: LineParts, index: number, word: string): LineParts {
  return { words: parts.words.with(index, word), gaps: parts.gaps };
}

/** A look-alike alone merges its neighbours; between white space it is a field of its own. */
function notASeparator(): fc.Arbitrary<string> {
  // (With white space on one side only it would just be glued to a client id: valid.)
  const lookalike = fc.constantFrom(...SPACE_LOOKALIKES);
  return fc.oneof(
    lookalike,
    fc.tuple(whiteSpaceRun(1), lookalike, whiteSpaceRun(1)).map((pieces) => pieces.join("")),
  );
}

/** A field missing (any but the command), or one more anywhere. */
function wrongFieldCount({ words, gaps }: LineParts): fc.Arbitrary<LineParts> {
  return fc.oneof(
    fc.integer({ min: 1, max: words.length - 1 }).map((index) => ({
      words: words.toSpliced(index, 1),
      gaps: gaps.toSpliced(index, 1),
    })),
    fc.tuple(fc.integer({ min: 0, max: words.length }), clientId, whiteSpaceRun(1))
      .map(([index, word, gap]) => ({
        words: words.toSpliced(index, 0, word),
        // The new gap goes between the new word and a neighbour, never at an edge.
        gaps: gaps.toSpliced(Math.max(index, 1), 0, gap),
      })),
  );
}

/** An invalid line and the client id of the valid line it was made from, if any. */
export interface InvalidCase {
  line: string;
  clientId?: string;
}

/** Valid lines of either command, as parts. */
const anyCommand = fc.oneof(iamatCase(), whatsatCase());

/** Lines from `valid` changed by `mutation`, remembering whose they were. */
function mutatedLine(
  valid: fc.Arbitrary<IamatCase | WhatsatCase>,
  mutation: (parts: LineParts) => fc.Arbitrary<LineParts>,
): fc.Arbitrary<InvalidCase> {
  return valid.chain(({ parts, clientId }) =>
    mutation(parts).map((bad) => ({ line: render(bad), clientId }))
  );
}

/** Lines that are neither IAMAT nor WHATSAT at all. */
const OTHER_LINES = [
  "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
  "PEER Hill 1",
  "HELLO",
  "iamat",
  "WHATSAT",
  "IAMAT",
];

/**
 * Lines the contract answers with `? line` whatever the store holds, by what is wrong with
 * them: valid lines changed in one place the grammar forbids, and lines of no command.
 */
export const INVALID_CASES: Readonly<Record<string, fc.Arbitrary<InvalidCase>>> = {
  "a bad location": mutatedLine(
    iamatCase(),
    (parts) => badLocation.map((word) => withWord(parts, 2, word)),
  ),
  "a bad time": mutatedLine(
    iamatCase(),
    (parts) => badTime.map((word) => withWord(parts, 3, word)),
  ),
  "a bad radius": mutatedLine(
    whatsatCase(),
    (parts) => badRadius.map((word) => withWord(parts, 2, word)),
  ),
  "a bad bound": mutatedLine(
    whatsatCase(),
    (parts) => badBound.map((word) => withWord(parts, 3, word)),
  ),
  "a bad command": mutatedLine(
    anyCommand,
    (parts) => badCommand(parts.words[0]).map((word) => withWord(parts, 0, word)),
  ),
  "a separator that is not white space": mutatedLine(anyCommand, ({ words, gaps }) =>
    fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: gaps.length - 1 }), notASeparator())
        .map(([index, gap]) => ({ words, gaps: gaps.with(index, gap) })),
      fc.integer({ min: 1, max: gaps.length - 2 })
        .map((index) => ({ words, gaps: gaps.with(index, "") })),
    )),
  "a field missing or one too many": mutatedLine(anyCommand, wrongFieldCount),
  "no command": fc.oneof(whiteSpaceRun(0), fc.constantFrom(...OTHER_LINES))
    .map((line) => ({ line })),
};

/** Any of {@link INVALID_CASES}. */
export const invalidCase: fc.Arbitrary<InvalidCase> = fc.oneof(...Object.values(INVALID_CASES));
