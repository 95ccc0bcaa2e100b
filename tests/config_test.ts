import assert from "node:assert/strict";
import {
  type Config,
  ConfigError,
  DEFAULT_LIMITS,
  defaultConfigJson,
  formatAddress,
  loadConfig,
  type ServerConfig,
  validateConfig,
} from "../lib/config.ts";

/** The contract's limits table, section 2. */
const CONTRACT_LIMITS = {
  placesTimeoutMs: 5000,
  placesConcurrencyMax: 8,
  placesCallsPerSecondMax: 10,
  placesQueueMax: 64,
  lineBytesMax: 65536,
  linesInFlightMax: 64,
  outputBytesMax: 1048576,
  connectionsMax: 20000,
  idleTimeoutMs: 600000,
  clientsMax: 10000000,
  storeBytesMax: 2147483648,
  peerHeartbeatMs: 5000,
  dataDirBacklogMax: 100000,
  monitorSubscribersMax: 64,
};

/** The contract's five servers, each with a monitor on loopback at its port + 100. */
const CONTRACT_SERVERS: Array<[string, ServerConfig]> = [
  "Jaquez",
  "Hill",
  "Smith",
  "Singleton",
  "Campbell",
].map((name, index) => [name, {
  host: "127.0.0.1",
  bind: "127.0.0.1",
  port: 12000 + index,
  monitor: { host: "127.0.0.1", port: 12100 + index },
}]);

/** The links Hill–Jaquez Hill–Smith Singleton–Jaquez Singleton–Smith Singleton–Campbell Smith–Campbell. */
const CONTRACT_NEIGHBOURS: Record<string, string[]> = {
  Campbell: ["Singleton", "Smith"],
  Hill: ["Jaquez", "Smith"],
  Jaquez: ["Hill", "Singleton"],
  Singleton: ["Campbell", "Jaquez", "Smith"],
  Smith: ["Campbell", "Hill", "Singleton"],
};

function neighboursOf(config: Config): Record<string, string[]> {
  return Object.fromEntries(
    [...config.neighbours.entries()].map(([name, list]) => [name, [...list].sort()]),
  );
}

/** Asserts `run` throws a ConfigError whose message is one non-empty line; returns it. */
function assertConfigError(run: () => unknown): string {
  let message = "";
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    message = error.message;
    return true;
  });
  assertOneLine(message);
  return message;
}

async function assertConfigErrorAsync(run: () => Promise<unknown>): Promise<string> {
  let message = "";
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    message = error.message;
    return true;
  });
  assertOneLine(message);
  return message;
}

function assertOneLine(message: string): void {
  assert.notEqual(message.trim(), "", "the message is empty");
  assert.equal(/[\n\r]/.test(message), false, `not one line: ${JSON.stringify(message)}`);
}

/** Two linked servers, the smallest interesting valid config. */
function twoServers(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    servers: { Hill: { port: 13001 }, Smith: { port: 13002 } },
    links: [["Hill", "Smith"]],
    ...extra,
  };
}

async function withTempFile<T>(text: string, run: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, text);
    return await run(path);
  } finally {
    await Deno.remove(path);
  }
}

// ---------------------------------------------------------------------------------------------
// The default

Deno.test("loadConfig() without a path gives the five servers on ports 12000–12004 in order", async () => {
  const config = await loadConfig(undefined);
  assert.deepEqual([...config.servers.entries()], CONTRACT_SERVERS);
});

Deno.test("loadConfig() without a path gives the contract's six links", async () => {
  const config = await loadConfig(undefined);
  assert.deepEqual(neighboursOf(config), CONTRACT_NEIGHBOURS);
});

Deno.test("loadConfig() without a path gives the contract's limits, pro fields and no warning", async () => {
  const config = await loadConfig(undefined);
  assert.deepEqual(config.limits, CONTRACT_LIMITS);
  assert.equal(config.placesFields, "pro");
  assert.deepEqual(config.warnings, []);
});

Deno.test("DEFAULT_LIMITS are exactly the contract's table", () => {
  assert.deepEqual({ ...DEFAULT_LIMITS }, CONTRACT_LIMITS);
});

Deno.test("the default config as herd.json validates to the same config", async () => {
  const fromJson = validateConfig(structuredClone(defaultConfigJson()));
  const builtIn = await loadConfig(undefined);
  assert.deepEqual([...fromJson.servers.entries()], [...builtIn.servers.entries()]);
  assert.deepEqual(neighboursOf(fromJson), neighboursOf(builtIn));
  assert.deepEqual(fromJson.limits, builtIn.limits);
});

Deno.test("a server's monitor is HOST:PORT, [IPv6]:PORT, or null / absent for none", () => {
  const config = validateConfig({
    servers: {
      A: { port: 1, monitor: "0.0.0.0:8222" },
      B: { port: 2, monitor: "[::1]:8223" },
      C: { port: 3, monitor: null },
      D: { port: 4 },
    },
  });
  assert.deepEqual(config.servers.get("A")?.monitor, { host: "0.0.0.0", port: 8222 });
  assert.deepEqual(config.servers.get("B")?.monitor, { host: "::1", port: 8223 });
  assert.equal(config.servers.get("C")?.monitor, undefined);
  assert.equal(config.servers.get("D")?.monitor, undefined);
  assert.equal(formatAddress({ host: "::1", port: 8223 }), "[::1]:8223");
});

const BAD_MONITORS: unknown[] = [
  "",
  "8222",
  ":8222",
  "host:",
  "host:0",
  "host:65536",
  "host:80x",
  "host:+80",
  "::1:8222",
  "[::1]",
  "host :8222",
  8222,
  true,
  {},
];

for (const monitor of BAD_MONITORS) {
  Deno.test(`validateConfig() refuses the monitor ${JSON.stringify(monitor)}`, () => {
    assertConfigError(() => validateConfig({ servers: { A: { port: 1, monitor } } }));
  });
}

Deno.test("validateConfig() refuses a monitor on a server's or another monitor's address", () => {
  assertConfigError(() =>
    validateConfig({ servers: { A: { port: 1 }, B: { port: 2, monitor: "127.0.0.1:1" } } })
  );
  assertConfigError(() =>
    validateConfig({
      servers: { A: { port: 1, monitor: "h:9" }, B: { port: 2, monitor: "h:9" } },
    })
  );
});

Deno.test("neighbours are listed sorted by name", async () => {
  const config = await loadConfig(undefined);
  for (const [name, list] of config.neighbours) {
    assert.deepEqual([...list], [...list].sort(), name);
  }
});

// ---------------------------------------------------------------------------------------------
// The valid space

Deno.test("validateConfig(): host defaults to 127.0.0.1, and bind to host", () => {
  const config = validateConfig({
    servers: { Hill: { port: 13001 }, Smith: { port: 13002, host: "10.0.0.7" } },
    links: [["Hill", "Smith"]],
  });
  assert.deepEqual(config.servers.get("Hill"), {
    host: "127.0.0.1",
    bind: "127.0.0.1",
    port: 13001,
    monitor: undefined,
  });
  assert.deepEqual(config.servers.get("Smith"), {
    host: "10.0.0.7",
    bind: "10.0.0.7",
    port: 13002,
    monitor: undefined,
  });
});

Deno.test("validateConfig(): bind is where a server listens, host where it is dialled", () => {
  const config = validateConfig({
    servers: {
      Hill: { port: 13001, host: "198.18.0.2", bind: "0.0.0.0" },
      Smith: { port: 13002, host: "herd-smith.example", bind: "::" },
    },
    links: [["Hill", "Smith"]],
  });
  assert.deepEqual(config.servers.get("Hill"), {
    host: "198.18.0.2",
    bind: "0.0.0.0",
    port: 13001,
    monitor: undefined,
  });
  assert.equal(config.servers.get("Smith")?.bind, "::");
});

Deno.test("validateConfig(): one server with no links is valid and warns of nothing", () => {
  for (
    const json of [{ servers: { Solo: { port: 13000 } } }, {
      servers: { Solo: { port: 13000 } },
      links: [],
    }]
  ) {
    const config = validateConfig(json);
    assert.deepEqual([...config.servers.keys()], ["Solo"]);
    assert.deepEqual(config.neighbours.get("Solo"), []);
    assert.deepEqual(config.warnings, []);
  }
});

Deno.test("validateConfig(): a disconnected graph is valid with a one-line warning", () => {
  const config = validateConfig({
    servers: { A: { port: 13001 }, B: { port: 13002 }, C: { port: 13003 }, D: { port: 13004 } },
    links: [["A", "B"], ["C", "D"]],
  });
  assert.equal(config.warnings.length, 1);
  assertOneLine(config.warnings[0]);
  assert.deepEqual(config.neighbours.get("A"), ["B"]);
  assert.deepEqual(config.neighbours.get("D"), ["C"]);
});

Deno.test("validateConfig(): two servers without links are disconnected, with a warning", () => {
  const config = validateConfig({ servers: { A: { port: 13001 }, B: { port: 13002 } } });
  assert.equal(config.warnings.length, 1);
});

Deno.test("validateConfig(): a connected graph has no warning", () => {
  assert.deepEqual(validateConfig(twoServers()).warnings, []);
});

Deno.test("validateConfig(): names are case-sensitive (hill and Hill are two servers)", () => {
  const config = validateConfig({
    servers: { Hill: { port: 13001 }, hill: { port: 13002 } },
    links: [["Hill", "hill"]],
  });
  assert.deepEqual([...config.servers.keys()], ["Hill", "hill"]);
});

Deno.test("validateConfig(): the same port on different hosts is valid", () => {
  const config = validateConfig({
    servers: { A: { port: 13000, host: "127.0.0.1" }, B: { port: 13000, host: "127.0.0.2" } },
    links: [["A", "B"]],
  });
  assert.equal(config.servers.size, 2);
});

Deno.test("validateConfig(): a limit given overrides only that limit", () => {
  const config = validateConfig(
    twoServers({ limits: { placesTimeoutMs: 250, lineBytesMax: 1024 } }),
  );
  assert.deepEqual(config.limits, { ...CONTRACT_LIMITS, placesTimeoutMs: 250, lineBytesMax: 1024 });
});

Deno.test("validateConfig(): every limit given at its default value is valid", () => {
  const config = validateConfig(twoServers({ limits: { ...CONTRACT_LIMITS } }));
  assert.deepEqual(config.limits, CONTRACT_LIMITS);
});

Deno.test("validateConfig(): an empty limits object gives the defaults", () => {
  assert.deepEqual(validateConfig(twoServers({ limits: {} })).limits, CONTRACT_LIMITS);
});

Deno.test('validateConfig(): "placesFields": "enterprise" is kept', () => {
  assert.equal(
    validateConfig(twoServers({ placesFields: "enterprise" })).placesFields,
    "enterprise",
  );
});

// ---------------------------------------------------------------------------------------------
// The invalid space

const LIMIT_KEYS = Object.keys(CONTRACT_LIMITS);

/** A limit of zero means nothing can ever happen; placesQueueMax 0 and idleTimeoutMs 0 are left out (arguable). */
const ZERO_IS_OUT_OF_RANGE = LIMIT_KEYS.filter((key) =>
  key !== "placesQueueMax" && key !== "idleTimeoutMs"
);

/** The contract's ranges of the keys added in version 3. */
const JUST_IN_RANGE_LOW = {
  peerHeartbeatMs: 100,
  storeBytesMax: 1048576,
  dataDirBacklogMax: 1,
  monitorSubscribersMax: 1,
};
const JUST_IN_RANGE_HIGH = {
  peerHeartbeatMs: 600000,
  storeBytesMax: 2 ** 50,
  dataDirBacklogMax: 10000000,
  monitorSubscribersMax: 10000,
};
const JUST_OUT_OF_RANGE = {
  peerHeartbeatMs: 99,
  storeBytesMax: 1048575,
  dataDirBacklogMax: 10000001,
  monitorSubscribersMax: 10001,
};

const INVALID_CONFIGS: Array<{ name: string; json: unknown }> = [
  { name: "a top level that is not an object", json: [] },
  { name: "a top level that is null", json: null },
  { name: "no servers", json: { links: [] } },
  { name: "an empty servers object", json: { servers: {}, links: [] } },
  { name: "an empty server name", json: { servers: { "": { port: 13000 } } } },
  { name: "a server name with a space", json: { servers: { "Hi ll": { port: 13000 } } } },
  { name: "a server name with a leading space", json: { servers: { " Hill": { port: 13000 } } } },
  { name: "a server name with a trailing space", json: { servers: { "Hill ": { port: 13000 } } } },
  { name: "a server name with a tab", json: { servers: { "Hi\tll": { port: 13000 } } } },
  { name: "a server name with a newline", json: { servers: { "Hi\nll": { port: 13000 } } } },
  { name: "a server name with a CR", json: { servers: { "Hill\r": { port: 13000 } } } },
  { name: "a server name with a VT", json: { servers: { "Hi\vll": { port: 13000 } } } },
  { name: "a server name with a FF", json: { servers: { "Hi\fll": { port: 13000 } } } },
  { name: "a server name that is only white space", json: { servers: { " ": { port: 13000 } } } },
  { name: "a server that is not an object", json: { servers: { Hill: 13000 } } },
  { name: "a server without a port", json: { servers: { Hill: { host: "127.0.0.1" } } } },
  { name: "a port of 0", json: { servers: { Hill: { port: 0 } } } },
  { name: "a port of 65536", json: { servers: { Hill: { port: 65536 } } } },
  { name: "a negative port", json: { servers: { Hill: { port: -1 } } } },
  { name: "a port that is a string", json: { servers: { Hill: { port: "13000" } } } },
  { name: "a port that is not whole", json: { servers: { Hill: { port: 13000.5 } } } },
  { name: "a host that is empty", json: { servers: { Hill: { port: 13000, host: "" } } } },
  { name: "a host that is not a string", json: { servers: { Hill: { port: 13000, host: 127 } } } },
  { name: "a bind that is empty", json: { servers: { Hill: { port: 13000, bind: "" } } } },
  { name: "a bind that is a number", json: { servers: { Hill: { port: 13000, bind: 0 } } } },
  {
    name: "a bind with white space",
    json: { servers: { Hill: { port: 13000, bind: "0.0.0.0 " } } },
  },
  {
    name: "the same host and port twice",
    json: {
      servers: { A: { port: 13000, host: "127.0.0.1" }, B: { port: 13000, host: "127.0.0.1" } },
    },
  },
  {
    name: "the same port twice with the host defaulted on one side",
    json: { servers: { A: { port: 13000 }, B: { port: 13000, host: "127.0.0.1" } } },
  },
  {
    name: "the same port twice with both hosts defaulted",
    json: { servers: { A: { port: 13000 }, B: { port: 13000 } } },
  },
  { name: "links that are not an array", json: twoServers({ links: { Hill: "Smith" } }) },
  { name: "a link that is not a pair", json: twoServers({ links: [["Hill"]] }) },
  { name: "a link of three names", json: twoServers({ links: [["Hill", "Smith", "Hill"]] }) },
  { name: "a link that is a string", json: twoServers({ links: ["Hill-Smith"] }) },
  { name: "a link with a number", json: twoServers({ links: [["Hill", 1]] }) },
  { name: "an unknown name in links (second)", json: twoServers({ links: [["Hill", "Nobody"]] }) },
  { name: "an unknown name in links (first)", json: twoServers({ links: [["Nobody", "Smith"]] }) },
  { name: "a name in links in the wrong case", json: twoServers({ links: [["Hill", "smith"]] }) },
  { name: "a self-link", json: twoServers({ links: [["Hill", "Smith"], ["Hill", "Hill"]] }) },
  {
    name: "the same pair twice",
    json: twoServers({ links: [["Hill", "Smith"], ["Hill", "Smith"]] }),
  },
  {
    name: "the same pair twice in reverse order",
    json: twoServers({ links: [["Hill", "Smith"], ["Smith", "Hill"]] }),
  },
  { name: "limits that are not an object", json: twoServers({ limits: [5000] }) },
  { name: "an unknown limit key", json: twoServers({ limits: { placesTimeoutSeconds: 5 } }) },
  {
    name: "a limit key in the wrong case",
    json: twoServers({ limits: { PlacesTimeoutMs: 5000 } }),
  },
  {
    name: "an unknown limit key toString",
    json: twoServers({ limits: JSON.parse('{"toString": 1}') }),
  },
  {
    name: "an unknown limit key constructor",
    json: twoServers({ limits: JSON.parse('{"constructor": 1}') }),
  },
  {
    name: "an unknown limit key hasOwnProperty",
    json: twoServers({ limits: JSON.parse('{"hasOwnProperty": 1}') }),
  },
  {
    name: "an unknown limit key __proto__",
    json: twoServers({ limits: JSON.parse('{"__proto__": 1}') }),
  },
  {
    name: 'a "placesFields" that is neither pro nor enterprise',
    json: twoServers({ placesFields: "gold" }),
  },
  ...LIMIT_KEYS.flatMap((key) =>
    [-1, 1.5, 1e300, "100", null, true, [], {}].map((value) => ({
      name: `limit ${key} of ${JSON.stringify(value)}`,
      json: twoServers({ limits: { [key]: value } }),
    }))
  ),
  ...ZERO_IS_OUT_OF_RANGE.map((key) => ({
    name: `limit ${key} of 0`,
    json: twoServers({ limits: { [key]: 0 } }),
  })),
  ...Object.entries(JUST_OUT_OF_RANGE).map(([key, value]) => ({
    name: `limit ${key} of ${value}, just outside its range`,
    json: twoServers({ limits: { [key]: value } }),
  })),
];

Deno.test("validateConfig() accepts the newer limits at the edges of their ranges", () => {
  for (const edges of [JUST_IN_RANGE_LOW, JUST_IN_RANGE_HIGH]) {
    const config = validateConfig(twoServers({ limits: edges }));
    assert.deepEqual(config.limits, { ...CONTRACT_LIMITS, ...edges });
    assert.deepEqual([...config.limitsGiven].sort(), Object.keys(edges).sort());
  }
});

for (const { name, json } of INVALID_CONFIGS) {
  Deno.test(`validateConfig() refuses ${name} with a one-line ConfigError`, () => {
    assertConfigError(() => validateConfig(json));
  });
}

// Names and keys come from the file: a message that quotes them must still be one line.
const MESSAGES_QUOTING_INPUT: Array<{ name: string; json: unknown }> = [
  {
    name: "an unknown name with a newline in links",
    json: twoServers({ links: [["Hill", "No\nbody"]] }),
  },
  {
    name: "an unknown limit key with a newline",
    json: twoServers({ limits: { "lines\nMax": 5 } }),
  },
  {
    name: "an unknown key with a newline in a server",
    json: { servers: { Hill: { port: 13000, "ho\nst": "x" } } },
  },
  { name: "an unknown top-level key with a newline", json: { ...twoServers(), "li\nnks": [] } },
];

for (const { name, json } of MESSAGES_QUOTING_INPUT) {
  Deno.test(`validateConfig() keeps the message to one line for ${name}`, () => {
    assertConfigError(() => validateConfig(json));
  });
}

// ---------------------------------------------------------------------------------------------
// Files

Deno.test("loadConfig() reads a valid file", async () => {
  const text = JSON.stringify({
    servers: { Hill: { port: 13001 }, Smith: { port: 13002, host: "localhost" } },
    links: [["Smith", "Hill"]],
    limits: { lineBytesMax: 4096 },
  });
  const config = await withTempFile(text, (path) => loadConfig(path));
  assert.deepEqual([...config.servers.entries()], [
    ["Hill", { host: "127.0.0.1", bind: "127.0.0.1", port: 13001, monitor: undefined }],
    ["Smith", { host: "localhost", bind: "localhost", port: 13002, monitor: undefined }],
  ]);
  assert.deepEqual(config.neighbours.get("Hill"), ["Smith"]);
  assert.equal(config.limits.lineBytesMax, 4096);
  assert.equal(config.limits.placesTimeoutMs, 5000);
});

Deno.test("loadConfig() refuses a missing file with a one-line ConfigError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const message = await assertConfigErrorAsync(() => loadConfig(`${dir}/missing-herd.json`));
    assert.ok(message.includes("missing-herd.json"), message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() refuses a directory with a one-line ConfigError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertConfigErrorAsync(() => loadConfig(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const NOT_JSON = [
  { name: "an empty file", text: "" },
  { name: "a word", text: "nope" },
  { name: "two lines of words", text: "nope\nnope" },
  { name: "a trailing comma", text: '{\n  "servers": {},\n}\n' },
  { name: "JSON with a comment", text: '// herd\n{"servers": {"A": {"port": 13000}}}' },
  { name: "a truncated object", text: '{"servers": {"A": ' },
  { name: "a UTF-8 byte-order mark and garbage", text: "\ufeff{]" },
];

for (const { name, text } of NOT_JSON) {
  Deno.test(`loadConfig() refuses ${name} (not JSON) with a one-line ConfigError`, async () => {
    await withTempFile(text, (path) => assertConfigErrorAsync(() => loadConfig(path)));
  });
}

const INVALID_FILES = [
  { name: "a self-link", json: twoServers({ links: [["Hill", "Hill"]] }) },
  { name: "an unknown limit", json: twoServers({ limits: { nope: 1 } }) },
  { name: "an out-of-range limit", json: twoServers({ limits: { lineBytesMax: -5 } }) },
  {
    name: "an unknown limit key toString",
    json: twoServers({ limits: JSON.parse('{"toString": 1}') }),
  },
  { name: "a JSON array", json: [1, 2, 3] },
  { name: "a JSON string", json: "herd" },
];

for (const { name, json } of INVALID_FILES) {
  Deno.test(`loadConfig() refuses a file with ${name} with a one-line ConfigError`, async () => {
    await withTempFile(
      JSON.stringify(json),
      (path) => assertConfigErrorAsync(() => loadConfig(path)),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// TLS

/** Two servers with TLS; `hill`/`smith`/`top` replace (or, when null, drop) their `tls`. */
function twoTlsServers(
  change: { hill?: unknown; smith?: unknown; top?: unknown } = {},
): Record<string, unknown> {
  const pick = (given: unknown, fallback: unknown) =>
    given === null ? {} : { tls: given ?? fallback };
  return {
    servers: {
      Hill: { port: 13001, ...pick(change.hill, { cert: "hill.pem", key: "hill.key" }) },
      Smith: { port: 13002, ...pick(change.smith, { cert: "smith.pem", key: "smith.key" }) },
    },
    links: [["Hill", "Smith"]],
    ...pick(change.top, { ca: "ca.pem" }),
  };
}

Deno.test("validateConfig() keeps tls paths as given, on every server and at the top", () => {
  const config = validateConfig(twoTlsServers());
  assert.deepEqual(config.tls, { caPath: "ca.pem" });
  assert.deepEqual(config.servers.get("Hill")!.tls, { certPath: "hill.pem", keyPath: "hill.key" });
  assert.deepEqual(config.servers.get("Smith")!.tls, {
    certPath: "smith.pem",
    keyPath: "smith.key",
  });
});

Deno.test("validateConfig() without tls gives no tls anywhere", () => {
  const config = validateConfig(twoServers());
  assert.equal(config.tls, undefined);
  assert.equal(Object.hasOwn(config.servers.get("Hill")!, "tls"), false);
});

const INVALID_TLS_CONFIGS: Array<{ name: string; json: unknown; says: RegExp }> = [
  { name: "tls on one server only", json: twoTlsServers({ smith: null }), says: /Smith has no/ },
  {
    name: "server tls without the top-level ca",
    json: twoTlsServers({ top: null }),
    says: /top level has no "tls"/,
  },
  {
    name: "a top-level ca without server tls",
    json: { ...twoServers(), tls: { ca: "ca.pem" } },
    says: /Hill has no "tls"/,
  },
  { name: "an unknown top-level tls key", json: twoTlsServers({ top: { ca: "a", crl: "b" } }) },
  {
    name: "an unknown server tls key",
    json: twoTlsServers({ hill: { cert: "c", key: "k", ca: "x" } }),
  },
  { name: "a server tls without key", json: twoTlsServers({ hill: { cert: "c" } }) },
  { name: "a server tls without cert", json: twoTlsServers({ hill: { key: "k" } }) },
  { name: "an empty cert path", json: twoTlsServers({ hill: { cert: "", key: "k" } }) },
  { name: "a numeric key path", json: twoTlsServers({ hill: { cert: "c", key: 5 } }) },
  { name: "an empty ca path", json: twoTlsServers({ top: { ca: "" } }) },
  { name: "tls that is a string", json: twoTlsServers({ top: "ca.pem" }) },
  { name: "server tls that is a string", json: twoTlsServers({ hill: "yes" }) },
].map((entry) => ({ says: /./, ...entry }));

for (const { name, json, says } of INVALID_TLS_CONFIGS) {
  Deno.test(`validateConfig() refuses ${name} with a one-line ConfigError`, () => {
    assert.match(assertConfigError(() => validateConfig(json)), says);
  });
}

Deno.test("loadConfig() resolves tls paths against the herd.json's directory", async () => {
  const text = JSON.stringify(twoTlsServers({ hill: { cert: "/abs/hill.pem", key: "k/h.key" } }));
  await withTempFile(text, async (path) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    const config = await loadConfig(path);
    assert.deepEqual(config.tls, { caPath: `${dir}/ca.pem` });
    assert.deepEqual(config.servers.get("Hill")!.tls, {
      certPath: "/abs/hill.pem",
      keyPath: `${dir}/k/h.key`,
    });
    assert.deepEqual(config.servers.get("Smith")!.tls, {
      certPath: `${dir}/smith.pem`,
      keyPath: `${dir}/smith.key`,
    });
  });
});
