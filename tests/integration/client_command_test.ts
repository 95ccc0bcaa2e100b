/**
 * `herd client` run as a real process against a real server (offline places): the one-shot
 * mode prints the server's reply bytes exactly, from arguments or from stdin; nothing
 * listening is exit 1 with one line; the interactive mode runs under a pseudo-terminal
 * (`script`) and shows the `whatsat` helper's reply as a list.
 */
import assert from "node:assert/strict";
import {
  freePorts,
  REPO_DIR,
  runHerdCli,
  serverEnv,
  startHerd,
} from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const FIXED_TIME = "1700000000.5";
const LOCATION = "+34.0689-118.4451";
/** An AT line for kiwi from Hill; group 1 is the skew. */
const KIWI_AT_LINE = /^AT Hill ([+-][0-9]+\.[0-9]{9}) kiwi \+34\.0689-118\.4451 ([0-9.]+)$/m;

function startHill() {
  return startHerd({ names: ["Hill"], links: [], args: ["--places", "offline"] });
}

/** The reply the server gives `line` on a connection of its own, byte for byte. */
async function directWhatsatReply(port: number, line: string): Promise<string> {
  await using client = await WireClient.connect(port);
  await client.write(`${line}\n`);
  return (await client.readWhatsatReply()).raw;
}

Deno.test("herd client HOST:PORT LINE... prints the replies exactly as sent, then exits 0", async () => {
  await using herd = await startHill();
  const run = await runHerdCli([
    "client",
    `127.0.0.1:${herd.port("Hill")}`,
    `IAMAT kiwi ${LOCATION} ${FIXED_TIME}`,
    "not a command",
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  const skew = run.stdout.match(KIWI_AT_LINE)?.[1];
  assert.ok(skew !== undefined, `no AT line in ${JSON.stringify(run.stdout)}`);
  // The receive time is now: the skew is now minus the fixed time, give or take a minute.
  const expectedSkewSeconds = Date.now() / 1000 - Number(FIXED_TIME);
  assert.ok(Math.abs(Number(skew) - expectedSkewSeconds) < 60, `skew ${skew}`);
  assert.equal(
    run.stdout,
    `AT Hill ${skew} kiwi ${LOCATION} ${FIXED_TIME}\n? not a command\n`,
  );
});

Deno.test("herd client sends the lines on stdin, a last one without its newline too", async () => {
  await using herd = await startHill();
  const port = herd.port("Hill");
  const run = await runHerdCli(["client", `127.0.0.1:${port}`], {
    stdin: `IAMAT kiwi ${LOCATION} ${FIXED_TIME}\nWHATSAT kiwi 10 2\r\nWHATSAT kiwi 5 1`,
  });
  assert.equal(run.code, 0, run.stderr);
  const atLine = run.stdout.match(KIWI_AT_LINE)?.[0];
  assert.ok(atLine !== undefined, `no AT line in ${JSON.stringify(run.stdout)}`);
  const whatsatTen = await directWhatsatReply(port, "WHATSAT kiwi 10 2");
  const whatsatFive = await directWhatsatReply(port, "WHATSAT kiwi 5 1");
  assert.ok(whatsatTen.startsWith(`${atLine}\n{`), whatsatTen);
  assert.equal(run.stdout, `${atLine}\n${whatsatTen}${whatsatFive}`);
});

Deno.test("herd client exits 1 with one line when nothing listens, 2 on a usage error", async () => {
  const [port] = freePorts(1);
  const runs = await Promise.all([
    runHerdCli(["client", `127.0.0.1:${port}`, "IAMAT kiwi +1+1 1"]),
    runHerdCli(["client"]),
    runHerdCli(["client", "127.0.0.1"]),
    runHerdCli(["client", "127.0.0.1:99999"]),
  ]);
  const [refused, ...usage] = runs;
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `herd: cannot connect to 127.0.0.1:${port}: connection refused\n`,
  );
  for (const run of usage) {
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /^herd: [^\n]*usage: herd client \[--tls-ca FILE\] HOST:PORT \[LINE \.\.\.\]\n$/,
    );
  }
});

const hasScript = await new Deno.Command("script", { args: ["--version"], stdout: "null" })
  .output().then((output) => output.success, () => false);

Deno.test({
  name: "herd client on a terminal fills in iamat, lists whatsat's places, and quits",
  ignore: !hasScript, // `script` (util-linux) gives the client a pseudo-terminal
  async fn() {
    await using herd = await startHill();
    const port = herd.port("Hill");
    const command = `'${Deno.execPath()}' run -A main.ts client 127.0.0.1:${port}`;
    const child = new Deno.Command("script", {
      args: ["-qec", command, "/dev/null"],
      cwd: REPO_DIR,
      env: serverEnv(),
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const typed = [
      "iamat kiwi 34.0689 -118.4451",
      "whatsat kiwi 10 2",
      "whatsat kiwi 10 99",
      "hello",
      "quit",
    ];
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(typed.map((line) => `${line}\n`).join("")));
    await writer.close();
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const output = await child.output();
    clearTimeout(timer);
    // A terminal ends lines in CR LF.
    const shown = new TextDecoder().decode(output.stdout).replaceAll("\r\n", "\n");
    assert.equal(output.code, 0, shown);
    const at = shown.match(KIWI_AT_LINE);
    assert.ok(at !== null, shown);
    // The helper stamped the IAMAT with the current time.
    assert.ok(Math.abs(Number(at[2]) - Date.now() / 1000) < 60, at[2]);
    assert.ok(
      shown.includes(
        `${at[0]}\n2 places near ${LOCATION}:\n 1. Bel Air — 1.64 km — CA, US\n` +
          " 2. Westwood — 1.95 km — CA, US\n",
      ),
      shown,
    );
    assert.match(shown, /bound out of range: whatsat ID RADIUS_KM BOUND/);
    assert.match(shown, /^\? hello$/m);
  },
});
