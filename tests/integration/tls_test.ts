/**
 * TLS for every link (contract §7), with real processes and certificates made by the same
 * code as `deno task certs`: a TLS herd links up, floods and catches up a restarted server;
 * clients speak IAMAT/WHATSAT over TLS (Deno's TLS and `openssl s_client`); a neighbour
 * whose certificate is from another CA, names another host or has expired gets no link,
 * logged with the reason; an accepting server takes `PEER <name>` only with a valid
 * certificate naming `<name>`; plain text on the TLS port is refused without a crash; bad
 * TLS files stop the start with one line and exit 2; no key appears in any log or output;
 * `herd client --tls-ca` speaks TLS; monitors serve HTTPS, which `herd status` and the live
 * page's gathering use.
 */
import assert from "node:assert/strict";
import { makeCa, makeServerCertificate } from "../../scripts/certs.ts";
import { PEER_PROTOCOL_VERSION } from "../../lib/peer_protocol.ts";
import {
  type Herd,
  type HerdOptions,
  pollUntil,
  runHerdCli,
  startHerd,
} from "../support/herd_processes.ts";
import { readHeldAtLines, WireClient } from "../support/wire_client.ts";

const LOCATION = "+34.068930-118.445127";
const PROPAGATION_TIMEOUT_MS = 15_000;
/** Room for a few dial attempts (backoff is capped at 1.6 s) on a loaded two-core machine. */
const REFUSAL_TIMEOUT_MS = 15_000;
const HOST = "127.0.0.1";
/** A loopback address no test server is dialled at: a certificate for it names another host. */
const OTHER_HOST = "127.0.0.2";
/** A validity window wholly in the past, as openssl writes dates. */
const EXPIRED = { notBefore: "200101000000Z", notAfter: "200102000000Z" };
const NAMES = ["Jaquez", "Hill", "Smith", "Singleton", "Campbell"] as const;

/**
 * The certificates every test uses, made once: the herd's CA and one per server; another CA
 * and a Campbell certificate from it; and, from the herd's CA, Campbell certificates for
 * another host and expired.
 */
const certsDir = await Deno.makeTempDir({ prefix: "herd_tls_test_" });
const otherCaDir = `${certsDir}/other`;
await Deno.mkdir(otherCaDir);
await makeCa(certsDir);
await makeCa(otherCaDir, "another CA");
for (const name of NAMES) await makeServerCertificate({ dir: certsDir, name, host: HOST });
await makeServerCertificate({ dir: otherCaDir, name: "Campbell", host: HOST });
await makeServerCertificate({
  dir: certsDir,
  name: "Campbell",
  host: OTHER_HOST,
  fileStem: "Campbell-other-host",
});
await makeServerCertificate({
  dir: certsDir,
  name: "Campbell",
  host: HOST,
  validity: EXPIRED,
  fileStem: "Campbell-expired",
});
globalThis.addEventListener("unload", () => Deno.removeSync(certsDir, { recursive: true }));

const caCert = await Deno.readTextFile(`${certsDir}/ca.pem`);

/** The `tls` of one server's herd.json entry, for the certificate `stem` in `dir`. */
function serverTls(stem: string, dir = certsDir) {
  return { tls: { cert: `${dir}/${stem}.pem`, key: `${dir}/${stem}.key` } };
}

/** The herd options that turn TLS on for `names`, each with its own certificate. */
function tlsHerd(names: readonly string[]): Partial<HerdOptions> {
  return {
    names,
    extraConfig: { tls: { ca: `${certsDir}/ca.pem` } },
    serverFields: Object.fromEntries(names.map((name) => [name, serverTls(name)])),
    args: ["--places", "offline"],
  };
}

async function connectTls(herd: Herd, server: string): Promise<WireClient> {
  return await WireClient.connectTls(herd.port(server), { caCert });
}

async function iamat(herd: Herd, server: string, clientId: string, time: number) {
  await using client = await connectTls(herd, server);
  await client.write(`IAMAT ${clientId} ${LOCATION} ${time}\n`);
  return await client.readAtReply();
}

async function waitHeldEverywhere(herd: Herd, servers: readonly string[], clientId: string) {
  const missing = new Set(servers);
  await pollUntil(async () => {
    for (const server of [...missing]) {
      await using client = await connectTls(herd, server);
      const [held] = await readHeldAtLines(client, [clientId]);
      if (held !== undefined) missing.delete(server);
    }
    return missing.size === 0;
  }, {
    timeoutMs: PROPAGATION_TIMEOUT_MS,
    what: () => `${clientId} at ${[...missing].join(", ")}`,
  });
}

/** The base64 body lines of every private key made here: none may appear anywhere. */
async function keyLines(): Promise<string[]> {
  const lines: string[] = [];
  for (const dir of [certsDir, otherCaDir]) {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.name.endsWith(".key")) continue;
      const text = await Deno.readTextFile(`${dir}/${entry.name}`);
      lines.push(...text.split("\n").filter((line) => line !== "" && !line.startsWith("-----")));
    }
  }
  return lines;
}

async function assertNoKeyIn(herd: Herd) {
  const secrets = await keyLines();
  for (const name of herd.names) {
    const seen = [await herd.readLog(name)];
    try {
      seen.push(herd.process(name).stdout, herd.process(name).stderr);
    } catch {
      // Not running now: its log is what remains of it.
    }
    for (const text of seen) {
      for (const line of secrets) assert.ok(!text.includes(line), `${name} shows a key line`);
    }
  }
}

/** Waits until `server`'s log has a line matching `pattern`; returns it. */
async function waitLogLine(herd: Herd, server: string, pattern: RegExp): Promise<string> {
  return await pollUntil(async () => {
    return (await herd.readLog(server)).split("\n").find((line) => pattern.test(line));
  }, { timeoutMs: REFUSAL_TIMEOUT_MS, what: `${server} to log ${pattern}` });
}

Deno.test("a TLS herd of five links up, floods an IAMAT to all, and catches up a restarted server", async () => {
  await using herd = await startHerd(tlsHerd(NAMES));
  await iamat(herd, "Hill", "tls-flood", 1700000000);
  await waitHeldEverywhere(herd, NAMES, "tls-flood");

  await herd.kill("Campbell");
  await iamat(herd, "Jaquez", "tls-missed", 1700000001);
  await waitHeldEverywhere(herd, ["Jaquez", "Hill", "Smith", "Singleton"], "tls-missed");
  await herd.start("Campbell");
  await waitHeldEverywhere(herd, ["Campbell"], "tls-missed");

  const log = await herd.readLog("Smith");
  assert.match(log, /link to Campbell up/);
  assert.doesNotMatch(log, /authentication of/);
  assert.doesNotMatch(await herd.readLog("Hill"), /HERD_SECRET is not set/);
  await assertNoKeyIn(herd);
});

Deno.test("with TLS and HERD_SECRET both, the proofs run too and the herd links", async () => {
  const secret = `herd-tls-secret-${crypto.randomUUID()}`;
  await using herd = await startHerd({
    ...tlsHerd(["Hill", "Smith"]),
    env: { HERD_SECRET: secret },
  });
  await iamat(herd, "Hill", "tls-and-secret", 1700000000);
  await waitHeldEverywhere(herd, ["Smith"], "tls-and-secret");
  for (const name of herd.names) {
    const log = await herd.readLog(name);
    assert.doesNotMatch(log, /authentication of/);
    assert.ok(!log.includes(secret), `${name} logs the secret`);
  }
});

Deno.test("clients speak IAMAT and WHATSAT over TLS, with Deno and with openssl s_client", async () => {
  await using herd = await startHerd(tlsHerd(["Hill", "Smith"]));
  const at = await iamat(herd, "Hill", "tls-client", 1700000000);
  assert.match(at, /^AT Hill [+-][0-9.]+ tls-client \+34\.068930-118\.445127 1700000000$/);
  await waitHeldEverywhere(herd, ["Smith"], "tls-client");

  // A second TLS implementation: OpenSSL's client, verifying the server against the CA.
  // `-quiet` keeps it connected after its input ends, so it is stopped (by its own handle)
  // once the reply is in, or at the deadline.
  const openssl = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-quiet",
      "-verify_return_error",
      "-CAfile",
      `${certsDir}/ca.pem`,
      "-verify_ip",
      HOST,
      "-connect",
      `${HOST}:${herd.port("Smith")}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stop = () => {
    try {
      openssl.kill("SIGTERM");
    } catch {
      // Already exited.
    }
  };
  const timer = setTimeout(stop, PROPAGATION_TIMEOUT_MS);
  const writer = openssl.stdin.getWriter();
  await writer.write(new TextEncoder().encode("WHATSAT tls-client 10 1\n"));
  let reply = "";
  for await (const text of openssl.stdout.pipeThrough(new TextDecoderStream())) {
    reply += text;
    if (reply.includes("\n\n")) break; // leaving the loop cancels the stream
  }
  stop();
  clearTimeout(timer);
  await writer.close().catch(() => {});
  await openssl.status;
  assert.match(reply, /^AT Hill [+-][0-9.]+ tls-client \+34\.068930-118\.445127 1700000000\n\{/);
  assert.ok(reply.endsWith("\n\n"), `reply not ended: ${JSON.stringify(reply)}`);
});

Deno.test("herd client --tls-ca speaks to a TLS server, and refuses one its CA did not sign", async () => {
  await using herd = await startHerd(tlsHerd(["Hill"]));
  const address = `${HOST}:${herd.port("Hill")}`;
  const run = await runHerdCli([
    "client",
    "--tls-ca",
    `${certsDir}/ca.pem`,
    address,
    `IAMAT cli-tls ${LOCATION} 1700000000`,
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^AT Hill [+-][0-9.]+ cli-tls \+34\.068930-118\.445127 1700000000\n$/);
  const refused = await runHerdCli(["client", "--tls-ca", `${otherCaDir}/ca.pem`, address, "x"]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, /cannot connect to .*: .*(UnknownIssuer|certificate)/i);
});

Deno.test("plain text to a TLS port is refused without a crash, and the server serves on", async () => {
  await using herd = await startHerd(tlsHerd(["Hill"]));
  for (let attempt = 0; attempt < 3; attempt += 1) {
    await using plain = await WireClient.connect(herd.port("Hill"));
    await plain.write(`IAMAT plain ${LOCATION} 1700000000\n`);
    const answer = await plain.readUntilEof().catch(() => "");
    assert.doesNotMatch(answer, /AT Hill/);
  }
  await waitLogLine(herd, "Hill", /TLS handshake with \S+ failed: .*wrong version number/);
  assert.equal(herd.process("Hill").exitStatus, undefined, "Hill must still run");
  assert.match(await iamat(herd, "Hill", "after-plain", 1700000000), /^AT Hill /);
});

/** A neighbour's hello over TLS presenting `stem`'s certificate (none when undefined). */
async function helloAs(herd: Herd, server: string, stem: string | undefined, dir = certsDir) {
  const credentials = stem === undefined ? {} : {
    cert: await Deno.readTextFile(`${dir}/${stem}.pem`),
    key: await Deno.readTextFile(`${dir}/${stem}.key`),
  };
  await using client = await WireClient.connectTls(herd.port(server), {
    caCert,
    ...credentials,
  });
  await client.write(`PEER Campbell ${PEER_PROTOCOL_VERSION}\n`);
  const answer = await client.readUntilEof().catch(() => "");
  assert.doesNotMatch(answer, /PEER Smith/, "the acceptor answered a refused hello");
}

Deno.test("an accepting server takes PEER <name> only with a valid certificate naming <name>", async () => {
  await using herd = await startHerd({
    ...tlsHerd(["Smith", "Campbell"]),
    start: ["Smith"],
  });
  const refusals: Array<[string | undefined, string | undefined, RegExp]> = [
    [undefined, undefined, /failed \(acceptor side\): TLS no certificate/],
    ["Hill", undefined, /failed \(acceptor side\): its certificate names Hill, not Campbell/],
    ["Campbell", otherCaDir, /failed \(acceptor side\): TLS certificate not valid for the ca/],
    [
      "Campbell-expired",
      undefined,
      /failed \(acceptor side\): TLS certificate expired \(valid until Jan {2}2 00:00:00 2020/,
    ],
  ];
  for (const [stem, dir, says] of refusals) {
    await helloAs(herd, "Smith", stem, dir);
    await waitLogLine(herd, "Smith", says);
  }
  assert.match(await herd.readLog("Smith"), /WRN\] authentication of Campbell at /);
  // The real Campbell, with its own certificate, links.
  await herd.start("Campbell");
  await waitLogLine(herd, "Smith", /link to Campbell up/);
  await assertNoKeyIn(herd);
});

/**
 * Smith dials a Campbell whose certificate is `stem` in `dir` (and which trusts `caDir`'s
 * CA, and dials nobody, so only Smith's check is tried): Smith logs the refusal and no link
 * comes up.
 */
async function assertDialRefused(
  options: { stem: string; dir?: string; caDir?: string; says: RegExp },
) {
  const { stem, dir = certsDir, caDir = certsDir, says } = options;
  await using herd = await startHerd({
    ...tlsHerd(["Smith", "Campbell"]),
    serverFields: { Smith: serverTls("Smith"), Campbell: serverTls(stem, dir) },
    configSeenBy: (name, config) =>
      name === "Smith" ? config : { ...config, links: [], tls: { ca: `${caDir}/ca.pem` } },
  });
  await waitLogLine(herd, "Smith", new RegExp(`link to Campbell down \\(.*${says.source}`));
  const log = await herd.readLog("Smith");
  assert.doesNotMatch(log, /link to Campbell up/);
  await assertNoKeyIn(herd);
}

Deno.test("a neighbour with a certificate from another CA gets no link, logged", async () => {
  await assertDialRefused({
    stem: "Campbell",
    dir: otherCaDir,
    caDir: otherCaDir,
    says: /invalid peer certificate: UnknownIssuer/,
  });
});

Deno.test("a neighbour whose certificate names another host gets no link, logged", async () => {
  await assertDialRefused({
    stem: "Campbell-other-host",
    says: /certificate not valid for name "127\.0\.0\.1"/,
  });
});

Deno.test("a neighbour with an expired certificate gets no link, logged", async () => {
  await assertDialRefused({
    stem: "Campbell-expired",
    says: /invalid peer certificate: certificate expired/,
  });
});

Deno.test("with tls, monitors serve HTTPS; herd status and the live page ask them over it", async () => {
  await using herd = await startHerd({ ...tlsHerd(["Hill", "Smith"]), monitors: true });
  const monitor = herd.config.servers.Hill.monitor!;
  const client = Deno.createHttpClient({ caCerts: [caCert] });
  try {
    await pollUntil(async () => {
      const response = await fetch(`https://${monitor}/healthz?links=all`, { client });
      await response.body?.cancel();
      return response.ok;
    }, { timeoutMs: PROPAGATION_TIMEOUT_MS, what: "Hill's monitor to say every link is up" });
    await assert.rejects(fetch(`http://${monitor}/healthz`), "plain HTTP must not be answered");
    // The live page's gathering asks Smith's monitor over HTTPS too: Smith shows as up.
    await pollUntil(async () => {
      const response = await fetch(`https://${monitor}/events`, { client });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      // The stream may open with a comment; the first `data:` event is a snapshot.
      const firstData = /(?:^|\n)data: ([^\n]*)\n\n/;
      let stream = "";
      while (!firstData.test(stream)) {
        const { value, done } = await reader.read();
        if (done) break;
        stream += value;
      }
      await reader.cancel();
      const snapshot = JSON.parse(firstData.exec(stream)![1]);
      return snapshot.servers.every((server: { up: boolean }) => server.up);
    }, { timeoutMs: PROPAGATION_TIMEOUT_MS, what: "Hill's live page to see Smith up" });
  } finally {
    client.close();
  }
  const run = await runHerdCli(["status", "--config", herd.configPath]);
  assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /Hill/);
  assert.match(run.stdout, /Smith/);
});

/** Starts Hill with `tls` replaced, expects exit 2 and one stderr line matching `says`. */
async function assertStartRefused(tls: Record<string, unknown>, says: RegExp) {
  await using herd = await startHerd({
    ...tlsHerd(["Hill"]),
    serverFields: { Hill: { tls } },
    start: [],
  });
  const status = await herd.spawn("Hill").status();
  const stderr = herd.process("Hill").stderr;
  assert.equal(status.code, 2, stderr);
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.match(stderr, says);
  for (const line of await keyLines()) assert.ok(!stderr.includes(line), "stderr shows a key");
}

Deno.test("bad TLS files stop the start with one line and exit 2", async () => {
  await assertStartRefused(
    { cert: `${certsDir}/missing.pem`, key: `${certsDir}/Hill.key` },
    /cannot read cert .*missing\.pem: no such file/,
  );
  await assertStartRefused(
    { cert: `${certsDir}/Hill.pem`, key: `${certsDir}/Smith.key` },
    /key .*Smith\.key does not match cert .*Hill\.pem/,
  );
  await assertStartRefused(
    { cert: `${certsDir}/Hill.key`, key: `${certsDir}/Hill.key` },
    /cert .*Hill\.key is not a PEM certificate/,
  );
  await assertStartRefused(
    { cert: `${otherCaDir}/Campbell.pem`, key: `${otherCaDir}/Campbell.key` },
    /is not signed by ca/,
  );
  await assertStartRefused(
    { cert: `${certsDir}/Hill.pem`, key: `${certsDir}/ca.pem` },
    /key .*ca\.pem is not a PEM private key/,
  );
});
