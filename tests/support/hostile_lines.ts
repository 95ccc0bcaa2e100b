/**
 * The worst-case lines of contract §3's "Cost" paragraph, built at an exact length: long
 * runs of one character where a parser looks for the end of something — white space between
 * or around fields, zeros after a decimal point, digits in a time or radius, a separator
 * repeated, a client id at the limit. Shared by the parser's cost test, the protocol tables
 * and the live server's hostile-lines test. Lines are wire text without `\n`, and none ends
 * in `\r` (a line splitter would drop it), so a server echoes each one exactly.
 */

/** One worst-case client line and what a parser must make of it. */
export interface HostileLine {
  name: string;
  line: string;
  /** What parseClientLine reads it as. */
  kind: "IAMAT" | "WHATSAT" | "invalid";
  /** For an IAMAT: the last three fields of its AT line, `id location time`. */
  echo?: string;
}

/**
 * The client id of every hostile WHATSAT but one (whose id is a line-long run): no hostile
 * IAMAT announces it, so a server answers `? ` + the line.
 */
export const UNKNOWN_CLIENT_ID = "nobody";

/** White space runs of every kind the contract splits on. */
const WHITE_SPACE_RUN = " \t\r\f\v";
/** The same without `\r`, for runs that end a line. */
const TRAILING_WHITE_SPACE_RUN = " \t\f\v";

/** `prefix`, then `unit` repeated and cut to fill, then `suffix`: exactly `bytes` long. */
function filled(bytes: number, prefix: string, unit: string, suffix = ""): string {
  const fillBytes = bytes - prefix.length - suffix.length;
  if (fillBytes < 1) throw new RangeError(`${bytes} bytes leave no room for "${unit}"`);
  return prefix + unit.repeat(Math.ceil(fillBytes / unit.length)).slice(0, fillBytes) + suffix;
}

/** `words` with runs of white space before, between and after them: exactly `bytes` long. */
function spacedOut(bytes: number, words: readonly string[]): string {
  const gaps = words.length + 1;
  const gapBytes = Math.floor((bytes - words.join("").length) / gaps);
  const pieces = words.flatMap((word) => [filled(gapBytes, "", WHITE_SPACE_RUN), word]);
  return filled(bytes, pieces.join(""), TRAILING_WHITE_SPACE_RUN);
}

/** An IAMAT whose fields, single-spaced, are everything after `IAMAT `. */
function iamat(name: string, line: string): HostileLine {
  return { name, line, kind: "IAMAT", echo: line.slice("IAMAT ".length) };
}

/** The worst-case client lines, each exactly `bytes` long (at least 64). */
export function hostileLines(bytes: number): HostileLine[] {
  const whatsat = (name: string, line: string): HostileLine => ({ name, line, kind: "WHATSAT" });
  const refused = (name: string, line: string): HostileLine => ({ name, line, kind: "invalid" });
  const unknown = UNKNOWN_CLIENT_ID;
  return [
    refused("a run of spaces between two words", filled(bytes, "x", " ", "y")),
    refused("white space before a word", filled(bytes, "", WHITE_SPACE_RUN, "x")),
    refused("white space after a word", filled(bytes, "x", TRAILING_WHITE_SPACE_RUN)),
    {
      name: "white space around and between IAMAT fields",
      line: spacedOut(bytes, ["IAMAT", "h", "+1+1", "1"]),
      kind: "IAMAT",
      echo: "h +1+1 1",
    },
    whatsat(
      "white space around and between WHATSAT fields",
      spacedOut(bytes, ["WHATSAT", unknown, "1", "5"]),
    ),
    refused("single-spaced fields repeated", filled(bytes, "IAMAT", " a")),
    refused("one command word repeated", filled(bytes, "", "IAMAT")),
    iamat("zeros after the point in a latitude", filled(bytes, "IAMAT h +1.", "0", "1+1 1")),
    iamat("zeros after the point in a longitude", filled(bytes, "IAMAT h +1+1.", "0", "1 1")),
    refused("zeros after the point in a time", filled(bytes, "IAMAT h +1+1 1.", "0", "1")),
    whatsat(
      "zeros after the point in a radius",
      filled(bytes, `WHATSAT ${unknown} 1.`, "0", "1 5"),
    ),
    refused("zeros after the point in a bound", filled(bytes, `WHATSAT ${unknown} 1 1.`, "0", "1")),
    iamat("a time of all nines", filled(bytes, "IAMAT h +1+1 ", "9")),
    iamat(
      "a time of all nines with nine decimals",
      filled(bytes, "IAMAT h +1+1 ", "9", ".999999999"),
    ),
    iamat("a time of leading zeros", filled(bytes, "IAMAT h +1+1 ", "0", "1")),
    whatsat("a radius of leading zeros", filled(bytes, `WHATSAT ${unknown} `, "0", "1 5")),
    refused("a radius of all nines", filled(bytes, `WHATSAT ${unknown} `, "9", " 5")),
    refused("a latitude of many digits", filled(bytes, "IAMAT h +", "1", "+1 1")),
    refused("a longitude of leading zeros", filled(bytes, "IAMAT h +1+", "0", "1 1")),
    refused("a location of signs", filled(bytes, "IAMAT h ", "+", " 1")),
    refused("a location of signed numbers repeated", filled(bytes, "IAMAT h +1", "+1", " 1")),
    refused("a time of points", filled(bytes, "IAMAT h +1+1 1", ".")),
    refused("a radius of points and digits", filled(bytes, `WHATSAT ${unknown} 1`, ".1", " 5")),
    iamat("a client id at the limit", filled(bytes, "IAMAT ", "x", " +1+1 1")),
    whatsat("a WHATSAT client id at the limit", filled(bytes, "WHATSAT ", "w", " 1 5")),
  ];
}

/**
 * Worst-case AT lines, as a neighbour or a data dir may hand them over, each exactly `bytes`
 * long, and whether an AT-line parser must accept them.
 */
export function hostileAtLines(
  bytes: number,
): Array<{ name: string; atLine: string; valid: boolean }> {
  return [
    { name: "single-spaced fields repeated", atLine: filled(bytes, "AT", " a"), valid: false },
    { name: "a run of spaces", atLine: filled(bytes, "AT", " ", "x"), valid: false },
    {
      name: "a skew of many digits",
      atLine: filled(bytes, "AT Hill -", "9", ".000000000 h +1+1 1"),
      valid: true,
    },
    {
      name: "a skew of many decimals",
      atLine: filled(bytes, "AT Hill +0.", "0", " h +1+1 1"),
      valid: false,
    },
    {
      name: "zeros after the point in a latitude",
      atLine: filled(bytes, "AT Hill +0.000000000 h +1.", "0", "1+1 1"),
      valid: true,
    },
    {
      name: "a time of all nines",
      atLine: filled(bytes, "AT Hill -9.000000000 h +1+1 ", "9"),
      valid: true,
    },
    {
      name: "a client id at the limit",
      atLine: filled(bytes, "AT Hill +0.000000000 ", "x", " +1+1 1"),
      valid: true,
    },
  ];
}
