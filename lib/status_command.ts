/**
 * `herd status [--config FILE] [--json]`: loads the config, asks every server's monitor for
 * `GET /status` at once, prints the table (or JSON) and returns the exit code — 0 when every
 * server and link is up, 1 otherwise. Owns the HTTP side (timeout, token, body limit, the
 * short reason for a failure); how the answers are judged and shown is lib/status_table.ts's.
 */
import { parseArgs } from "node:util";
import { UsageError } from "./cli.ts";
import { ConfigError, formatAddress, loadConfig, type ServerAddress } from "./config.ts";
import { monitorClient, monitorStatusUrl } from "./monitor_client.ts";
import { networkErrorReason } from "./errors.ts";
import type { ServerStatus } from "./server_status.ts";
import {
  formatStatusTable,
  isHerdUp,
  type MonitorAnswer,
  type ServerReport,
  statusJson,
} from "./status_table.ts";

export const STATUS_USAGE = "usage: herd status [--config FILE] [--json]";

/** How long one monitor may take to answer; all are asked at once, so this bounds the run. */
export const MONITOR_TIMEOUT_MS_DEFAULT = 2000;
/** The largest status answer read: a status is a few KiB; past this it is not a herd's. */
const STATUS_BODY_BYTES_MAX = 1024 * 1024;

export interface StatusCommandOptions {
  /** Default the global fetch. */
  fetch?: typeof fetch;
  /** Sent as `Authorization: Bearer TOKEN` when set (HERD_MONITOR_TOKEN). */
  token?: string;
  timeoutMs?: number;
  /** With TLS, the monitors' CA (PEM); default read from the config's `tls`. */
  monitorCa?: string;
  /** Where the table or JSON goes; default stdout. */
  print?: (text: string) => Promise<void>;
}

/**
 * Runs `herd status` with the arguments after `status`; returns the exit code. Throws
 * UsageError or ConfigError (exit 2) for arguments or a config it cannot use.
 */
export async function runStatusCommand(
  args: string[],
  options: StatusCommandOptions = {},
): Promise<number> {
  const { configPath, json } = parseStatusArgs(args);
  const config = await loadConfig(configPath);
  const monitorCa = options.monitorCa ??
    (config.tls && await readCaFile(config.tls.caPath));
  const reports = await Promise.all(
    [...config.servers].map(async ([name, server]): Promise<ServerReport> => ({
      name,
      address: formatAddress(server),
      monitor: server.monitor === undefined ? undefined : formatAddress(server.monitor),
      neighbours: config.neighbours.get(name) ?? [],
      answer: server.monitor === undefined
        ? { kind: "no-monitor" }
        : await askMonitor(server.monitor, { ...options, monitorCa }),
    })),
  );
  const print = options.print ?? printToStdout;
  await print(
    json ? `${JSON.stringify(statusJson(reports), null, 2)}\n` : formatStatusTable(reports),
  );
  return isHerdUp(reports) ? 0 : 1;
}

async function printToStdout(text: string): Promise<void> {
  const writer = Deno.stdout.writable.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
  } finally {
    writer.releaseLock();
  }
}

function parseStatusArgs(args: string[]): { configPath: string | undefined; json: boolean } {
  try {
    const { values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { config: { type: "string" }, json: { type: "boolean", default: false } },
    });
    return { configPath: values.config, json: values.json };
  } catch (error) {
    // node:util's messages are one line but may end in advice meant for node scripts.
    throw new UsageError(`${(error as Error).message.split(". ")[0]}; ${STATUS_USAGE}`);
  }
}

/**
 * Asks one monitor for `GET /status`; never rejects — every failure is a `failed` answer
 * with a short reason (no answer in time, connection refused, 401, not a herd status).
 */
export async function askMonitor(
  monitor: ServerAddress,
  options: Pick<StatusCommandOptions, "fetch" | "token" | "timeoutMs" | "monitorCa"> = {},
): Promise<MonitorAnswer> {
  const monitors = monitorClient(options.monitorCa, options.fetch);
  const timeoutMs = options.timeoutMs ?? MONITOR_TIMEOUT_MS_DEFAULT;
  const headers: Record<string, string> = options.token === undefined
    ? {}
    : { authorization: `Bearer ${options.token}` };
  try {
    const response = await monitors.fetch(
      monitorStatusUrl(monitors, monitor),
      { headers, signal: AbortSignal.timeout(timeoutMs) },
    );
    if (!response.ok) {
      await response.body?.cancel();
      return { kind: "failed", reason: httpFailureReason(response.status, options.token) };
    }
    const status = readServerStatus(await readBodyText(response, STATUS_BODY_BYTES_MAX));
    if (status === undefined) return { kind: "failed", reason: "answer is not a herd status" };
    return { kind: "status", status };
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      return { kind: "failed", reason: `no answer within ${timeoutMs} ms` };
    }
    return { kind: "failed", reason: networkErrorReason(error) };
  }
}

/** The herd's CA for HTTPS to the monitors; a file it cannot read is a ConfigError (exit 2). */
async function readCaFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`tls: cannot read ca ${path}: ${(error as Error).name}`);
  }
}

function httpFailureReason(httpStatus: number, token: string | undefined): string {
  if (httpStatus !== 401) return `HTTP ${httpStatus}`;
  return token === undefined ? "401: set HERD_MONITOR_TOKEN" : "401: HERD_MONITOR_TOKEN refused";
}

/** The body as text; throws once it passes `bytesMax`, so a runaway answer cannot fill memory. */
async function readBodyText(response: Response, bytesMax: number): Promise<string> {
  if (response.body === null) return "";
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for await (const chunk of response.body) {
    bytes += chunk.length;
    if (bytes > bytesMax) throw new Error(`answer over ${bytesMax} bytes`);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * The text as a ServerStatus when it has the fields `herd status` reads; undefined when it is
 * not JSON or not a herd's status (some other HTTP server on the port).
 */
export function readServerStatus(text: string): ServerStatus | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const status = json as Partial<ServerStatus> | null;
  const looksRight = typeof status === "object" && status !== null &&
    typeof status.name === "string" && typeof status.state === "string" &&
    typeof status.clients?.held === "number" &&
    typeof status.connections?.clients === "number" &&
    typeof status.rates?.iamatPerSecond === "number" &&
    typeof status.rates?.whatsatPerSecond === "number" &&
    Array.isArray(status.links) &&
    status.links.every((link) =>
      typeof link?.peer === "string" && typeof link.state === "string" &&
      typeof link.since === "string"
    );
  return looksRight ? status as ServerStatus : undefined;
}
