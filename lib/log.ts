/**
 * Logging set-up in one place: LogTape writing `DIR/NAME.log`, one line per event with an
 * ISO-8601 timestamp, buffered so a burst of events costs one file write rather than one
 * per line. Also how wire text is shown in a log line (cut, non-printable bytes escaped).
 */
import { configure, dispose, getLogger, getTextFormatter, type Logger } from "@logtape/logtape";
import { getFileSink } from "@logtape/file";
import { Buffer } from "node:buffer";

export type { Logger };

/** The CLI's level names. */
export type HerdLogLevel = "debug" | "info" | "warn";

const LEVEL_TO_LOGTAPE = { debug: "debug", info: "info", warn: "warning" } as const;
const LOG_BUFFER_BYTES = 64 * 1024;
const LOG_FLUSH_INTERVAL_MS = 250;
const WIRE_TEXT_SHOWN_BYTES_MAX = 200;

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
      file: getFileSink(path, {
        bufferSize: LOG_BUFFER_BYTES,
        flushInterval: LOG_FLUSH_INTERVAL_MS,
        // Flushes in the background on a timer: serving never waits for the disk, and an
        // idle server's last events still reach the file.
        nonBlocking: true,
        formatter: getTextFormatter({
          timestamp: "rfc3339",
          value: (value, inspect) => typeof value === "string" ? value : inspect(value),
        }),
      }),
    },
    loggers: [
      { category: ["herd"], lowestLevel: LEVEL_TO_LOGTAPE[level], sinks: ["file"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["file"] },
    ],
  });
  return { logger: getLogger(["herd", name]), close: () => dispose() };
}

/**
 * Wire text as a log shows it: at most 200 bytes, bytes outside printable ASCII as `\xNN`,
 * a backslash as `\\`, so one event stays one line whatever a client sent.
 */
export function showWireText(text: string): string {
  const shown = text.length > WIRE_TEXT_SHOWN_BYTES_MAX
    ? text.slice(0, WIRE_TEXT_SHOWN_BYTES_MAX)
    : text;
  const escaped = shown.replace(
    /[^\x20-\x5b\x5d-\x7e]/g,
    (char) => char === "\\" ? "\\\\" : `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return text.length > WIRE_TEXT_SHOWN_BYTES_MAX ? `${escaped}…` : escaped;
}

/** Bytes as {@link showWireText} shows them (a reply's JSON shows as its UTF-8 bytes). */
export function showWireBytes(bytes: Uint8Array): string {
  const shownBytes = Math.min(bytes.length, WIRE_TEXT_SHOWN_BYTES_MAX + 1);
  return showWireText(Buffer.from(bytes.buffer, bytes.byteOffset, shownBytes).toString("latin1"));
}
