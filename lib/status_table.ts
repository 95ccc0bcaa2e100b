/**
 * `herd status` as pure functions: what each server's monitor answered (or why it did not)
 * → whether the herd is up, the table an operator reads, and the JSON a script reads. Knows
 * the ServerStatus shape and the config's names and addresses; knows nothing of HTTP,
 * tokens, timeouts or where the text is printed.
 */
import type { LinkStatus, ServerStatus } from "./server_status.ts";

/** What asking one server's monitor gave. */
export type MonitorAnswer =
  | { kind: "status"; status: ServerStatus }
  /** The monitor could not be asked or did not give a status; `reason` is one short line. */
  | { kind: "failed"; reason: string }
  | { kind: "no-monitor" };

/** One server of the config and its monitor's answer. */
export interface ServerReport {
  name: string;
  /** The client and peer port, `host:port`, from the config. */
  address: string;
  /** The monitor's `host:port` from the config; undefined when it has none. */
  monitor: string | undefined;
  /** The neighbours the config gives this server: the links it should have up. */
  neighbours: readonly string[];
  answer: MonitorAnswer;
}

/** One row of the table, before it is laid out; numbers are undefined for a server that did not answer. */
export interface ServerSummary {
  name: string;
  address: string;
  /** Answered, serving, and every configured link up: what the exit code counts. */
  healthy: boolean;
  /** Why it is not healthy (`no monitor`, `connection refused`, `1 of 2 links up`); null when it is. */
  reason: string | null;
  /** The UP column: `yes` (answering and serving), `no: REASON` or `no monitor`. */
  upText: string;
  clients: number | undefined;
  connections: number | undefined;
  linksUp: number | undefined;
  linksConfigured: number;
  iamatPerSecond: number | undefined;
  whatsatPerSecond: number | undefined;
  /** The most recent link error, `PEER: error`; undefined when there is none. */
  lastError: string | undefined;
}

/** Characters of a link error kept in the table; the JSON keeps it whole. */
export const LAST_ERROR_CHARS_MAX = 48;

const HEADERS = [
  "SERVER",
  "ADDRESS",
  "UP",
  "CLIENTS",
  "CONNECTIONS",
  "LINKS",
  "IAMAT/S",
  "WHATSAT/S",
  "LAST ERROR",
] as const;
/** Columns of numbers, aligned to the right so their digits line up. */
const RIGHT_ALIGNED = new Set<string>(["CLIENTS", "CONNECTIONS", "LINKS", "IAMAT/S", "WHATSAT/S"]);
const COLUMN_GAP = "  ";
/** Shown where a server gives no value. */
const NONE = "-";

/**
 * One server's row. It is healthy only when its monitor answered, it is serving (not loading
 * or stopping), and every link the config gives it is up.
 *
 * @example
 * ```ts
 * summarizeServer({ name: "Hill", address: "127.0.0.1:12001", monitor: undefined,
 *   neighbours: ["Jaquez"], answer: { kind: "no-monitor" } }).upText; // "no monitor"
 * ```
 */
export function summarizeServer(report: ServerReport): ServerSummary {
  const silent = {
    name: report.name,
    address: report.address,
    healthy: false,
    linksConfigured: report.neighbours.length,
    clients: undefined,
    connections: undefined,
    linksUp: undefined,
    iamatPerSecond: undefined,
    whatsatPerSecond: undefined,
    lastError: undefined,
  };
  const { answer } = report;
  if (answer.kind === "no-monitor") {
    return { ...silent, reason: "no monitor", upText: "no monitor" };
  }
  if (answer.kind === "failed") {
    return { ...silent, reason: answer.reason, upText: `no: ${answer.reason}` };
  }
  const { status } = answer;
  const linksUp =
    report.neighbours.filter((peer) =>
      status.links.some((link) => link.peer === peer && link.state === "up")
    ).length;
  const serving = status.state === "serving";
  const linksDown = linksUp < report.neighbours.length;
  const lastLinkError = mostRecentLinkError(status.links);
  return {
    ...silent,
    healthy: serving && !linksDown,
    reason: !serving
      ? status.state
      : linksDown
      ? `${linksUp} of ${report.neighbours.length} links up`
      : null,
    upText: serving ? "yes" : `no: ${status.state}`,
    clients: status.clients.held,
    connections: status.connections.clients,
    linksUp,
    iamatPerSecond: status.rates.iamatPerSecond,
    whatsatPerSecond: status.rates.whatsatPerSecond,
    lastError: lastLinkError === undefined
      ? undefined
      : `${lastLinkError.peer}: ${lastLinkError.lastError}`,
  };
}

/** True when every server answered, serves, and has every configured link up. */
export function isHerdUp(reports: readonly ServerReport[]): boolean {
  return reports.every((report) => summarizeServer(report).healthy);
}

/**
 * The table `herd status` prints: a header and one row per server, in config order, columns
 * padded to their widest cell; ends in `\n`.
 */
export function formatStatusTable(reports: readonly ServerReport[]): string {
  const rows = reports.map((report) => tableCells(summarizeServer(report)));
  const widths = HEADERS.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => row[column].length))
  );
  const layOut = (cells: readonly string[]) =>
    cells.map((cell, column) => {
      const isLast = column === cells.length - 1;
      if (RIGHT_ALIGNED.has(HEADERS[column])) return cell.padStart(widths[column]);
      return isLast ? cell : cell.padEnd(widths[column]);
    }).join(COLUMN_GAP);
  return [HEADERS, ...rows].map(layOut).join("\n") + "\n";
}

/**
 * What `herd status --json` prints: whether the herd is up, and for every server its row's
 * values, why it is not up (null when it is), and the whole status its monitor gave (null
 * when it gave none).
 */
export function statusJson(reports: readonly ServerReport[]): unknown {
  return {
    up: isHerdUp(reports),
    servers: reports.map((report) => {
      const summary = summarizeServer(report);
      return {
        name: report.name,
        address: report.address,
        monitor: report.monitor ?? null,
        up: summary.healthy,
        reason: summary.reason,
        linksUp: summary.linksUp ?? null,
        linksConfigured: summary.linksConfigured,
        status: report.answer.kind === "status" ? report.answer.status : null,
      };
    }),
  };
}

function tableCells(summary: ServerSummary): string[] {
  const count = (value: number | undefined) => value === undefined ? NONE : String(value);
  const rate = (value: number | undefined) => value === undefined ? NONE : value.toFixed(1);
  return [
    summary.name,
    summary.address,
    summary.upText,
    count(summary.clients),
    count(summary.connections),
    `${count(summary.linksUp)}/${summary.linksConfigured}`,
    rate(summary.iamatPerSecond),
    rate(summary.whatsatPerSecond),
    summary.lastError === undefined ? NONE : shorten(summary.lastError, LAST_ERROR_CHARS_MAX),
  ];
}

/**
 * The link whose error is the newest: a link's `since` is when it entered its state, so
 * the latest one is the last to have gone down (or come back after an error).
 */
function mostRecentLinkError(
  links: readonly LinkStatus[],
): (LinkStatus & { lastError: string }) | undefined {
  let newest: (LinkStatus & { lastError: string }) | undefined;
  for (const link of links) {
    if (link.lastError === null) continue;
    if (newest === undefined || Date.parse(link.since) > Date.parse(newest.since)) {
      newest = link as LinkStatus & { lastError: string };
    }
  }
  return newest;
}

/** `text` on one line, cut to `charsMax` with an ellipsis when longer. */
function shorten(text: string, charsMax: number): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length <= charsMax ? flat : `${flat.slice(0, charsMax - 1)}…`;
}
