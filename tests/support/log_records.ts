/** LogTape records made by hand, as a logger would make them, for the log modules' tests. */
import type { LogLevel, LogRecord } from "@logtape/logtape";

/**
 * A record of server Hill with `message` as its template and `properties` as its fields,
 * at time 0 (so the line it becomes is known in advance).
 */
export function logRecord(
  message: string,
  properties: Record<string, unknown> = {},
  level: LogLevel = "info",
): LogRecord {
  return {
    category: ["herd", "Hill"],
    level,
    rawMessage: message,
    message: [message],
    timestamp: 0,
    properties,
  };
}
