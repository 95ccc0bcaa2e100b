import assert from "node:assert/strict";
import { type Line, LineSplitter, utf8AsWireText, wireBytesInto } from "../lib/lines.ts";

/** Wire text (one code unit per byte) as bytes. */
function bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    assert.ok(code <= 0xff, "test input must be wire text");
    out[index] = code;
  }
  return out;
}

/** Feeds every chunk, then end(); returns every line in order. */
function split(lineBytesMax: number, chunks: string[]): Line[] {
  const splitter = new LineSplitter(lineBytesMax);
  const lines: Line[] = [];
  for (const chunk of chunks) lines.push(...splitter.push(bytes(chunk)));
  const last = splitter.end();
  if (last !== undefined) lines.push(last);
  return lines;
}

function ok(text: string): Line {
  return { text, tooLong: false };
}

function cut(text: string): Line {
  return { text, tooLong: true };
}

/** Every way to feed `input` in two chunks, plus byte by byte and whole. */
function chunkings(input: string): Array<{ name: string; chunks: string[] }> {
  const ways = [
    { name: "whole", chunks: [input] },
    { name: "byte by byte", chunks: [...input] },
  ];
  for (let at = 1; at < input.length; at++) {
    ways.push({ name: `split at ${at}`, chunks: [input.slice(0, at), input.slice(at)] });
  }
  return ways;
}

const MAX = 8;

const CASES: Array<{ name: string; input: string; expected: Line[] }> = [
  {
    name: "lines end in \\n",
    input: "IAMAT\nWHATSAT\n",
    expected: [ok("IAMAT"), ok("WHATSAT")],
  },
  { name: "a \\r before the \\n is dropped", input: "abc\r\n", expected: [ok("abc")] },
  { name: "only one \\r before the \\n is dropped", input: "abc\r\r\n", expected: [ok("abc\r")] },
  { name: "a \\r inside a line is kept", input: "a\rb\n", expected: [ok("a\rb")] },
  { name: "a \\r at the start of a line is kept", input: "\rab\n", expected: [ok("\rab")] },
  { name: "a bare CRLF is an empty line", input: "\r\n", expected: [ok("")] },
  { name: "empty lines are lines", input: "\n\n\n", expected: [ok(""), ok(""), ok("")] },
  {
    name: "empty lines between lines",
    input: "a\n\nb\r\n\r\nc\n",
    expected: [ok("a"), ok(""), ok("b"), ok(""), ok("c")],
  },
  {
    name: "bytes after the last \\n form a final line at end()",
    input: "a\nbc",
    expected: [ok("a"), ok("bc")],
  },
  { name: "no bytes give no line", input: "", expected: [] },
  {
    name: "a line of exactly lineBytesMax bytes is accepted whole",
    input: "12345678\n",
    expected: [ok("12345678")],
  },
  {
    name: "a line of exactly lineBytesMax bytes before CRLF is accepted whole",
    input: "12345678\r\nnext\n",
    expected: [ok("12345678"), ok("next")],
  },
  {
    name: "a line of lineBytesMax + 1 bytes is cut and marked tooLong",
    input: "123456789\nnext\n",
    expected: [cut("12345678"), ok("next")],
  },
  {
    name: "a line of lineBytesMax + 1 bytes before CRLF is cut",
    input: "123456789\r\nnext\n",
    expected: [cut("12345678"), ok("next")],
  },
  {
    name: "a line of lineBytesMax bytes, a \\r and a byte is cut",
    input: "12345678\rX\nnext\n",
    expected: [cut("12345678"), ok("next")],
  },
  {
    name: "a long line is cut, its rest discarded, and later lines go on",
    input: "ok1\nabcdefghijklmnopqrstuvwxyz\nok2\n",
    expected: [ok("ok1"), cut("abcdefgh"), ok("ok2")],
  },
  {
    name: "two long lines in a row give two cut lines",
    input: "abcdefghijk\nABCDEFGHIJK\n",
    expected: [cut("abcdefgh"), cut("ABCDEFGH")],
  },
  {
    name: "a long line followed by an empty line",
    input: "abcdefghijk\n\n",
    expected: [cut("abcdefgh"), ok("")],
  },
  {
    name: "a long final line without \\n is cut once",
    input: "a\nabcdefghijklmnop",
    expected: [ok("a"), cut("abcdefgh")],
  },
  {
    name: "a final line of lineBytesMax + 1 bytes is cut",
    input: "123456789",
    expected: [cut("12345678")],
  },
];

for (const { name, input, expected } of CASES) {
  Deno.test(`LineSplitter: ${name}, however the bytes are chunked`, () => {
    for (const { name: way, chunks } of chunkings(input)) {
      assert.deepEqual(split(MAX, chunks), expected, way);
    }
  });
}

// A `\r` is dropped only "just before" the `\n` that ends a line; the final line of a
// half-closed connection has no `\n`, so its bytes are all kept.
const FINAL_LINES_WITH_CR: Array<{ name: string; input: string; expected: Line[] }> = [
  { name: "a final line ending in \\r keeps it", input: "abc\r", expected: [ok("abc\r")] },
  { name: "a final line that is only \\r keeps it", input: "a\n\r", expected: [ok("a"), ok("\r")] },
  {
    name: "a final line of lineBytesMax bytes and a \\r is cut (it is one byte too long)",
    input: "12345678\r",
    expected: [cut("12345678")],
  },
];

for (const { name, input, expected } of FINAL_LINES_WITH_CR) {
  Deno.test(`LineSplitter.end(): ${name}`, () => {
    for (const { name: way, chunks } of chunkings(input)) {
      assert.deepEqual(split(MAX, chunks), expected, way);
    }
  });
}

Deno.test("LineSplitter: lines split across chunks are joined", () => {
  const splitter = new LineSplitter(1024);
  assert.deepEqual(splitter.push(bytes("IAMAT a")), []);
  assert.deepEqual(splitter.push(bytes(" +1+1 5\nWHAT")), [ok("IAMAT a +1+1 5")]);
  assert.deepEqual(splitter.push(bytes("SAT a 10")), []);
  assert.deepEqual(splitter.push(bytes(" 5\n")), [ok("WHATSAT a 10 5")]);
  assert.equal(splitter.end(), undefined);
});

Deno.test("LineSplitter: a \\r at the end of one chunk and \\n at the start of the next", () => {
  const splitter = new LineSplitter(1024);
  assert.deepEqual(splitter.push(bytes("abc\r")), []);
  assert.deepEqual(splitter.push(bytes("\ndef\n")), [ok("abc"), ok("def")]);
});

Deno.test("LineSplitter.end() gives nothing after a terminated line, and resets", () => {
  const splitter = new LineSplitter(1024);
  assert.deepEqual(splitter.push(bytes("abc\n")), [ok("abc")]);
  assert.equal(splitter.end(), undefined);
  assert.deepEqual(splitter.push(bytes("tail")), []);
  assert.deepEqual(splitter.end(), ok("tail"));
  assert.equal(splitter.end(), undefined);
  assert.equal(splitter.partialBytes, 0);
});

Deno.test("LineSplitter: a huge line in many chunks is cut once, held memory stays bounded", () => {
  const max = 64;
  const splitter = new LineSplitter(max);
  // Distinct bytes so the cut can be checked to be the first `max` bytes.
  const chunk = (index: number) =>
    Array.from({ length: 100 }, (_, at) => String.fromCharCode(0x21 + ((index + at) % 90)))
      .join("");
  const first = chunk(0);
  const lines: Line[] = [];
  for (let index = 0; index < 10_000; index++) {
    lines.push(...splitter.push(bytes(index === 0 ? first : chunk(index))));
    assert.ok(splitter.partialBytes <= max + 1, `holds ${splitter.partialBytes} bytes`);
  }
  assert.deepEqual(lines, [cut(first.slice(0, max))]);
  assert.deepEqual(splitter.push(bytes("rest of the long line\nnext\n")), [ok("next")]);
  assert.equal(splitter.end(), undefined);
});

Deno.test("LineSplitter: a huge line fed byte by byte holds at most lineBytesMax + 1 bytes", () => {
  const max = 16;
  const splitter = new LineSplitter(max);
  const lines: Line[] = [];
  let peak = 0;
  for (let index = 0; index < 5000; index++) {
    lines.push(...splitter.push(bytes(String.fromCharCode(0x41 + (index % 26)))));
    peak = Math.max(peak, splitter.partialBytes);
  }
  assert.ok(peak <= max + 1, `held ${peak} bytes`);
  assert.deepEqual(lines, [cut("ABCDEFGHIJKLMNOP")]);
  assert.deepEqual(splitter.push(bytes("\nIAMAT a +1+1 5\n")), [ok("IAMAT a +1+1 5")]);
});

Deno.test("LineSplitter: a huge line without \\n then end() gives only the cut line", () => {
  const splitter = new LineSplitter(16);
  const lines = splitter.push(bytes("x".repeat(1000)));
  assert.deepEqual(lines, [cut("x".repeat(16))]);
  assert.ok(splitter.partialBytes <= 17);
  assert.equal(splitter.end(), undefined);
});

Deno.test("LineSplitter: a line held at the limit waits for its \\n before being judged", () => {
  const splitter = new LineSplitter(MAX);
  assert.deepEqual(splitter.push(bytes("12345678")), []);
  assert.equal(splitter.partialBytes, 8);
  assert.deepEqual(splitter.push(bytes("\r")), []);
  assert.ok(splitter.partialBytes <= MAX + 1);
  assert.deepEqual(splitter.push(bytes("\n")), [ok("12345678")]);
  assert.equal(splitter.partialBytes, 0);
});

Deno.test("LineSplitter: every byte 0x00–0xff but \\n is kept as one char per byte", () => {
  const all = Array.from({ length: 256 }, (_, code) => code).filter((code) => code !== 0x0a);
  const input = new Uint8Array([...all, 0x0a, ...all]);
  const splitter = new LineSplitter(1024);
  const lines = splitter.push(input);
  const last = splitter.end();
  const expected = String.fromCharCode(...all);
  assert.deepEqual(lines, [ok(expected)]);
  assert.deepEqual(last, ok(expected));
  assert.equal(expected.length, 255);
});

Deno.test("LineSplitter: UTF-8 multi-byte characters are split into bytes, not decoded", () => {
  const splitter = new LineSplitter(1024);
  const utf8 = new TextEncoder().encode("café\u00a0東\n");
  assert.deepEqual(splitter.push(utf8), [ok("caf\u00c3\u00a9\u00c2\u00a0\u00e6\u009d\u00b1")]);
});

Deno.test("LineSplitter: a chunk that is a view into a larger buffer is read from its offset", () => {
  const backing = bytes("GARBAGE\nline one\nline two\nGARBAGE");
  const view = backing.subarray(8, 26);
  const splitter = new LineSplitter(1024);
  assert.deepEqual(splitter.push(view), [ok("line one"), ok("line two")]);
  assert.equal(splitter.end(), undefined);
});

Deno.test("LineSplitter: the limit counts bytes, not characters", () => {
  // Four two-byte UTF-8 characters are eight bytes: exactly at a limit of 8.
  const eightBytes = new TextEncoder().encode("éééé");
  const nineBytes = new TextEncoder().encode("éééé!");
  const splitter = new LineSplitter(8);
  assert.deepEqual(splitter.push(new Uint8Array([...eightBytes, 0x0a])), [
    ok("\u00c3\u00a9".repeat(4)),
  ]);
  assert.deepEqual(splitter.push(new Uint8Array([...nineBytes, 0x0a])), [
    cut("\u00c3\u00a9".repeat(4)),
  ]);
});

Deno.test("utf8AsWireText() is the text's UTF-8 bytes, one code unit each", () => {
  for (const text of ['{"status":"OK"}', "Caf\u00e9 \u6771\u4eac \u{1f600}", ""]) {
    const wire = utf8AsWireText(text);
    assert.deepEqual(bytes(wire), new TextEncoder().encode(text));
  }
  const ascii = '{"results":[]}';
  assert.equal(utf8AsWireText(ascii), ascii);
});

Deno.test("wireBytesInto() writes wire text's bytes into the scratch, or a new array when longer", () => {
  const scratch = new Uint8Array(8);
  const short = wireBytesInto("a\u00e9\u00ff", scratch);
  assert.equal(short, scratch);
  assert.deepEqual([...short.subarray(0, 3)], [0x61, 0xe9, 0xff]);
  const long = wireBytesInto("0123456789", scratch);
  assert.notEqual(long, scratch);
  assert.deepEqual(long, new TextEncoder().encode("0123456789"));
  // Not wire text: a code unit above 255 is no byte of any field (its low byte would be '0').
  assert.deepEqual([...wireBytesInto("\u0130", scratch).subarray(0, 1)], [0]);
});
