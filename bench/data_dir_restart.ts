/**
 * A restart with many clients in the data dir: writes `clients` records (16-byte ids, ~80-byte
 * AT lines) to a fresh data dir, starts one server on it (pinned to core 0 where there are
 * two), and reports the time from spawn to the first AT reply to an IAMAT, the server's own
 * load line (from its log) and its RSS then.
 *
 *     deno run -A bench/data_dir_restart.ts [clients] [port]
 */
import { formatRecord } from "../lib/update_log.ts";
import { MAIN } from "./herd.ts";
import { SERVER_RUNTIME_FLAGS } from "../scripts/permissions.ts";
import { delay, Processes, statusKb } from "./processes.ts";

const CLIENTS = Number(Deno.args[0] ?? 1_000_000);
const PORT = Number(Deno.args[1] ?? 24501);
const RECORDS_PER_WRITE = 10_000;
const CONNECT_RETRY_MS = 10;
const ANSWER_TIMEOUT_MS = 60_000;
/** Looks at the log for the load line, CONNECT_RETRY_MS apart (2 s in all). */
const LOG_LINE_ATTEMPTS_MAX = 200;

/** Client `index`'s AT line: distinct ids, times and places. */
function atLine(index: number): string {
  const id = `mc${String(index).padStart(14, "0")}`;
  const latitude = (index % 170) - 85 + (index % 997) / 1000;
  const longitude = (index % 350) - 175 + (index % 991) / 1000;
  const nanos = String(index % 1e9).padStart(9, "0");
  return `AT Hill +0.${nanos} ${id} ${signed(latitude)}${signed(longitude)} 1764900000.${nanos}`;
}

function signed(degrees: number): string {
  return (degrees < 0 ? "" : "+") + degrees.toFixed(6);
}

async function writeDataDir(dir: string): Promise<void> {
  const file = await Deno.open(`${dir}/Hill.updates`, { write: true, create: true });
  const encoder = new TextEncoder();
  let chunk = ["herd-updates 2\n"];
  for (let index = 0; index < CLIENTS; index++) {
    chunk.push(formatRecord(atLine(index)));
    if (chunk.length === RECORDS_PER_WRITE || index === CLIENTS - 1) {
      await file.write(encoder.encode(chunk.join("")));
      chunk = [];
    }
  }
  // On disk before the server starts: its first sync must not pay for writing the file.
  await file.syncData();
  file.close();
}

/** Connects until the server takes the connection, sends an IAMAT, and waits for its AT. */
async function firstAnswer(): Promise<void> {
  const deadlineMs = performance.now() + ANSWER_TIMEOUT_MS;
  while (performance.now() < deadlineMs) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: PORT });
      await conn.write(new TextEncoder().encode("IAMAT probe +1+1 1\n"));
      const reply = new Uint8Array(4096);
      const read = await conn.read(reply);
      conn.close();
      if (read !== null && new TextDecoder().decode(reply.subarray(0, read)).startsWith("AT ")) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await delay(CONNECT_RETRY_MS);
  }
  throw new Error(`no AT within ${ANSWER_TIMEOUT_MS} ms`);
}

/** The server's line saying what it loaded; logs are written in batches, so it may come late. */
async function loadLine(logPath: string): Promise<string> {
  for (let attempt = 0; attempt < LOG_LINE_ATTEMPTS_MAX; attempt++) {
    const log = await Deno.readTextFile(logPath).catch(() => "");
    const line = log.split("\n").find((line) => line.includes(" clients from "));
    if (line !== undefined) return line;
    await delay(CONNECT_RETRY_MS);
  }
  return "no load line";
}

const dir = await Deno.makeTempDir({ prefix: "herd-restart-" });
const processes = new Processes();
try {
  await writeDataDir(dir);
  const config = `${dir}/herd.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({ servers: { Hill: { port: PORT, host: "127.0.0.1" } }, links: [] }),
  );
  const startedMs = performance.now();
  const server = processes.spawn({
    label: "herd Hill",
    command: Deno.execPath(),
    args: [
      ...["run", "-A", ...SERVER_RUNTIME_FLAGS, MAIN, "--name", "Hill", "--config", config],
      ...["--data-dir", dir, "--log-dir", dir, "--monitor", "off"],
    ],
    core: navigator.hardwareConcurrency > 1 ? "0" : undefined,
  });
  await firstAnswer();
  const answeredMs = performance.now() - startedMs;
  const rssKb = statusKb(server.pid, "VmRSS") ?? 0;
  const loaded = await loadLine(`${dir}/Hill.log`);
  console.log(
    `${CLIENTS} clients: first answer ${Math.round(answeredMs)} ms from spawn, RSS ${
      Math.round(rssKb / 1024)
    } MB; ${loaded.replace(/^.*data dir \S+: /, "")}`,
  );
} finally {
  await processes.stopAll();
  await Deno.remove(dir, { recursive: true });
}
