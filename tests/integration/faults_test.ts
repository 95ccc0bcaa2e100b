/**
 * The herd on five separate hosts (network namespaces, tests/support/netns.ts) under real
 * network faults: a host cut off, the herd split in two, a slow and stalling link, a host
 * that vanishes without closing its connections, and two servers killed under `--data-dir`
 * during a partition. Each ends with all five holding, for every client, the latest
 * acknowledged update (read with WHATSAT at each host's own address), and prints one line
 * of figures for the README's "Tested under faults" table.
 *
 * Needs root and iproute2; without them every test fails with one line saying so.
 */
import assert from "node:assert/strict";
import { freePorts, type Herd, HERD_NAMES, pollUntil } from "../support/herd_processes.ts";
import { heldTime, waitAllHold } from "../support/held_state.ts";
import { HostNetwork, startNetnsHerd, waitLinked } from "../support/netns.ts";
import type { RelayRoute } from "../support/netns_relay.ts";
import { WireClient } from "../support/wire_client.ts";

const LOCATION = "+34.068930-118.445127";
const TIME = 1_700_000_000;
/** Small, so a dead link is found within a second (3 × this). */
const HEARTBEAT_MS = 300;
const HERD_ARGS = { args: ["--places", "offline"], limits: { peerHeartbeatMs: HEARTBEAT_MS } };
/** How long the herd may take to agree once healed, polled often to time it. */
const CONVERGE = { timeoutMs: 20_000, intervalMs: 50 };
const SIDE_A = ["Hill", "Jaquez"];
const SIDE_B = ["Smith", "Singleton", "Campbell"];
/** The links across the split, each named from side A. */
const SPLIT_LINKS = [["Hill", "Smith"], ["Jaquez", "Singleton"]] as const;
const CLIENTS = 20;

/** Sends `writes` as IAMATs to `server`, pipelined; returns the AT replies in order. */
async function sendIamats(
  herd: Herd,
  server: string,
  writes: ReadonlyArray<readonly [clientId: string, time: number | string]>,
): Promise<string[]> {
  await using client = await WireClient.connect(herd.port(server), herd.host(server));
  await client.write(writes.map(([id, time]) => `IAMAT ${id} ${LOCATION} ${time}\n`).join(""));
  const replies = [];
  for (const _ of writes) replies.push(await client.readAtReply());
  return replies;
}

/**
 * Per client, the AT line with the greatest client time. The tests give no client two
 * updates with the same time, so the contract's tie-break by bytes never decides here.
 */
function latestByClient(atLines: Iterable<string>): Map<string, string> {
  const latest = new Map<string, string>();
  for (const atLine of atLines) {
    const clientId = atLine.split(" ")[3];
    const held = latest.get(clientId);
    if (held === undefined || heldTime(atLine)! > heldTime(held)!) latest.set(clientId, atLine);
  }
  return latest;
}

/** `count` writes for clients `prefix0…`, client n at `time(n)`. */
function writes(prefix: string, count: number, time: (n: number) => number | string) {
  return Array.from({ length: count }, (_, n) => [`${prefix}${n}`, time(n)] as const);
}

/** Waits until all five agree on `expected`; returns how long that took. */
async function convergenceMs(herd: Herd, expected: ReadonlyMap<string, string>): Promise<number> {
  const startedMs = performance.now();
  await waitAllHold(herd, expected, HERD_NAMES, CONVERGE);
  return Math.round(performance.now() - startedMs);
}

/** Every link of the herd up, so a fault starts from a whole herd. */
async function waitAllLinked(herd: Herd): Promise<void> {
  for (const [a, b] of herd.config.links) await waitLinked(herd, a, b);
}

/** The p-th percentile (0–100) of `values`, nearest rank. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** When `server` logged that its link to `peer` went down for want of heartbeats. */
async function heartbeatDownAtMs(
  herd: Herd,
  server: string,
  peer: string,
  afterMs: number,
): Promise<number> {
  return await pollUntil(async () => {
    const pattern = new RegExp(`^(\\S+) .*link to ${peer} down: no heartbeat$`, "gm");
    return [...(await herd.readLog(server)).matchAll(pattern)]
      .map((match) => Date.parse(match[1]))
      .find((atMs) => atMs >= afterMs);
  }, { timeoutMs: 10_000, what: `${server} to find its link to ${peer} dead` });
}

/**
 * Waits until one end of each link has dropped it for want of heartbeats, so a partition
 * really cuts links (healed sooner, TCP would just retransmit); returns the slowest, in ms.
 */
async function waitLinksDead(
  herd: Herd,
  links: ReadonlyArray<readonly [string, string]>,
  cutAtMs: number,
): Promise<number> {
  let slowestMs = 0;
  for (const [server, peer] of links) {
    const foundMs = await heartbeatDownAtMs(herd, server, peer, cutAtMs) - cutAtMs;
    slowestMs = Math.max(slowestMs, foundMs);
  }
  return slowestMs;
}

/** Updates the neighbours of `server` logged sending it in catch-ups after `afterMs`. */
async function catchUpUpdatesTo(herd: Herd, server: string, afterMs: number): Promise<number> {
  const pattern = new RegExp(`^(\\S+) .*catch-up to ${server}: sent (\\d+) updates`, "gm");
  let sent = 0;
  for (const name of herd.names) {
    for (const match of (await herd.readLog(name)).matchAll(pattern)) {
      if (Date.parse(match[1]) >= afterMs) sent += Number(match[2]);
    }
  }
  return sent;
}

Deno.test("faults: a host cut off, written to on both sides, catches up on heal (bind 0.0.0.0 too)", async () => {
  await using network = await HostNetwork.create();
  await using herd = await startNetnsHerd(network, {
    ...HERD_ARGS,
    binds: { Campbell: "0.0.0.0" },
  });
  assert.match(herd.process("Campbell").stdout, /Campbell listening on 0\.0\.0\.0:/);
  await waitAllLinked(herd); // Campbell's neighbours dial it at 198.18.0.5
  const before = await sendIamats(herd, "Smith", writes("one.", CLIENTS, () => TIME));
  await waitAllHold(herd, latestByClient(before), HERD_NAMES, CONVERGE);

  const cutAtMs = Date.now();
  await network.cut("Hill");
  const others = HERD_NAMES.filter((name) => name !== "Hill");
  // Hill has the newer update for even clients, the others for odd ones.
  const atHill = await sendIamats(herd, "Hill", writes("one.", CLIENTS, (n) => TIME + 20 - n % 2));
  const atOthers = await sendIamats(
    herd,
    "Campbell",
    writes("one.", CLIENTS, (n) => TIME + 19 + n % 2),
  );
  await waitAllHold(herd, latestByClient([...before, ...atOthers]), others, CONVERGE);
  await waitAllHold(herd, latestByClient([...before, ...atHill]), ["Hill"], CONVERGE);
  await waitLinksDead(herd, [["Jaquez", "Hill"], ["Smith", "Hill"]], cutAtMs);

  await network.heal("Hill");
  const healedMs = await convergenceMs(herd, latestByClient([...before, ...atHill, ...atOthers]));
  console.log(`fault figures: one host cut off: converged ${healedMs} ms after heal, lost 0`);
});

Deno.test("faults: the herd split in two, same clients on both sides: the greater update wins everywhere", async () => {
  await using network = await HostNetwork.create();
  await using herd = await startNetnsHerd(network, HERD_ARGS);
  await waitAllLinked(herd);
  const before = await sendIamats(herd, "Singleton", writes("split.", CLIENTS, () => TIME));
  await waitAllHold(herd, latestByClient(before), HERD_NAMES, CONVERGE);

  const splitAtMs = Date.now();
  await network.split(SIDE_A);
  // Each side writes every client; which side is newer alternates by client.
  const sideA = await sendIamats(
    herd,
    "Jaquez",
    writes("split.", CLIENTS, (n) => TIME + 10 + n % 2),
  );
  const sideB = await sendIamats(
    herd,
    "Smith",
    writes("split.", CLIENTS, (n) => `${TIME + 11 - n % 2}.5`),
  );
  await waitAllHold(herd, latestByClient([...before, ...sideA]), SIDE_A, CONVERGE);
  await waitAllHold(herd, latestByClient([...before, ...sideB]), SIDE_B, CONVERGE);
  await waitLinksDead(herd, SPLIT_LINKS, splitAtMs);

  await network.join();
  const healedMs = await convergenceMs(herd, latestByClient([...before, ...sideA, ...sideB]));
  console.log(`fault figures: herd split 2|3: converged ${healedMs} ms after heal, lost 0`);
});

Deno.test("faults: a link with 100 ms delay, jitter and stalls carries a steady stream whole", async () => {
  const updates = 150;
  const pauseMs = 20;
  const shaping = { delayMs: 100, jitterMs: 40, stallEveryMs: 1500, stallMs: 300 };
  await using network = await HostNetwork.create();
  // Both ends of Hill–Jaquez dial through a relay on Hill's host, whichever dials first.
  const relayRoutes: RelayRoute[] = [];
  await using herd = await startNetnsHerd(network, {
    ...HERD_ARGS,
    start: [],
    configSeenBy: (name, config) => {
      if (name !== "Hill" && name !== "Jaquez") return config;
      const peer = name === "Hill" ? "Jaquez" : "Hill";
      const target = { host: network.address(peer), port: config.servers[peer].port };
      const listen = { host: network.address("Hill"), port: freePorts(1)[0] };
      relayRoutes.push({ listen, target });
      const servers = { ...config.servers, [peer]: { ...config.servers[peer], ...listen } };
      return { ...config, servers };
    },
  });
  await network.startRelay("Hill", relayRoutes, shaping);
  await Promise.all(HERD_NAMES.map((name) => herd.start(name)));
  await waitAllLinked(herd);

  const atLines: string[] = [];
  for (let n = 0; n < updates; n++) {
    const clientTime = (Date.now() / 1000).toFixed(3);
    atLines.push(...await sendIamats(herd, "Jaquez", [[`stream.${n % CLIENTS}.${n}`, clientTime]]));
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  const arrivedMs = await convergenceMs(herd, latestByClient(atLines));

  // Flood age at Hill over the slow link: the log line's time minus the origin's receive time.
  const agesMs = [
    ...(await herd.readLog("Hill")).matchAll(/^(\S+) .*flood from Jaquez: (AT .*)$/gm),
  ]
    .filter(([, , atLine]) => atLine.split(" ")[3].startsWith("stream."))
    .map(([, loggedAt, atLine]) => {
      const [, , skew, , , time] = atLine.split(" ");
      return Date.parse(loggedAt) - (Number(time) + Number(skew)) * 1000;
    });
  assert.ok(agesMs.length >= updates * 0.9, `only ${agesMs.length} floods from Jaquez at Hill`);
  assert.ok(percentile(agesMs, 50) >= shaping.delayMs, "the relay is not in the link's path");
  console.log(
    `fault figures: 100 ms ± 40 ms delay, 300 ms stall every 1.5 s on Hill–Jaquez: ` +
      `${updates} updates, flood age at Hill p50 ${Math.round(percentile(agesMs, 50))} ms p99 ${
        Math.round(percentile(agesMs, 99))
      } ms; all five agreed ${arrivedMs} ms after the last write, lost 0`,
  );
});

Deno.test("faults: a host that vanishes without FIN or RST is found by heartbeat and caught up", async () => {
  await using network = await HostNetwork.create();
  await using herd = await startNetnsHerd(network, HERD_ARGS);
  await waitAllLinked(herd);
  const before = await sendIamats(herd, "Hill", writes("gone.", CLIENTS, () => TIME));
  await waitAllHold(herd, latestByClient(before), HERD_NAMES, CONVERGE);

  // Its link goes first, so nothing the dying process's kernel sends reaches anyone.
  await network.cut("Smith");
  await herd.kill("Smith", "SIGKILL");
  const vanishedAtMs = Date.now();
  const neighbours = ["Hill", "Singleton", "Campbell"];
  const foundMs = await waitLinksDead(herd, neighbours.map((n) => [n, "Smith"]), vanishedAtMs);
  const during = await sendIamats(herd, "Campbell", writes("gone.", CLIENTS, () => TIME + 10));

  await network.heal("Smith");
  const restartedAtMs = Date.now();
  await herd.start("Smith");
  const caughtUpMs = await convergenceMs(herd, latestByClient([...before, ...during]));
  const sent = await catchUpUpdatesTo(herd, "Smith", restartedAtMs);
  console.log(
    `fault figures: host vanished (link down, kill -9): found dead in ${foundMs} ms ` +
      `(heartbeat ${HEARTBEAT_MS} ms); restarted server caught up ${caughtUpMs} ms after listening, ` +
      `${sent} catch-up updates; lost 0`,
  );
});

Deno.test("faults: two servers kill -9ed under --data-dir while cut off lose nothing acknowledged", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "herd-faults-data-" });
  try {
    await using network = await HostNetwork.create();
    await using herd = await startNetnsHerd(network, {
      ...HERD_ARGS,
      args: [...HERD_ARGS.args, "--data-dir", dataDir],
    });
    await waitAllLinked(herd);
    const before = await sendIamats(herd, "Jaquez", writes("durable.", CLIENTS, () => TIME));
    await waitAllHold(herd, latestByClient(before), HERD_NAMES, CONVERGE);

    // Alone, Hill and Smith are the only holders of what they acknowledge: only their data
    // dirs can keep it across the kill.
    const killed = ["Hill", "Smith"];
    for (const name of killed) await network.cut(name);
    const acknowledged = [...before];
    for (const [index, name] of killed.entries()) {
      const time = (n: number) => TIME + 10 + (n + index) % 2;
      acknowledged.push(...await sendIamats(herd, name, writes("durable.", CLIENTS, time)));
      acknowledged.push(...await sendIamats(herd, name, writes(`${name}.only.`, CLIENTS, time)));
    }
    for (const name of killed) await herd.kill(name, "SIGKILL");
    acknowledged.push(
      ...await sendIamats(
        herd,
        "Singleton",
        writes("durable.", CLIENTS, (n) => `${TIME + 10}.5${n}`),
      ),
    );

    for (const name of killed) await network.heal(name);
    const healedAtMs = performance.now();
    for (const name of killed) await herd.start(name);
    const caughtUpMs = await convergenceMs(herd, latestByClient(acknowledged));
    console.log(
      `fault figures: kill -9 of Hill and Smith (--data-dir) while cut off: converged ${
        Math.round(performance.now() - healedAtMs)
      } ms after heal (${caughtUpMs} ms after both listened), ${acknowledged.length} acknowledged, lost 0`,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
