/**
 * `deno task herd:all`: starts every server of the config as its own process, prefixes each
 * line they print with the server's name, and on Ctrl-C (or SIGTERM) passes the signal on
 * once to each and waits for them. Arguments are passed to every server (e.g. --config).
 * Warnings about the whole herd (no HERD_SECRET, links that do not connect every server)
 * are printed here once; each server only logs them.
 */
import { SERVER_PERMISSIONS, SERVER_RUNTIME_FLAGS } from "./permissions.ts";
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/config.ts";
import { peerSecretWarnings } from "../lib/peer_auth.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  strict: false,
  options: { config: { type: "string" } },
});
const config = await loadConfig(values.config as string | undefined).catch((error) => {
  console.error(`herd:all: ${error.message}`);
  Deno.exit(2);
});

const secret = Deno.env.get("HERD_SECRET");
// An empty secret is refused by every server, which says so itself.
const herdWideWarnings = secret === ""
  ? []
  : [...config.warnings, ...peerSecretWarnings(secret, { tls: config.tls !== undefined })];
for (const warning of herdWideWarnings) console.error(`herd:all: warning: ${warning}`);

const children = [...config.servers.keys()].map((name) => {
  // Detached: a terminal's Ctrl-C reaches only this process, which passes it on exactly once
  // (a server treats a second signal as "exit now").
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVER_PERMISSIONS,
      ...SERVER_RUNTIME_FLAGS,
      MAIN,
      "--name",
      name,
      ...Deno.args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { HERD_LAUNCHED_BY: "herd:all" },
    detached: true,
  }).spawn();
  const width = Math.max(...[...config.servers.keys()].map((server) => server.length));
  const prefix = `${name.padEnd(width)} | `;
  const copied = Promise.all([
    prefixLines(child.stdout, prefix, Deno.stdout),
    prefixLines(child.stderr, prefix, Deno.stderr),
  ]);
  return { name, child, done: Promise.all([child.status, copied]).then(([status]) => status) };
});

let signalled = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    if (signalled) return;
    signalled = true;
    for (const { child } of children) {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
    }
  });
}

const statuses = await Promise.all(children.map(({ done }) => done));
children.forEach(({ name }, index) => {
  if (!statuses[index].success) {
    console.error(`herd:all: ${name} exited with code ${statuses[index].code}`);
  }
});
Deno.exit(statuses.every((status) => status.success) ? 0 : 1);

async function prefixLines(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  sink: { write(bytes: Uint8Array): Promise<number> },
): Promise<void> {
  const encoder = new TextEncoder();
  let partial = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (partial + text).split("\n");
    partial = lines.pop()!;
    if (lines.length > 0) {
      await writeAll(sink, encoder.encode(lines.map((line) => prefix + line + "\n").join("")));
    }
  }
  if (partial !== "") await writeAll(sink, encoder.encode(prefix + partial + "\n"));
}

async function writeAll(sink: { write(bytes: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let offset = 0;
  while (offset < bytes.length) offset += await sink.write(bytes.subarray(offset));
}
