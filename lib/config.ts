/**
 * herd.json and the built-in default → one validated, typed Config. Reads the file and
 * nothing else (the TLS files it names are read by lib/tls_files.ts); every rule of the contract's config section is checked here, so the rest of
 * the program can trust what it gets. Invalid input throws ConfigError with one line.
 */
import { dirname, resolve } from "node:path";
import { OneLineError } from "./errors.ts";

/** Where one server listens. */
export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * One server of the config: the address its neighbours dial (`host`, `port`), the address it
 * listens on, and where its monitor listens (if it has one).
 */
export interface ServerConfig extends ServerAddress {
  /** The address it listens on (e.g. `0.0.0.0` behind NAT); `host` unless herd.json says. */
  bind: string;
  /** The HTTP monitor's address; undefined when the server has none. */
  monitor: ServerAddress | undefined;
  /** This server's certificate and key (PEM files); present on every server or on none. */
  tls?: ServerTlsPaths;
}

/** Where one server's certificate and private key are (PEM files). */
export interface ServerTlsPaths {
  certPath: string;
  keyPath: string;
}

/** The limits table of the contract; every value is a positive whole number. */
export interface Limits {
  placesTimeoutMs: number;
  placesConcurrencyMax: number;
  placesCallsPerSecondMax: number;
  placesQueueMax: number;
  lineBytesMax: number;
  linesInFlightMax: number;
  outputBytesMax: number;
  connectionsMax: number;
  idleTimeoutMs: number;
  clientsMax: number;
  storeBytesMax: number;
  peerHeartbeatMs: number;
  dataDirBacklogMax: number;
  monitorSubscribersMax: number;
}

/** Which Places API (New) fields are requested: Pro, or Pro plus the Enterprise fields. */
export type PlacesFieldTier = "pro" | "enterprise";

export interface Config {
  servers: ReadonlyMap<string, ServerConfig>;
  /** Each server's neighbours, sorted by name. */
  neighbours: ReadonlyMap<string, readonly string[]>;
  limits: Limits;
  /** The limits herd.json set explicitly (a default may be lowered to fit the machine). */
  limitsGiven: ReadonlySet<keyof Limits>;
  placesFields: PlacesFieldTier;
  /** Valid but worth telling the operator (e.g. a disconnected graph). */
  warnings: string[];
  /**
   * With TLS on every link (all servers then have `tls`): the CA every certificate must be
   * signed by. Absent for plain TCP.
   */
  tls?: { caPath: string };
}

/** A config that cannot be used; the message is one line for stderr. */
export class ConfigError extends OneLineError {
  override name = "ConfigError";
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  placesTimeoutMs: 5000,
  placesConcurrencyMax: 8,
  placesCallsPerSecondMax: 10,
  placesQueueMax: 64,
  lineBytesMax: 65536,
  linesInFlightMax: 64,
  outputBytesMax: 1048576,
  connectionsMax: 20000,
  idleTimeoutMs: 600000,
  clientsMax: 10000000,
  storeBytesMax: 2147483648,
  peerHeartbeatMs: 5000,
  dataDirBacklogMax: 100000,
  monitorSubscribersMax: 64,
};

/** Inclusive ranges; outside them a value is refused rather than clamped. */
const LIMIT_RANGES: Readonly<Record<keyof Limits, readonly [number, number]>> = {
  placesTimeoutMs: [1, 600_000],
  placesConcurrencyMax: [1, 10_000],
  placesCallsPerSecondMax: [1, 100_000],
  placesQueueMax: [0, 1_000_000],
  lineBytesMax: [64, 64 * 1024 * 1024],
  linesInFlightMax: [1, 1_000_000],
  outputBytesMax: [1024, 1024 * 1024 * 1024],
  connectionsMax: [1, 10_000_000],
  idleTimeoutMs: [1, 7 * 24 * 3600 * 1000],
  clientsMax: [1, 1_000_000_000],
  storeBytesMax: [1_048_576, 2 ** 50],
  peerHeartbeatMs: [100, 600_000],
  dataDirBacklogMax: [1, 10_000_000],
  monitorSubscribersMax: [1, 10_000],
};

const DEFAULT_HOST = "127.0.0.1";
/** The contract's five servers, in port order, and its six links. */
export const DEFAULT_SERVER_NAMES = ["Jaquez", "Hill", "Smith", "Singleton", "Campbell"];
const DEFAULT_PORT_FIRST = 12000;
/** In the built-in config each server's monitor listens on its port + this, on loopback. */
const DEFAULT_MONITOR_PORT_OFFSET = 100;
export const DEFAULT_LINKS: ReadonlyArray<readonly [string, string]> = [
  ["Hill", "Jaquez"],
  ["Hill", "Smith"],
  ["Singleton", "Jaquez"],
  ["Singleton", "Smith"],
  ["Singleton", "Campbell"],
  ["Smith", "Campbell"],
];

/** The herd.json equivalent of the built-in default. */
export function defaultConfigJson(): unknown {
  return {
    servers: Object.fromEntries(
      DEFAULT_SERVER_NAMES.map((name, index) => [name, {
        port: DEFAULT_PORT_FIRST + index,
        host: DEFAULT_HOST,
        monitor: `${DEFAULT_HOST}:${DEFAULT_PORT_FIRST + DEFAULT_MONITOR_PORT_OFFSET + index}`,
      }]),
    ),
    links: DEFAULT_LINKS,
  };
}

/**
 * Reads and validates a config file, or returns the default when `path` is undefined. The
 * `tls` file paths come back resolved against the file's directory, so a server started
 * from anywhere finds them.
 */
export async function loadConfig(path: string | undefined): Promise<Config> {
  if (path === undefined) return validateConfig(defaultConfigJson());
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new ConfigError(`config ${path}: cannot read: ${reason}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config ${path}: not JSON: ${(error as Error).message}`);
  }
  let config: Config;
  try {
    config = validateConfig(json);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`config ${path}: ${error.message}`);
    throw error;
  }
  return resolveTlsPaths(config, dirname(resolve(path)));
}

/** `config` with its `tls` paths made absolute against `baseDir` (pure: no file is read). */
export function resolveTlsPaths(config: Config, baseDir: string): Config {
  if (config.tls === undefined) return config;
  const servers = new Map(
    [...config.servers].map(([name, server]) => [name, {
      ...server,
      tls: {
        certPath: resolve(baseDir, server.tls!.certPath),
        keyPath: resolve(baseDir, server.tls!.keyPath),
      },
    }]),
  );
  return { ...config, servers, tls: { caPath: resolve(baseDir, config.tls.caPath) } };
}

/** Validates parsed herd.json; throws ConfigError naming the first problem. */
export function validateConfig(json: unknown): Config {
  const root = expectObject(json, "the top level");
  rejectUnknownKeys(root, ["servers", "links", "limits", "placesFields", "tls"], "the top level");
  const servers = validateServers(root.servers);
  const tls = validateTls(root.tls, servers);
  const neighbours = validateLinks(root.links ?? [], servers);
  const { limits, limitsGiven } = validateLimits(root.limits ?? {});
  const placesFields = validatePlacesFields(root.placesFields ?? "pro");
  const warnings = isConnected(neighbours)
    ? []
    : ["the servers' links do not connect them all: updates will not reach every server"];
  return {
    servers,
    neighbours,
    limits,
    limitsGiven,
    placesFields,
    warnings,
    ...(tls && { tls }),
  };
}

/**
 * The top-level `tls` against the servers': all or none, since a herd where some links are
 * plain would carry in clear what the others encrypt.
 */
function validateTls(
  value: unknown,
  servers: ReadonlyMap<string, ServerConfig>,
): { caPath: string } | undefined {
  const withTls = [...servers].filter(([, server]) => server.tls !== undefined);
  if (value === undefined) {
    if (withTls.length === 0) return undefined;
    throw new ConfigError(
      `server ${withTls[0][0]} has "tls" but the top level has no "tls": {"ca": PATH}`,
    );
  }
  const fields = expectObject(value, 'the top-level "tls"');
  rejectUnknownKeys(fields, ["ca"], 'the top-level "tls"');
  const caPath = expectPath(fields.ca, "ca", 'the top-level "tls"');
  const without = [...servers.keys()].find((name) => servers.get(name)!.tls === undefined);
  if (without !== undefined) {
    throw new ConfigError(
      `server ${without} has no "tls": with a top-level "tls" every server needs one`,
    );
  }
  return { caPath };
}

function validateServerTls(value: unknown, where: string): ServerTlsPaths {
  const within = `${where}: "tls"`;
  const fields = expectObject(value, within);
  rejectUnknownKeys(fields, ["cert", "key"], within);
  return {
    certPath: expectPath(fields.cert, "cert", within),
    keyPath: expectPath(fields.key, "key", within),
  };
}

function expectPath(value: unknown, key: string, where: string): string {
  if (typeof value !== "string" || value === "") {
    throw new ConfigError(`${where}: "${key}" must be a non-empty path`);
  }
  return value;
}

function validateServers(value: unknown): Map<string, ServerConfig> {
  const entries = Object.entries(expectObject(value, '"servers"'));
  if (entries.length === 0) throw new ConfigError('"servers" is empty');
  const servers = new Map<string, ServerConfig>();
  const seenAddresses = new Map<string, string>();
  const claim = (address: ServerAddress, owner: string) => {
    const text = formatAddress(address);
    const twin = seenAddresses.get(text);
    if (twin !== undefined) throw new ConfigError(`${twin} and ${owner} both use ${text}`);
    seenAddresses.set(text, owner);
  };
  for (const [name, entry] of entries) {
    if (name === "" || /\s/.test(name)) {
      throw new ConfigError(`server name ${JSON.stringify(name)} is empty or has white space`);
    }
    const where = `server ${name}`;
    const fields = expectObject(entry, where);
    rejectUnknownKeys(fields, ["host", "bind", "port", "monitor", "tls"], where);
    const port = fields.port;
    if (!isPort(port)) {
      throw new ConfigError(`${where}: "port" must be a whole number from 1 to 65535`);
    }
    const host = expectHost(fields.host ?? DEFAULT_HOST, "host", where);
    const bind = expectHost(fields.bind ?? host, "bind", where);
    claim({ host, port }, `servers ${name}`);
    const monitor = fields.monitor === undefined || fields.monitor === null
      ? undefined
      : parseMonitorAddress(fields.monitor, where);
    if (monitor !== undefined) claim(monitor, `the monitor of ${name}`);
    const tls = fields.tls === undefined ? undefined : validateServerTls(fields.tls, where);
    servers.set(name, { host, bind, port, monitor, ...(tls && { tls }) });
  }
  return servers;
}

/** A `host` or `bind` value: a non-empty string without white space (a name or an IP). */
function expectHost(value: unknown, key: string, where: string): string {
  if (typeof value !== "string" || value === "" || /\s/.test(value)) {
    throw new ConfigError(`${where}: "${key}" must be a non-empty string without white space`);
  }
  return value;
}

/**
 * A monitor address as herd.json and `--monitor` write it: `HOST:PORT`, an IPv6 host in
 * brackets (`[::1]:12100`). Throws ConfigError naming `where`.
 */
export function parseMonitorAddress(value: unknown, where: string): ServerAddress {
  const problem = `${where}: "monitor" must be "HOST:PORT" (or null for none)`;
  if (typeof value !== "string" || /\s/.test(value)) throw new ConfigError(problem);
  const colon = value.lastIndexOf(":");
  const bracketed = value.startsWith("[") && value[colon - 1] === "]";
  const host = bracketed ? value.slice(1, colon - 1) : value.slice(0, colon);
  const portText = value.slice(colon + 1);
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (colon <= 0 || host === "" || (!bracketed && host.includes(":")) || !isPort(port)) {
    throw new ConfigError(problem);
  }
  return { host, port };
}

/** `host:port`, an IPv6 host in brackets. */
export function formatAddress(address: ServerAddress): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

function validateLinks(
  value: unknown,
  servers: ReadonlyMap<string, ServerConfig>,
): Map<string, string[]> {
  if (!Array.isArray(value)) throw new ConfigError('"links" must be an array of name pairs');
  const neighbours = new Map<string, string[]>([...servers.keys()].map((name) => [name, []]));
  const seenPairs = new Set<string>();
  for (const link of value) {
    if (!Array.isArray(link) || link.length !== 2 || link.some((end) => typeof end !== "string")) {
      throw new ConfigError(`link ${JSON.stringify(link)} must be a pair of server names`);
    }
    const [a, b] = link as [string, string];
    for (const end of [a, b]) {
      if (!servers.has(end)) throw new ConfigError(`link ${a}–${b} names unknown server ${end}`);
    }
    if (a === b) throw new ConfigError(`link ${a}–${b} links a server to itself`);
    const pair = [a, b].sort().join("\n");
    if (seenPairs.has(pair)) throw new ConfigError(`link ${a}–${b} is given twice`);
    seenPairs.add(pair);
    neighbours.get(a)!.push(b);
    neighbours.get(b)!.push(a);
  }
  for (const list of neighbours.values()) list.sort();
  return neighbours;
}

function validateLimits(value: unknown): { limits: Limits; limitsGiven: Set<keyof Limits> } {
  const given = expectObject(value, '"limits"');
  const limits: Limits = { ...DEFAULT_LIMITS };
  const limitsGiven = new Set<keyof Limits>();
  for (const [key, limit] of Object.entries(given)) {
    if (!Object.hasOwn(LIMIT_RANGES, key)) throw new ConfigError(`unknown limit "${key}"`);
    const [min, max] = LIMIT_RANGES[key as keyof Limits];
    if (!Number.isInteger(limit) || (limit as number) < min || (limit as number) > max) {
      throw new ConfigError(`limit "${key}" must be a whole number from ${min} to ${max}`);
    }
    limits[key as keyof Limits] = limit as number;
    limitsGiven.add(key as keyof Limits);
  }
  return { limits, limitsGiven };
}

function validatePlacesFields(value: unknown): PlacesFieldTier {
  if (value === "pro" || value === "enterprise") return value;
  throw new ConfigError('"placesFields" must be "pro" or "enterprise"');
}

function isConnected(neighbours: ReadonlyMap<string, readonly string[]>): boolean {
  const [first] = neighbours.keys();
  const reached = new Set([first]);
  const frontier = [first];
  while (frontier.length > 0) {
    for (const next of neighbours.get(frontier.pop()!)!) {
      if (!reached.has(next)) {
        reached.add(next);
        frontier.push(next);
      }
    }
  }
  return reached.size === neighbours.size;
}

function expectObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`${where} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function rejectUnknownKeys(object: Record<string, unknown>, known: string[], where: string) {
  const unknown = Object.keys(object).find((key) => !known.includes(key));
  if (unknown !== undefined) throw new ConfigError(`${where}: unknown key "${unknown}"`);
}
