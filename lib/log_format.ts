/**
 * How one log record becomes one line of `NAME.log`: `text` (`<ISO-8601> [INF] message`) or
 * `json` (one object per line: timestamp, level, server, message and the event's fields, for
 * log shippers). Pure: a record in, a line out.
 *
 * A message is a template whose `{name}` placeholders are the event's fields. Templates are
 * few and fixed, so each is split once and the parts kept; a record without fields is shown
 * as it is, never parsed (wire text in it may hold braces).
 */
import type { LogLevel, LogRecord } from "@logtape/logtape";

/** The `--log-format` choices. */
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = typeof LOG_FORMATS[number];

/**
 * A field value that shows itself in a text message (JSON uses its `toJSON`, if any): for
 * values worth building only when a record is written.
 */
export interface LogText {
  toLogText(): string;
}

/** Turns a record into one line, newline included. */
export type LogLineFormatter = (record: LogRecord) => string;

const TEXT_LEVELS: Record<LogLevel, string> = {
  trace: "TRC",
  debug: "DBG",
  info: "INF",
  warning: "WRN",
  error: "ERR",
  fatal: "FTL",
};

/** The JSON keys every record has; an event's field of the same name is put under `field_`. */
const RESERVED_KEYS = new Set(["timestamp", "level", "server", "message"]);
/** Templates kept split; past this many (never, with herd's fixed templates) they are split each time. */
const TEMPLATES_CACHED_MAX = 1024;

/** A template split into literal text (even indexes) and field names (odd indexes). */
type TemplateParts = readonly string[];
const templateCache = new Map<string, TemplateParts>();

/** The formatter for `format`, naming `server` in every JSON record. */
export function logLineFormatter(format: LogFormat, server: string): LogLineFormatter {
  const timestamps = new TimestampCache();
  if (format === "text") {
    return (record) =>
      `${timestamps.iso(record.timestamp)} [${TEXT_LEVELS[record.level]}] ${
        renderMessage(record)
      }\n`;
  }
  return (record) => {
    // No prototype: a field named `__proto__` is a key like any other.
    const fields: Record<string, unknown> = Object.create(null);
    fields.timestamp = timestamps.iso(record.timestamp);
    fields.level = record.level;
    fields.server = server;
    fields.message = renderMessage(record);
    for (const [key, value] of Object.entries(record.properties)) {
      fields[RESERVED_KEYS.has(key) ? `field_${key}` : key] = jsonValue(value);
    }
    try {
      return `${JSON.stringify(fields)}\n`;
    } catch {
      // A field JSON cannot hold (a cycle, say): every object field shown as Deno shows it.
      for (const [key, value] of Object.entries(fields)) {
        if (value !== null && typeof value === "object") fields[key] = Deno.inspect(value);
      }
      return `${JSON.stringify(fields)}\n`;
    }
  };
}

/** The record's message with its fields filled in. */
export function renderMessage(record: LogRecord): string {
  const raw = record.rawMessage;
  if (typeof raw !== "string") return record.message.map(textValue).join("");
  const properties = record.properties;
  if (!hasFields(properties)) return raw;
  const parts = splitTemplate(raw);
  let text = parts[0];
  for (let i = 1; i < parts.length; i += 2) {
    const name = parts[i];
    text += (Object.hasOwn(properties, name) ? textValue(properties[name]) : `{${name}}`) +
      parts[i + 1];
  }
  return text;
}

function hasFields(properties: Record<string, unknown>): boolean {
  for (const _ in properties) return true;
  return false;
}

/**
 * `"a {x} b"` → `["a ", "x", " b"]`; `{{` and `}}` stand for a brace. One pass, no regular
 * expression: an unclosed `{` is literal text.
 */
export function splitTemplate(template: string): TemplateParts {
  const cached = templateCache.get(template);
  if (cached !== undefined) return cached;
  const parts: string[] = [];
  let literal = "";
  let i = 0;
  while (i < template.length) {
    const char = template[i];
    const next = template[i + 1];
    if ((char === "{" && next === "{") || (char === "}" && next === "}")) {
      literal += char;
      i += 2;
      continue;
    }
    if (char !== "{") {
      literal += char;
      i += 1;
      continue;
    }
    const close = template.indexOf("}", i + 1);
    if (close === -1) {
      // No `}` follows: the rest is literal (looking again from each later `{` would be
      // quadratic).
      literal += template.slice(i);
      break;
    }
    parts.push(literal, template.slice(i + 1, close).trim());
    literal = "";
    i = close + 1;
  }
  parts.push(literal);
  if (templateCache.size < TEMPLATES_CACHED_MAX) templateCache.set(template, parts);
  return parts;
}

/** A field as text shows it: strings as they are, errors by their message, the rest inspected. */
function textValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (value instanceof Error) return value.message;
  if (isLogText(value)) return value.toLogText();
  return Deno.inspect(value);
}

function isLogText(value: unknown): value is LogText {
  return typeof (value as Partial<LogText> | null)?.toLogText === "function";
}

/** A field as JSON holds it: errors by their message, big integers as strings. */
function jsonValue(value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return String(value);
  return value;
}

/** Records of one millisecond share their timestamp text (a busy server logs many). */
class TimestampCache {
  #ms = NaN;
  #text = "";

  iso(ms: number): string {
    if (ms !== this.#ms) {
      this.#ms = ms;
      this.#text = new Date(ms).toISOString();
    }
    return this.#text;
  }
}
