/**
 * A server's TLS material (contract §7): the CA, its certificate and its key, read once at
 * start and checked before anything listens — each must be PEM, the key must match the
 * certificate, and the certificate must be signed by the CA — so a wrong file is one line
 * at start (exit 2) rather than a refused link later. Also the names a verified peer
 * certificate carries. Errors name paths only: a key's contents never reach a message.
 * The checks are node:crypto's and node:tls's; nothing here does cryptography itself.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext, type PeerCertificate, type TLSSocket } from "node:tls";
import type { PeerCertificateCheck } from "./connection.ts";
import { OneLineError } from "./errors.ts";

/** The PEM texts a TLS server listens and dials with. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Where a server's TLS files are (absolute, as lib/config.ts resolves them). */
export interface TlsPaths {
  caPath: string;
  certPath: string;
  keyPath: string;
}

/** A TLS file that is missing, unreadable or invalid; the message is one line for stderr. */
export class TlsFilesError extends OneLineError {
  override name = "TlsFilesError";
}

/**
 * Reads and checks the CA, certificate and key; throws TlsFilesError naming the file and
 * the problem.
 *
 * @example
 * ```ts
 * const files = await readTlsFiles({ caPath: "ca.pem", certPath: "Hill.pem", keyPath: "Hill.key" });
 * ```
 */
export async function readTlsFiles(paths: TlsPaths): Promise<TlsFiles> {
  const [ca, cert, key] = await Promise.all(
    [["ca", paths.caPath], ["cert", paths.certPath], ["key", paths.keyPath]].map(
      ([role, path]) => readPem(role, path),
    ),
  );
  const caCertificate = parseCertificate(ca, `ca ${paths.caPath}`);
  const certificate = parseCertificate(cert, `cert ${paths.certPath}`);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    // node's reason is dropped on purpose: nothing of a key's text may reach a log.
    throw new TlsFilesError(`tls: key ${paths.keyPath} is not a PEM private key`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsFilesError(
      `tls: key ${paths.keyPath} does not match cert ${paths.certPath}`,
    );
  }
  if (!certificate.checkIssued(caCertificate) || !certificate.verify(caCertificate.publicKey)) {
    throw new TlsFilesError(`tls: cert ${paths.certPath} is not signed by ca ${paths.caPath}`);
  }
  try {
    createSecureContext({ ca, cert, key });
  } catch {
    throw new TlsFilesError(
      `tls: cert ${paths.certPath} and key ${paths.keyPath} cannot be used together for TLS`,
    );
  }
  return { ca, cert, key };
}

async function readPem(role: string, path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (error as Error).name;
    throw new TlsFilesError(`tls: cannot read ${role} ${path}: ${reason}`);
  }
  if (!text.includes("-----BEGIN ")) throw new TlsFilesError(`tls: ${role} ${path} is not PEM`);
  return text;
}

function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new TlsFilesError(`tls: ${what} is not a PEM certificate`);
  }
}

/**
 * The names a peer certificate gives its holder, each once: the subject CN and every DNS
 * subject alternative name. An entry node:tls had to quote (it holds a comma or a quote) keeps its
 * quotes and so matches no server name: refusing is the safe side.
 */
export function certificateNames(certificate: PeerCertificate): string[] {
  const names: string[] = [];
  // A subject with several CNs comes as an array (whatever the types say): each is claimed.
  const commonNames: unknown[] = [certificate.subject?.CN ?? []].flat();
  for (const name of commonNames) if (typeof name === "string") names.push(name);
  for (const entry of (certificate.subjectaltname ?? "").split(", ")) {
    if (entry.startsWith("DNS:")) names.push(entry.slice("DNS:".length));
  }
  return [...new Set(names)];
}

/**
 * What an accepted socket's certificate proves once its handshake is done: its names if it
 * is valid for the CA (signed by it, within its dates), else why not.
 */
export function checkPeerCertificate(socket: TLSSocket): PeerCertificateCheck {
  const certificate = socket.getPeerCertificate();
  // node gives an empty object when the other end sent none (clients need not).
  if (certificate === null || Object.keys(certificate).length === 0) {
    return { refused: "no certificate" };
  }
  if (!socket.authorized) return { refused: unauthorizedWhy(certificate, socket) };
  return { names: certificateNames(certificate) };
}

/**
 * Why node refused a certificate, in words an operator acts on. Under Deno node's code for
 * an expired certificate is a vague UNABLE_TO_VERIFY_LEAF_SIGNATURE, so the dates (which
 * node has already checked) are read to say "expired" plainly.
 */
function unauthorizedWhy(certificate: PeerCertificate, socket: TLSSocket): string {
  const nowMs = Date.now();
  if (Date.parse(certificate.valid_to) < nowMs) {
    return `certificate expired (valid until ${certificate.valid_to})`;
  }
  if (Date.parse(certificate.valid_from) > nowMs) {
    return `certificate not yet valid (valid from ${certificate.valid_from})`;
  }
  return `certificate not valid for the ca (${socket.authorizationError})`;
}
