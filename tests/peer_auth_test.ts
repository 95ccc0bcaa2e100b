/**
 * Proofs of HERD_SECRET (lib/peer_auth.ts): the right secret verifies both ways, and every
 * way of reusing a proof — another secret, the other role, other names, swapped or new
 * nonces, a malformed proof — fails.
 */
import assert from "node:assert/strict";
import {
  isNonce,
  newNonce,
  type PeerExchange,
  PeerSecret,
  peerSecretWarnings,
} from "../lib/peer_auth.ts";

const SECRET = "correct horse battery staple, long enough to be advised";

/** A handshake between Hill (dialler) and Jaquez (acceptor), as each end sees it. */
function handshake(): { dialler: PeerExchange; acceptor: PeerExchange } {
  const hillNonce = newNonce();
  const jaquezNonce = newNonce();
  return {
    dialler: {
      role: "dialler",
      selfName: "Hill",
      peerName: "Jaquez",
      selfNonce: hillNonce,
      peerNonce: jaquezNonce,
    },
    acceptor: {
      role: "acceptor",
      selfName: "Jaquez",
      peerName: "Hill",
      selfNonce: jaquezNonce,
      peerNonce: hillNonce,
    },
  };
}

Deno.test("newNonce() gives 64 hex digits, different every time", () => {
  const nonces = new Set(Array.from({ length: 100 }, () => newNonce()));
  assert.equal(nonces.size, 100);
  for (const nonce of nonces) assert.ok(isNonce(nonce), nonce);
});

Deno.test("isNonce() refuses anything but 64 lowercase hex digits", () => {
  for (
    const text of ["", "ab", "0".repeat(63), "0".repeat(65), "A".repeat(64), `${"0".repeat(63)}g`]
  ) {
    assert.equal(isNonce(text), false, text);
  }
});

Deno.test("PeerSecret: each end's proof verifies at the other end with the same secret", async () => {
  const { dialler, acceptor } = handshake();
  const hill = await PeerSecret.fromText(SECRET);
  const jaquez = await PeerSecret.fromText(SECRET);
  const acceptorProof = await jaquez.prove(acceptor);
  const diallerProof = await hill.prove(dialler);
  assert.match(acceptorProof, /^[0-9a-f]{64}$/);
  assert.equal(await hill.verify(dialler, acceptorProof), true);
  assert.equal(await jaquez.verify(acceptor, diallerProof), true);
});

Deno.test("PeerSecret: a proof made with another secret fails", async () => {
  const { dialler, acceptor } = handshake();
  const right = await PeerSecret.fromText(SECRET);
  for (const other of [`${SECRET}!`, SECRET.toUpperCase(), "x"]) {
    const wrong = await PeerSecret.fromText(other);
    assert.equal(await right.verify(acceptor, await wrong.prove(dialler)), false, other);
    assert.equal(await right.verify(dialler, await wrong.prove(acceptor)), false, other);
  }
});

Deno.test("PeerSecret: a proof reflected back to the end that made it fails", async () => {
  const { dialler, acceptor } = handshake();
  const secret = await PeerSecret.fromText(SECRET);
  assert.equal(await secret.verify(acceptor, await secret.prove(acceptor)), false);
  assert.equal(await secret.verify(dialler, await secret.prove(dialler)), false);
});

Deno.test("PeerSecret: a proof made in the other role fails", async () => {
  const { dialler, acceptor } = handshake();
  const secret = await PeerSecret.fromText(SECRET);
  // Hill's proof as if it had accepted, offered where its dialler proof is expected.
  const asAcceptor = await secret.prove({ ...dialler, role: "acceptor" });
  assert.equal(await secret.verify(acceptor, asAcceptor), false);
});

Deno.test("PeerSecret: a proof for other names fails", async () => {
  const { dialler, acceptor } = handshake();
  const secret = await PeerSecret.fromText(SECRET);
  const asSmith = await secret.prove({ ...dialler, selfName: "Smith" });
  assert.equal(await secret.verify(acceptor, asSmith), false);
  const toSmith = await secret.prove({ ...dialler, peerName: "Smith" });
  assert.equal(await secret.verify(acceptor, toSmith), false);
  // Names that differ only in where one ends and the next begins, whatever they contain.
  const shifted = await secret.prove({ ...dialler, selfName: "Hill|Jaquez", peerName: "X" });
  assert.equal(await secret.verify({ ...acceptor, selfName: "Jaquez|X" }, shifted), false);
});

Deno.test("PeerSecret: a proof with the nonces swapped fails", async () => {
  const { dialler, acceptor } = handshake();
  const secret = await PeerSecret.fromText(SECRET);
  const swapped = await secret.prove({
    ...dialler,
    selfNonce: dialler.peerNonce,
    peerNonce: dialler.selfNonce,
  });
  assert.equal(await secret.verify(acceptor, swapped), false);
});

Deno.test("PeerSecret: a proof replayed against a new challenge fails", async () => {
  const first = handshake();
  const secret = await PeerSecret.fromText(SECRET);
  const recorded = await secret.prove(first.dialler);
  assert.equal(await secret.verify(first.acceptor, recorded), true);
  // The same dialler nonce and proof, replayed; the acceptor's challenge is fresh.
  const replay = { ...first.acceptor, selfNonce: newNonce() };
  assert.equal(await secret.verify(replay, recorded), false);
});

Deno.test("PeerSecret.verify() is false for a malformed proof, never a throw", async () => {
  const { acceptor } = handshake();
  const secret = await PeerSecret.fromText(SECRET);
  const good = await secret.prove({ ...acceptor, role: "dialler" });
  for (const proof of ["", "zz", good.slice(2), `${good}00`, good.toUpperCase(), ` ${good}`]) {
    assert.equal(await secret.verify(acceptor, proof), false, proof);
  }
});

Deno.test("peerSecretWarnings() warns without a secret (unless with TLS) and for a short one", () => {
  assert.match(peerSecretWarnings(undefined).join(), /not set.*pose as a peer/);
  assert.match(peerSecretWarnings("short").join(), /shorter than 32 characters/);
  assert.deepEqual(peerSecretWarnings("f".repeat(64)), []);
  assert.deepEqual(peerSecretWarnings(undefined, { tls: true }), []);
  assert.match(peerSecretWarnings("short", { tls: true }).join(), /shorter than 32 characters/);
});
