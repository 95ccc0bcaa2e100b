/**
 * The links between servers (lib/peers.ts), each server a PeerLinks with its own store,
 * joined by in-memory connections through an injected dialler, time stepped by a manual
 * clock: handshakes without and with HERD_SECRET, a third party with another secret, a
 * version mismatch, both ends dialling at once, catch-up after a reconnect, a frozen
 * neighbour found out by heartbeats and redialled, and the peer limits at the accepting end.
 */
import assert from "node:assert/strict";
import type { ServerAddress } from "../lib/config.ts";
import { type ByteConn, LineConnection } from "../lib/connection.ts";
import { Counters } from "../lib/counters.ts";
import { PeerSecret } from "../lib/peer_auth.ts";
import { PEER_PROTOCOL_VERSION } from "../lib/peer_protocol.ts";
import { certificateRefusal, PeerLinks } from "../lib/peers.ts";
import { ClientStore } from "../lib/store.ts";
import { type CapturedLog, captureLog } from "./support/captured_log.ts";
import { ManualClock, settle } from "./support/manual_clock.ts";
import { type MemoryConn, memoryConnPair } from "./support/memory_conn.ts";

const HEARTBEAT_MS = 1000;
/** The client limits an accepted connection starts with: small, so peer limits must apply. */
const CLIENT_LIMITS = { lineBytesMax: 256, outputBytesMax: 64 * 1024 };
const SECRET = "a secret long enough to be advised, shared by the herd";

function atLine(origin: string, clientId: string, time = "1700000000"): string {
  return `AT ${origin} +0.000000001 ${clientId} +1+1 ${time}`;
}

interface ServerSpec {
  name: string;
  neighbours: string[];
  secret?: PeerSecret;
  /** False: this server never dials (its neighbours must). */
  dials?: boolean;
}

/** One server of a memory herd: its links, store and counters. */
interface MemoryServer {
  name: string;
  peers: PeerLinks;
  store: ClientStore;
  counters: Counters;
}

/**
 * Servers joined by memory connections. A dial reaches the target's accept path as a
 * server's would: client limits, first read, then `accept`. A frozen server's bytes, both
 * ways, vanish, as a host that is gone without closing its connections.
 */
class MemoryHerd implements AsyncDisposable {
  readonly clock = new ManualClock();
  readonly servers = new Map<string, MemoryServer>();
  readonly #log: CapturedLog;
  readonly #frozen = new Set<string>();
  readonly #conns: MemoryConn[] = [];
  readonly #specs: ServerSpec[];

  private constructor(log: CapturedLog, specs: ServerSpec[]) {
    this.#log = log;
    this.#specs = specs;
    const addresses = new Map<string, ServerAddress>(
      specs.map((spec, index) => [spec.name, { host: "memory", port: index }]),
    );
    for (const spec of specs) {
      const store = new ClientStore({ clientsMax: 1000 });
      const counters = new Counters();
      const peers = new PeerLinks({
        serverName: spec.name,
        neighbours: spec.neighbours,
        addresses,
        store,
        lineBytesMax: CLIENT_LIMITS.lineBytesMax,
        heartbeatMs: HEARTBEAT_MS,
        logger: log.logger(spec.name),
        counters,
        secret: spec.secret,
        dial: (address) => this.#dial(spec, address),
        clock: this.clock,
        random: () => 0.5,
      });
      this.servers.set(spec.name, { name: spec.name, peers, store, counters });
    }
  }

  static async start(specs: ServerSpec[]): Promise<MemoryHerd> {
    const herd = new MemoryHerd(await captureLog(), specs);
    for (const server of herd.servers.values()) server.peers.start();
    await settle();
    return herd;
  }

  server(name: string): MemoryServer {
    return this.servers.get(name)!;
  }

  /** The log lines of `name`, `LEVEL name: message`. */
  log(name?: string): string[] {
    return this.#log.lines().filter((line) => name === undefined || line.includes(` ${name}: `));
  }

  /** An IAMAT accepted at `name`: stored, then flooded, as the service does. */
  iamat(name: string, clientId: string, time?: string): string {
    const { store, peers } = this.server(name);
    const line = atLine(name, clientId, time);
    assert.equal(store.offer({ clientId, atLine: line }), "stored");
    peers.flood(store.get(clientId)!);
    return line;
  }

  freeze(name: string): void {
    this.#frozen.add(name);
  }

  thaw(name: string): void {
    this.#frozen.delete(name);
  }

  /** Closes every connection between servers (both ends see the link fall). */
  cutAll(): void {
    for (const conn of this.#conns) conn.close();
  }

  /** A raw connection to `name`'s accept path, for a test that speaks the protocol itself. */
  connectRaw(name: string): LineConnection {
    const [mine, theirs] = memoryConnPair();
    this.#serveAccepted(this.server(name), theirs);
    return new LineConnection(mine, { lineBytesMax: 1 << 20, outputBytesMax: 1 << 20 });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const server of this.servers.values()) server.peers.closeAll();
    await Promise.all([...this.servers.values()].map((server) => server.peers.stop()));
    this.cutAll();
    await settle();
    await this.#log[Symbol.asyncDispose]();
  }

  #dial(from: ServerSpec, address: ServerAddress): Promise<ByteConn> {
    if (from.dials === false) return Promise.reject(new Error("this server does not dial"));
    const to = this.#specs[address.port].name;
    const [diallerEnd, acceptorEnd] = memoryConnPair();
    this.#conns.push(diallerEnd, acceptorEnd);
    this.#serveAccepted(this.server(to), this.#freezable(acceptorEnd, to, from.name));
    return Promise.resolve(this.#freezable(diallerEnd, from.name, to));
  }

  /** `conn` as `owner` sees it: nothing it writes arrives, and nothing reaches it, when either is frozen. */
  #freezable(conn: MemoryConn, owner: string, other: string): ByteConn {
    const isCut = () => this.#frozen.has(owner) || this.#frozen.has(other);
    return {
      remoteAddr: conn.remoteAddr,
      readChunk: async () => {
        while (true) {
          const chunk = await conn.readChunk();
          if (chunk === null || !isCut()) return chunk;
        }
      },
      write: (bytes) => isCut() ? Promise.resolve(bytes.length) : conn.write(bytes),
      close: () => conn.close(),
    };
  }

  /** What a server does with an accepted connection whose first line is a hello. */
  async #serveAccepted(server: MemoryServer, conn: ByteConn): Promise<void> {
    const connection = new LineConnection(conn, CLIENT_LIMITS);
    let first = await connection.readLines();
    while (first !== null && first.length === 0) first = await connection.readLines();
    if (first === null) return;
    await server.peers.accept(connection, first);
  }
}

/** Two neighbours, Hill and Jaquez ("Hill" sorts first). */
function pair(options: { hill?: Partial<ServerSpec>; jaquez?: Partial<ServerSpec> } = {}) {
  return [
    { name: "Hill", neighbours: ["Jaquez"], ...options.hill },
    { name: "Jaquez", neighbours: ["Hill"], ...options.jaquez },
  ];
}

Deno.test("two servers without a secret link up and flood updates both ways", async () => {
  await using herd = await MemoryHerd.start(pair());
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"]);
  assert.deepEqual(herd.server("Jaquez").peers.linkedPeers, ["Hill"]);
  const fromHill = herd.iamat("Hill", "kiwi");
  const fromJaquez = herd.iamat("Jaquez", "lime");
  await settle();
  assert.equal(herd.server("Jaquez").store.get("kiwi")?.atLine, fromHill);
  assert.equal(herd.server("Hill").store.get("lime")?.atLine, fromJaquez);
});

Deno.test("both ends dialling at once keep one link: the one dialled by the name sorting first", async () => {
  await using herd = await MemoryHerd.start(pair());
  // Let any loser fall and any redial settle.
  await herd.clock.advance(10 * HEARTBEAT_MS, HEARTBEAT_MS / 4);
  for (const name of ["Hill", "Jaquez"]) {
    const ups = herd.log(name).filter((line) => line.includes(" up ("));
    assert.match(ups.at(-1)!, /dialled by Hill\)$/, `${name}: ${ups.join("; ")}`);
    assert.equal(herd.server(name).peers.linkedPeers.length, 1);
  }
  const upsBefore = herd.server("Hill").counters.get("peer_links_up");
  await herd.clock.advance(10 * HEARTBEAT_MS, HEARTBEAT_MS / 4);
  assert.equal(herd.server("Hill").counters.get("peer_links_up"), upsBefore, "the link flaps");
  const line = herd.iamat("Jaquez", "after.duplicates");
  await settle();
  assert.equal(herd.server("Hill").store.get("after.duplicates")?.atLine, line);
});

Deno.test("servers with the same secret link; a third with another secret never does", async () => {
  const secret = await PeerSecret.fromText(SECRET);
  const other = await PeerSecret.fromText(`${SECRET}, but not quite`);
  await using herd = await MemoryHerd.start([
    { name: "Hill", neighbours: ["Jaquez", "Smith"], secret },
    { name: "Jaquez", neighbours: ["Hill"], secret },
    { name: "Smith", neighbours: ["Hill"], secret: other },
  ]);
  await herd.clock.advance(3000, 100);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"]);
  assert.deepEqual(herd.server("Smith").peers.linkedPeers, []);
  herd.iamat("Smith", "from.smith");
  herd.iamat("Hill", "from.hill");
  await herd.clock.advance(3000, 100);
  assert.equal(herd.server("Hill").store.get("from.smith"), undefined);
  assert.equal(herd.server("Smith").store.get("from.hill"), undefined);
  assert.ok(herd.server("Jaquez").store.get("from.hill"));
  // Each dialler finds the acceptor's proof wrong and gives none; the acceptor sees it leave.
  const failures = [
    ["Hill", "failed (dialler side): wrong proof"],
    ["Smith", "failed (dialler side): wrong proof"],
    ["Hill", "failed (acceptor side): closed during handshake before PROOF"],
  ];
  for (const [name, failure] of failures) {
    const peer = name === "Hill" ? "Smith" : "Hill";
    assert.ok(
      herd.log(name).some((line) =>
        line.startsWith(`WARNING ${name}: authentication of ${peer} at `) && line.includes(failure)
      ),
      `${name} did not log "${failure}": ${herd.log(name).join("\n")}`,
    );
  }
  // The secret shows nowhere in the log.
  assert.ok(!herd.log().some((line) => line.includes(SECRET)));
});

Deno.test("a server with a secret refuses one without; nothing crosses", async () => {
  const secret = await PeerSecret.fromText(SECRET);
  await using herd = await MemoryHerd.start(pair({ hill: { secret } }));
  herd.iamat("Jaquez", "from.jaquez");
  await herd.clock.advance(3000, 100);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, []);
  assert.equal(herd.server("Hill").store.get("from.jaquez"), undefined);
  assert.ok(herd.log("Hill").some((line) => line.includes('expected CHALLENGE, got "HAVE"')));
});

Deno.test("a neighbour of another version gets no link, and the warning names both versions", async () => {
  await using herd = await MemoryHerd.start([{
    name: "Hill",
    neighbours: ["Jaquez"],
    dials: false,
  }]);
  const jaquez = herd.connectRaw("Hill");
  jaquez.sendText("PEER Jaquez 1\n");
  assert.deepEqual(
    (await jaquez.readLines())?.map((line) => line.text),
    [`PEER Hill ${PEER_PROTOCOL_VERSION}`],
  );
  assert.equal(await jaquez.readLines(), null, "Hill kept the connection open");
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, []);
  const warning = herd.log("Hill").find((line) => line.includes("peer protocol version"));
  assert.match(warning ?? "", /version 1, this server version 2/);
});

Deno.test("a hello refused: not a neighbour, malformed, or with a cut line in its read", async () => {
  await using herd = await MemoryHerd.start([{
    name: "Hill",
    neighbours: ["Jaquez"],
    dials: false,
  }]);
  const hellos = [
    { sent: "PEER Smith 2\n", why: "not a neighbour" },
    { sent: "PEER Jaquez 2 x\n", why: "malformed (PEER takes 2 fields)" },
    { sent: `PEER Jaquez 2\n${"x".repeat(300)}\n`, why: "a line cut at the client line limit" },
  ];
  for (const { sent, why } of hellos) {
    const raw = herd.connectRaw("Hill");
    raw.sendText(sent);
    assert.equal(await raw.readLines(), null, `${why}: got a reply`);
    assert.ok(herd.log("Hill").some((line) => line.endsWith(`: ${why}`)), why);
  }
  assert.equal(herd.server("Hill").counters.get("peer_hello_refused"), hellos.length);
});

Deno.test("an accepted link takes peer lines longer than a client line", async () => {
  // Only Jaquez dials, so Hill's end of the link is an accepted connection.
  await using herd = await MemoryHerd.start(pair({ hill: { dials: false } }));
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"]);
  // Longer than a client line may be, as an AT line made from a client line can be.
  const longId = "l".repeat(CLIENT_LIMITS.lineBytesMax + 40);
  const line = herd.iamat("Jaquez", longId);
  await settle();
  assert.equal(herd.server("Hill").store.get(longId)?.atLine, line);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"]);
});

Deno.test("after a reconnect, catch-up sends only what the other end lacks", async () => {
  await using herd = await MemoryHerd.start(pair());
  for (let index = 0; index < 5; index++) herd.iamat("Hill", `before.${index}`);
  await settle();
  herd.cutAll();
  await settle();
  for (let index = 0; index < 3; index++) herd.iamat("Hill", `during.${index}`);
  const sentBefore = herd.server("Hill").counters.get("catch_up_updates_sent");
  await herd.clock.advance(2000, 50);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"]);
  for (let index = 0; index < 3; index++) {
    assert.ok(herd.server("Jaquez").store.get(`during.${index}`), `during.${index}`);
  }
  const sent = herd.server("Hill").counters.get("catch_up_updates_sent") - sentBefore;
  assert.equal(sent, 3, "Hill sent more than Jaquez lacked");
  assert.ok(herd.log("Hill").some((line) => line.endsWith("sent 3 updates after seq 5")));
  // Jaquez's updates all came from Hill: it sends none of them back.
  assert.ok(herd.log("Jaquez").some((line) => line.endsWith("sent 0 updates after seq 0")));
});

Deno.test("a frozen neighbour is found out by heartbeats, closed and redialled when back", async () => {
  await using herd = await MemoryHerd.start(pair());
  herd.freeze("Jaquez");
  await herd.clock.advance(3 * HEARTBEAT_MS - HEARTBEAT_MS / 2, HEARTBEAT_MS / 4);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"], "closed too soon");
  await herd.clock.advance(HEARTBEAT_MS, HEARTBEAT_MS / 4);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, []);
  assert.ok(herd.log("Hill").some((line) => line.endsWith("link to Jaquez down: no heartbeat")));
  // Meanwhile an update at Hill; once Jaquez is back, a redial brings it over.
  const line = herd.iamat("Hill", "while.frozen");
  herd.thaw("Jaquez");
  await herd.clock.advance(5000, 100);
  assert.deepEqual(herd.server("Hill").peers.linkedPeers, ["Jaquez"]);
  assert.equal(herd.server("Jaquez").store.get("while.frozen")?.atLine, line);
});

Deno.test("certificateRefusal() lets a peer in only with a verified certificate naming it", () => {
  assert.equal(certificateRefusal({ names: ["Hill", "hill.example"] }, "Hill"), undefined);
  assert.equal(certificateRefusal({ names: ["hill.example", "Hill"] }, "Hill"), undefined);
  assert.equal(
    certificateRefusal({ names: ["Smith"] }, "Hill"),
    "its certificate names Smith, not Hill",
  );
  assert.equal(
    certificateRefusal({ names: [] }, "Hill"),
    "its certificate names nothing, not Hill",
  );
  assert.equal(
    certificateRefusal({ names: ["hill"] }, "Hill"),
    "its certificate names hill, not Hill",
  );
  assert.equal(certificateRefusal({ refused: "no certificate" }, "Hill"), "TLS no certificate");
  assert.equal(certificateRefusal(undefined, "Hill"), "the connection is not TLS");
});
