/**
 * Peer authentication with HERD_SECRET (contract §5), with real processes: servers with the
 * same secret link and flood; a server with a wrong secret, or none, never gets a link with
 * one that has it, so nothing crosses either way; a raw client posing as a neighbour cannot
 * inject an update without a fresh proof; a dialling server checks the other end's proof
 * before it gives its own; the secret shows in no log, no output and nothing on the wire;
 * and a server without a secret warns at start.
 */
import assert from "node:assert/strict";
import { newNonce, type PeerExchange, PeerSecret } from "../../lib/peer_auth.ts";
import { PEER_PROTOCOL_VERSION } from "../../lib/peer_protocol.ts";
import { type Herd, pollUntil, startHerd } from "../support/herd_processes.ts";
import { heldAtLines, WireClient } from "../support/wire_client.ts";

const SECRET = `herd-test-secret-${crypto.randomUUID()}`;
/** Also shorter than advised, so its server warns about that. */
const WRONG_SECRET = `wrong-${crypto.randomUUID().slice(0, 8)}`;
const LOCATION = "+34.068930-118.445127";
const PROPAGATION_TIMEOUT_MS = 10_000;
/** Room for a few dial attempts (backoff is capped at 1.6 s) on a loaded two-core machine. */
const AUTH_ATTEMPT_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;
/**
 * Failed handshakes between two servers whose secrets differ: the backoff's first steps,
 * then both ends dialling about once per 0.8–1.6 s (a loop without backoff makes hundreds).
 */
const ATTEMPTS_MAX_FIRST = 12;
const ATTEMPTS_PER_SECOND_MAX = 3;
const NO_SECRET_WARNING =
  "HERD_SECRET is not set: any process that reaches a port can pose as a peer";

/** One IAMAT on a fresh connection; returns the AT reply. */
async function iamat(herd: Herd, server: string, clientId: string): Promise<string> {
  await using client = await WireClient.connect(herd.port(server));
  await client.write(`IAMAT ${clientId} ${LOCATION} 1700000000\n`);
  return await client.readAtReply();
}

/** The AT line `server` holds for `clientId`, or undefined while it knows none. */
async function held(herd: Herd, server: string, clientId: string): Promise<string | undefined> {
  return (await heldAtLines(herd.port(server), [clientId]))[0];
}

async function waitHeld(herd: Herd, server: string, clientId: string, atLine: string) {
  await pollUntil(async () => (await held(herd, server, clientId)) === atLine, {
    timeoutMs: PROPAGATION_TIMEOUT_MS,
    what: `${server} to hold ${clientId}`,
  });
}

/** How many authentication failures about `peer` that `server` has logged (as a warning). */
async function authFailures(herd: Herd, server: string, peer: string): Promise<number> {
  const log = await herd.readLog(server);
  return log.split("\n").filter((line) => line.includes(`[WRN] authentication of ${peer} at `))
    .length;
}

/** Waits until `server` has logged an authentication failure about `peer` after `seen`. */
async function waitAuthFailure(herd: Herd, server: string, peer: string, seen = 0) {
  await pollUntil(async () => (await authFailures(herd, server, peer)) > seen, {
    timeoutMs: AUTH_ATTEMPT_TIMEOUT_MS,
    what: `${server} to log a failed authentication of ${peer} (after ${seen})`,
  });
}

/** The line a linked peer sends first: what it has of Smith (nothing, from a fresh epoch). */
const HAVE_NOTHING = "HAVE 0123456789abcdef - 0";

/** A peer's update line carrying a made-up AT line from Campbell for `clientId`. */
function updateLine(clientId: string): string {
  return `U 1 AT Campbell +0.000000001 ${clientId} ${LOCATION} 1700000000`;
}

/** The nonce of a `CHALLENGE <nonce>` line. */
function challengeOf(line: string): string {
  const match = /^CHALLENGE ([0-9a-f]{64})$/.exec(line);
  assert.ok(match, `not a CHALLENGE line: ${JSON.stringify(line)}`);
  return match[1];
}

/** The proof of a `PROOF <hex>` line. */
function proofOf(line: string): string {
  const match = /^PROOF ([0-9a-f]{64})$/.exec(line);
  assert.ok(match, `not a PROOF line: ${JSON.stringify(line)}`);
  return match[1];
}

/** Stops each server with SIGTERM (logs flushed) and checks no secret shows in its output. */
async function stopAndAssertNoSecret(herd: Herd, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const server = herd.process(name);
    assert.equal((await herd.kill(name, "SIGTERM")).code, 0, `${name} did not stop cleanly`);
    const outputs = { log: await herd.readLog(name), stdout: server.stdout, stderr: server.stderr };
    for (const [where, text] of Object.entries(outputs)) {
      for (const secret of [SECRET, WRONG_SECRET]) {
        assert.ok(!text.includes(secret), `a secret is in ${name}'s ${where}`);
      }
    }
  }
}

/** Asserts nothing a server sent to a test's connection holds a secret. */
function assertNoSecretOnWire(received: readonly string[]): void {
  for (const secret of [SECRET, WRONG_SECRET]) {
    assert.ok(!received.join("\n").includes(secret), "a secret went on the wire");
  }
}

Deno.test("peer auth: the same secret links, a wrong one or none never does", async (t) => {
  await using herd = await startHerd({
    args: ["--places", "offline"],
    serverEnv: {
      Jaquez: { HERD_SECRET: SECRET },
      Hill: { HERD_SECRET: SECRET },
      Smith: { HERD_SECRET: SECRET },
      Singleton: { HERD_SECRET: WRONG_SECRET },
      Campbell: {},
    },
  });
  /** Everything Smith sent to the test's connections, for the wire check. */
  const received: string[] = [];

  await t.step("servers with the same secret link up and flood an IAMAT", async () => {
    // Jaquez → Hill → Smith: two authenticated links.
    const at = await iamat(herd, "Jaquez", "same.secret");
    await waitHeld(herd, "Hill", "same.secret", at);
    await waitHeld(herd, "Smith", "same.secret", at);
  });

  await t.step("a server with the wrong secret is refused both ways; nothing crosses", async () => {
    for (const [server, peer] of [["Jaquez", "Singleton"], ["Singleton", "Jaquez"]]) {
      await waitAuthFailure(herd, server, peer);
    }
    const seen = await authFailures(herd, "Jaquez", "Singleton");
    const fromWrong = await iamat(herd, "Singleton", "wrong.secret.origin");
    const fromRight = await iamat(herd, "Jaquez", "right.secret.origin");
    await waitHeld(herd, "Smith", "right.secret.origin", fromRight);
    // A handshake that failed after the IAMATs: had one succeeded, catch-up would have
    // carried them across.
    await waitAuthFailure(herd, "Jaquez", "Singleton", seen);
    for (const server of ["Jaquez", "Hill", "Smith"]) {
      assert.equal(await held(herd, server, "wrong.secret.origin"), undefined, server);
    }
    assert.equal(await held(herd, "Singleton", "wrong.secret.origin"), fromWrong);
    assert.equal(await held(herd, "Singleton", "right.secret.origin"), undefined);
    assert.match(
      await herd.readLog("Jaquez"),
      /\[WRN\] authentication of Singleton at 127\.0\.0\.1:\d+ failed \(dialler side\): wrong proof/,
    );
  });

  await t.step("a server without a secret is refused by one that has it (mixed)", async () => {
    await waitAuthFailure(herd, "Smith", "Campbell");
    const seen = await authFailures(herd, "Smith", "Campbell");
    const fromNone = await iamat(herd, "Campbell", "no.secret.origin");
    const fromSmith = await iamat(herd, "Smith", "smith.origin");
    await waitAuthFailure(herd, "Smith", "Campbell", seen);
    assert.equal(await held(herd, "Smith", "no.secret.origin"), undefined);
    assert.equal(await held(herd, "Campbell", "no.secret.origin"), fromNone);
    assert.equal(await held(herd, "Campbell", "smith.origin"), undefined);
    assert.equal(await held(herd, "Smith", "smith.origin"), fromSmith);
    // Campbell, without a secret, answers the hello and starts its catch-up at once.
    assert.match(
      await herd.readLog("Smith"),
      /\[WRN\] authentication of Campbell at \S+ failed \(\w+ side\): expected CHALLENGE, got "HAVE"/,
    );
    // Campbell's links come up and fall at once; it must back off, not redial in a loop.
    const upSeconds = (Date.now() - herd.process("Campbell").startedAtMs) / 1000;
    const attempts = await authFailures(herd, "Smith", "Campbell");
    assert.ok(
      attempts <= ATTEMPTS_MAX_FIRST + ATTEMPTS_PER_SECOND_MAX * upSeconds,
      `${attempts} failed handshakes in ${upSeconds.toFixed(1)} s`,
    );
  });

  await t.step("a raw client posing as a neighbour cannot inject an update", async () => {
    // Smith has no live link to Campbell (Campbell has no secret), so a client may pose as it.
    const wrongSecret = await PeerSecret.fromText(WRONG_SECRET);
    /** Ways in, most with an update for `id`; after each, Smith must close and not know `id`. */
    const forgeries: Record<string, (client: WireClient, id: string) => Promise<void>> = {
      "an update straight after the hello": async (client, id) => {
        await client.write(`PEER Campbell ${PEER_PROTOCOL_VERSION}\n${updateLine(id)}\n`);
        received.push(await client.readLine(), await client.readLine());
      },
      "a made-up proof straight after the hello": async (client, id) => {
        await client.write(
          `PEER Campbell ${PEER_PROTOCOL_VERSION}\nPROOF ${newNonce()}\n${updateLine(id)}\n`,
        );
        received.push(await client.readLine(), await client.readLine());
      },
      "an update instead of the proof": async (client, id) => {
        await beginAsCampbell(client, received);
        await client.write(`${updateLine(id)}\n`);
      },
      "a proof made with a wrong secret": async (client, id) => {
        const exchange = await beginAsCampbell(client, received);
        await client.write(`PROOF ${await wrongSecret.prove(exchange)}\n${updateLine(id)}\n`);
      },
      "silence after the hello, until the handshake times out": async (client) => {
        await client.write(`PEER Campbell ${PEER_PROTOCOL_VERSION}\n`);
        received.push(await client.readLine(), await client.readLine());
      },
    };
    for (const [index, [name, forge]] of Object.entries(forgeries).entries()) {
      const id = `forged.${index}`;
      await using client = await WireClient.connect(herd.port("Smith"));
      await forge(client, id);
      const rest = await client.readUntilEof({ timeoutMs: CLOSE_TIMEOUT_MS });
      received.push(rest);
      assert.equal(rest, "", `${name}: Smith sent more than its handshake: ${rest}`);
      assert.equal(await held(herd, "Smith", id), undefined, `${name}: Smith holds ${id}`);
    }
    const failures = [
      'expected CHALLENGE, got "U"',
      'expected PROOF, got "U"',
      "wrong proof",
      "handshake timed out before CHALLENGE",
    ].map((failure) => `failed (acceptor side): ${failure}`);
    await pollUntil(async () => {
      const log = await herd.readLog("Smith");
      return failures.every((failure) => log.includes(failure));
    }, {
      timeoutMs: PROPAGATION_TIMEOUT_MS,
      what: `Smith to log each of: ${failures.join("; ")}`,
    });
  });

  await t.step("a client with the secret can link; its proof replayed cannot", async () => {
    const secret = await PeerSecret.fromText(SECRET);
    let recorded: { nonce: string; proof: string };
    {
      await using client = await WireClient.connect(herd.port("Smith"));
      const exchange = await beginAsCampbell(client, received);
      recorded = { nonce: exchange.selfNonce, proof: await secret.prove(exchange) };
      await client.write(`PROOF ${recorded.proof}\n${HAVE_NOTHING}\n${updateLine("genuine")}\n`);
      const have = await client.readLine();
      received.push(have);
      assert.match(have, /^HAVE /);
      await pollUntil(async () => (await held(herd, "Smith", "genuine")) !== undefined, {
        timeoutMs: PROPAGATION_TIMEOUT_MS,
        what: "Smith to store the update from a client that proved the secret",
      });
    }
    await using replay = await WireClient.connect(herd.port("Smith"));
    await replay.write(`PEER Campbell ${PEER_PROTOCOL_VERSION}\nCHALLENGE ${recorded.nonce}\n`);
    for (let line = 0; line < 3; line++) received.push(await replay.readLine());
    await replay.write(`PROOF ${recorded.proof}\n${HAVE_NOTHING}\n${updateLine("replayed")}\n`);
    const rest = await replay.readUntilEof({ timeoutMs: CLOSE_TIMEOUT_MS });
    received.push(rest);
    assert.equal(rest, "", `Smith took a replayed proof: ${rest}`);
    assert.equal(await held(herd, "Smith", "replayed"), undefined);
  });

  await t.step("warnings at start: no secret, and a short secret", () => {
    assert.ok(herd.process("Campbell").stderr.includes(NO_SECRET_WARNING));
    assert.match(herd.process("Singleton").stderr, /HERD_SECRET is shorter than 32 characters/);
    assert.doesNotMatch(herd.process("Hill").stderr, /HERD_SECRET/);
  });

  await t.step("no secret in logs, output or on the wire; failures are counted", async () => {
    assertNoSecretOnWire(received);
    await stopAndAssertNoSecret(herd, herd.names);
    assert.match(await herd.readLog("Campbell"), new RegExp(`\\[WRN\\] ${NO_SECRET_WARNING}`));
    assert.match(await herd.readLog("Jaquez"), /counters: .*\bpeer_auth_failed=[1-9]/);
  });
});

/**
 * Starts a handshake with Smith as Campbell: hello and challenge out; Smith's hello,
 * challenge and proof in (its proof must be right). Returns Campbell's side of the exchange.
 */
async function beginAsCampbell(client: WireClient, received: string[]): Promise<PeerExchange> {
  const selfNonce = newNonce();
  await client.write(`PEER Campbell ${PEER_PROTOCOL_VERSION}\nCHALLENGE ${selfNonce}\n`);
  const lines = [await client.readLine(), await client.readLine(), await client.readLine()];
  received.push(...lines);
  assert.equal(lines[0], `PEER Smith ${PEER_PROTOCOL_VERSION}`);
  const exchange: PeerExchange = {
    role: "dialler",
    selfName: "Campbell",
    peerName: "Smith",
    selfNonce,
    peerNonce: challengeOf(lines[1]),
  };
  const secret = await PeerSecret.fromText(SECRET);
  assert.ok(await secret.verify(exchange, proofOf(lines[2])), "Smith's own proof is wrong");
  return exchange;
}

Deno.test("peer auth: a dialling server checks the other end's proof before giving its own", async () => {
  // Only Hill runs; the test listens on Jaquez's port and answers Hill's dials.
  await using herd = await startHerd({
    names: ["Hill", "Jaquez"],
    start: ["Hill"],
    args: ["--places", "offline"],
    env: { HERD_SECRET: SECRET },
  });
  using listener = Deno.listen({ hostname: "127.0.0.1", port: herd.port("Jaquez") });
  const received: string[] = [];
  const secret = await PeerSecret.fromText(SECRET);
  for (const proofWith of [await PeerSecret.fromText(WRONG_SECRET), secret]) {
    await using hill = await WireClient.accept(listener, { timeoutMs: AUTH_ATTEMPT_TIMEOUT_MS });
    const hello = [await hill.readLine(), await hill.readLine()];
    received.push(...hello);
    assert.equal(hello[0], `PEER Hill ${PEER_PROTOCOL_VERSION}`);
    const exchange: PeerExchange = {
      role: "acceptor",
      selfName: "Jaquez",
      peerName: "Hill",
      selfNonce: newNonce(),
      peerNonce: challengeOf(hello[1]),
    };
    const proof = await proofWith.prove(exchange);
    await hill.write(
      `PEER Jaquez ${PEER_PROTOCOL_VERSION}\nCHALLENGE ${exchange.selfNonce}\nPROOF ${proof}\n`,
    );
    if (proofWith !== secret) {
      const rest = await hill.readUntilEof({ timeoutMs: CLOSE_TIMEOUT_MS });
      received.push(rest);
      assert.equal(rest, "", `Hill answered a wrong proof: ${rest}`);
      continue;
    }
    const answer = [await hill.readLine(), await hill.readLine()];
    received.push(...answer);
    assert.ok(await secret.verify(exchange, proofOf(answer[0])), "Hill's proof is wrong");
    assert.match(answer[1], /^HAVE /);
  }
  assert.match(
    await herd.readLog("Hill"),
    /\[WRN\] authentication of Jaquez at \S+ failed \(dialler side\): wrong proof/,
  );
  assertNoSecretOnWire(received);
  await stopAndAssertNoSecret(herd, ["Hill"]);
});
