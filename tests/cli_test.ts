import assert from "node:assert/strict";
import { choosePlacesProvider, parseCli, type PlacesChoice, UsageError } from "../lib/cli.ts";

/** Asserts `run` throws a UsageError whose message is one non-empty line; returns it. */
function assertUsageError(run: () => unknown): string {
  let message = "";
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${error}`);
    message = error.message;
    return true;
  });
  assert.notEqual(message.trim(), "", "the message is empty");
  assert.equal(/[\n\r]/.test(message), false, `not one line: ${JSON.stringify(message)}`);
  return message;
}

// ---------------------------------------------------------------------------------------------
// parseCli: the valid space

Deno.test("parseCli() with only --name gives the documented defaults", () => {
  const options = parseCli(["--name", "Smith"]);
  assert.equal(options.name, "Smith");
  assert.equal(options.configPath, undefined);
  assert.equal(options.places, "auto");
  assert.equal(options.placesUrl, undefined);
  assert.equal(options.logDir.replace(/\/+$/, ""), "logs");
  assert.equal(options.logLevel, "info");
});

Deno.test("parseCli() reads every flag", () => {
  const options = parseCli([
    "--name",
    "Hill",
    "--config",
    "conf/herd.json",
    "--places",
    "google-new",
    "--places-url",
    "http://127.0.0.1:9999",
    "--log-dir",
    "/tmp/herd-logs",
    "--log-level",
    "debug",
  ]);
  assert.equal(options.name, "Hill");
  assert.equal(options.configPath, "conf/herd.json");
  assert.equal(options.places, "google-new");
  assert.equal(options.placesUrl, "http://127.0.0.1:9999");
  assert.equal(options.logDir, "/tmp/herd-logs");
  assert.equal(options.logLevel, "debug");
});

Deno.test("parseCli() reads --monitor HOST:PORT, off, and leaves it to the config without", () => {
  assert.equal(parseCli(["--name", "Hill"]).monitor, undefined);
  assert.equal(parseCli(["--name", "Hill", "--monitor", "off"]).monitor, null);
  assert.deepEqual(parseCli(["--name", "Hill", "--monitor", "0.0.0.0:12101"]).monitor, {
    host: "0.0.0.0",
    port: 12101,
  });
  assert.deepEqual(parseCli(["--name", "Hill", "--monitor=[::1]:9100"]).monitor, {
    host: "::1",
    port: 9100,
  });
});

Deno.test("parseCli() reads --flag=value forms", () => {
  const options = parseCli(["--name=Jaquez", "--places=offline", "--log-level=warn"]);
  assert.equal(options.name, "Jaquez");
  assert.equal(options.places, "offline");
  assert.equal(options.logLevel, "warn");
});

Deno.test("parseCli() keeps the name's case", () => {
  assert.equal(parseCli(["--name", "singleton"]).name, "singleton");
  assert.equal(parseCli(["--name", "SINGLETON"]).name, "SINGLETON");
});

for (const places of ["auto", "offline", "google", "google-new"]) {
  Deno.test(`parseCli() accepts --places ${places}`, () => {
    assert.equal(parseCli(["--name", "Smith", "--places", places]).places, places);
  });
}

for (const level of ["debug", "info", "warn"]) {
  Deno.test(`parseCli() accepts --log-level ${level}`, () => {
    assert.equal(parseCli(["--name", "Smith", "--log-level", level]).logLevel, level);
  });
}

Deno.test("parseCli() accepts an https --places-url", () => {
  const options = parseCli(["--name", "Smith", "--places-url", "https://places.example.test"]);
  assert.ok(options.placesUrl?.startsWith("https://places.example.test"));
});

// ---------------------------------------------------------------------------------------------
// parseCli: the invalid space

const INVALID_ARGS: Array<{ name: string; args: string[] }> = [
  { name: "an unknown flag", args: ["--name", "Smith", "--port", "12002"] },
  { name: "an unknown flag before --name", args: ["--verbose", "--name", "Smith"] },
  { name: "an unknown flag with =", args: ["--name", "Smith", "--foo=bar"] },
  { name: "a key given as a flag", args: ["--name", "Smith", "--key", "k"] },
  { name: "an API key given as a flag", args: ["--name", "Smith", "--api-key=k"] },
  { name: "a short flag", args: ["-n", "Smith"] },
  { name: "a flag in the wrong case", args: ["--Name", "Smith"] },
  { name: "a flag with one dash", args: ["-name", "Smith"] },
  { name: "no arguments at all", args: [] },
  { name: "missing --name", args: ["--config", "herd.json"] },
  { name: "--name without a value", args: ["--name"] },
  { name: "--name with an empty value", args: ["--name="] },
  { name: "--name followed by another flag", args: ["--name", "--config", "herd.json"] },
  { name: "--name followed by a dash value", args: ["--name", "-x"] },
  { name: "--config without a value", args: ["--name", "Smith", "--config"] },
  { name: "--places of an unknown provider", args: ["--name", "Smith", "--places", "bing"] },
  { name: "--places in the wrong case", args: ["--name", "Smith", "--places", "Offline"] },
  { name: "--places google_new", args: ["--name", "Smith", "--places", "google_new"] },
  { name: "--places empty", args: ["--name", "Smith", "--places="] },
  { name: "--places without a value", args: ["--name", "Smith", "--places"] },
  { name: "--log-level warning", args: ["--name", "Smith", "--log-level", "warning"] },
  { name: "--log-level error", args: ["--name", "Smith", "--log-level", "error"] },
  { name: "--log-level in the wrong case", args: ["--name", "Smith", "--log-level", "INFO"] },
  { name: "--log-level empty", args: ["--name", "Smith", "--log-level="] },
  {
    name: "--places-url that is not a URL",
    args: ["--name", "Smith", "--places-url", "not a url"],
  },
  { name: "--places-url of another scheme", args: ["--name", "Smith", "--places-url", "ftp://x"] },
  { name: "a positional argument", args: ["Smith"] },
  { name: "a positional argument after --name", args: ["--name", "Smith", "extra"] },
  { name: "a positional argument after --", args: ["--name", "Smith", "--", "extra"] },
  { name: "an unknown flag with a newline in it", args: ["--name", "Smith", "--fo\no"] },
  { name: "--monitor without a port", args: ["--name", "Smith", "--monitor", "127.0.0.1"] },
  { name: "--monitor with port 0", args: ["--name", "Smith", "--monitor", "127.0.0.1:0"] },
  { name: "--monitor with a bare IPv6 host", args: ["--name", "Smith", "--monitor", "::1:80"] },
  { name: "--monitor OFF", args: ["--name", "Smith", "--monitor", "OFF"] },
  { name: "--monitor empty", args: ["--name", "Smith", "--monitor="] },
];

for (const { name, args } of INVALID_ARGS) {
  Deno.test(`parseCli() refuses ${name} with a one-line UsageError`, () => {
    assertUsageError(() => parseCli(args));
  });
}

const DATA_DIR_ARGS: Array<[string[], string]> = [
  [["--name", "Smith", "--data-dir", "/tmp/herd-data"], "/tmp/herd-data"],
  [["--data-dir=/tmp/herd-data", "--name", "Smith"], "/tmp/herd-data"],
  [["--name", "Smith", "--places", "offline", "--data-dir", "data"], "data"],
];

for (const [args, dataDir] of DATA_DIR_ARGS) {
  Deno.test(`parseCli() takes --data-dir from ${args.join(" ")}`, () => {
    assert.equal(parseCli(args).dataDir, dataDir);
  });
}

Deno.test("parseCli() keeps no data dir unless asked, and refuses an empty one", () => {
  assert.equal(parseCli(["--name", "Smith"]).dataDir, undefined);
  const message = assertUsageError(() => parseCli(["--name", "Smith", "--data-dir", ""]));
  assert.ok(message.includes("--data-dir"), message);
});

Deno.test("parseCli() names the unknown flag in its message", () => {
  const message = assertUsageError(() => parseCli(["--name", "Smith", "--colour", "red"]));
  assert.ok(message.includes("--colour"), message);
});

Deno.test("parseCli() mentions --name when it is missing", () => {
  const message = assertUsageError(() => parseCli(["--places", "offline"]));
  assert.ok(message.includes("--name"), message);
});

// ---------------------------------------------------------------------------------------------
// choosePlacesProvider

const CHOICES: Array<{
  name: string;
  choice: PlacesChoice;
  apiKey: string | undefined;
  placesApi: string | undefined;
  expected: string;
}> = [
  {
    name: "auto without a key is offline",
    choice: "auto",
    apiKey: undefined,
    placesApi: undefined,
    expected: "offline",
  },
  {
    name: "auto without a key is offline even with HERD_PLACES_API=legacy",
    choice: "auto",
    apiKey: undefined,
    placesApi: "legacy",
    expected: "offline",
  },
  {
    name: "auto with a key is google-new",
    choice: "auto",
    apiKey: "k",
    placesApi: undefined,
    expected: "google-new",
  },
  {
    name: "auto with a key and HERD_PLACES_API=legacy is google",
    choice: "auto",
    apiKey: "k",
    placesApi: "legacy",
    expected: "google",
  },
  {
    name: "auto with a key and another HERD_PLACES_API is google-new",
    choice: "auto",
    apiKey: "k",
    placesApi: "new",
    expected: "google-new",
  },
  {
    name: "offline without a key is offline",
    choice: "offline",
    apiKey: undefined,
    placesApi: undefined,
    expected: "offline",
  },
  {
    name: "offline with a key is offline",
    choice: "offline",
    apiKey: "k",
    placesApi: "legacy",
    expected: "offline",
  },
  {
    name: "google with a key is google",
    choice: "google",
    apiKey: "k",
    placesApi: undefined,
    expected: "google",
  },
  {
    name: "google-new with a key is google-new",
    choice: "google-new",
    apiKey: "k",
    placesApi: undefined,
    expected: "google-new",
  },
  {
    name: "google-new stays google-new with HERD_PLACES_API=legacy",
    choice: "google-new",
    apiKey: "k",
    placesApi: "legacy",
    expected: "google-new",
  },
];

for (const { name, choice, apiKey, placesApi, expected } of CHOICES) {
  Deno.test(`choosePlacesProvider(): ${name}`, () => {
    assert.equal(choosePlacesProvider(choice, { apiKey, placesApi }), expected);
  });
}

for (const choice of ["google", "google-new"] as const) {
  for (const placesApi of [undefined, "legacy"]) {
    Deno.test(`choosePlacesProvider(): ${choice} without a key is a one-line UsageError (HERD_PLACES_API=${placesApi})`, () => {
      const message = assertUsageError(() =>
        choosePlacesProvider(choice, { apiKey: undefined, placesApi })
      );
      assert.ok(message.includes("GOOGLE_PLACES_API_KEY"), message);
    });
  }
}
