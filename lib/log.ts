/**
 * Logging set-up in one place: LogTape writing `DIR/NAME.log` through the rotating,
 * byte-bounded sink of `log_file_sink.ts`, one line per event in the chosen format
 * (`log_format.ts`). Also how wire text is shown in a log line (cut, non-printable bytes
 * escaped).
 */
import {
  configure,
  dispose,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import { type LogFormat, logLineFormatter } from "./log_format.ts";
import { type LogSinkFileSystem, openLogFileSink } from "./log_file_sink.ts";

export type { Logger };

/** The CLI's level names. */
export type HerdLogLevel = "debug" | "info" | "warn";

const LEVEL_TO_LOGTAPE = { debug: "debug", info: "info", warn: "warning" } as const;
const WIRE_TEXT_SHOWN_BYTES_MAX = 200;
/** How long a stop waits for a failing disk to take the last records. */
const CLOSE_WAIT_MS = 1_500;
/** A byte a log line cannot show as it is: outside printable ASCII, or a backslash. */
const NEEDS_ESCAPE = /[^\x20-\x5b\x5d-\x7e]/;
const NEEDS_ESCAPE_ALL = new RegExp(NEEDS_ESCAPE.source, "g");

export interface LoggingOptions {
  dir: string;
  name: string;
  level: HerdLogLevel;
  format: LogFormat;
  /** `--log-max-bytes`: `NAME.log` is rotated before it would pass this. */
  maxBytes: number;
  /** `--log-files`: files kept in all. */
  files: number;
  /** Counts records dropped because writing could not keep up (`log_records_dropped`). */
  onDropped: (records: number) => void;
  /** Where a failing log disk is reported (default: stderr). */
  reportFailure?: (message: string) => void;
  queueBytesMax?: number;
  fileSystem?: LogSinkFileSystem;
}

/** Opens `dir/name.log` and returns the server's logger; `close` flushes and closes it. */
export async function setupLogging(
  options: LoggingOptions,
): Promise<{ logger: Logger; close: () => Promise<void> }> {
  const { dir, name } = options;
  await Deno.mkdir(dir, { recursive: true });
  const category = ["herd", name];
  const sink = await openLogFileSink({
    path: `${dir}/${name}.log`,
    maxBytes: options.maxBytes,
    files: options.files,
    format: logLineFormatter(options.format, name),
    onDropped: options.onDropped,
    dropWarning: (dropped, lastError) => dropWarning(category, dropped, lastError),
    reportFailure: options.reportFailure ??
      ((message) => console.error(`herd: ${name}: ${message}`)),
    ...(options.queueBytesMax === undefined ? {} : { queueBytesMax: options.queueBytesMax }),
    ...(options.fileSystem === undefined ? {} : { fileSystem: options.fileSystem }),
  });
  await configure({
    reset: true,
    sinks: { file: sink.write },
    loggers: [
      { category: ["herd"], lowestLevel: LEVEL_TO_LOGTAPE[options.level], sinks: ["file"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["file"] },
    ],
  });
  // Whether info is written is LogTape's configuration's to say, asked once.
  const logger = getLogger(category);
  return {
    logger: withDirectInfo(logger, sink.write, { enabled: logger.isEnabledFor("info") }),
    close: async () => {
      await dispose();
      await sink.close({ waitMs: CLOSE_WAIT_MS });
    },
  };
}

/**
 * `logger` whose `info(template, fields)` hands its record straight to `write` (when info is
 * enabled): the hot path's events — every client read, reply and flood — skip LogTape's
 * dispatch, which per record builds getters, copies the fields for a snapshot and adds the
 * record to a WeakSet. Measured at 1000 IAMAT/s: those WeakSet entries made up much of what
 * survived each young-generation GC. Everything else is LogTape's, unchanged.
 */
function withDirectInfo(
  logger: Logger,
  write: (record: LogRecord) => void,
  options: { enabled: boolean },
): Logger {
  const category = logger.category;
  const info = ((message: unknown, ...rest: unknown[]) => {
    const fields = rest[0];
    if (typeof message !== "string" || (fields !== undefined && typeof fields !== "object")) {
      return (logger.info as (...args: unknown[]) => void)(message, ...rest);
    }
    if (!options.enabled) return;
    write(recordOf(category, "info", message, (fields ?? {}) as Record<string, unknown>));
  }) as Logger["info"];
  // LogTape's logger keeps private fields: its methods must run on it, so they are bound
  // (once each) rather than inherited.
  const bound = new Map<PropertyKey, unknown>([["info", info]]);
  return new Proxy(logger, {
    get(target, key) {
      if (bound.has(key)) return bound.get(key);
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      const method = value.bind(target);
      bound.set(key, method);
      return method;
    },
  });
}

/** The warning written once writing catches up after records were dropped. */
function dropWarning(
  category: readonly string[],
  dropped: number,
  lastError: string | undefined,
): LogRecord {
  return recordOf(
    category,
    "warning",
    "{dropped} log records dropped: writing could not keep up ({cause})",
    { dropped, cause: lastError ?? "the disk was slower than the log" },
  );
}

/** A record made here rather than by LogTape: `template` with `fields`, timed now. */
function recordOf(
  category: readonly string[],
  level: LogLevel,
  template: string,
  fields: Record<string, unknown>,
): LogRecord {
  return {
    category,
    level,
    rawMessage: template,
    message: [template],
    timestamp: Date.now(),
    properties: fields,
  };
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
