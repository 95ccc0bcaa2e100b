/**
 * Log line formats: a text line is `<ISO timestamp> [LVL] message\n`, a JSON line one object
 * that parses back with the record's fields (reserved names moved under `field_`, errors as
 * their message, big integers as strings); templates fill in `{name}` fields, keep `{{`/`}}`
 * as braces and unknown placeholders as they are, a record without fields is never parsed,
 * and splitting a hostile template takes time linear in its length.
 */
import assert from "node:assert/strict";
import type { LogLevel, LogRecord } from "@logtape/logtape";
import { logLineFormatter, renderMessage, splitTemplate } from "../lib/log_format.ts";
import { logRecord } from "./support/log_records.ts";

const TIMESTAMP_MS = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const TIMESTAMP_TEXT = "2024-01-02T03:04:05.678Z";

/** A record at {@link TIMESTAMP_MS}. */
function record(
  message: string,
  properties: Record<string, unknown> = {},
  level: LogLevel = "info",
): LogRecord {
  return { ...logRecord(message, properties, level), timestamp: TIMESTAMP_MS };
}

const text = logLineFormatter("text", "Hill");
const json = logLineFormatter("json", "Hill");

function jsonFields(record: LogRecord): Record<string, unknown> {
  const line = json(record);
  assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"), `not one line: ${line}`);
  return JSON.parse(line);
}

Deno.test("a text line is `<ISO timestamp> [INF] message` and a newline", () => {
  assert.equal(text(record("hello")), `${TIMESTAMP_TEXT} [INF] hello\n`);
  const levels: Array<[LogLevel, string]> = [
    ["trace", "TRC"],
    ["debug", "DBG"],
    ["info", "INF"],
    ["warning", "WRN"],
    ["error", "ERR"],
    ["fatal", "FTL"],
  ];
  for (const [level, shown] of levels) {
    assert.equal(text(record("m", {}, level)), `${TIMESTAMP_TEXT} [${shown}] m\n`);
  }
  // Records of one millisecond share a timestamp text; the next one gets its own.
  assert.equal(
    text({ ...record("later"), timestamp: TIMESTAMP_MS + 1 }),
    "2024-01-02T03:04:05.679Z [INF] later\n",
  );
  assert.equal(text(record("again")), `${TIMESTAMP_TEXT} [INF] again\n`);
});

Deno.test("a template has its fields filled in, each shown as text", () => {
  const properties = {
    client: "kiwi.cs.ucla.edu",
    count: 3,
    ok: false,
    big: 12345678901234567890n,
    error: new Error("connection reset"),
    peer: { name: "Bailey", port: 12001 },
  };
  assert.equal(
    renderMessage(record("{client} sent {count} ({ok}, {big}): {error}; {peer}", properties)),
    `kiwi.cs.ucla.edu sent 3 (false, 12345678901234567890): connection reset; ${
      Deno.inspect(properties.peer)
    }`,
  );
  assert.equal(
    text(record("from { client }", properties)),
    `${TIMESTAMP_TEXT} [INF] from kiwi.cs.ucla.edu\n`,
  );
});

Deno.test("a record without fields is shown as it is, braces and all", () => {
  for (const message of ["IAMAT {x} {{y}} }", "{", "}}", "{client}", "a {{ b }} c"]) {
    assert.equal(renderMessage(record(message)), message);
    assert.equal(text(record(message)), `${TIMESTAMP_TEXT} [INF] ${message}\n`);
  }
});

Deno.test("`{{` and `}}` stand for braces; an unknown placeholder is left as `{name}`", () => {
  const properties = { x: "X" };
  const table: Array<[string, string]> = [
    ["{{literal}} {x} }}", "{literal} X }"],
    ["{{x}}", "{x}"],
    ["{{{x}}}", "{X}"],
    ["{nope} {x}", "{nope} X"],
    ["unclosed {x", "unclosed {x"],
    ["{x}{x}", "XX"],
    ["", ""],
  ];
  for (const [template, expected] of table) {
    assert.equal(renderMessage(record(template, properties)), expected, template);
  }
});

Deno.test("a placeholder named like an Object member is unknown unless it is a field", () => {
  assert.equal(
    renderMessage(record("{constructor} {toString} {x}", { x: 1 })),
    "{constructor} {toString} 1",
  );
});

Deno.test("a message given as parts (a tagged template) is joined as text", () => {
  const parts = ["sent ", 3, " lines to ", "Bailey", ""];
  const raw = Object.assign(["sent ", " lines to ", ""], { raw: ["sent ", " lines to ", ""] });
  const tagged: LogRecord = { ...record(""), rawMessage: raw, message: parts };
  assert.equal(renderMessage(tagged), "sent 3 lines to Bailey");
});

Deno.test("a JSON line is one object with timestamp, level, server, message and each field", () => {
  const fields = jsonFields(
    record("{client} moved", { client: "kiwi", count: 2, nested: { a: [1] } }),
  );
  assert.deepEqual(fields, {
    timestamp: TIMESTAMP_TEXT,
    level: "info",
    server: "Hill",
    message: "kiwi moved",
    client: "kiwi",
    count: 2,
    nested: { a: [1] },
  });
  assert.deepEqual(Object.keys(fields).slice(0, 4), ["timestamp", "level", "server", "message"]);
  const warning = jsonFields(record('line with "quotes"\nand a newline', {}, "warning"));
  assert.equal(warning.level, "warning");
  assert.equal(warning.message, 'line with "quotes"\nand a newline');
});

Deno.test("a JSON field named like a reserved key goes under `field_`", () => {
  const fields = jsonFields(
    record("{message} at {level}", {
      message: "hi",
      level: 7,
      server: "Other",
      timestamp: 1,
    }),
  );
  assert.equal(fields.message, "hi at 7");
  assert.equal(fields.level, "info");
  assert.equal(fields.server, "Hill");
  assert.equal(fields.timestamp, TIMESTAMP_TEXT);
  assert.equal(fields.field_message, "hi");
  assert.equal(fields.field_level, 7);
  assert.equal(fields.field_server, "Other");
  assert.equal(fields.field_timestamp, 1);
});

Deno.test("a JSON field holding an Error gives its message, a bigint its digits", () => {
  const circular: Record<string, unknown> = { name: "loop" };
  circular.self = circular;
  const fields = jsonFields(
    record("failed", {
      error: new TypeError("bad port"),
      big: 2n ** 70n,
      nothing: null,
      circular,
    }),
  );
  assert.equal(fields.error, "bad port");
  assert.equal(fields.big, "1180591620717411303424");
  assert.equal(fields.nothing, null);
  assert.equal(typeof fields.circular, "string");
  assert.match(fields.circular as string, /loop/);
});

Deno.test("splitTemplate() gives literal text and trimmed field names, alternately", () => {
  assert.deepEqual(splitTemplate("a {x} b"), ["a ", "x", " b"]);
  assert.deepEqual(splitTemplate("{ x }{y}"), ["", "x", "", "y", ""]);
  assert.deepEqual(splitTemplate("{{a}} {b"), ["{a} {b"]);
  assert.deepEqual(splitTemplate("no fields"), ["no fields"]);
  assert.equal(splitTemplate("a {x} b"), splitTemplate("a {x} b"), "kept split");
});

/**
 * Characters `String.prototype.indexOf` looked at while `splitTemplate` split `template`: its
 * only scan besides the one pass over the characters, so what would make it quadratic. Counted,
 * not timed, so the check holds on a busy machine.
 */
function charsSearchedBy(template: string): number {
  const indexOf = String.prototype.indexOf;
  let charsSearched = 0;
  String.prototype.indexOf = function (this: string, search: string, from = 0) {
    const found = indexOf.call(this, search, from);
    charsSearched += (found === -1 ? this.length : found + 1) - from;
    return found;
  };
  try {
    splitTemplate(template);
  } finally {
    String.prototype.indexOf = indexOf;
  }
  return charsSearched;
}

const HOSTILE_TEMPLATE_CHARS = 100_000;

for (
  const [name, template] of [
    ["many `{`", (n: number) => "{".repeat(n)],
    ["a `{` never closed", (n: number) => `{${"a".repeat(n)}`],
    ["many `}`", (n: number) => "}a".repeat(n / 2)],
    ["many unclosed `{`s", (n: number) => "{a".repeat(n / 2)],
  ] as const
) {
  Deno.test(`splitTemplate() on ${name} looks at each character a bounded number of times`, () => {
    const n = HOSTILE_TEMPLATE_CHARS;
    // A new template each time: one split before would come from the cache.
    const searched = charsSearchedBy(`${template(n)}${Math.random()}`);
    assert.ok(searched <= 4 * n, `${searched} characters searched for ${n}`);
  });
}
