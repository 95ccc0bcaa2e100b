/**
 * The command line as pure functions: argv and the environment → validated options, or a
 * UsageError with the one line to print before exiting 2. Reads no files, starts nothing.
 */
import { ConfigError, parseMonitorAddress, type ServerAddress } from "./config.ts";
import { OneLineError } from "./errors.ts";
import { parseArgs } from "node:util";
import type { HerdLogLevel } from "./log.ts";
import { LOG_FORMATS, type LogFormat } from "./log_format.ts";
import type { PlacesProviderName } from "./places/provider.ts";

export const USAGE = "usage: herd --name NAME [--config FILE] " +
  "[--places auto|offline|google|google-new] [--places-url URL] [--log-dir DIR] " +
  "[--log-level debug|info|warn] [--data-dir DIR] [--monitor HOST:PORT|off] " +
  "[--log-max-bytes N] [--log-files N] [--log-format text|json]";

export type PlacesChoice = "auto" | "offline" | "google" | "google-new";

export interface CliOptions {
  name: string;
  configPath: string | undefined;
  places: PlacesChoice;
  placesUrl: string | undefined;
  logDir: string;
  logLevel: HerdLogLevel;
  /** `NAME.log` is rotated before it would pass this many bytes. */
  logMaxBytes: number;
  /** Log files kept in all, `NAME.log` included. */
  logFiles: number;
  logFormat: LogFormat;
  /** Where accepted updates survive a restart; undefined keeps them in memory only. */
  dataDir: string | undefined;
  /** `--monitor`: an address, null for `off`, undefined for the config's choice. */
  monitor: ServerAddress | null | undefined;
}

/** A command line that cannot be run; the message is one line for stderr. */
export class UsageError extends OneLineError {
  override name = "UsageError";
}

const PLACES_CHOICES: readonly PlacesChoice[] = ["auto", "offline", "google", "google-new"];
const LOG_LEVELS: readonly HerdLogLevel[] = ["debug", "info", "warn"];
/** `--log-max-bytes`: default and range (at least one long record; at most 1 PiB). */
export const LOG_MAX_BYTES = { default: 104_857_600, min: 1024, max: 2 ** 50 };
/** `--log-files`: default and range. */
export const LOG_FILES = { default: 5, min: 1, max: 1000 };

/** Parses herd's arguments; throws UsageError for anything it cannot run. */
export function parseCli(args: string[]): CliOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        name: { type: "string" },
        config: { type: "string" },
        places: { type: "string", default: "auto" },
        "places-url": { type: "string" },
        "log-dir": { type: "string", default: "logs" },
        "log-level": { type: "string", default: "info" },
        "data-dir": { type: "string" },
        monitor: { type: "string" },
        "log-max-bytes": { type: "string", default: String(LOG_MAX_BYTES.default) },
        "log-files": { type: "string", default: String(LOG_FILES.default) },
        "log-format": { type: "string", default: "text" },
      },
    }));
  } catch (error) {
    // node:util's messages are one line but may end in advice meant for node scripts.
    throw new UsageError(`${(error as Error).message.split(". ")[0]}; ${USAGE}`);
  }
  if (values["data-dir"] === "") throw new UsageError("--data-dir needs a directory");
  const name = values.name;
  if (name === undefined || name === "") throw new UsageError(`--name is required; ${USAGE}`);
  const places = values.places as PlacesChoice;
  if (!PLACES_CHOICES.includes(places)) {
    throw new UsageError(`--places must be one of ${PLACES_CHOICES.join(", ")}`);
  }
  const logLevel = values["log-level"] as HerdLogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`);
  }
  const logFormat = values["log-format"] as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) {
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(", ")}`);
  }
  const placesUrl = values["places-url"];
  if (placesUrl !== undefined && !isHttpUrl(placesUrl)) {
    throw new UsageError(`--places-url must be an http or https URL, not ${placesUrl}`);
  }
  return {
    name,
    configPath: values.config,
    places,
    placesUrl: placesUrl?.replace(/\/+$/, ""),
    logDir: values["log-dir"]!,
    logLevel,
    logMaxBytes: parseCount("--log-max-bytes", values["log-max-bytes"]!, LOG_MAX_BYTES),
    logFiles: parseCount("--log-files", values["log-files"]!, LOG_FILES),
    logFormat,
    dataDir: values["data-dir"],
    monitor: parseMonitorFlag(values.monitor),
  };
}

/** A whole number of decimal digits within `range`, or a UsageError naming the flag. */
function parseCount(flag: string, text: string, range: { min: number; max: number }): number {
  const digitsOnly = text.length > 0 && text.length <= 16 &&
    [...text].every((char) => char >= "0" && char <= "9");
  const value = digitsOnly ? Number(text) : NaN;
  if (!(value >= range.min && value <= range.max)) {
    throw new UsageError(
      `${flag} must be a whole number from ${range.min} to ${range.max}, not ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  return value;
}

/** `--monitor HOST:PORT` or `--monitor off`; undefined when not given. */
function parseMonitorFlag(value: string | undefined): ServerAddress | null | undefined {
  if (value === undefined) return undefined;
  if (value === "off") return null;
  try {
    return parseMonitorAddress(value, "--monitor");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new UsageError(
      `--monitor must be HOST:PORT (an IPv6 host in brackets) or off, not ${JSON.stringify(value)}`,
    );
  }
}

/**
 * The provider `--places` means in this environment: `auto` is `google-new` with a key
 * (`google` when HERD_PLACES_API=legacy) and `offline` without. Google without a key is a
 * UsageError.
 */
export function choosePlacesProvider(
  choice: PlacesChoice,
  env: { apiKey: string | undefined; placesApi: string | undefined },
): PlacesProviderName {
  const hasKey = env.apiKey !== undefined && env.apiKey !== "";
  if (choice === "auto") {
    if (!hasKey) return "offline";
    return env.placesApi === "legacy" ? "google" : "google-new";
  }
  if (choice !== "offline" && !hasKey) {
    throw new UsageError(`--places ${choice} needs GOOGLE_PLACES_API_KEY in the environment`);
  }
  return choice;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}
