/**
 * Proof that a peer knows HERD_SECRET, as pure functions of the secret: fresh nonces, and
 * HMAC-SHA-256 proofs over both ends' roles, names and nonces. Knows no sockets and no line
 * protocol — lib/peer_protocol.ts carries the nonces and proofs, lib/peers.ts runs the
 * handshake.
 *
 * Each end proves HMAC(secret, [label, its role, its name, the other's name, the other's
 * nonce, its own nonce]). The other end's fresh nonce makes an old proof worthless (no
 * replay); the role and the order of the names stop a proof from being reflected back to the
 * end that made it or passed to another pair of servers. Only nonces and proofs go on the
 * wire; the secret lives in a key that cannot be exported.
 */

/** Which end of a connection: the one that dialled it, or the one that accepted it. */
export type PeerRole = "dialler" | "acceptor";

/** One end's view of a handshake: who it is, whom it talks to, and the two nonces. */
export interface PeerExchange {
  role: PeerRole;
  selfName: string;
  peerName: string;
  selfNonce: string;
  peerNonce: string;
}

const NONCE_BYTES = 32;
/** A nonce or a proof on the wire: 32 bytes as 64 lowercase hex digits. */
const HEX_32_BYTES = /^[0-9a-f]{64}$/;
const PROOF_LABEL = "herd-peer-proof";
const HMAC_SHA_256 = { name: "HMAC", hash: "SHA-256" } as const;
/** Below this, a secret may be guessed offline from one proof; long random secrets are not. */
const SECRET_CHARS_ADVISED_MIN = 32;

/** A fresh random nonce, 32 bytes as 64 lowercase hex digits. */
export function newNonce(): string {
  return crypto.getRandomValues(new Uint8Array(NONCE_BYTES)).toHex();
}

/** True when `text` has the form of a nonce from {@link newNonce}. */
export function isNonce(text: string): boolean {
  return HEX_32_BYTES.test(text);
}

/** True when `text` has the form of a proof from {@link PeerSecret.prove}. */
export function isProof(text: string): boolean {
  return HEX_32_BYTES.test(text);
}

/**
 * HERD_SECRET as a non-extractable HMAC key, with the proofs made from it.
 *
 * @example
 * ```ts
 * const secret = await PeerSecret.fromText(Deno.env.get("HERD_SECRET")!);
 * const exchange = { role: "dialler", selfName: "Hill", peerName: "Jaquez", selfNonce, peerNonce };
 * const proof = await secret.prove(exchange);
 * const theirsIsGood = await secret.verify(exchange, theirProof);
 * ```
 */
export class PeerSecret {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** Imports the secret's UTF-8 bytes as an HMAC-SHA-256 key. */
  static async fromText(secret: string): Promise<PeerSecret> {
    const bytes = new TextEncoder().encode(secret);
    const key = await crypto.subtle.importKey("raw", bytes, HMAC_SHA_256, false, [
      "sign",
      "verify",
    ]);
    return new PeerSecret(key);
  }

  /** This end's proof for the exchange, as 64 hex digits. */
  async prove(exchange: PeerExchange): Promise<string> {
    const message = proofMessage({
      proverRole: exchange.role,
      proverName: exchange.selfName,
      verifierName: exchange.peerName,
      verifierNonce: exchange.peerNonce,
      proverNonce: exchange.selfNonce,
    });
    return new Uint8Array(await crypto.subtle.sign("HMAC", this.#key, message)).toHex();
  }

  /** True when `proof` is the proof the other end of the exchange must send. */
  async verify(exchange: PeerExchange, proof: string): Promise<boolean> {
    if (!isProof(proof)) return false;
    const message = proofMessage({
      proverRole: exchange.role === "dialler" ? "acceptor" : "dialler",
      proverName: exchange.peerName,
      verifierName: exchange.selfName,
      verifierNonce: exchange.selfNonce,
      proverNonce: exchange.peerNonce,
    });
    // WebCrypto's HMAC verify compares in constant time (Deno: ring::hmac::verify), so the
    // time a wrong proof takes tells nothing about how close it was.
    return await crypto.subtle.verify("HMAC", this.#key, Uint8Array.fromHex(proof), message);
  }
}

/** What a proof is made over, named from the prover's side. */
interface ProofFields {
  proverRole: PeerRole;
  proverName: string;
  verifierName: string;
  /** The challenge the verifier sent: makes the proof fresh. */
  verifierNonce: string;
  proverNonce: string;
}

/** The bytes a prover signs; JSON keeps the fields apart whatever the names contain. */
function proofMessage(fields: ProofFields): Uint8Array<ArrayBuffer> {
  const { proverRole, proverName, verifierName, verifierNonce, proverNonce } = fields;
  return new TextEncoder().encode(
    JSON.stringify([PROOF_LABEL, proverRole, proverName, verifierName, verifierNonce, proverNonce]),
  );
}

/**
 * What to warn about at start for HERD_SECRET's value (undefined when unset): without it
 * peers are unauthenticated; a short one can be guessed offline from any proof, and any
 * process that reaches a port can get a proof by asking for one. With `tls`, certificates
 * prove who a peer is, so the secret is optional (contract §7).
 */
export function peerSecretWarnings(
  secret: string | undefined,
  options: { tls?: boolean } = {},
): string[] {
  if (secret === undefined) {
    if (options.tls) return [];
    return ["HERD_SECRET is not set: any process that reaches a port can pose as a peer"];
  }
  if (secret.length >= SECRET_CHARS_ADVISED_MIN) return [];
  return [
    `HERD_SECRET is shorter than ${SECRET_CHARS_ADVISED_MIN} characters: a proof on the wire ` +
    "lets anyone guess a weak secret offline (use e.g. `openssl rand -hex 32`)",
  ];
}
