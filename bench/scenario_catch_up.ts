/**
 * Catch-up, on a two-server herd Hill — Campbell whose one link runs through a LinkProxy in
 * each direction (each server's config gives the other's address as the proxy's), so the
 * bytes a catch-up costs are counted on the wire and the link can be cut while both
 * servers keep running.
 *
 * 1. Restart: Hill holds N clients (Campbell too, by flooding); Campbell is SIGKILLed and
 *    started again, empty. Timed until Campbell holds them all again.
 * 2. Link down: the link is cut, k existing clients move (k IAMATs at Hill), the link is
 *    restored. Timed until Campbell holds all k; should cost O(k) bytes, not the store.
 *
 * "Holds them all" is first seen by polling a sentinel (the id registered last, alone, so
 * it is the last change Hill made) and then proved by looking every id up at Campbell.
 * Bytes are the TCP payload toward Campbell from the restart (or restore) until the
 * sentinel arrived.
 */
import type { Context } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import {
  type HerdServer,
  logDirFor,
  startServer,
  waitLinked,
  waitPlacesReady,
  writeConfig,
} from "./herd.ts";
import { delay, freePorts, pollUntil } from "./processes.ts";
import { LinkProxy } from "../tests/support/link_proxy.ts";
import { clientId, LineClient, plannedTime } from "./wire.ts";

const ORIGIN = "Hill";
const FOLLOWER = "Campbell";
const NS = "cu";
const HOLD_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 1;
/** Time for both ends to notice a cut link before updates are made. */
const CUT_NOTICE_MS = 300;
const CHECK_CAP_MS = 60_000;

export interface CatchUpPhase {
  what: string;
  updates: number;
  /** From the restart (process spawned) or the link restored, to the sentinel held. */
  totalMs: number | undefined;
  /** From the same moment to the first connection the proxies forwarded: dial and backoff. */
  linkMs: number | undefined;
  /** Connections forwarded until then: 2 when both ends dialled at once. */
  connections: number;
  /** Bytes of TCP payload toward Campbell until the sentinel was held, and both ways. */
  bytesToFollower: number;
  bytesBothWays: number;
  check: LoadResult;
  /** Updates Hill's log says it sent in catch-ups to Campbell during the phase. */
  loggedUpdates: number | undefined;
}

export interface CatchUpResults {
  restart: CatchUpPhase;
  linkDown: CatchUpPhase;
}

/** Hill and Campbell, each dialling the other through a proxy. */
interface ProxiedPair {
  origin: HerdServer;
  follower: HerdServer;
  /** [toward the follower, toward the origin]. */
  proxies: LinkProxy[];
  originConfig: string;
  /** Starts the follower again (after it was killed) and waits until it listens. */
  restartFollower(): Promise<void>;
  close(): Promise<void>;
}

async function startProxiedPair(context: Context): Promise<ProxiedPair> {
  const [originPort, followerPort] = freePorts(2);
  const proxies = [new LinkProxy(followerPort), new LinkProxy(originPort)];
  const links: Array<[string, string]> = [[ORIGIN, FOLLOWER]];
  const originConfig = await writeConfig(context.dirs, "catchup-hill.json", {
    [ORIGIN]: originPort,
    [FOLLOWER]: proxies[0].port,
  }, links);
  const followerConfig = await writeConfig(context.dirs, "catchup-campbell.json", {
    [ORIGIN]: proxies[1].port,
    [FOLLOWER]: followerPort,
  }, links);
  const start = (name: string, port: number, config: string) =>
    startServer(context.processes, { name, port, config, core: context.serverCore });
  const pair: ProxiedPair = {
    origin: await start(ORIGIN, originPort, originConfig),
    follower: await start(FOLLOWER, followerPort, followerConfig),
    proxies,
    originConfig,
    restartFollower: async () => {
      pair.follower = await start(FOLLOWER, followerPort, followerConfig);
    },
    close: async () => {
      await Promise.all([pair.origin.process.stop(), pair.follower.process.stop()]);
      for (const proxy of proxies) proxy.close();
    },
  };
  return pair;
}

export async function runCatchUp(context: Context): Promise<CatchUpResults> {
  const { catchUpClients: clients, catchUpUpdates: updates } = context.settings;
  const pair = await startProxiedPair(context);
  try {
    const { origin, follower } = pair; // the follower's port stays when it restarts
    await Promise.all([waitPlacesReady(origin.port), waitPlacesReady(follower.port)]);
    await waitLinked(origin.port, follower.port);
    const baseSeconds = Math.floor(Date.now() / 1000);
    context.log(`catch-up: ${clients} clients at ${ORIGIN}`);
    await registerWithSentinel(context, origin.port, clients, baseSeconds);
    if (await waitHolds(follower.port, clients - 1, baseSeconds) === undefined) {
      throw new Error(`${FOLLOWER} never got the ${clients} clients by flooding`);
    }

    context.log(`catch-up: restarting ${FOLLOWER}`);
    const restartWallMs = Date.now();
    pair.follower.process.signal("SIGKILL");
    await pair.follower.process.exited;
    const restart = await measurePhase(context, pair, {
      what: `restarted server, ${clients} clients`,
      updates: clients,
      baseSeconds,
      act: () => pair.restartFollower(),
    });

    context.log(`catch-up: link down for ${updates} updates`);
    const linkDownWallMs = Date.now();
    for (const proxy of pair.proxies) proxy.cut();
    await delay(CUT_NOTICE_MS);
    await registerWithSentinel(context, origin.port, updates, baseSeconds + 1);
    const linkDown = await measurePhase(context, pair, {
      what: `link down for ${updates} updates`,
      updates,
      baseSeconds: baseSeconds + 1,
      act: () => Promise.resolve(pair.proxies.forEach((proxy) => proxy.restore())),
    });

    await pair.close(); // a stopped server has flushed its log
    const logged = await loggedCatchUps(pair.originConfig);
    restart.loggedUpdates = sumBetween(logged, restartWallMs, linkDownWallMs);
    linkDown.loggedUpdates = sumBetween(logged, linkDownWallMs, Infinity);
    return { restart, linkDown };
  } finally {
    await pair.close();
  }
}

/**
 * Registers ids 0..count-2 pipelined, then the last alone: it is then the last change the
 * origin made, so a catch-up in change order delivers it last.
 */
async function registerWithSentinel(
  context: Context,
  port: number,
  count: number,
  timeBase: number,
): Promise<void> {
  const common = { port, ns: NS, timeBase, maxMs: CHECK_CAP_MS };
  const bulk = await context.generator.run("register", {
    ...common,
    first: 0,
    count: count - 1,
    conns: 8,
    depth: 32,
  }, CHECK_CAP_MS + 10_000);
  const sentinel = await context.generator.run("register", {
    ...common,
    first: count - 1,
    count: 1,
    conns: 1,
    depth: 1,
  }, 20_000);
  if (Number(bulk.ok) + Number(sentinel.ok) !== count) {
    throw new Error(
      `registering ${count} clients at ${ORIGIN}: only ${
        Number(bulk.ok) + Number(sentinel.ok)
      } stored`,
    );
  }
}

/** Polls the follower until it holds id `num` with its planned time; when (performance.now()). */
async function waitHolds(
  port: number,
  num: number,
  baseSeconds: number,
): Promise<number | undefined> {
  const client = await LineClient.connect(port);
  try {
    const id = clientId(NS, num);
    const time = plannedTime(baseSeconds, num);
    const ms = await pollUntil(() => client.holds(id, time), HOLD_TIMEOUT_MS, POLL_INTERVAL_MS);
    return ms === undefined ? undefined : performance.now();
  } finally {
    client.close();
  }
}

function bytesCounted(proxies: LinkProxy[]): { toFollower: number; bothWays: number } {
  const [toFollower, toOrigin] = proxies.map((proxy) => proxy.bytes);
  return {
    toFollower: toFollower.toTarget + toOrigin.fromTarget,
    bothWays: toFollower.toTarget + toFollower.fromTarget + toOrigin.toTarget + toOrigin.fromTarget,
  };
}

/** Does `act` (restart or restore), times the follower catching up, then checks every id. */
async function measurePhase(
  context: Context,
  pair: ProxiedPair,
  phase: { what: string; updates: number; baseSeconds: number; act: () => Promise<void> },
): Promise<CatchUpPhase> {
  const { proxies, follower: { port: followerPort } } = pair;
  const before = bytesCounted(proxies);
  const startMs = performance.now();
  await phase.act();
  const heldMs = await waitHolds(followerPort, phase.updates - 1, phase.baseSeconds);
  const after = bytesCounted(proxies);
  const untilMs = heldMs ?? performance.now();
  const forwarded = proxies.flatMap((proxy) => proxy.forwardedSince(startMs))
    .filter((atMs) => atMs <= untilMs);
  const linkedMs = Math.min(...forwarded);
  const check = await context.generator.run("check", {
    port: followerPort,
    ns: NS,
    count: phase.updates,
    timeBase: phase.baseSeconds,
    conns: 4,
    depth: 16,
    maxMs: CHECK_CAP_MS,
  }, CHECK_CAP_MS + 10_000);
  return {
    what: phase.what,
    updates: phase.updates,
    totalMs: heldMs === undefined ? undefined : heldMs - startMs,
    linkMs: Number.isFinite(linkedMs) ? linkedMs - startMs : undefined,
    connections: forwarded.length,
    bytesToFollower: after.toFollower - before.toFollower,
    bytesBothWays: after.bothWays - before.bothWays,
    check,
    loggedUpdates: undefined,
  };
}

/** Hill's `catch-up to Campbell: sent N updates` log lines, with their wall-clock times. */
async function loggedCatchUps(
  originConfig: string,
): Promise<Array<{ atMs: number; sent: number }>> {
  const text = await Deno.readTextFile(`${logDirFor(originConfig)}/${ORIGIN}.log`).catch(() => "");
  const pattern = new RegExp(`^(\\S+) .*catch-up to ${FOLLOWER}: sent (\\d+) updates`, "gm");
  return [...text.matchAll(pattern)].map((match) => ({
    atMs: Date.parse(match[1]),
    sent: Number(match[2]),
  }));
}

function sumBetween(
  logged: Array<{ atMs: number; sent: number }>,
  fromMs: number,
  toMs: number,
): number | undefined {
  const inWindow = logged.filter((entry) => entry.atMs >= fromMs && entry.atMs < toMs);
  return inWindow.length === 0 ? undefined : inWindow.reduce((sum, entry) => sum + entry.sent, 0);
}
