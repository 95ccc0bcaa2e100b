/**
 * `deno task certs DIR [--config herd.json]`: makes, with `openssl`, a CA and a certificate
 * per server of the config for trying TLS (contract §7): each names its server (CN and a
 * DNS subject alternative name) and the `host` its neighbours dial (an IP or DNS name), and
 * serves both as a TLS server and a TLS client (links are mutual). Prints the `tls` keys to
 * put in herd.json. The CA's key is written too: whoever holds it can make peers, so keep it
 * off the servers. No cryptography here: openssl does all of it.
 */
import { parseArgs } from "node:util";
import { isIP } from "node:net";
import { loadConfig } from "../lib/config.ts";

/** The CA's lifetime, and a server certificate's by default. */
const CA_DAYS = 3650;
const SERVER_DAYS_DEFAULT = 825;

/** One server certificate to make: the names it carries and how long it is valid. */
export interface ServerCertificateOptions {
  /** Where the CA (`ca.pem`, `ca.key`) is and the certificate goes (`NAME.pem`, `NAME.key`). */
  dir: string;
  /** The server's name: the subject CN and a DNS subject alternative name. */
  name: string;
  /** The host its neighbours dial: an IP or DNS subject alternative name. */
  host: string;
  /** Validity from now; default {@link SERVER_DAYS_DEFAULT}. */
  days?: number;
  /** Or an explicit validity window, as openssl writes it (`YYMMDDHHMMSSZ`): e.g. expired. */
  validity?: { notBefore: string; notAfter: string };
  /** The file name stem; default `name` (a test may make several for one server). */
  fileStem?: string;
}

/** Runs openssl; throws with its stderr when it fails. */
async function openssl(args: string[], cwd: string): Promise<void> {
  const output = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr}`);
  }
}

/** A fresh P-256 private key in PKCS#8 PEM at `path` (what node:tls and Deno both read). */
function newKey(path: string, cwd: string): Promise<void> {
  return openssl(
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path],
    cwd,
  );
}

/** Makes `ca.key` and a self-signed `ca.pem` (named `subject`) in `dir`. */
export async function makeCa(dir: string, subject = "herd CA"): Promise<void> {
  await newKey("ca.key", dir);
  await openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    String(CA_DAYS),
    "-subj",
    `/CN=${subject}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
}

/**
 * Makes `NAME.key` and `NAME.pem` signed by the CA in `dir`. Uses `openssl ca`, the one
 * openssl 3.0 command that can set an arbitrary validity window (for expired test
 * certificates), with a throw-away database in a temporary directory.
 */
export async function makeServerCertificate(options: ServerCertificateOptions): Promise<void> {
  const { dir, name, host } = options;
  const stem = options.fileStem ?? name;
  const state = await Deno.makeTempDir({ prefix: "herd_ca_" });
  try {
    await Deno.writeTextFile(`${state}/index.txt`, "");
    await Deno.writeTextFile(`${state}/ca.cnf`, caConfig(state));
    const hostName = isIP(host) ? `IP:${host}` : `DNS:${host}`;
    const alternativeNames = [...new Set([`DNS:${name}`, hostName])].join(",");
    await Deno.writeTextFile(
      `${state}/server.ext`,
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
        `subjectAltName=${alternativeNames}`,
      ].join("\n") + "\n",
    );
    await newKey(`${stem}.key`, dir);
    await openssl([
      "req",
      "-new",
      "-key",
      `${stem}.key`,
      "-subj",
      `/CN=${name}`,
      "-out",
      `${state}/server.csr`,
    ], dir);
    const validity = options.validity === undefined
      ? ["-days", String(options.days ?? SERVER_DAYS_DEFAULT)]
      : ["-startdate", options.validity.notBefore, "-enddate", options.validity.notAfter];
    await openssl([
      "ca",
      "-batch",
      "-notext",
      "-rand_serial",
      "-config",
      `${state}/ca.cnf`,
      "-cert",
      "ca.pem",
      "-keyfile",
      "ca.key",
      "-in",
      `${state}/server.csr`,
      "-extfile",
      `${state}/server.ext`,
      "-out",
      `${stem}.pem`,
      ...validity,
    ], dir);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
}

/** The least `openssl ca` needs: where its database is, and to take the CN as given. */
function caConfig(stateDir: string): string {
  return [
    "[ca]",
    "default_ca = herd_ca",
    "[herd_ca]",
    `database = ${stateDir}/index.txt`,
    `new_certs_dir = ${stateDir}`,
    `serial = ${stateDir}/serial`,
    "default_md = sha256",
    "policy = herd_policy",
    "unique_subject = no",
    "[herd_policy]",
    "commonName = supplied",
  ].join("\n") + "\n";
}

/** The `tls` keys of herd.json for certificates made in `dir`. */
export function tlsConfigKeys(dir: string, names: readonly string[]): Record<string, unknown> {
  return {
    tls: { ca: `${dir}/ca.pem` },
    servers: Object.fromEntries(
      names.map((
        name,
      ) => [name, { tls: { cert: `${dir}/${name}.pem`, key: `${dir}/${name}.key` } }]),
    ),
  };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { config: { type: "string" } },
  });
  if (positionals.length !== 1) {
    console.error("usage: deno task certs DIR [--config herd.json]");
    Deno.exit(2);
  }
  const dir = positionals[0];
  try {
    const config = await loadConfig(values.config);
    await Deno.mkdir(dir, { recursive: true });
    await makeCa(dir);
    for (const [name, server] of config.servers) {
      await makeServerCertificate({ dir, name, host: server.host });
    }
    console.log(`made ${dir}/ca.pem and a certificate per server; put these keys in herd.json:`);
    console.log(JSON.stringify(tlsConfigKeys(dir, [...config.servers.keys()]), null, 2));
  } catch (error) {
    console.error(`certs: ${(error as Error).message}`);
    Deno.exit(2);
  }
}
