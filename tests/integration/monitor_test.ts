/**
 * The monitor of real server processes (contract §6): /healthz (and `?links=all` naming a
 * stopped neighbour, then ok again once it is back), /status with every field of the
 * ServerStatus shape and sane values after traffic, /metrics passing `promtool check
 * metrics` with counters that move, the bearer token, the refusal of a non-loopback monitor
 * without a token, and no endpoint ever showing the Places key or HERD_SECRET.
 */
import assert from "node:assert/strict";
import type { ServerStatus } from "../../lib/server_status.ts";
import { STORED_CLIENT_OVERHEAD_BYTES } from "../../lib/store.ts";
import { checkMetricsWithPromtool } from "../support/promtool.ts";
import {
  freePorts,
  type Herd,
  type HerdConfigJson,
  type HerdOptions,
  pollUntil,
  runHerdCli,
  startHerd,
} from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const NAMES = ["Hill", "Jaquez", "Smith"];
const LOCATION = "+34.068930-118.445127";
/** Known strings that must never appear in any monitor output. */
const API_KEY = `places-key-${crypto.randomUUID()}`;
const SECRET = `herd-secret-${crypto.randomUUID()}`;
const TOKEN = `monitor-token-${crypto.randomUUID()}`;
/** How long a stream's output is read for the check that it shows no key or secret. */
const STREAM_READ_MS = 1500;

/** Starts a herd whose every server has a monitor on a free loopback port. */
async function startMonitoredHerd(options: HerdOptions = {}) {
  const names = options.names ?? NAMES;
  const monitorPorts = new Map(freePorts(names.length).map((port, i) => [names[i], port]));
  const withMonitors = (_name: string, config: HerdConfigJson): HerdConfigJson => ({
    ...config,
    servers: Object.fromEntries(
      Object.entries(config.servers).map(([name, server]) => [
        name,
        { ...server, monitor: `127.0.0.1:${monitorPorts.get(name)}` },
      ]),
    ),
  });
  const herd = await startHerd({ names, configSeenBy: withMonitors, ...options });
  return { herd, monitorUrl: (name: string) => `http://127.0.0.1:${monitorPorts.get(name)}` };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

/**
 * What an endpoint shows: its whole body, or for a stream (`/events`, which never ends) what
 * arrives within {@link STREAM_READ_MS}.
 */
async function shown(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.headers.get("content-type")?.startsWith("text/event-stream")) {
    return await response.text();
  }
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + STREAM_READ_MS;
  while (Date.now() < deadline) {
    const timeout = new Promise<undefined>((resolve) =>
      setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))
    );
    const chunk = await Promise.race([reader.read(), timeout]);
    if (chunk === undefined || chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  await reader.cancel();
  return text;
}

async function statusOf(monitorUrl: string): Promise<ServerStatus> {
  const { status, text } = await get(`${monitorUrl}/status`);
  assert.equal(status, 200, text);
  return JSON.parse(text);
}

async function iamat(herd: Herd, server: string, clientId: string): Promise<void> {
  await using client = await WireClient.connect(herd.port(server));
  await client.write(`IAMAT ${clientId} ${LOCATION} ${(Date.now() / 1000).toFixed(9)}\n`);
  assert.match(await client.readAtReply(), /^AT /);
}

/** `herd_lines_total{kind="IAMAT",outcome="stored"}` of an exposition. */
function iamatsStored(metrics: string): number {
  const match = metrics.match(/^herd_lines_total\{kind="IAMAT",outcome="stored"\} (\d+)$/m);
  assert.ok(match, "no herd_lines_total for stored IAMATs");
  return Number(match[1]);
}

const STATUS_FIELDS = [
  "name",
  "version",
  "pid",
  "startedAt",
  "uptimeSeconds",
  "state",
  "listen",
  "monitor",
  "provider",
  "clients",
  "connections",
  "rates",
  "limits",
  "counters",
  "dataDir",
  "eventLoopLagMs",
  "links",
];
const LINK_FIELDS = [
  "peer",
  "state",
  "since",
  "dialledBy",
  "updatesSent",
  "updatesReceived",
  "bytesSent",
  "bytesReceived",
  "updatesPerSecond",
  "catchUp",
  "lastError",
];

Deno.test("monitor: healthz, status and metrics of a real herd, and neither key nor secret", async () => {
  const { herd, monitorUrl } = await startMonitoredHerd({
    args: ["--places", "offline"],
    env: { GOOGLE_PLACES_API_KEY: API_KEY, HERD_SECRET: SECRET },
  });
  await using _herd = herd;
  const hill = monitorUrl("Hill");
  await pollUntil(async () => (await get(`${hill}/healthz?links=all`)).status === 200, {
    what: "Hill's links all up",
  });
  assert.deepEqual(JSON.parse((await get(`${hill}/healthz`)).text), { status: "ok" });
  const metricsBefore = (await get(`${hill}/metrics`)).text;

  for (const id of ["kiwi", "emu", "moa"]) {
    await iamat(herd, "Hill", `${id}-${crypto.randomUUID()}`);
  }
  await iamat(herd, "Jaquez", "tui");
  await using client = await WireClient.connect(herd.port("Hill"));
  await client.write(`WHATSAT tui 10 2\n`);
  const whatsat = await client.readWhatsatReply();
  assert.match(whatsat.atLine, /^AT Jaquez /);

  const status = await pollUntil(async () => {
    const current = await statusOf(hill);
    const jaquez = current.links.find((link) => link.peer === "Jaquez");
    return jaquez !== undefined && jaquez.updatesReceived >= 1 && current.clients.held >= 4 &&
      current;
  }, { what: "Hill's status to show the traffic" });
  assert.deepEqual(Object.keys(status).sort(), [...STATUS_FIELDS].sort());
  assert.equal(status.name, "Hill");
  assert.match(status.version, /^\d+\.\d+\.\d+$/);
  assert.equal(status.pid, herd.process("Hill").pid);
  assert.ok(Date.now() - Date.parse(status.startedAt) < 120_000, status.startedAt);
  assert.ok(status.uptimeSeconds > 0 && status.uptimeSeconds < 120, String(status.uptimeSeconds));
  assert.equal(status.state, "serving");
  assert.equal(status.listen, `127.0.0.1:${herd.port("Hill")}`);
  assert.equal(`http://${status.monitor}`, hill);
  assert.equal(status.provider, "offline");
  assert.equal(status.clients.held, 4);
  assert.ok(status.clients.bytes > 4 * STORED_CLIENT_OVERHEAD_BYTES, String(status.clients.bytes));
  assert.equal(status.clients.full, false);
  assert.ok(status.connections.clients >= 1, "the WHATSAT client is connected");
  assert.ok(status.rates.iamatPerSecond >= 0 && status.rates.whatsatPerSecond >= 0);
  assert.equal(status.limits.monitorSubscribersMax, 64);
  assert.equal(status.counters.iamat_stored, 3);
  assert.equal(status.counters.whatsat, 1);
  assert.equal(status.dataDir, null);
  assert.ok(status.eventLoopLagMs.max >= status.eventLoopLagMs.recent);
  assert.deepEqual(status.links.map((link) => link.peer), ["Jaquez", "Smith"]);
  for (const link of status.links) {
    assert.deepEqual(Object.keys(link).sort(), [...LINK_FIELDS].sort());
    assert.equal(link.state, "up");
    assert.ok(["Hill", link.peer].includes(link.dialledBy!), `dialled by ${link.dialledBy}`);
    assert.ok(link.updatesSent >= 3, `${link.peer}: ${link.updatesSent} updates sent`);
    assert.ok(link.bytesSent > 0 && link.bytesReceived > 0);
    assert.ok(Date.parse(link.since) <= Date.now());
    assert.equal(link.catchUp.sentAll && link.catchUp.receivedAll, true);
  }
  assert.ok(status.links[0].updatesReceived >= 1, "Jaquez's update came in");

  const metrics = (await get(`${hill}/metrics`)).text;
  const promtool = await checkMetricsWithPromtool(metrics);
  console.log(`promtool check metrics: exit 0${promtool.trim() ? `: ${promtool.trim()}` : ""}`);
  assert.equal(iamatsStored(metrics) - iamatsStored(metricsBefore), 3);
  assert.match(metrics, /^herd_reply_latency_seconds_count\{command="WHATSAT"\} 1$/m);
  assert.match(metrics, /^herd_peer_link_up\{peer="Jaquez"\} 1$/m);
  assert.match(metrics, /^herd_flood_age_seconds_count [1-9]/m, "Jaquez's live flood");

  for (const name of NAMES) {
    for (const path of ["/healthz", "/healthz?links=all", "/status", "/metrics", "/", "/events"]) {
      const text = await shown(`${monitorUrl(name)}${path}`);
      assert.ok(!text.includes(API_KEY), `${name} ${path} shows the Places key`);
      assert.ok(!text.includes(SECRET), `${name} ${path} shows HERD_SECRET`);
    }
  }
  assert.equal((await get(`${hill}/nowhere`)).status, 404);
  const posted = await fetch(`${hill}/status`, { method: "POST" });
  await posted.body?.cancel();
  assert.equal(posted.status, 405);
});

Deno.test("monitor: /healthz?links=all names a stopped neighbour, and is ok once it is back", async () => {
  const { herd, monitorUrl } = await startMonitoredHerd({ args: ["--places", "offline"] });
  await using _herd = herd;
  const hill = monitorUrl("Hill");
  await pollUntil(async () => (await get(`${hill}/healthz?links=all`)).status === 200, {
    what: "Hill's links all up",
  });
  await herd.kill("Smith");
  const down = await pollUntil(async () => {
    const reply = await get(`${hill}/healthz?links=all`);
    return reply.status === 503 && JSON.parse(reply.text);
  }, { what: "Hill to report its link to Smith down" });
  assert.deepEqual(down, { status: "link down", links: ["Smith"] });
  assert.equal((await get(`${hill}/healthz`)).status, 200, "Hill itself still serves");
  const smith = (await statusOf(hill)).links.find((link) => link.peer === "Smith")!;
  assert.notEqual(smith.state, "up");
  assert.notEqual(smith.lastError, null);
  await herd.start("Smith");
  await pollUntil(async () => (await get(`${hill}/healthz?links=all`)).status === 200, {
    what: "Hill's link to Smith back up",
  });
});

Deno.test("monitor: with HERD_MONITOR_TOKEN every request needs the bearer token", async () => {
  const [monitorPort] = freePorts(1);
  const herd = await startHerd({
    names: ["Hill"],
    args: ["--places", "offline", "--monitor", `0.0.0.0:${monitorPort}`],
    env: { HERD_MONITOR_TOKEN: TOKEN },
  });
  await using _herd = herd;
  const url = `http://127.0.0.1:${monitorPort}`;
  for (const path of ["/healthz", "/status", "/metrics", "/nowhere"]) {
    assert.equal((await get(`${url}${path}`)).status, 401, `${path} without a token`);
    const wrong = await get(`${url}${path}`, { authorization: `Bearer ${TOKEN}x` });
    assert.equal(wrong.status, 401, `${path} with a wrong token`);
    assert.ok(!wrong.text.includes(TOKEN));
  }
  const right = await get(`${url}/healthz`, { authorization: `Bearer ${TOKEN}` });
  assert.equal(right.status, 200);
  const status = await get(`${url}/status`, { authorization: `Bearer ${TOKEN}` });
  assert.equal(status.status, 200);
  assert.ok(!status.text.includes(TOKEN), "the status shows the token");
});

Deno.test("monitor: a non-loopback monitor without HERD_MONITOR_TOKEN exits 2 with one line", async () => {
  const [port, monitorPort] = freePorts(2);
  const dir = await Deno.makeTempDir({ prefix: "herd_monitor_" });
  try {
    const config = `${dir}/herd.json`;
    await Deno.writeTextFile(config, JSON.stringify({ servers: { Hill: { port } }, links: [] }));
    const run = await runHerdCli([
      "--name",
      "Hill",
      "--config",
      config,
      "--log-dir",
      `${dir}/logs`,
      "--monitor",
      `0.0.0.0:${monitorPort}`,
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, /HERD_MONITOR_TOKEN/);
    assert.doesNotMatch(run.stdout, /listening on/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("monitor: a monitor port in use exits 1 with one line", async () => {
  const [port] = freePorts(1);
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const monitorPort = (taken.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "herd_monitor_" });
  try {
    const config = `${dir}/herd.json`;
    const servers = { Hill: { port, monitor: `127.0.0.1:${monitorPort}` } };
    await Deno.writeTextFile(config, JSON.stringify({ servers, links: [] }));
    const run = await runHerdCli(["--name", "Hill", "--config", config, "--log-dir", `${dir}/l`]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, /monitor .*address in use/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
