/**
 * A LogTape logger whose records a test can read, for asserting what a module warned about.
 * Configures LogTape globally: use one at a time, and `close` it when done.
 */
import { configure, getLogger, type Logger, type LogRecord, reset } from "@logtape/logtape";

const CATEGORY = "captured";

export interface CapturedLog extends AsyncDisposable {
  /** A logger per name (a server's), all writing to the same records. */
  logger(name: string): Logger;
  /** `LEVEL name: message` for every record so far, message properties filled in. */
  lines(): string[];
}

/** Starts capturing every record at debug and above. */
export async function captureLog(): Promise<CapturedLog> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: [CATEGORY], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  return {
    logger: (name) => getLogger([CATEGORY, name]),
    lines: () =>
      records.map((record) =>
        `${record.level.toUpperCase()} ${record.category[1]}: ${record.message.join("")}`
      ),
    [Symbol.asyncDispose]: () => reset(),
  };
}
