/**
 * What TLS costs: IAMAT throughput of one server whose port speaks TLS (herd.json `tls`,
 * certificates made in the run's temporary directory by scripts/certs.ts) against the same
 * server without TLS, in one run. The generator speaks TLS itself (herdload built with
 * OpenSSL, `--tls-ca`: it verifies the server's certificate against the run's CA), with
 * every handshake made before the measured window: this is the cost of encrypted lines, not
 * of handshakes. Rows alternate — plain, TLS, plain, TLS — as in the monitor section, and
 * the spread between rows of one kind is the noise.
 */
import { makeCa, makeServerCertificate, tlsConfigKeys } from "../scripts/certs.ts";
import { type Context, SINGLE_NAME } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import { type HerdServer, startServer, waitPlacesReady } from "./herd.ts";
import { freePorts } from "./processes.ts";
import { closedLoop } from "./scenario_throughput.ts";

/** The closed-loop shape of every row: the throughput scenario's main row. */
const CONNS = 64;
/** Rows of each kind; alternating, so that each kind has a spread to show the noise. */
const ROUNDS = 2;
const PLACES_READY_TIMEOUT_MS = 30_000;

export interface TlsCostRow {
  tls: boolean;
  load: LoadResult;
}

export interface TlsCostResults {
  conns: number;
  rows: TlsCostRow[];
  /** Why no row was measured (a generator built without OpenSSL), if none was. */
  unavailable?: string;
}

/** Writes one server's config, plain or with `tls` from the certificates in `certDir`. */
async function writeSingleConfig(
  context: Context,
  file: string,
  port: number,
  certDir: string | undefined,
): Promise<string> {
  const server = { port, host: "127.0.0.1" };
  const config = certDir === undefined
    ? { servers: { [SINGLE_NAME]: server }, links: [] }
    : (() => {
      const keys = tlsConfigKeys(certDir, [SINGLE_NAME]) as {
        tls: unknown;
        servers: Record<string, { tls: unknown }>;
      };
      return {
        tls: keys.tls,
        servers: { [SINGLE_NAME]: { ...server, tls: keys.servers[SINGLE_NAME].tls } },
        links: [],
      };
    })();
  const path = `${context.dirs.tmpDir}/${file}`;
  await Deno.writeTextFile(path, JSON.stringify(config));
  return path;
}

/** {@link waitPlacesReady} over TLS: a WHATSAT answered with a Places body. */
async function waitPlacesReadyTls(port: number, caFile: string): Promise<void> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [await Deno.readTextFile(caFile)],
  });
  const timer = setTimeout(() => conn.close(), PLACES_READY_TIMEOUT_MS);
  try {
    const id = `bench-ready-${port}`;
    const time = (Date.now() / 1000).toFixed(9);
    const lines = `IAMAT ${id} +48.856600+002.352200 ${time}\nWHATSAT ${id} 1 1\n`;
    await conn.write(new TextEncoder().encode(lines));
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(64 * 1024);
    let text = "";
    while (!/\n\n/.test(text.slice(text.indexOf("\n") + 1))) {
      const n = await conn.read(buffer);
      if (n === null) {
        throw new Error(`TLS server on port ${port} closed before its data set loaded`);
      }
      text += decoder.decode(buffer.subarray(0, n));
    }
    if (!text.includes('"status":"OK"') && !text.includes('"status":"ZERO_RESULTS"')) {
      throw new Error(`the offline data set did not load on port ${port}: ${text.slice(0, 200)}`);
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by the timer
    }
  }
}

export async function runTlsCost(context: Context): Promise<TlsCostResults> {
  if (!(await context.generator.features()).tls) {
    const unavailable = "herdload was built without TLS (OpenSSL headers, e.g. Debian's " +
      "libssl-dev, not found by cc): no TLS row";
    context.log(`tls: ${unavailable}`);
    return { conns: CONNS, rows: [], unavailable };
  }
  const certDir = `${context.dirs.tmpDir}/certs`;
  await Deno.mkdir(certDir, { recursive: true });
  await makeCa(certDir);
  await makeServerCertificate({ dir: certDir, name: SINGLE_NAME, host: "127.0.0.1" });
  const caFile = `${certDir}/ca.pem`;
  const [plainPort, tlsPort] = freePorts(2);
  const [plainConfig, tlsConfig] = await Promise.all([
    writeSingleConfig(context, "tls-off.json", plainPort, undefined),
    writeSingleConfig(context, "tls-on.json", tlsPort, certDir),
  ]);
  const start = (port: number, config: string) =>
    startServer(context.processes, { name: SINGLE_NAME, port, config, core: context.serverCore });
  const servers: HerdServer[] = [];
  try {
    servers.push(await start(plainPort, plainConfig));
    servers.push(await start(tlsPort, tlsConfig));
    await Promise.all([waitPlacesReady(plainPort), waitPlacesReadyTls(tlsPort, caFile)]);
    const rows: TlsCostRow[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const tls of [false, true]) {
        context.log(`tls: iamat c=${CONNS}, ${tls ? "TLS" : "plain TCP"}`);
        const load = await closedLoop(context, tls ? tlsPort : plainPort, {
          conns: CONNS,
          depth: 1,
          ns: `${tls ? "s" : "p"}${round}`, // two characters: the generator's id prefix
          tlsCa: tls ? caFile : undefined,
        });
        rows.push({ tls, load });
      }
    }
    return { conns: CONNS, rows };
  } finally {
    await Promise.all(servers.map((server) => server.process.stop()));
  }
}
