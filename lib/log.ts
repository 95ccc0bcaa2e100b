/**
 * Logging set-up in one place: LogTape writing `DIR/NAME.log`, one line per event with an
 * ISO-8601 timestamp, buffered so a burst of events costs one file write rather than one
 * per line. Also how wire text is shown in a log line (cut, non-printable bytes escaped).
 *
 * Events on the hot path (every client line, reply and flood) pass a finished message with
 * no properties; the formatter writes such a message as it is, without template parsing,
 * which is most of what logging would otherwise cost per line.
 */
import {
  configure,
  dispose,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import { getStreamFileSink } from "@logtape/file";
import { Buffer } from "node:buffer";

export type { Logger };

/** The CLI's level names. */
export type HerdLogLevel = "debug" | "info" | "warn";

const LEVEL_TO_LOGTAPE = { debug: "debug", info: "info", warn: "warning" } as const;
const LOG_BUFFER_BYTES = 64 * 1024;
const WIRE_TEXT_SHOWN_BYTES_MAX = 200;
/** A byte a log line cannot show as it is: outside printable ASCII, or a backslash. */
const NEEDS_ESCAPE = /[^\x20-\x5b\x5d-\x7e]/;
const NEEDS_ESCAPE_ALL = new RegExp(NEEDS_ESCAPE.source, "g");

/** Opens `dir/name.log` and returns the server's logger; `close` flushes and closes it. */
export async function setupLogging(
  dir: string,
  name: string,
  level: HerdLogLevel,
): Promise<{ logger: Logger; close: () => Promise<void> }> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${name}.log`;
  // Opened here first so an unwritable directory is reported at start, not lost later.
  (await Deno.open(path, { append: true, create: true })).close();
  await configure({
    reset: true,
    sinks: {
      // A write stream: records queued while one write is in flight go out together in
      // one writev, on the I/O thread — serving never waits for the disk.
      file: getStreamFileSink(path, { highWaterMark: LOG_BUFFER_BYTES, formatter: formatLogLine }),
    },
    loggers: [
      { category: ["herd"], lowestLevel: LEVEL_TO_LOGTAPE[level], sinks: ["file"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["file"] },
    ],
  });
  return { logger: getLogger(["herd", name]), close: () => dispose() };
}

const LEVEL_LABELS: Record<LogLevel, string> = {
  trace: "TRC",
  debug: "DBG",
  info: "INF",
  warning: "WRN",
  error: "ERR",
  fatal: "FTL",
};

let cachedTimestampMs = NaN;
let cachedTimestamp = "";

/** `2026-11-28T08:48:28.369Z [INF] message` — one line per record. */
function formatLogLine(record: LogRecord): string {
  if (record.timestamp !== cachedTimestampMs) {
    cachedTimestampMs = record.timestamp;
    cachedTimestamp = new Date(record.timestamp).toISOString();
  }
  const finished = typeof record.rawMessage === "string" &&
    Object.keys(record.properties).length === 0;
  const message = finished ? record.rawMessage as string : renderMessage(record.message);
  return `${cachedTimestamp} [${LEVEL_LABELS[record.level]}] ${message}\n`;
}

/** A template's parts: strings as they are, other values as Deno shows them. */
function renderMessage(parts: readonly unknown[]): string {
  return parts.map((part) => typeof part === "string" ? part : Deno.inspect(part)).join("");
}

/**
 * Wire text as a log shows it: at most 200 bytes, bytes outside printable ASCII as `\xNN`,
 * a backslash as `\\`, so one event stays one line whatever a client sent.
 */
export function showWireText(text: string): string {
  const shown = text.length > WIRE_TEXT_SHOWN_BYTES_MAX
    ? text.slice(0, WIRE_TEXT_SHOWN_BYTES_MAX)
    : text;
  const escaped = !NEEDS_ESCAPE.test(shown) ? shown : shown.replace(
    NEEDS_ESCAPE_ALL,
    (char) => char === "\\" ? "\\\\" : `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return text.length > WIRE_TEXT_SHOWN_BYTES_MAX ? `${escaped}…` : escaped;
}

/** Bytes as {@link showWireText} shows them (a reply's JSON shows as its UTF-8 bytes). */
export function showWireBytes(bytes: Uint8Array): string {
  const shownBytes = Math.min(bytes.length, WIRE_TEXT_SHOWN_BYTES_MAX + 1);
  return showWireText(Buffer.from(bytes.buffer, bytes.byteOffset, shownBytes).toString("latin1"));
}
