import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import { Counters } from "../lib/counters.ts";
import type { PlacesBody, PlacesProvider, PlacesQuery } from "../lib/places/provider.ts";
import { type ImmediatePlacesProvider, SharedLookups } from "../lib/places/shared.ts";
import { parseClientLine } from "../lib/protocol.ts";
import { HerdService, type Reply } from "../lib/service.ts";
import { ClientStore, type StoredUpdate } from "../lib/store.ts";

const SERVER = "Smith";
/** The fake clock's time: 1621464828.223371889 s. */
const NOW_NS = 1621464828_223371889n;
const UNKNOWN_ERROR_BODY = '{"html_attributions":[],"results":[],"status":"UNKNOWN_ERROR"}';

function okBody(count: number): PlacesBody {
  const results = Array.from({ length: count }, (_, index) => ({
    name: `place ${index}`,
    place_id: `id${index}`,
  }));
  return { html_attributions: [], results, status: "OK" };
}

type Answer = (query: PlacesQuery) => Promise<PlacesBody>;

const answers = {
  twenty: () => Promise.resolve(okBody(20)),
  never: () => new Promise<PlacesBody>(() => {}),
} satisfies Record<string, Answer>;

interface Harness {
  service: HerdService;
  store: ClientStore;
  floods: StoredUpdate[];
  queries: PlacesQuery[];
  counters: Counters;
}

function harness(
  options: {
    answer?: Answer;
    /** Instead of one answering with `answer`. */
    provider?: PlacesProvider | ImmediatePlacesProvider;
    clientsMax?: number;
    placesTimeoutMs?: number;
    nowNs?: bigint;
  } = {},
): Harness {
  const store = new ClientStore({ clientsMax: options.clientsMax ?? 1000 });
  const floods: StoredUpdate[] = [];
  const queries: PlacesQuery[] = [];
  const counters = new Counters();
  const answer = options.answer ?? answers.twenty;
  const provider = options.provider ?? {
    name: "offline",
    lookup: (query: PlacesQuery) => {
      queries.push(query);
      return answer(query);
    },
  };
  const service = new HerdService({
    serverName: SERVER,
    store,
    places: new SharedLookups(provider, counters),
    placesTimeoutMs: options.placesTimeoutMs ?? 5000,
    clockNs: () => options.nowNs ?? NOW_NS,
    flood: (update) => floods.push(update),
    logger: getLogger(["test"]),
    counters,
  });
  return { service, store, floods, queries, counters };
}

const live = () => new AbortController().signal;

function aborted(): AbortSignal {
  const controller = new AbortController();
  controller.abort();
  return controller.signal;
}

/** A synchronous reply (wire text); fails if the reply is a promise. */
function wireNow(reply: Reply): string {
  assert.ok(typeof reply === "string", "expected an immediate reply");
  return reply;
}

/** Splits a WHATSAT reply into its AT line and its parsed JSON body, checking the framing. */
async function whatsatReply(
  reply: Reply,
): Promise<{ atLine: string; bodyText: string; body: PlacesBody }> {
  const text = Buffer.from(await reply, "latin1").toString("utf8");
  assert.ok(text.endsWith("\n\n"), `reply does not end in an empty line: ${JSON.stringify(text)}`);
  const firstNewline = text.indexOf("\n");
  const bodyText = text.slice(firstNewline + 1, -2);
  assert.equal(bodyText.includes("\n\n"), false, "the body holds an empty line");
  assert.equal(
    text.indexOf("\n\n"),
    text.length - 2,
    "the reply holds an empty line before its end",
  );
  return { atLine: text.slice(0, firstNewline), bodyText, body: JSON.parse(bodyText) };
}

const ID = "kiwi.cs.ucla.edu";
const LOC = "+34.068930-118.445127";

// ---------------------------------------------------------------------------------------------
// IAMAT

const IAMAT_REPLIES: Array<{ name: string; nowNs: bigint; line: string; reply: string }> = [
  {
    name: "a positive skew",
    nowNs: NOW_NS,
    line: `IAMAT ${ID} ${LOC} 1621464827.959498503`,
    reply: `AT Smith +0.263873386 ${ID} ${LOC} 1621464827.959498503\n`,
  },
  {
    name: "a negative skew (client clock ahead)",
    nowNs: 1700000000_000000000n,
    line: `IAMAT ${ID} ${LOC} 1700000000.000012`,
    reply: `AT Smith -0.000012000 ${ID} ${LOC} 1700000000.000012\n`,
  },
  {
    name: "a zero skew",
    nowNs: 5_500000000n,
    line: `IAMAT ${ID} ${LOC} 5.50`,
    reply: `AT Smith +0.000000000 ${ID} ${LOC} 5.50\n`,
  },
  {
    name: "fields echoed verbatim after tabs and edge white space",
    nowNs: 10_000000000n,
    line: "\t IAMAT\tid\v+34.50-118.0\f\f0009.000 \r",
    reply: "AT Smith +1.000000000 id +34.50-118.0 0009.000\n",
  },
  {
    name: "a client id of non-ASCII bytes, byte for byte",
    nowNs: 10_000000000n,
    line: "IAMAT caf\u00e9\u00c3\u00a9\u00c2\u00a0\u00ff\u0000 +1+1 10",
    reply: "AT Smith +0.000000000 caf\u00e9\u00c3\u00a9\u00c2\u00a0\u00ff\u0000 +1+1 10\n",
  },
];

for (const { name, nowNs, line, reply } of IAMAT_REPLIES) {
  Deno.test(`HerdService answers an IAMAT with its AT line: ${name}`, () => {
    const { service } = harness({ nowNs });
    assert.equal(wireNow(service.handleLine(line, { signal: live() })), reply);
  });
}

Deno.test("HerdService stores an IAMAT and floods it exactly once", () => {
  const { service, store, floods } = harness();
  const reply = wireNow(
    service.handleLine(`IAMAT ${ID} ${LOC} 1621464827.959498503`, { signal: live() }),
  );
  assert.equal(floods.length, 1);
  assert.equal(floods[0].clientId, ID);
  assert.equal(floods[0].atLine + "\n", reply);
  assert.ok(floods[0].atLine.endsWith(" 1621464827.959498503"));
  assert.equal(floods[0].fromPeer, undefined);
  assert.equal(store.get(ID)?.atLine + "\n", reply);
  assert.equal(floods[0].seq, store.get(ID)?.seq, "flooded with the store's sequence number");
});

Deno.test("HerdService floods each newer IAMAT once and a stale one not at all", () => {
  const { service, floods } = harness();
  service.handleLine(`IAMAT ${ID} ${LOC} 100`, { signal: live() });
  service.handleLine(`IAMAT ${ID} ${LOC} 101`, { signal: live() });
  assert.equal(floods.length, 2);
  assert.deepEqual(floods.map((update) => update.seq), [1, 2]);
  service.handleLine(`IAMAT ${ID} ${LOC} 101`, { signal: live() });
  service.handleLine(`IAMAT ${ID} ${LOC} 101.000`, { signal: live() });
  service.handleLine(`IAMAT ${ID} ${LOC} 99`, { signal: live() });
  assert.equal(floods.length, 2);
});

const STALE_TIMES = [
  { name: "an equal time", held: "100.5", offered: "100.5" },
  { name: "an equal time written differently", held: "100.5", offered: "100.50" },
  { name: "an older time", held: "100.5", offered: "100.499999999" },
];

for (const { name, held, offered } of STALE_TIMES) {
  Deno.test(`HerdService answers a stale IAMAT (${name}) with its own AT line but keeps the held one`, () => {
    const { service, store, floods } = harness({ nowNs: 200_000000000n });
    const first = wireNow(service.handleLine(`IAMAT ${ID} +1+1 ${held}`, { signal: live() }));
    const second = wireNow(service.handleLine(`IAMAT ${ID} -2-2 ${offered}`, { signal: live() }));
    const skew = offered === "100.499999999" ? "+99.500000001" : "+99.500000000";
    assert.equal(second, `AT Smith ${skew} ${ID} -2-2 ${offered}\n`);
    assert.equal(store.get(ID)?.atLine + "\n", first);
    assert.equal(floods.length, 1);
  });
}

Deno.test("HerdService answers an IAMAT for a new client past clientsMax with ? line", () => {
  const { service, store, floods } = harness({ clientsMax: 1 });
  service.handleLine("IAMAT first +1+1 5", { signal: live() });
  const line = "IAMAT second +1+1 5";
  assert.equal(wireNow(service.handleLine(line, { signal: live() })), `? ${line}\n`);
  assert.equal(store.get("second"), undefined);
  assert.equal(floods.length, 1);
});

Deno.test("HerdService still updates a known client past clientsMax", () => {
  const { service, floods } = harness({ clientsMax: 1 });
  service.handleLine("IAMAT first +1+1 5", { signal: live() });
  const reply = wireNow(service.handleLine("IAMAT first +2+2 6", { signal: live() }));
  assert.ok(reply.startsWith("AT Smith "), reply);
  assert.equal(floods.length, 2);
});

// ---------------------------------------------------------------------------------------------
// Invalid lines

const INVALID_LINES = [
  { name: "an empty line", line: "", reply: "? \n" },
  { name: "white space only", line: " \t ", reply: "?  \t \n" },
  { name: "a lower-case command", line: `iamat ${ID} ${LOC} 5`, reply: `? iamat ${ID} ${LOC} 5\n` },
  { name: "a bad time", line: `IAMAT ${ID} ${LOC} 1.7e9`, reply: `? IAMAT ${ID} ${LOC} 1.7e9\n` },
  { name: "a bad bound", line: `WHATSAT ${ID} 10 21`, reply: `? WHATSAT ${ID} 10 21\n` },
  { name: "a peer hello", line: "PEER Hill 1", reply: "? PEER Hill 1\n" },
  {
    name: "raw bytes kept",
    line: "\u0000\u00ff\u00c2\u00a0 x\t",
    reply: "? \u0000\u00ff\u00c2\u00a0 x\t\n",
  },
];

for (const { name, line, reply } of INVALID_LINES) {
  Deno.test(`HerdService answers ${name} with ? and the raw line`, () => {
    const { service, floods, queries } = harness();
    assert.equal(wireNow(service.handleLine(line, { signal: live() })), reply);
    assert.equal(floods.length, 0);
    assert.equal(queries.length, 0);
  });
}

Deno.test("HerdService logs why a line is invalid, at debug", async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["test"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    const line = `IAMAT ${ID} ${LOC} 1.7e9`;
    harness().service.handleLine(line, { signal: live() });
    const invalid = parseClientLine(line);
    assert.equal(invalid.kind, "invalid");
    assert.deepEqual(
      records.map(({ level, rawMessage, properties }) => ({ level, rawMessage, properties })),
      [{
        level: "debug",
        rawMessage: "invalid line from client: {reason}",
        properties: { reason: invalid.reason },
      }],
    );
  } finally {
    await reset();
  }
});

Deno.test("HerdService answers a tooLong line with ? and the cut text, even if it parses", () => {
  const { service, store, floods } = harness();
  const cut = `IAMAT ${ID} ${LOC} 5`;
  assert.equal(wireNow(service.handleLine(cut, { tooLong: true, signal: live() })), `? ${cut}\n`);
  assert.equal(store.get(ID), undefined);
  assert.equal(floods.length, 0);
});

Deno.test("HerdService answers a tooLong line of binary bytes byte for byte", () => {
  const { service } = harness();
  const cut = Array.from({ length: 256 }, (_, code) => String.fromCharCode(code))
    .filter((char) => char !== "\n")
    .join("");
  assert.equal(wireNow(service.handleLine(cut, { tooLong: true, signal: live() })), `? ${cut}\n`);
});

// ---------------------------------------------------------------------------------------------
// WHATSAT

Deno.test("HerdService answers WHATSAT for an unknown client with ? line and no lookup", async () => {
  const { service, queries } = harness();
  const line = "WHATSAT nobody 10 5";
  assert.equal(await service.handleLine(line, { signal: live() }), `? ${line}\n`);
  assert.equal(queries.length, 0);
});

Deno.test("HerdService answers WHATSAT for another client than the one it knows with ? line", async () => {
  const { service } = harness();
  service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() });
  const line = `WHATSAT ${ID.toUpperCase()} 10 5`;
  assert.equal(await service.handleLine(line, { signal: live() }), `? ${line}\n`);
});

for (const bound of [1, 5, 20]) {
  Deno.test(`HerdService answers WHATSAT with the AT line, the body cut to ${bound} and an empty line`, async () => {
    const { service } = harness();
    const at = wireNow(
      service.handleLine(`IAMAT ${ID} ${LOC} 1621464827.959498503`, { signal: live() }),
    );
    const reply = await whatsatReply(
      service.handleLine(`WHATSAT ${ID} 10 ${bound}`, { signal: live() }),
    );
    assert.equal(reply.atLine + "\n", at);
    assert.deepEqual(reply.body, { ...okBody(20), results: okBody(20).results.slice(0, bound) });
    assert.deepEqual(Object.keys(reply.body), ["html_attributions", "results", "status"]);
  });
}

Deno.test("HerdService's WHATSAT reply is exactly AT line, \\n, JSON, \\n\\n", async () => {
  const { service } = harness({ answer: () => Promise.resolve(okBody(2)) });
  service.handleLine("IAMAT a +1+1 5", { signal: live() });
  const reply = await service.handleLine("WHATSAT a 1 20", { signal: live() });
  assert.equal(
    reply,
    "AT Smith +1621464823.223371889 a +1+1 5\n" +
      '{"html_attributions":[],"results":[{"name":"place 0","place_id":"id0"},' +
      '{"name":"place 1","place_id":"id1"}],"status":"OK"}\n\n',
  );
});

Deno.test("HerdService answers WHATSAT with the AT line its origin server wrote", async () => {
  const { service, store } = harness();
  const atLine = `AT Campbell -0.000500000 ${ID} ${LOC} 1621464827.959498503`;
  store.offer({ clientId: ID, atLine }, { fromPeer: "Singleton" });
  const reply = await whatsatReply(service.handleLine(`WHATSAT ${ID} 10 3`, { signal: live() }));
  assert.equal(reply.atLine, atLine);
  assert.equal(reply.body.results.length, 3);
});

Deno.test("HerdService answers WHATSAT for a client id of non-ASCII bytes, AT line byte for byte", async () => {
  const { service } = harness();
  const id = "caf\u00e9\u00ff";
  const at = wireNow(service.handleLine(`IAMAT ${id} +1+1 5`, { signal: live() }));
  const text = await service.handleLine(`WHATSAT ${id} 10 1`, { signal: live() });
  assert.ok(text.startsWith(at), JSON.stringify(text));
});

const QUERIES = [
  { name: "10 km", radius: "10", metres: 10_000 },
  { name: "50 km", radius: "50", metres: 50_000 },
  { name: "50.0 km", radius: "50.0", metres: 50_000 },
  { name: "0.5 km", radius: "0.5", metres: 500 },
  { name: "1.005 km", radius: "1.005", metres: 1005 },
  { name: "0.001 km", radius: "0.001", metres: 1 },
];

for (const { name, radius, metres } of QUERIES) {
  Deno.test(`HerdService asks the provider for the stored location and ${name} in metres`, async () => {
    const { service, queries } = harness();
    service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() });
    await service.handleLine(`WHATSAT ${ID} ${radius} 5`, { signal: live() });
    assert.equal(queries.length, 1);
    assert.equal(queries[0].latitude, 34.06893);
    assert.equal(queries[0].longitude, -118.445127);
    assert.equal(queries[0].radiusMetres, metres);
  });
}

Deno.test("HerdService asks for the location held when the WHATSAT is read", async () => {
  const { service, queries } = harness();
  service.handleLine(`IAMAT ${ID} +10-20 5`, { signal: live() });
  await service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() });
  service.handleLine(`IAMAT ${ID} -30.5+40.25 6`, { signal: live() });
  await service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() });
  assert.deepEqual(queries.map((query) => [query.latitude, query.longitude]), [[10, -20], [
    -30.5,
    40.25,
  ]]);
});

Deno.test("HerdService's WHATSAT reply carries the AT line held when it was read", async () => {
  let answer: (body: PlacesBody) => void = () => {};
  const { service } = harness({ answer: () => new Promise((resolve) => (answer = resolve)) });
  const firstAt = wireNow(service.handleLine(`IAMAT ${ID} +10-20 5`, { signal: live() }));
  const pending = service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() });
  service.handleLine(`IAMAT ${ID} -30-40 6`, { signal: live() });
  answer(okBody(1));
  const reply = await whatsatReply(pending);
  assert.equal(reply.atLine + "\n", firstAt);
});

const UPSTREAM_BODIES: Array<{ name: string; body: PlacesBody }> = [
  { name: "ZERO_RESULTS", body: { html_attributions: [], results: [], status: "ZERO_RESULTS" } },
  {
    name: "OVER_QUERY_LIMIT",
    body: { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT" },
  },
  {
    name: "REQUEST_DENIED with a message",
    body: { error_message: "denied", html_attributions: [], results: [], status: "REQUEST_DENIED" },
  },
  {
    name: "INVALID_REQUEST",
    body: { html_attributions: [], results: [], status: "INVALID_REQUEST" },
  },
  {
    name: "OK with a next_page_token",
    body: { html_attributions: ["x"], next_page_token: "tok", results: [{ a: 1 }], status: "OK" },
  },
];

for (const { name, body } of UPSTREAM_BODIES) {
  Deno.test(`HerdService passes an upstream ${name} body through`, async () => {
    const { service } = harness({ answer: () => Promise.resolve(body) });
    service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() });
    const reply = await whatsatReply(service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() }));
    assert.deepEqual(reply.body, body);
    assert.deepEqual(Object.keys(reply.body), Object.keys(body));
  });
}

Deno.test("HerdService's WHATSAT body holds no empty line when upstream strings hold one", async () => {
  const body = { html_attributions: ["a\n\nb"], results: [{ name: "x\n\n\ny" }], status: "OK" };
  const { service } = harness({ answer: () => Promise.resolve(body) });
  service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() });
  const reply = await whatsatReply(service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() }));
  assert.deepEqual(reply.body, body);
});

Deno.test("HerdService's WHATSAT body keeps non-ASCII text as UTF-8", async () => {
  const body = { html_attributions: [], results: [{ name: "Café 東京" }], status: "OK" };
  const { service } = harness({ answer: () => Promise.resolve(body) });
  service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() });
  const reply = await whatsatReply(service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() }));
  assert.equal((reply.body.results[0] as { name: string }).name, "Café 東京");
  assert.ok(reply.bodyText.includes("Café 東京"), reply.bodyText);
});

/** The reply if it has settled once pending microtasks ran (no timer of any length waited on). */
async function settledNow(reply: Reply): Promise<string> {
  const turn = new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), 0));
  return await Promise.race([Promise.resolve(reply), turn]);
}

// placesTimeoutMs is far away in the abort tests: the abort alone must settle the reply.
Deno.test("HerdService answers WHATSAT with UNKNOWN_ERROR when its signal is already aborted", async () => {
  const { service } = harness({ answer: answers.never, placesTimeoutMs: 600_000 });
  const at = wireNow(service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() }));
  const reply = await settledNow(service.handleLine(`WHATSAT ${ID} 10 5`, { signal: aborted() }));
  assert.notEqual(reply, "pending");
  assert.equal(reply, `${at}${UNKNOWN_ERROR_BODY}\n\n`);
});

Deno.test("HerdService answers WHATSAT with UNKNOWN_ERROR when its signal aborts while pending", async () => {
  const { service } = harness({ answer: answers.never, placesTimeoutMs: 600_000 });
  const at = wireNow(service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() }));
  const controller = new AbortController();
  const pending = service.handleLine(`WHATSAT ${ID} 10 5`, { signal: controller.signal });
  assert.equal(await settledNow(pending), "pending");
  controller.abort();
  const reply = await settledNow(pending);
  assert.notEqual(reply, "pending");
  assert.equal(reply, `${at}${UNKNOWN_ERROR_BODY}\n\n`);
});

Deno.test("HerdService answers WHATSAT with UNKNOWN_ERROR when the provider outlasts placesTimeoutMs", async () => {
  const { service } = harness({ answer: answers.never, placesTimeoutMs: 20 });
  const at = wireNow(service.handleLine(`IAMAT ${ID} ${LOC} 5`, { signal: live() }));
  assert.equal(
    await service.handleLine(`WHATSAT ${ID} 10 5`, { signal: live() }),
    `${at}${UNKNOWN_ERROR_BODY}\n\n`,
  );
});

Deno.test("HerdService formats an immediate answer once per query: a repeated WHATSAT gets the same bytes without asking again", async () => {
  const asked: PlacesQuery[] = [];
  const provider: ImmediatePlacesProvider = {
    name: "offline",
    lookup: () => Promise.reject(new Error("an immediate provider is not awaited here")),
    answerNow: (query: PlacesQuery) => {
      asked.push(query);
      return okBody(20);
    },
  };
  const { service, counters } = harness({ provider });
  await service.handleLine("IAMAT kiwi +34.068930-118.445127 1621464827.959498503", {
    signal: live(),
  });
  const first = await service.handleLine("WHATSAT kiwi 10 5", { signal: live() });
  const again = await service.handleLine("WHATSAT kiwi 10 5", { signal: live() });
  assert.equal(again, first);
  assert.equal(asked.length, 1);
  assert.equal(JSON.parse(first.split("\n")[1]).results.length, 5);
  // Another bound or radius is another query.
  const moreResults = await service.handleLine("WHATSAT kiwi 10 7", { signal: live() });
  assert.equal(JSON.parse(moreResults.split("\n")[1]).results.length, 7);
  await service.handleLine("WHATSAT kiwi 11 7", { signal: live() });
  assert.equal(asked.length, 3);
  // A new location of the client is asked about anew; the AT line is always the one held.
  await service.handleLine("IAMAT kiwi +35.068930-118.445127 1621464828.0", { signal: live() });
  const moved = await service.handleLine("WHATSAT kiwi 10 5", { signal: live() });
  assert.equal(asked.length, 4);
  assert.equal(asked[3].latitude, 35.06893);
  assert.ok(moved.startsWith(`AT ${SERVER} `) && moved.includes(" kiwi +35.068930-118.445127 "));
  assert.equal(counters.get("whatsat"), 5);
});
