/**
 * Partitions of the five-server herd, every link through a cuttable proxy (contract §5):
 * clients write to both sides of a cut for the same client ids — newer on either side,
 * equal times with different AT lines, stale writes — and once the links heal every
 * server holds, for every client, the update with the latest client time, ties broken by
 * the AT line's bytes: the same on all five. Then links are cut and healed at random while
 * writes are in flight, with the same outcome.
 *
 * What a server holds is read as the first line of a WHATSAT reply (offline places). The
 * expected winner is worked out here from the AT replies, by §5's order restated: client
 * time as an exact decimal, then the AT line's bytes.
 */
import assert from "node:assert/strict";
import { delay, type Herd, HERD_LINKS, HERD_NAMES, startHerd } from "../support/herd_processes.ts";
import { LinkProxies } from "../support/link_proxy.ts";
import { waitAllHold } from "../support/held_state.ts";
import { heldAtLines, WireClient } from "../support/wire_client.ts";

/** The two sides of the split, and the links that join them. */
const SIDE_A = ["Hill", "Jaquez"];
const SIDE_B = ["Smith", "Singleton", "Campbell"];
const SPLIT_LINKS: ReadonlyArray<readonly [string, string]> = [
  ["Hill", "Smith"],
  ["Singleton", "Jaquez"],
];
/** Link sets the second round cuts, one at a time, chosen at random. */
const CUTS: ReadonlyArray<ReadonlyArray<readonly [string, string]>> = [
  SPLIT_LINKS,
  [["Singleton", "Campbell"], ["Smith", "Campbell"]], // Campbell alone
  [["Hill", "Jaquez"], ["Hill", "Smith"]], // Hill alone
  [["Hill", "Jaquez"], ["Singleton", "Smith"], ["Smith", "Campbell"]], // {Hill, Smith} | rest
  [["Hill", "Jaquez"]], // a cycle broken, still connected
  HERD_LINKS, // every server alone
];
const LOCATIONS = ["+34.068930-118.445127", "+40.7128-074.0060", "-33.8688+151.2093"];
const TIME = 1700000000;
/** How long the herd may take to agree once healed, polled every 100 ms. */
const CONVERGE = { timeoutMs: 20_000, intervalMs: 100 };
/** Clients of each kind in the first round (see `firstRoundWrites`). */
const CLIENTS_PER_KIND = 8;
/** The second round: clients, writers, writes per writer, cut–heal cycles. */
const RACE_CLIENTS = 40;
const RACE_WRITERS = 3;
const RACE_WRITES_PER_WRITER = 80;
const RACE_WRITE_PAUSE_MS = 25;
const RACE_CUTS = 8;
const SEED = 0x5eed;

/** One client write: where to send it, the client, its time as written. */
interface Write {
  server: string;
  clientId: string;
  time: string;
}

/** A client's time in nanoseconds, from its decimal text (contract §3 grammar). */
function timeNs(time: string): bigint {
  const [whole, fraction = ""] = time.split(".");
  return BigInt(whole) * 1_000_000_000n + BigInt(fraction.padEnd(9, "0"));
}

/** §5's order of updates: client time (exact), then the AT line's bytes. */
function isLater(atLine: string, than: string): boolean {
  const [time, thanTime] = [atLine, than].map((line) => timeNs(line.split(" ")[5]));
  if (time !== thanTime) return time > thanTime;
  return atLine > than; // wire text is ASCII here: code-unit order is byte order
}

/** What every server must end up holding: per client, the latest of `atLines`. */
function latestByClient(atLines: Iterable<string>): Map<string, string> {
  const latest = new Map<string, string>();
  for (const atLine of atLines) {
    const clientId = atLine.split(" ")[3];
    const held = latest.get(clientId);
    if (held === undefined || isLater(atLine, held)) latest.set(clientId, atLine);
  }
  return latest;
}

/**
 * Sends one IAMAT per write, in order, each on a connection to its server, waiting for its
 * reply and then `pauseMs`; returns the AT replies.
 */
async function sendWrites(herd: Herd, writes: readonly Write[], pauseMs = 0): Promise<string[]> {
  const clients = new Map<string, WireClient>();
  try {
    const atLines: string[] = [];
    for (const [index, { server, clientId, time }] of writes.entries()) {
      if (!clients.has(server)) clients.set(server, await WireClient.connect(herd.port(server)));
      const client = clients.get(server)!;
      const location = LOCATIONS[index % LOCATIONS.length];
      await client.write(`IAMAT ${clientId} ${location} ${time}\n`);
      atLines.push(await client.readAtReply());
      if (pauseMs > 0) await delay(pauseMs);
    }
    return atLines;
  } finally {
    for (const client of clients.values()) await client.close();
  }
}

/**
 * The first round's writes during the split, for clients `p.<kind>.<n>` that both sides
 * already knew (at TIME) unless the kind says otherwise. Each tie is the first write of its
 * client on each side, so both origins store it; which one wins is up to the AT lines.
 */
function firstRoundWrites(): { before: Write[]; during: Write[] } {
  const before: Write[] = [];
  const during: Write[] = [];
  for (let n = 0; n < CLIENTS_PER_KIND; n++) {
    const id = (kind: string) => `p.${kind}.${n}`;
    const a = SIDE_A[n % SIDE_A.length];
    const b = SIDE_B[n % SIDE_B.length];
    for (const kind of ["a-newer", "b-newer", "tie", "tie-jaquez", "tie-texts", "stale"]) {
      before.push({
        server: HERD_NAMES[n % HERD_NAMES.length],
        clientId: id(kind),
        time: `${TIME}`,
      });
    }
    during.push(
      { server: a, clientId: id("a-newer"), time: `${TIME + 20 + n}` },
      { server: b, clientId: id("a-newer"), time: `${TIME + 10 + n}` },
      { server: a, clientId: id("b-newer"), time: `${TIME + 10}.5` },
      { server: b, clientId: id("b-newer"), time: `${TIME + 10}.500000001` },
      // The same time on both sides: the AT lines differ in server name and skew.
      { server: a, clientId: id("tie"), time: `${TIME + 30}` },
      { server: b, clientId: id("tie"), time: `${TIME + 30}` },
      { server: "Jaquez", clientId: id("tie-jaquez"), time: `${TIME + 30}.25` },
      { server: "Campbell", clientId: id("tie-jaquez"), time: `${TIME + 30}.25` },
      // Equal as decimals, not as text.
      { server: a, clientId: id("tie-texts"), time: `${TIME + 40}.5` },
      { server: b, clientId: id("tie-texts"), time: `${TIME + 40}.500` },
      // Newer, then older on the same side; on the other side older still.
      { server: "Hill", clientId: id("stale"), time: `${TIME + 50}` },
      { server: "Jaquez", clientId: id("stale"), time: `${TIME + 45}` },
      { server: b, clientId: id("stale"), time: `${TIME + 48}` },
      // Known to one side only until the links heal.
      { server: a, clientId: id("only-a"), time: `${TIME + 60}` },
      { server: b, clientId: id("only-b"), time: `${TIME + 60}` },
    );
  }
  return { before, during };
}

/** A small seeded generator (mulberry32), so a failing run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Unique whole-second times in random order, each with a random fraction. */
function shuffledTimes(count: number, random: () => number): string[] {
  const offsets = Array.from({ length: count }, (_, index) => index);
  for (let index = count - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [offsets[index], offsets[other]] = [offsets[other], offsets[index]];
  }
  return offsets.map((offset) =>
    `${TIME + 1000 + offset}.${Math.floor(random() * 1e9).toString().padStart(9, "0")}`
  );
}

Deno.test("after a partition heals, all five hold the latest update of every client", async (t) => {
  using proxies = new LinkProxies();
  await using herd = await startHerd({
    configSeenBy: proxies.route,
    args: ["--places", "offline"],
  });
  const { before, during } = firstRoundWrites();

  await t.step("clients write to both sides of a split; the healed herd agrees", async () => {
    const beforeAtLines = await sendWrites(herd, before);
    await waitAllHold(herd, latestByClient(beforeAtLines), HERD_NAMES, CONVERGE);
    for (const [a, b] of SPLIT_LINKS) proxies.cut(a, b);
    const expected = latestByClient([...beforeAtLines, ...await sendWrites(herd, during)]);
    // While split, each side learns its own writes and none of the other side's.
    const onlyB = [...expected.keys()].filter((id) => id.startsWith("p.only-b."));
    await waitAllHold(herd, new Map(onlyB.map((id) => [id, expected.get(id)!])), SIDE_B, CONVERGE);
    for (const server of SIDE_A) {
      const held = await heldAtLines(herd.port(server), onlyB);
      assert.deepEqual(held, onlyB.map(() => undefined), `${server} learnt across the split`);
    }
    for (const [a, b] of SPLIT_LINKS) proxies.restore(a, b);
    await waitAllHold(herd, expected, HERD_NAMES, CONVERGE);
  });

  await t.step("links cut and healed while writes are in flight: the herd agrees", async () => {
    const random = seededRandom(SEED);
    const times = shuffledTimes(RACE_WRITERS * RACE_WRITES_PER_WRITER, random);
    const writesOf = (writer: number): Write[] =>
      Array.from({ length: RACE_WRITES_PER_WRITER }, (_, index) => ({
        server: HERD_NAMES[Math.floor(random() * HERD_NAMES.length)],
        clientId: `q.${Math.floor(random() * RACE_CLIENTS)}`,
        time: times[writer * RACE_WRITES_PER_WRITER + index],
      }));
    const plans = Array.from({ length: RACE_WRITERS }, (_, writer) => writesOf(writer));
    const cuts = Array.from({ length: RACE_CUTS }, () => ({
      links: CUTS[Math.floor(random() * CUTS.length)],
      cutMs: 100 + Math.floor(random() * 200),
      healedMs: 50 + Math.floor(random() * 150),
    }));
    const chaos = (async () => {
      for (const { links, cutMs, healedMs } of cuts) {
        for (const [a, b] of links) proxies.cut(a, b);
        await delay(cutMs);
        proxies.restoreAll();
        await delay(healedMs);
      }
    })();
    const atLines = (await Promise.all(
      plans.map((plan) => sendWrites(herd, plan, RACE_WRITE_PAUSE_MS)),
    )).flat();
    await chaos;
    await waitAllHold(herd, latestByClient(atLines), HERD_NAMES, CONVERGE);
  });
});
