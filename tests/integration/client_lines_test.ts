/**
 * The client protocol against one real server process (offline provider, lineBytesMax 1024):
 * replies in order for pipelined lines, half-close, invalid lines, CRLF, over-long lines,
 * and what the log file shows of it all.
 */
import assert from "node:assert/strict";
import { delay, type Herd, pollUntil, startHerd } from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const LINE_BYTES_MAX = 1024;
const LOCATION = "+34.068930-118.445127";
/** Lines of one connection pipelined in a single write: past linesInFlightMax (64). */
const PIPELINED_LINES = 150;

/** What a test expects back for one line it sent. */
type Expected =
  | { kind: "at"; line: string }
  | { kind: "at-of"; clientId: string; location: string; time: string; recordAs?: string }
  | { kind: "whatsat"; atLine: () => string; resultsMax: number }
  | { kind: "invalid"; raw: string };

/** Reads one reply and checks it against what was expected; returns an AT line it read. */
async function readExpected(client: WireClient, expected: Expected, index: number) {
  const where = `reply ${index}`;
  switch (expected.kind) {
    case "at":
      assert.equal(await client.readLine(), expected.line, where);
      return expected.line;
    case "at-of": {
      const line = await client.readLine();
      const tail = ` ${expected.clientId} ${expected.location} ${expected.time}`;
      assert.match(line, /^AT Hill [+-]\d+\.\d{9} /, where);
      assert.ok(line.endsWith(tail), `${where}: ${JSON.stringify(line)} does not end in ${tail}`);
      assert.equal(line.split(" ").length, 6, where);
      return line;
    }
    case "whatsat": {
      const reply = await client.readWhatsatReply();
      assert.equal(reply.atLine, expected.atLine(), where);
      assert.ok(reply.body.results.length <= expected.resultsMax, where);
      assert.ok(!reply.bodyText.includes("\n"), `${where}: body has an empty line`);
      return undefined;
    }
    case "invalid":
      assert.equal(await client.readLine(), `? ${expected.raw}`, where);
      return undefined;
  }
}

/** One line to send and its expected reply, for tables. */
interface Exchange {
  send: string;
  expect: Expected;
}

/** Sends `exchanges` one write at a time, checking each reply before the next line. */
async function exchangeEach(client: WireClient, exchanges: Exchange[]): Promise<void> {
  for (const [index, { send, expect }] of exchanges.entries()) {
    await client.write(send);
    await readExpected(client, expect, index);
  }
}

/** Invalid lines (terminator `\n` added) and, by the contract, their `? ` echo. */
const INVALID_LINES: string[] = [
  "",
  "   ",
  "\t",
  "HELLO",
  "iamat inv.a +1+1 1",
  "IAMAT inv.a +1+1",
  "IAMAT inv.a +1+1 1 extra",
  "IAMAT inv.a 1+1 1",
  "IAMAT inv.a +1 1",
  "IAMAT inv.a +91+0 1",
  "IAMAT inv.a +90.0001+0 1",
  "IAMAT inv.a +0+180.5 1",
  "IAMAT inv.a -0-181 1",
  "IAMAT inv.a +100+0 1",
  "IAMAT inv.a +0+1000 1",
  "IAMAT inv.a +1.+1 1",
  "IAMAT inv.a +.5+1 1",
  "IAMAT inv.a ++1+1 1",
  "IAMAT inv.a +1,5+1 1",
  "IAMAT inv.a +1+1 1.7e9",
  "IAMAT inv.a +1+1 +1700000000",
  "IAMAT inv.a +1+1 -1700000000",
  "IAMAT inv.a +1+1 Infinity",
  "IAMAT inv.a +1+1 NaN",
  "IAMAT inv.a +1+1 0x10",
  "IAMAT inv.a +1+1 .5",
  "IAMAT inv.a +1+1 1e1",
  "IAMAT inv.a +1+1 1.",
  "IAMAT inv.a +1+1 1.0000000001",
  "IAMAT inv.a +1+1 1\x00",
  "IAMAT inv.a\xa0+1+1 1",
  "IAMAT inv.a\xc2\xa0+1+1 1",
  "IAMAT inv.a\x1c+1+1 1",
  "IAMAT inv.a\x1f+1+1 1",
  "IAMAT inv.a\x85+1+1 1",
  "IAMAT inv.a +1+1\xe3\x80\x801",
  "WHATSAT known.client 0 5",
  "WHATSAT known.client 0.0 5",
  "WHATSAT known.client 50.0001 5",
  "WHATSAT known.client 51 5",
  "WHATSAT known.client -1 5",
  "WHATSAT known.client +1 5",
  "WHATSAT known.client 1e1 5",
  "WHATSAT known.client .5 5",
  "WHATSAT known.client 10 0",
  "WHATSAT known.client 10 00",
  "WHATSAT known.client 10 21",
  "WHATSAT known.client 10 100",
  "WHATSAT known.client 10 5.0",
  "WHATSAT known.client 10 -1",
  "WHATSAT known.client 10",
  "WHATSAT known.client 10 5 5",
  "WHATSAT unknown.client 10 5",
  "WHATSAT \xfcnknown 10 5",
  "AT Hill +0.000000000 known.client +1+1 1",
  "PEER Jaquez 1",
  "\x00\x01\xff\xfe",
  "\x1b[31mred\x1b[0m",
];

/** Valid lines that look odd; each is answered with an AT line echoing the fields. */
const ODD_VALID_IAMATS: Array<{ send: string; clientId: string; location: string; time: string }> =
  [
    { send: "  IAMAT odd.1 +1+1 1  \n", clientId: "odd.1", location: "+1+1", time: "1" },
    {
      send: "IAMAT\t\todd.2\v+90-180\f1700000000.123456789\n",
      clientId: "odd.2",
      location: "+90-180",
      time: "1700000000.123456789",
    },
    {
      send: "IAMAT odd.3 -90.000+180.000 0\n",
      clientId: "odd.3",
      location: "-90.000+180.000",
      time: "0",
    },
    { send: "IAMAT odd.4 +1+1 1\r\n", clientId: "odd.4", location: "+1+1", time: "1" },
    { send: "IAMAT odd.5 +1+1 1\r\r\n", clientId: "odd.5", location: "+1+1", time: "1" },
    { send: "\rIAMAT odd.6 +1+1 1\n", clientId: "odd.6", location: "+1+1", time: "1" },
    {
      send: "IAMAT odd.7 +00.5-000.5 000.100\n",
      clientId: "odd.7",
      location: "+00.5-000.5",
      time: "000.100",
    },
  ];

async function serverLog(herd: Herd): Promise<string> {
  return await herd.readLog("Hill");
}

Deno.test("client lines: order, half-close, invalid lines, long lines, log", async (t) => {
  await using herd = await startHerd({
    names: ["Hill"],
    links: [],
    limits: { lineBytesMax: LINE_BYTES_MAX },
    args: ["--places", "offline"],
  });
  const port = herd.port("Hill");

  await t.step("pipelined lines in one write are answered in order", async () => {
    await using client = await WireClient.connect(port);
    const atLineRead = new Map<string, string>();
    let text = "";
    const expected: Expected[] = [];
    for (let index = 0; expected.length < PIPELINED_LINES; index++) {
      const clientId = `pipe.${index % 7}`;
      const time = `${1700000000 + index}.5`;
      const bound = 1 + (index % 20);
      const key = `${index}`;
      text += `IAMAT ${clientId} ${LOCATION} ${time}\n`;
      expected.push({ kind: "at-of", clientId, location: LOCATION, time, recordAs: key });
      // A WHATSAT uses the location held when its line is read: the IAMAT just before it.
      text += `WHATSAT ${clientId} 10 ${bound}\n`;
      expected.push({ kind: "whatsat", atLine: () => atLineRead.get(key)!, resultsMax: bound });
      text += `BAD ${index}\n`;
      expected.push({ kind: "invalid", raw: `BAD ${index}` });
    }
    await client.write(text);
    for (const [index, expect] of expected.entries()) {
      const line = await readExpected(client, expect, index);
      if (expect.kind === "at-of" && line !== undefined) atLineRead.set(expect.recordAs!, line);
    }
  });

  await t.step("a half-close after the last line still gets every reply, then EOF", async () => {
    for (const trailingNewline of [true, false]) {
      await using client = await WireClient.connect(port);
      const last = `IAMAT half.${trailingNewline} ${LOCATION} 1700000000`;
      await client.write(
        `IAMAT half.${trailingNewline} ${LOCATION} 1699999999\n` +
          `WHATSAT half.${trailingNewline} 5 3\n` +
          "NOPE\n" +
          last + (trailingNewline ? "\n" : ""),
      );
      await client.closeWrite();
      const all = await client.readUntilEof();
      const [firstAt, whatsatAt, body, empty, invalid, lastAt, end] = all.split("\n");
      assert.match(firstAt, /^AT Hill \S+ half\.\S+ \S+ 1699999999$/, all);
      assert.equal(whatsatAt, firstAt);
      assert.ok(JSON.parse(body).status, all);
      assert.equal(empty, "");
      assert.equal(invalid, "? NOPE");
      assert.match(lastAt, /^AT Hill \S+ half\.\S+ \S+ 1700000000$/, all);
      assert.equal(end, "", "the stream ends right after the last reply's newline");
      assert.equal(all.split("\n").length, 7, all);
    }
  });

  await t.step("a half-close with only an unterminated invalid line answers it", async () => {
    await using client = await WireClient.connect(port);
    await client.write("JUNK WITHOUT NEWLINE");
    await client.closeWrite();
    assert.equal(await client.readUntilEof(), "? JUNK WITHOUT NEWLINE\n");
  });

  await t.step("each invalid line gets `? ` and its raw bytes; the connection stays", async () => {
    await using client = await WireClient.connect(port);
    await client.write(`IAMAT known.client ${LOCATION} 1700000000\n`);
    await client.readAtReply();
    const exchanges = INVALID_LINES.map((line): Exchange => ({
      send: `${line}\n`,
      expect: { kind: "invalid", raw: line },
    }));
    await exchangeEach(client, exchanges);
    // Still open and serving after all of them.
    await client.write("WHATSAT known.client 1 1\n");
    const reply = await client.readWhatsatReply();
    assert.match(reply.atLine, /^AT Hill \S+ known\.client /);
  });

  await t.step("invalid lines pipelined in one write are answered in order", async () => {
    await using client = await WireClient.connect(port);
    await client.write(INVALID_LINES.map((line) => `${line}\n`).join(""));
    for (const [index, line] of INVALID_LINES.entries()) {
      assert.equal(await client.readLine(), `? ${line}`, `line ${index}`);
    }
  });

  await t.step("CR handling: one CR before LF dropped, others kept", async () => {
    await using client = await WireClient.connect(port);
    await exchangeEach(client, [
      { send: "\r\n", expect: { kind: "invalid", raw: "" } },
      { send: "\r\r\n", expect: { kind: "invalid", raw: "\r" } },
      { send: "FOO\r\n", expect: { kind: "invalid", raw: "FOO" } },
      { send: "FOO\r\r\n", expect: { kind: "invalid", raw: "FOO\r" } },
      { send: "FOO\rBAR\n", expect: { kind: "invalid", raw: "FOO\rBAR" } },
      { send: "\n", expect: { kind: "invalid", raw: "" } },
    ]);
  });

  await t.step("odd but valid IAMAT lines are accepted and echoed verbatim", async () => {
    await using client = await WireClient.connect(port);
    await exchangeEach(
      client,
      ODD_VALID_IAMATS.map(({ send, clientId, location, time }) => ({
        send,
        expect: { kind: "at-of", clientId, location, time },
      })),
    );
    // Edge values of WHATSAT's grammar are valid too.
    for (const line of ["WHATSAT odd.1 50 20", "WHATSAT odd.1 0.001 1", "WHATSAT odd.1 05 01"]) {
      await client.write(`${line}\n`);
      const reply = await client.readWhatsatReply();
      assert.match(reply.atLine, /^AT Hill \S+ odd\.1 \+1\+1 1$/, line);
    }
  });

  await t.step("a line over lineBytesMax gets `? ` + its first 1024 bytes", async () => {
    await using client = await WireClient.connect(port);
    const exactly = "E".repeat(LINE_BYTES_MAX);
    const longIamat = `IAMAT ${"i".repeat(2000)} ${LOCATION} 1700000000`;
    await exchangeEach(client, [
      {
        send: `${"X".repeat(3000)}\n`,
        expect: { kind: "invalid", raw: "X".repeat(LINE_BYTES_MAX) },
      },
      { send: `${exactly}\n`, expect: { kind: "invalid", raw: exactly } },
      { send: `${exactly}\r\n`, expect: { kind: "invalid", raw: exactly } },
      { send: `${exactly}Z\n`, expect: { kind: "invalid", raw: exactly } },
      {
        send: `${longIamat}\n`,
        expect: { kind: "invalid", raw: longIamat.slice(0, LINE_BYTES_MAX) },
      },
      {
        send: `IAMAT long.after ${LOCATION} 1700000000\n`,
        expect: { kind: "at-of", clientId: "long.after", location: LOCATION, time: "1700000000" },
      },
    ]);
  });

  await t.step("a 4 MB line is cut, the rest discarded, and the next line served", async () => {
    await using client = await WireClient.connect(port);
    const chunk = "Y".repeat(64 * 1024);
    const writing = (async () => {
      for (let index = 0; index < 64; index++) await client.write(chunk);
      await client.write(`\nIAMAT huge.after ${LOCATION} 1700000000\n`);
    })();
    assert.equal(await client.readLine(), `? ${"Y".repeat(LINE_BYTES_MAX)}`);
    await writing;
    assert.match(await client.readAtReply(), /^AT Hill \S+ huge\.after /);
  });

  await t.step("a long line cut by a half-close is answered cut", async () => {
    await using client = await WireClient.connect(port);
    await client.write("Q".repeat(5000));
    await client.closeWrite();
    assert.equal(await client.readUntilEof(), `? ${"Q".repeat(LINE_BYTES_MAX)}\n`);
  });

  await t.step("the log has timestamps, the start config, lines received and replies", async () => {
    await using client = await WireClient.connect(port);
    const line = `IAMAT log.check ${LOCATION} 1700000000.25`;
    await client.write(`${line}\n`);
    const at = await client.readAtReply();
    await client.close();
    // A stop flushes the log (contract §2); while running, the log may hold events back.
    const status = await herd.kill("Hill", "SIGTERM");
    assert.equal(status.code, 0, "a SIGTERM stop exits 0");
    const log = await serverLog(herd);
    assert.ok(log.includes(line), "the received line is not logged");
    assert.ok(log.includes(at), "the AT reply is not logged");
    const lines = log.split("\n");
    assert.equal(lines.pop(), "", "the log ends with a complete line");
    for (const logLine of lines) {
      assert.match(
        logLine,
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2}) /,
        `log line without an ISO-8601 timestamp: ${JSON.stringify(logLine.slice(0, 300))}`,
      );
    }
    // The start line gives the effective config, including a limit the config changed.
    assert.ok(
      lines.some((logLine) =>
        /lineBytesMax\W+1024\b/.test(logLine) && /placesTimeoutMs/.test(logLine)
      ),
      "no start line with the effective limits",
    );
    assert.ok(lines.some((logLine) => /offline/.test(logLine)), "the provider is not logged");
    assert.match(lines[lines.length - 1], /stop/i, "the last log line is not about the stop");
    // Wire text is cut to 200 bytes and non-printable bytes are escaped.
    assert.ok(!log.includes("X".repeat(201)), "a 3000-byte line was logged whole");
    // deno-lint-ignore no-control-regex -- control bytes are exactly what must not appear
    assert.doesNotMatch(log, /[\x00-\x08\x0b-\x1f\x7f]/, "raw control bytes in the log");
  });
});

Deno.test("client limits (clientsMax, connectionsMax, idleTimeoutMs) at --log-level warn", async (t) => {
  const idleTimeoutMs = 1000;
  await using herd = await startHerd({
    names: ["Singleton"],
    links: [],
    limits: { clientsMax: 3, connectionsMax: 3, idleTimeoutMs },
    args: ["--places", "offline", "--log-level", "warn"],
  });
  const port = herd.port("Singleton");

  /** One IAMAT on a new connection, half-closed: everything the server sends back. */
  const oneShot = async () => {
    await using client = await WireClient.connect(port);
    // The server may close first: a failed write then means "no reply", like EOF.
    await client.write("IAMAT full.2 +1+1 1\n").then(() => client.closeWrite()).catch(() => {});
    return await client.readUntilEof();
  };

  await t.step("past clientsMax a new id gets `? line`; known ids still update", async () => {
    await using client = await WireClient.connect(port);
    for (const id of ["full.1", "full.2", "full.3"]) {
      await client.write(`IAMAT ${id} +1+1 1\n`);
      await client.readAtReply();
    }
    await client.write("IAMAT full.4 +1+1 1\n");
    assert.equal(await client.readLine(), "? IAMAT full.4 +1+1 1");
    await client.write("IAMAT full.1 +2+2 2\nWHATSAT full.4 1 1\n");
    assert.match(await client.readAtReply(), /^AT Singleton \S+ full\.1 \+2\+2 2$/);
    assert.equal(await client.readLine(), "? WHATSAT full.4 1 1");
  });

  await t.step("one connection past connectionsMax is closed without a reply", async () => {
    const open: WireClient[] = [];
    try {
      for (let index = 0; index < 3; index++) {
        const client = await WireClient.connect(port);
        open.push(client);
        await client.write("IAMAT full.2 +1+1 1\n");
        await client.readAtReply();
      }
      assert.equal(await oneShot(), "", "a connection past connectionsMax got a reply");
      // Once one closes, new connections are served again.
      await open.shift()!.close();
      await pollUntil(async () => (await oneShot()).startsWith("AT Singleton "), {
        what: "a connection to be served after one closed",
      });
    } finally {
      for (const client of open) await client.close();
    }
  });

  await t.step("a silent connection is closed after idleTimeoutMs; a busy one is not", async () => {
    // Connections closed by the step before may not be released yet: retry until served.
    const openServed = () =>
      pollUntil(async () => {
        const client = await WireClient.connect(port);
        try {
          await client.write("IAMAT full.3 +1+1 1\n");
          await client.readAtReply();
          return client;
        } catch (error) {
          await client.close();
          throw error;
        }
      }, { what: "a connection below connectionsMax" });
    await using silent = await openServed();
    await using busy = await openServed();
    const started = performance.now();
    const silentClosed = silent.readUntilEof({ timeoutMs: 5000 }).then((rest) => ({
      rest,
      afterMs: performance.now() - started,
    }));
    // The busy connection speaks every 300 ms for 1.8 s: never idle for 1 s.
    for (let index = 0; index < 6; index++) {
      await busy.write(`IAMAT full.3 +1+1 ${10 + index}\n`);
      await busy.readAtReply();
      await delay(300);
    }
    const { rest, afterMs } = await silentClosed;
    assert.equal(rest, "");
    assert.ok(afterMs >= idleTimeoutMs - 100, `closed after ${afterMs} ms`);
    assert.ok(afterMs < idleTimeoutMs + 2000, `closed after ${afterMs} ms`);
    assert.ok(!busy.serverClosed, "the busy connection was closed");
    await busy.write("IAMAT full.3 +1+1 99\n");
    assert.match(await busy.readAtReply(), /^AT Singleton /);
  });

  await t.step("--log-level warn keeps problems but not every client line", async () => {
    const status = await herd.kill("Singleton", "SIGTERM");
    assert.equal(status.code, 0);
    const log = await herd.readLog("Singleton");
    // Without HERD_SECRET the server warns at start (contract §5), so the log is not empty.
    assert.ok(log.length > 0, "the warn log is empty (not even the HERD_SECRET warning)");
    assert.ok(!log.includes("IAMAT full.1 +1+1 1"), "a client line was logged at warn");
  });
});
