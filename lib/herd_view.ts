/**
 * The whole herd as one server sees it, for the live page: every server of the config (this
 * one's status from a function it is given, the others' by asking their monitors' `/status`
 * with a short timeout), every link judged from its ends' reports, and the locations of
 * recently updated clients read from this server's own store (every update floods to every
 * server). Gathers only when asked; knows no HTTP serving, no page and no subscribers.
 */
import type { Config } from "./config.ts";
import { parseAtLine, parseLocation } from "./protocol.ts";
import type { LinkState, LinkStatus, ServerStatus } from "./server_status.ts";
import type { ClientStore } from "./store.ts";
import { projectToMap } from "./world_map.ts";
import { type MonitorClient, monitorClient, monitorStatusUrl } from "./monitor_client.ts";

/** How long another monitor may take to answer `/status` before its server shows down. */
const STATUS_TIMEOUT_MS_DEFAULT = 800;
/** A `/status` answer longer than this is not read: no monitor's is anywhere near it. */
const STATUS_BYTES_MAX = 1024 * 1024;
/** Recent client locations kept for the map, newest last. */
export const RECENT_LOCATIONS_MAX = 200;
/** A location older than this is no longer recent. */
export const RECENT_LOCATION_AGE_MS_MAX = 60_000;
/**
 * Store changes read per gathering at most: under a flood the newest this many are read and
 * the older skipped, so one gathering costs a bounded walk however fast clients update.
 */
export const STORE_CHANGES_PER_GATHERING_MAX = 1000;

/** A server that answered: what the page shows of its `/status`. */
export interface ServerUp {
  name: string;
  up: true;
  state: ServerStatus["state"];
  listen: string;
  monitor: string;
  uptimeSeconds: number;
  clientsHeld: number;
  connections: number;
  iamatPerSecond: number;
  whatsatPerSecond: number;
}

/** A server that did not answer, or has no monitor to ask. */
export interface ServerDown {
  name: string;
  up: false;
  /** Why: no monitor, refused, timed out, an HTTP status, a malformed answer. */
  error: string;
}

export type ServerSummary = ServerUp | ServerDown;

/**
 * One configured link. It is up when at least one end answered and every end that answered
 * reports it `up`: an end that cannot be asked has no say, so the link between a running
 * server and one whose monitor is off still shows what the running end knows. A link whose
 * ends both stay silent is down.
 */
export interface LinkSummary {
  /** The two servers, sorted by name. */
  ends: [string, string];
  up: boolean;
  /** Updates per second both ways, the larger of the two ends' reports. */
  updatesPerSecond: number;
  /** Each end's report of the link, by server name; null for an end that did not answer. */
  states: Record<string, LinkState | null>;
}

/** A recently updated client's location, placed on the live page's map. */
export interface RecentLocation {
  latitude: number;
  longitude: number;
  /** Map coordinates (lib/world_map.ts). */
  x: number;
  y: number;
  /** How long before the snapshot this server stored the update. */
  ageMs: number;
}

/** What one gathering saw; the live page sends it as JSON. */
export interface HerdSnapshot {
  /** The server that gathered it. */
  gatheredBy: string;
  /** ISO 8601. */
  at: string;
  /** In the config's order. */
  servers: ServerSummary[];
  /** Sorted by their ends. */
  links: LinkSummary[];
  /** Oldest first. */
  locations: RecentLocation[];
}

export interface HerdViewOptions {
  config: Config;
  /** This server's name in the config. */
  serverName: string;
  /** This server's own status (never fetched over HTTP). */
  ownStatus: () => ServerStatus | Promise<ServerStatus>;
  store: Pick<ClientStore, "changesAfter" | "lastSeq">;
  /** HERD_MONITOR_TOKEN: sent to the other monitors as a bearer token. */
  monitorToken?: string;
  /** Default the global fetch; tests pass one that fails or hangs. */
  fetch?: typeof fetch;
  /** With TLS, the other monitors' CA (PEM): they are then asked over HTTPS. */
  monitorCa?: string;
  statusTimeoutMs?: number;
  /** Wall-clock milliseconds; default Date.now. */
  clockMs?: () => number;
}

interface SeenLocation {
  latitude: number;
  longitude: number;
  seenAtMs: number;
}

export class HerdView {
  readonly #options: HerdViewOptions;
  readonly #monitors: MonitorClient;
  readonly #clockMs: () => number;
  /** A ring of the latest locations: `#recent[#recentNext]` is the oldest once full. */
  readonly #recent: SeenLocation[] = [];
  #recentNext = 0;
  /** The store change read last; undefined until the first gathering. */
  #lastSeqSeen: number | undefined;

  constructor(options: HerdViewOptions) {
    this.#options = options;
    this.#monitors = monitorClient(options.monitorCa, options.fetch);
    this.#clockMs = options.clockMs ?? Date.now;
  }

  /**
   * Gathers every server's summary, the links and the recent locations. Never rejects: a
   * server that cannot be asked is a {@link ServerDown}.
   */
  async gather(): Promise<HerdSnapshot> {
    const { config, serverName } = this.#options;
    const nowMs = this.#clockMs();
    this.#readStoreChanges(nowMs);
    const statuses = new Map(
      await Promise.all(
        [...config.servers.keys()].map(async (name) => [name, await this.#statusOf(name)] as const),
      ),
    );
    return {
      gatheredBy: serverName,
      at: new Date(nowMs).toISOString(),
      servers: [...statuses].map(([name, status]) =>
        typeof status === "string" ? { name, up: false, error: status } : summarize(status)
      ),
      links: judgeLinks(config, statuses),
      locations: this.#recentLocations(nowMs),
    };
  }

  /**
   * Forgets where the store walk was: changes stored while nobody watched have no time the
   * view knows, so after a pause it starts again from the newest change.
   */
  pause(): void {
    this.#lastSeqSeen = undefined;
  }

  /** A server's status, or why there is none. */
  async #statusOf(name: string): Promise<ServerStatus | string> {
    if (name === this.#options.serverName) {
      try {
        return await this.#options.ownStatus();
      } catch (error) {
        return `own status failed: ${(error as Error).message}`;
      }
    }
    const monitor = this.#options.config.servers.get(name)!.monitor;
    if (monitor === undefined) return "no monitor configured";
    const timeoutMs = this.#options.statusTimeoutMs ?? STATUS_TIMEOUT_MS_DEFAULT;
    const token = this.#options.monitorToken;
    try {
      const response = await this.#monitors.fetch(monitorStatusUrl(this.#monitors, monitor), {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) {
        await response.body?.cancel();
        return `monitor answered HTTP ${response.status}`;
      }
      const status = JSON.parse(await readTextBounded(response, STATUS_BYTES_MAX));
      if (!isServerStatus(status, name)) return "monitor's status is malformed";
      return status;
    } catch (error) {
      if ((error as Error).name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
      return `monitor unreachable: ${innermostReason(error)}`;
    }
  }

  /** Adds the locations of the store's changes since the last gathering to the ring. */
  #readStoreChanges(nowMs: number): void {
    const { store } = this.#options;
    const newest = store.lastSeq;
    const after = Math.max(this.#lastSeqSeen ?? newest, newest - STORE_CHANGES_PER_GATHERING_MAX);
    this.#lastSeqSeen = newest;
    for (const change of store.changesAfter(after)) {
      // The walk is live: changes stored while it runs wait for the next gathering.
      if (change.seq > newest) break;
      const location = parseLocation(parseAtLine(change.atLine)?.location ?? "");
      if (location === undefined) continue;
      const seen = { latitude: location.latitude, longitude: location.longitude, seenAtMs: nowMs };
      if (this.#recent.length < RECENT_LOCATIONS_MAX) this.#recent.push(seen);
      else this.#recent[this.#recentNext] = seen;
      this.#recentNext = (this.#recentNext + 1) % RECENT_LOCATIONS_MAX;
    }
  }

  #recentLocations(nowMs: number): RecentLocation[] {
    const oldestFirst = [
      ...this.#recent.slice(this.#recentNext),
      ...this.#recent.slice(0, this.#recentNext),
    ];
    return oldestFirst
      .filter((seen) => nowMs - seen.seenAtMs <= RECENT_LOCATION_AGE_MS_MAX)
      .map(({ latitude, longitude, seenAtMs }) => ({
        latitude,
        longitude,
        ...projectToMap(latitude, longitude),
        ageMs: nowMs - seenAtMs,
      }));
  }
}

function summarize(status: ServerStatus): ServerUp {
  return {
    name: status.name,
    up: true,
    state: status.state,
    listen: status.listen,
    monitor: status.monitor,
    uptimeSeconds: status.uptimeSeconds,
    clientsHeld: status.clients.held,
    connections: status.connections.clients,
    iamatPerSecond: status.rates.iamatPerSecond,
    whatsatPerSecond: status.rates.whatsatPerSecond,
  };
}

/** Every configured link, judged by the rule of {@link LinkSummary}. */
function judgeLinks(
  config: Config,
  statuses: ReadonlyMap<string, ServerStatus | string>,
): LinkSummary[] {
  const links: LinkSummary[] = [];
  for (const [a, neighbours] of [...config.neighbours].sort(([x], [y]) => x < y ? -1 : 1)) {
    for (const b of neighbours) {
      if (b <= a) continue;
      const ends: [string, string] = [a, b];
      const reports = ends.map((end) => linkReport(statuses.get(end), end === a ? b : a));
      const answered = reports.filter((report) => report !== undefined);
      links.push({
        ends,
        up: answered.length > 0 && answered.every((report) => report?.state === "up"),
        updatesPerSecond: Math.max(0, ...answered.map((report) => report?.updatesPerSecond ?? 0)),
        states: { [a]: reports[0]?.state ?? null, [b]: reports[1]?.state ?? null },
      });
    }
  }
  return links;
}

/**
 * What `status` says of its link to `peer`: undefined when the server did not answer, null
 * when it answered without that link (its config differs).
 */
function linkReport(
  status: ServerStatus | string | undefined,
  peer: string,
): LinkStatus | null | undefined {
  if (status === undefined || typeof status === "string") return undefined;
  return status.links.find((link) => link.peer === peer) ?? null;
}

/**
 * Whether another monitor's answer has what the page reads, and is the server asked for
 * (a config pointing at the wrong monitor must not show one server's numbers as another's).
 */
function isServerStatus(value: unknown, name: string): value is ServerStatus {
  const status = value as ServerStatus;
  return typeof value === "object" && value !== null && status.name === name &&
    typeof status.clients?.held === "number" &&
    typeof status.connections?.clients === "number" &&
    typeof status.rates?.iamatPerSecond === "number" &&
    typeof status.rates?.whatsatPerSecond === "number" &&
    Array.isArray(status.links) &&
    status.links.every((link) => typeof link?.peer === "string");
}

/**
 * The most specific part of a fetch error: Deno's "fetch failed" carries a cause ending in
 * e.g. "tcp connect error: Connection refused (os error 111)"; the page shows "Connection
 * refused".
 */
function innermostReason(error: unknown): string {
  const cause = (error as Error).cause;
  const message = cause instanceof Error ? cause.message : (error as Error).message;
  return message.slice(message.lastIndexOf(": ") + 1).trim().replace(/ \(os error \d+\)$/, "");
}

/** The body as text, refused past `bytesMax` without reading the rest. */
async function readTextBounded(response: Response, bytesMax: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for await (const chunk of response.body ?? new ReadableStream<Uint8Array>()) {
    bytes += chunk.length;
    if (bytes > bytesMax) throw new Error(`answer longer than ${bytesMax} bytes`);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}
