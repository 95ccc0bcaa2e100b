/** How the log shows one read of a client: its lines and immediate replies, in text and JSON. */
import assert from "node:assert/strict";
import { READ_LINES_SEPARATOR, ReadExchanges } from "../lib/read_log.ts";
import { logLineFormatter } from "../lib/log_format.ts";
import { logRecord } from "./support/log_records.ts";

Deno.test("a read's lines are shown in order, each with its reply or that it follows", () => {
  const read = new ReadExchanges();
  read.add("IAMAT a +1+1 1", "AT Hill +0.1 a +1+1 1\n");
  read.add("WHATSAT a 10 2", undefined);
  read.add("NOPE \x01\\", "? NOPE \x01\\\n");
  assert.equal(read.size, 3);
  assert.equal(
    read.toLogText(),
    [
      "IAMAT a +1+1 1 -> AT Hill +0.1 a +1+1 1",
      "WHATSAT a 10 2 -> (reply follows)",
      "NOPE \\x01\\\\ -> ? NOPE \\x01\\\\",
    ].join(READ_LINES_SEPARATOR),
  );
  assert.equal(String(read), read.toLogText());
  assert.deepEqual(read.toJSON(), [
    { line: "IAMAT a +1+1 1", reply: "AT Hill +0.1 a +1+1 1" },
    { line: "WHATSAT a 10 2", reply: null },
    { line: "NOPE \\x01\\\\", reply: "? NOPE \\x01\\\\" },
  ]);
});

Deno.test("the separator cannot be forged: a client's non-ASCII bytes are escaped", () => {
  const read = new ReadExchanges();
  // U+23CE as a client would send it: three UTF-8 bytes, each one code unit of wire text.
  const forged = String.fromCharCode(...new TextEncoder().encode(READ_LINES_SEPARATOR.trim()));
  read.add(`IAMAT ${forged}`, "? x\n");
  assert.ok(!read.toLogText().includes(READ_LINES_SEPARATOR.trim()), read.toLogText());
});

Deno.test("a record is full once its lines and replies pass 2 KiB", () => {
  const read = new ReadExchanges();
  const line = "x".repeat(500);
  const full = [1, 2, 3, 4, 5].map(() => read.add(line, `? ${line}\n`));
  assert.deepEqual(full, [false, false, true, true, true]);
});

Deno.test("in a log line: text joins the read into the message, JSON lists it as `lines`", () => {
  const read = new ReadExchanges();
  read.add("IAMAT a +1+1 1", "AT Hill +0.1 a +1+1 1\n");
  read.add("IAMAT b +1+1 1", "AT Hill +0.1 b +1+1 1\n");
  const record = logRecord("client {remote}: {lines}", { remote: "127.0.0.1:5", lines: read });
  assert.equal(
    logLineFormatter("text", "Hill")(record),
    `1970-01-01T00:00:00.000Z [INF] client 127.0.0.1:5: ${read.toLogText()}\n`,
  );
  const json = JSON.parse(logLineFormatter("json", "Hill")(record));
  assert.equal(json.message, `client 127.0.0.1:5: ${read.toLogText()}`);
  assert.deepEqual(json.lines, read.toJSON());
  assert.equal(json.remote, "127.0.0.1:5");
});
