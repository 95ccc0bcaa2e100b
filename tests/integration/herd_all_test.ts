/**
 * `deno task herd:all` as a newcomer runs it: five servers start with their output prefixed
 * by name, the start is quiet (a warning about the whole herd once, not once per server;
 * nothing about open files on an ordinary machine), and Ctrl-C stops them all with exit 0.
 */
import assert from "node:assert/strict";
import {
  freePorts,
  HERD_LINKS,
  HERD_NAMES,
  pollUntil,
  REPO_DIR,
  serverEnv,
} from "../support/herd_processes.ts";

Deno.test("herd:all starts five servers quietly, warns once for the herd, and stops on SIGINT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "herd-all-" });
  const ports = freePorts(HERD_NAMES.length);
  const config = {
    servers: Object.fromEntries(HERD_NAMES.map((name, index) => [name, { port: ports[index] }])),
    links: HERD_LINKS,
  };
  await Deno.writeTextFile(`${dir}/herd.json`, JSON.stringify(config));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "scripts/herd_all.ts",
      "--config",
      `${dir}/herd.json`,
      "--log-dir",
      `${dir}/logs`,
      "--places",
      "offline",
    ],
    cwd: REPO_DIR,
    env: serverEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const collected = Promise.all([
    child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (text) => void (stdout += text) }),
    ),
    child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (text) => void (stderr += text) }),
    ),
  ]);
  try {
    await pollUntil(
      () =>
        HERD_NAMES.every((name) => new RegExp(`^${name} +\\| ${name} listening`, "m").test(stdout)),
      { timeoutMs: 20_000, what: () => `five servers listening; stdout: ${stdout}` },
    );
    child.kill("SIGINT");
    const status = await child.status;
    await collected;
    assert.equal(status.code, 0, `herd:all exited ${status.code}; stderr: ${stderr}`);
    const warnings = stderr.split("\n").filter((line) => line.includes("warning"));
    assert.deepEqual(warnings, [
      "herd:all: warning: HERD_SECRET is not set: any process that reaches a port can pose as a peer",
    ]);
    for (const name of HERD_NAMES) {
      const log = await Deno.readTextFile(`${dir}/logs/${name}.log`);
      assert.match(log, /\[WRN\] HERD_SECRET is not set/, `${name} still logs the warning`);
      assert.match(log, /stopped/, `${name} stopped gracefully`);
    }
  } finally {
    // SIGINT first: herd:all passes it on to its servers, which a SIGKILL would orphan.
    const exited = child.status.then(() => true);
    for (const signal of ["SIGINT", "SIGKILL"] as const) {
      try {
        child.kill(signal);
      } catch {
        break; // already exited
      }
      const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, 5000, false));
      if (await Promise.race([exited, timeout])) break;
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
