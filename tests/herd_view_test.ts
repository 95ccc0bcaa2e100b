import assert from "node:assert/strict";
import { validateConfig } from "../lib/config.ts";
import {
  HerdView,
  type HerdViewOptions,
  RECENT_LOCATION_AGE_MS_MAX,
  RECENT_LOCATIONS_MAX,
  type ServerDown,
  type ServerUp,
} from "../lib/herd_view.ts";
import type { LinkState, ServerStatus } from "../lib/server_status.ts";
import { ClientStore } from "../lib/store.ts";
import { projectToMap } from "../lib/world_map.ts";
import { freePorts } from "./support/herd_processes.ts";
import { link, serverStatus } from "./support/server_status_fixture.ts";

/** A full `/status` of `name` whose links to each peer are in the given states. */
function statusOf(name: string, links: Record<string, LinkState>, clientsHeld = 0): ServerStatus {
  return serverStatus(name, {
    version: "test",
    uptimeSeconds: 5,
    listen: "127.0.0.1:1",
    monitor: "127.0.0.1:2",
    clients: { held: clientsHeld, bytes: 0, full: false },
    connections: { clients: 2, handshakes: 0 },
    rates: { iamatPerSecond: 3.5, whatsatPerSecond: 1.25 },
    links: Object.entries(links).sort().map(([peer, state]) =>
      link(peer, { state, dialledBy: name, updatesPerSecond: 2 })
    ),
  });
}

/** A herd config whose servers have monitors at the given ports (none where undefined). */
function configWith(
  monitorPorts: Record<string, number | undefined>,
  links: Array<[string, string]>,
) {
  const names = Object.keys(monitorPorts);
  return validateConfig({
    servers: Object.fromEntries(names.map((name, index) => [name, {
      port: 20000 + index,
      monitor: monitorPorts[name] === undefined ? null : `127.0.0.1:${monitorPorts[name]}`,
    }])),
    links,
  });
}

/** A fetch that answers from `statuses` by monitor port, or hangs until its signal aborts. */
function fakeMonitors(statuses: Record<number, ServerStatus | "hang">): typeof fetch {
  return (input, init) => {
    const port = Number(new URL(String(input)).port);
    const answer = statuses[port];
    if (answer === "hang") {
      return new Promise((_, reject) =>
        init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason))
      );
    }
    if (answer === undefined) return Promise.reject(new TypeError("connection refused"));
    return Promise.resolve(Response.json(answer));
  };
}

function view(options: Partial<HerdViewOptions> & Pick<HerdViewOptions, "config">): HerdView {
  return new HerdView({
    serverName: "Alpha",
    ownStatus: () => statusOf("Alpha", {}),
    store: new ClientStore({ clientsMax: 1_000_000 }),
    ...options,
  });
}

function atLine(clientId: string, location: string, time: string): string {
  return `AT Alpha +0.500000000 ${clientId} ${location} ${time}`;
}

Deno.test("gather() shows a server down, with the reason, when its monitor cannot answer", async () => {
  const [closedPort] = freePorts(1); // released at once: nothing listens there
  const hangingPort = 30001;
  const config = configWith(
    { Alpha: 30000, Refused: closedPort, Silent: hangingPort, Unmonitored: undefined },
    [],
  );
  const realFetch: typeof fetch = (input, init) =>
    new URL(String(input)).port === String(hangingPort)
      ? fakeMonitors({ [hangingPort]: "hang" })(input, init)
      : fetch(input, init);
  const startedMs = performance.now();
  const snapshot = await view({ config, fetch: realFetch, statusTimeoutMs: 100 }).gather();
  assert.ok(performance.now() - startedMs < 1000, "a hung monitor held the gathering");
  const byName = new Map(snapshot.servers.map((server) => [server.name, server]));
  assert.deepEqual(snapshot.servers.map((server) => server.name), [
    "Alpha",
    "Refused",
    "Silent",
    "Unmonitored",
  ]);
  assert.equal(byName.get("Alpha")!.up, true);
  assert.equal(
    (byName.get("Refused") as ServerDown).error,
    "monitor unreachable: Connection refused",
  );
  assert.equal((byName.get("Silent") as ServerDown).error, "no answer within 100 ms");
  assert.equal((byName.get("Unmonitored") as ServerDown).error, "no monitor configured");
  for (const name of ["Refused", "Silent", "Unmonitored"]) {
    assert.equal(byName.get(name)!.up, false);
  }
});

Deno.test("gather() summarises an answering monitor and sends it the bearer token", async () => {
  const [port] = freePorts(1);
  const seenAuthorization: Array<string | null> = [];
  await using _monitor = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (request) => {
    seenAuthorization.push(request.headers.get("authorization"));
    return Response.json(statusOf("Beta", { Alpha: "up" }, 7));
  });
  const config = configWith({ Alpha: 30000, Beta: port }, [["Alpha", "Beta"]]);
  const snapshot = await view({ config, monitorToken: "s3cret" }).gather();
  assert.deepEqual(seenAuthorization, ["Bearer s3cret"]);
  const beta = snapshot.servers[1] as ServerUp;
  assert.deepEqual(beta, {
    name: "Beta",
    up: true,
    state: "serving",
    listen: "127.0.0.1:1",
    monitor: "127.0.0.1:2",
    uptimeSeconds: 5,
    clientsHeld: 7,
    connections: 2,
    iamatPerSecond: 3.5,
    whatsatPerSecond: 1.25,
  });
});

Deno.test("gather() refuses another server's status, a malformed one, and an HTTP error", async () => {
  const config = configWith({ Alpha: 30000, Beta: 30001, Gamma: 30002, Delta: 30003 }, []);
  const fetchStub: typeof fetch = (input) => {
    const port = new URL(String(input)).port;
    if (port === "30001") return Promise.resolve(Response.json(statusOf("Gamma", {})));
    if (port === "30002") return Promise.resolve(Response.json({ name: "Gamma" }));
    return Promise.resolve(new Response("no", { status: 401 }));
  };
  const snapshot = await view({ config, fetch: fetchStub }).gather();
  assert.deepEqual(snapshot.servers.slice(1).map((server) => (server as ServerDown).error), [
    "monitor's status is malformed",
    "monitor's status is malformed",
    "monitor answered HTTP 401",
  ]);
});

Deno.test("a link is up when every end that answers says up, and down when none answers", async () => {
  const config = configWith(
    { Alpha: 30000, Beta: 30001, Gamma: 30002, Delta: 30003, Omega: undefined },
    [["Alpha", "Beta"], ["Alpha", "Gamma"], ["Beta", "Gamma"], ["Gamma", "Delta"], [
      "Delta",
      "Omega",
    ], ["Alpha", "Omega"]],
  );
  const snapshot = await view({
    config,
    ownStatus: () => statusOf("Alpha", { Beta: "up", Gamma: "up", Omega: "up" }),
    fetch: fakeMonitors({
      30001: statusOf("Beta", { Alpha: "up", Gamma: "connecting" }),
      30002: statusOf("Gamma", { Alpha: "up", Beta: "up", Delta: "up" }),
      // Delta does not answer
    }),
  }).gather();
  const links = Object.fromEntries(
    snapshot.links.map((link) => [link.ends.join("-"), { up: link.up, states: link.states }]),
  );
  assert.deepEqual(links, {
    "Alpha-Beta": { up: true, states: { Alpha: "up", Beta: "up" } },
    "Alpha-Gamma": { up: true, states: { Alpha: "up", Gamma: "up" } },
    // The ends disagree: one is still connecting.
    "Beta-Gamma": { up: false, states: { Beta: "connecting", Gamma: "up" } },
    // Only Gamma answers, and says up.
    "Delta-Gamma": { up: true, states: { Gamma: "up", Delta: null } },
    // Neither end answers.
    "Delta-Omega": { up: false, states: { Delta: null, Omega: null } },
    "Alpha-Omega": { up: true, states: { Alpha: "up", Omega: null } },
  });
  assert.equal(
    snapshot.links.find((link) => link.ends.join("-") === "Alpha-Beta")!.updatesPerSecond,
    2,
  );
});

Deno.test("gather() places the clients stored since the last gathering on the map", async () => {
  const store = new ClientStore({ clientsMax: 1_000_000 });
  let nowMs = 1_000_000;
  const herdView = view({ config: configWith({ Alpha: 30000 }, []), store, clockMs: () => nowMs });
  store.offer({ clientId: "before", atLine: atLine("before", "+10+10", "1") });
  assert.deepEqual((await herdView.gather()).locations, [], "shown a change from before watching");
  store.offer({ clientId: "ucla", atLine: atLine("ucla", "+34.068930-118.445127", "2") });
  nowMs += 100;
  assert.deepEqual((await herdView.gather()).locations, [{
    latitude: 34.06893,
    longitude: -118.445127,
    ...projectToMap(34.06893, -118.445127),
    ageMs: 0,
  }]);
  nowMs += RECENT_LOCATION_AGE_MS_MAX;
  assert.equal((await herdView.gather()).locations[0].ageMs, RECENT_LOCATION_AGE_MS_MAX);
  nowMs += 1;
  assert.deepEqual((await herdView.gather()).locations, [], "kept a location past its age");
});

Deno.test("gather() keeps only the newest locations however many clients update", async () => {
  const store = new ClientStore({ clientsMax: 1_000_000 });
  const herdView = view({ config: configWith({ Alpha: 30000 }, []), store });
  await herdView.gather();
  const updates = 5000;
  for (let index = 0; index < updates; index++) {
    const latitude = (index % 180) - 89;
    store.offer({
      clientId: `c${index}`,
      atLine: atLine(`c${index}`, `${latitude < 0 ? "" : "+"}${latitude}+0`, "1"),
    });
  }
  const { locations } = await herdView.gather();
  assert.equal(locations.length, RECENT_LOCATIONS_MAX);
  const newestLatitudes = Array.from(
    { length: RECENT_LOCATIONS_MAX },
    (_, offset) => ((updates - RECENT_LOCATIONS_MAX + offset) % 180) - 89,
  );
  assert.deepEqual(locations.map((location) => location.latitude), newestLatitudes);
});

Deno.test("after pause() the changes stored while nobody watched are not shown as recent", async () => {
  const store = new ClientStore({ clientsMax: 1_000_000 });
  const herdView = view({ config: configWith({ Alpha: 30000 }, []), store });
  await herdView.gather();
  herdView.pause();
  store.offer({ clientId: "unwatched", atLine: atLine("unwatched", "+1+1", "1") });
  assert.deepEqual((await herdView.gather()).locations, []);
  store.offer({ clientId: "watched", atLine: atLine("watched", "+2+2", "1") });
  assert.deepEqual((await herdView.gather()).locations.map((location) => location.latitude), [2]);
});
