/**
 * `herd status` run as a real process against monitors over real sockets: fake monitors
 * started here (answering canned statuses, 401 without the token, nothing at all, or never),
 * and a real herd whose servers have monitors, with one server killed. Exit 0 only when every server and link is up.
 */
import assert from "node:assert/strict";
import type { ServerStatus } from "../../lib/server_status.ts";
import {
  freePorts,
  HERD_NAMES,
  type HerdConfigJson,
  pollUntil,
  runHerdCli,
  startHerd,
} from "../support/herd_processes.ts";
import { link, serverStatus } from "../support/server_status_fixture.ts";

const TOKEN = "status-test-token";

/** A status as a serving monitor gives it, every listed neighbour's link up. */
function servingStatus(name: string, peers: string[]): ServerStatus {
  return serverStatus(name, {
    version: "test",
    uptimeSeconds: 5,
    listen: "127.0.0.1:1",
    monitor: "127.0.0.1:2",
    clients: { held: 7, bytes: 700, full: false },
    connections: { clients: 2, handshakes: 0 },
    rates: { iamatPerSecond: 12.5, whatsatPerSecond: 0.25 },
    eventLoopLagMs: { recent: 0, max: 1 },
    links: peers.map((peer) =>
      link(peer, {
        dialledBy: name,
        updatesSent: 3,
        updatesReceived: 4,
        bytesSent: 300,
        bytesReceived: 400,
        updatesPerSecond: 0.5,
        catchUp: { updatesSent: 3, sentAll: true, receivedAll: true },
      })
    ),
  });
}

/** A fake monitor on a free loopback port; records the Authorization header of each request. */
class FakeMonitor implements AsyncDisposable {
  readonly authorizations: Array<string | null> = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(answer: (request: Request) => Response | Promise<Response>) {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      this.authorizations.push(request.headers.get("authorization"));
      return answer(request);
    });
  }

  get address(): string {
    return `127.0.0.1:${this.#server.addr.port}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}

function answersStatus(status: ServerStatus, token?: string) {
  return (request: Request) => {
    if (token !== undefined && request.headers.get("authorization") !== `Bearer ${token}`) {
      return new Response("unauthorized\n", { status: 401 });
    }
    assert.equal(new URL(request.url).pathname, "/status");
    return Response.json(status);
  };
}

/** Writes herd.json with `servers` (monitor addresses given or omitted) into a new directory. */
async function writeConfig(
  servers: Record<string, { monitor?: string }>,
  links: Array<[string, string]>,
): Promise<{ dir: string; configPath: string }> {
  const dir = await Deno.makeTempDir({ prefix: "herd_status_" });
  const ports = freePorts(Object.keys(servers).length);
  const json = {
    servers: Object.fromEntries(
      Object.entries(servers).map((
        [name, server],
        index,
      ) => [name, { port: ports[index], ...server }]),
    ),
    links,
  };
  const configPath = `${dir}/herd.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(json));
  return { dir, configPath };
}

/** The table row of `name` (its cells split on the column gaps). */
function row(table: string, name: string): string[] {
  const line = table.split("\n").find((text) => text.startsWith(`${name} `));
  assert.ok(line !== undefined, `no row for ${name} in:\n${table}`);
  return line.split(/ {2,}/);
}

function assertOneLine(stderr: string, what: string): void {
  assert.match(stderr, /^herd: [^\n]+\n$/, `${what}: ${JSON.stringify(stderr)}`);
}

Deno.test("herd status marks each server that cannot be asked, and why, and exits 1", async () => {
  await using jaquez = new FakeMonitor(answersStatus(servingStatus("Jaquez", ["Hill"])));
  await using hill = new FakeMonitor(answersStatus(servingStatus("Hill", ["Jaquez"]), TOKEN));
  await using stranger = new FakeMonitor(() => Response.json({ hello: "world" }));
  const [nothingListens] = freePorts(1);
  const { dir, configPath } = await writeConfig({
    Jaquez: { monitor: jaquez.address },
    Hill: { monitor: hill.address },
    Smith: { monitor: `127.0.0.1:${nothingListens}` },
    Singleton: { monitor: stranger.address },
    Campbell: {},
  }, [["Hill", "Jaquez"]]);
  try {
    const run = await runHerdCli(["status", "--config", configPath]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr, "");
    const table = run.stdout;
    assert.match(
      table,
      /^SERVER +ADDRESS +UP +CLIENTS +CONNECTIONS +LINKS +IAMAT\/S +WHATSAT\/S +LAST ERROR\n/,
    );
    assert.deepEqual(row(table, "Jaquez").slice(2), ["yes", "7", "2", "1/1", "12.5", "0.3", "-"]);
    assert.equal(row(table, "Hill")[2], "no: 401: set HERD_MONITOR_TOKEN");
    assert.equal(row(table, "Smith")[2], "no: connection refused");
    assert.equal(row(table, "Singleton")[2], "no: answer is not a herd status");
    assert.equal(row(table, "Campbell")[2], "no monitor");
    assert.deepEqual(hill.authorizations, [null]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("herd status sends HERD_MONITOR_TOKEN, and --json gives every server's status or reason", async () => {
  await using jaquez = new FakeMonitor(answersStatus(servingStatus("Jaquez", ["Hill"]), TOKEN));
  await using hill = new FakeMonitor(answersStatus(servingStatus("Hill", ["Jaquez"]), TOKEN));
  const [nothingListens] = freePorts(1);
  const { dir, configPath } = await writeConfig({
    Jaquez: { monitor: jaquez.address },
    Hill: { monitor: hill.address },
    Smith: { monitor: `127.0.0.1:${nothingListens}` },
  }, [["Hill", "Jaquez"], ["Hill", "Smith"]]);
  try {
    const run = await runHerdCli(["status", "--json", "--config", configPath], {
      env: { HERD_MONITOR_TOKEN: TOKEN },
    });
    assert.equal(run.code, 1, run.stderr);
    const json = JSON.parse(run.stdout);
    assert.equal(json.up, false);
    const byName = Object.fromEntries(
      json.servers.map((server: { name: string }) => [server.name, server]),
    );
    assert.deepEqual(Object.keys(byName), ["Jaquez", "Hill", "Smith"]);
    assert.equal(byName.Jaquez.up, true);
    assert.deepEqual(byName.Jaquez.status, servingStatus("Jaquez", ["Hill"]));
    // Hill answers, but its configured link to Smith is not in its status: not up.
    assert.equal(byName.Hill.up, false);
    assert.equal(byName.Hill.reason, "1 of 2 links up");
    assert.equal(byName.Smith.up, false);
    assert.equal(byName.Smith.reason, "connection refused");
    assert.equal(byName.Smith.status, null);
    assert.deepEqual(hill.authorizations, [`Bearer ${TOKEN}`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("herd status exits 0 when every server answers and every link is up", async () => {
  await using jaquez = new FakeMonitor(answersStatus(servingStatus("Jaquez", ["Hill"])));
  await using hill = new FakeMonitor(answersStatus(servingStatus("Hill", ["Jaquez"])));
  const { dir, configPath } = await writeConfig({
    Jaquez: { monitor: jaquez.address },
    Hill: { monitor: hill.address },
  }, [["Hill", "Jaquez"]]);
  try {
    const run = await runHerdCli(["status", "--config", configPath]);
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    assert.equal(row(run.stdout, "Hill")[2], "yes");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("herd status gives up on a monitor that does not answer within its timeout", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await using silent = new FakeMonitor(async () => {
    await released;
    return new Response("too late");
  });
  const { dir, configPath } = await writeConfig({ Hill: { monitor: silent.address } }, []);
  try {
    const startedMs = Date.now();
    const run = await runHerdCli(["status", "--config", configPath]);
    const tookMs = Date.now() - startedMs;
    assert.equal(run.code, 1, run.stderr);
    assert.equal(row(run.stdout, "Hill")[2], "no: no answer within 2000 ms");
    // Deno's start-up plus the 2 s timeout; far less than "forever".
    assert.ok(tookMs < 10_000, `took ${tookMs} ms`);
  } finally {
    release();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("herd status usage errors exit 2 with one line", async () => {
  const { dir, configPath } = await writeConfig({ Hill: {} }, []);
  try {
    const runs = await Promise.all([
      runHerdCli(["status", "--bogus"]),
      runHerdCli(["status", "Hill"]),
      runHerdCli(["status", "--config"]),
      runHerdCli(["status", "--config", `${dir}/missing.json`]),
      runHerdCli(["status", "--config", configPath, "--json=yes"]),
    ]);
    for (const [index, run] of runs.entries()) {
      assert.equal(run.code, 2, `run ${index}: ${run.stdout}${run.stderr}`);
      assertOneLine(run.stderr, `run ${index}`);
      assert.equal(run.stdout, "");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("herd status against a real herd: all up exits 0; one server killed exits 1, marked down", async () => {
  const monitorPorts = freePorts(HERD_NAMES.length);
  const withMonitors = (_name: string, config: HerdConfigJson): HerdConfigJson => ({
    ...config,
    servers: Object.fromEntries(
      Object.entries(config.servers).map(([name, server]) => [
        name,
        { ...server, monitor: `127.0.0.1:${monitorPorts[HERD_NAMES.indexOf(name as never)]}` },
      ]),
    ),
  });
  await using herd = await startHerd({ args: ["--places", "offline"], configSeenBy: withMonitors });
  const configPath = herd.configPathOf("Hill");
  const status = async () => {
    const run = await runHerdCli(["status", "--json", "--config", configPath]);
    assert.ok(run.code === 0 || run.code === 1, `exit ${run.code}: ${run.stderr}`);
    return { code: run.code, json: JSON.parse(run.stdout) };
  };
  const allUp = await pollUntil(async () => {
    const run = await status();
    return run.code === 0 && run;
  }, { timeoutMs: 20_000, intervalMs: 200, what: "every server and link up" });
  assert.equal(allUp.json.up, true);
  assert.equal(allUp.json.servers.length, HERD_NAMES.length);
  for (const server of allUp.json.servers) {
    assert.equal(server.status.name, server.name);
    assert.equal(server.linksUp, server.linksConfigured);
  }

  await herd.kill("Smith");
  // Smith's neighbours see its links go down as soon as its sockets close.
  const smithDown = await pollUntil(async () => {
    const run = await status();
    const hill = run.json.servers.find((server: { name: string }) => server.name === "Hill");
    return hill.linksUp === 1 && run;
  }, { timeoutMs: 10_000, intervalMs: 200, what: "Hill's link to Smith down" });
  assert.equal(smithDown.code, 1);
  const byName = Object.fromEntries(
    smithDown.json.servers.map((server: { name: string }) => [server.name, server]),
  );
  assert.equal(byName.Smith.up, false);
  assert.equal(byName.Smith.reason, "connection refused");
  assert.equal(byName.Smith.status, null);
  assert.equal(byName.Hill.reason, "1 of 2 links up");
  assert.equal(byName.Jaquez.up, true);

  const table = await runHerdCli(["status", "--config", configPath]);
  assert.equal(table.code, 1, table.stderr);
  assert.equal(row(table.stdout, "Smith")[2], "no: connection refused");
  assert.equal(row(table.stdout, "Hill")[2], "yes");
  assert.equal(row(table.stdout, "Hill")[5], "1/2");
  assert.match(row(table.stdout, "Hill")[8], /^Smith: /);
});
