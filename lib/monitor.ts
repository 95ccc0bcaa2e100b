/**
 * One server's monitor: HTTP on its own address (`Deno.serve`; HTTPS with the server's
 * certificate when herd.json has `tls`) answering `GET /healthz`, `GET /status` (the
 * {@link ServerStatus} of lib/server_status.ts) and `GET /metrics` (Prometheus text,
 * lib/metrics.ts), with a bearer token on every request when HERD_MONITOR_TOKEN is set (but
 * the live page's static `/`); `/` and `/events` go to the live page when one is given.
 *
 * Reads what the server, its store, its links and its counters already hold; of its own it
 * keeps only rate samples and the event-loop lag probe, both on timers of their own — no
 * state on the line path. Must not know how lines are handled or links made, nor what the
 * live page shows; it is never given the Places key or HERD_SECRET, so it cannot show them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { raceAbort } from "./abortable.ts";
import { type Config, formatAddress, type ServerAddress } from "./config.ts";
import type { Counters } from "./counters.ts";
import { OneLineError } from "./errors.ts";
import { EventLoopLagProbe } from "./event_loop_lag.ts";
import type { Logger } from "./log.ts";
import { type HerdMetrics, IAMAT_REFUSED_COUNTER, MetricsExposition } from "./metrics.ts";
import type { PeerLinkReport } from "./peers.ts";
import type { PlacesProviderName } from "./places/provider.ts";
import { RateWindow } from "./rate_window.ts";
import type { DataDirStatus, ServerState, ServerStatus } from "./server_status.ts";
import { HERD_VERSION } from "./version.ts";

/** How often the totals behind the status's rates are sampled. */
const RATE_SAMPLE_INTERVAL_MS = 1000;
/** How long a stop waits for requests in flight (a live page's streams) before leaving them. */
const MONITOR_STOP_GRACE_MS = 200;
/** The status's fractional figures are rounded to this many decimals. */
const STATUS_DECIMALS = 3;

/** The live page (lib/live_page.ts): answers `/` and `/events` on the monitor's port. */
export interface LivePageHandler {
  handle(request: Request): Response | Promise<Response>;
}

/** What the monitor reads of a server: HerdServer provides it. */
export interface MonitoredServer {
  readonly state: ServerState;
  readonly connectionCounts: { clients: number; handshakes: number };
  readonly dataDirStatus: DataDirStatus | undefined;
  readonly counters: Counters;
  readonly store: { readonly size: number; readonly bytes: number };
  readonly peers: { linkReports(): PeerLinkReport[] };
}

/** Everything a status is built from. */
export interface StatusSources {
  name: string;
  config: Config;
  provider: PlacesProviderName;
  /** Where the status is served from. */
  monitorAddress: ServerAddress;
  server: MonitoredServer;
  /** Samples of the rates' totals (see {@link rateTotals}); none yet gives rates of 0. */
  rates: RateWindow;
  eventLoopLag: { recentMs: number; maxMs: number };
  /** Monotonic now, on the rates' clock. */
  nowMs: number;
}

export interface MonitorOptions {
  name: string;
  config: Config;
  provider: PlacesProviderName;
  server: MonitoredServer;
  address: ServerAddress;
  /** HERD_MONITOR_TOKEN: when given, every request must carry `Authorization: Bearer` it. */
  token?: string;
  metrics: HerdMetrics;
  logger: Logger;
  /** Serves `/` and `/events`; without it those answer 404. */
  livePage?: LivePageHandler;
  /** With TLS: the server's certificate and key, so the monitor is served over HTTPS. */
  tls?: { cert: string; key: string };
}

/** The monitor's address cannot be served (in use, not permitted); one line for stderr. */
export class MonitorListenError extends OneLineError {
  override name = "MonitorListenError";
}

/** True for a host only this machine can reach: a monitor there may go without a token. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) ||
    /^::ffff:127\.\d+\.\d+\.\d+$/i.test(host);
}

/**
 * The totals whose growth the status shows per second: IAMAT and WHATSAT lines, and the
 * updates on each neighbour's link (key `link:NAME`).
 */
export function rateTotals(server: MonitoredServer): Map<string, number> {
  const counter = (name: string) => server.counters.get(name);
  const totals = new Map<string, number>([
    ["iamat", counter("iamat_stored") + counter("iamat_stale") + counter(IAMAT_REFUSED_COUNTER)],
    ["whatsat", counter("whatsat") + counter("whatsat_unknown_client")],
  ]);
  for (const link of server.peers.linkReports()) {
    totals.set(linkRateKey(link.peer), link.updatesSent + link.updatesReceived);
  }
  return totals;
}

function linkRateKey(peer: string): string {
  return `link:${peer}`;
}

function rounded(value: number): number {
  const scale = 10 ** STATUS_DECIMALS;
  return Math.round(value * scale) / scale;
}

/**
 * The server's `GET /status` as of now. The live page uses it for its own server.
 *
 * @example
 * ```ts
 * const status = buildServerStatus({ name, config, provider, monitorAddress, server, rates,
 *   eventLoopLag: probe, nowMs: performance.now() });
 * ```
 */
export function buildServerStatus(sources: StatusSources): ServerStatus {
  const { name, config, server, rates, nowMs } = sources;
  const counters = server.counters.toRecord();
  const totals = rateTotals(server);
  const perSecond = (key: string) => rounded(rates.perSecond(key, totals.get(key) ?? 0, nowMs));
  const storeLimitHits = server.counters.get("limit_clients_max") +
    server.counters.get("limit_store_bytes");
  return {
    name,
    version: HERD_VERSION,
    pid: Deno.pid,
    startedAt: new Date(performance.timeOrigin).toISOString(),
    uptimeSeconds: rounded(performance.now() / 1000),
    state: server.state,
    listen: formatAddress(config.servers.get(name)!),
    monitor: formatAddress(sources.monitorAddress),
    provider: sources.provider,
    clients: { held: server.store.size, bytes: server.store.bytes, full: storeLimitHits > 0 },
    connections: server.connectionCounts,
    rates: { iamatPerSecond: perSecond("iamat"), whatsatPerSecond: perSecond("whatsat") },
    limits: { ...config.limits },
    counters,
    dataDir: server.dataDirStatus ?? null,
    eventLoopLagMs: {
      recent: rounded(sources.eventLoopLag.recentMs),
      max: rounded(sources.eventLoopLag.maxMs),
    },
    links: server.peers.linkReports().map((link) => ({
      peer: link.peer,
      state: link.state,
      since: new Date(link.sinceMs).toISOString(),
      dialledBy: link.dialledBy,
      updatesSent: link.updatesSent,
      updatesReceived: link.updatesReceived,
      bytesSent: link.bytesSent,
      bytesReceived: link.bytesReceived,
      updatesPerSecond: perSecond(linkRateKey(link.peer)),
      catchUp: { ...link.catchUp },
      lastError: link.lastError,
    })),
  };
}

/** SHA-256 of a token: equal-length digests, so the comparison takes the same time. */
function tokenDigest(token: string): Uint8Array {
  return createHash("sha256").update(token, "utf8").digest();
}

const BEARER_PREFIX = "bearer ";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

export class Monitor {
  readonly #options: MonitorOptions;
  readonly #tokenDigest: Uint8Array | undefined;
  readonly #rates = new RateWindow();
  readonly #eventLoopLag: EventLoopLagProbe;
  readonly #exposition: MetricsExposition;
  readonly #routes: ReadonlyMap<string, (url: URL) => Response | Promise<Response>>;
  #httpServer: Deno.HttpServer | undefined;
  #sampler: ReturnType<typeof setInterval> | undefined;

  constructor(options: MonitorOptions) {
    this.#options = options;
    this.#tokenDigest = options.token === undefined ? undefined : tokenDigest(options.token);
    const { metrics } = options;
    this.#eventLoopLag = new EventLoopLagProbe({
      onLagMs: (lagMs) => metrics.eventLoopLag.observe(lagMs / 1000),
    });
    this.#exposition = new MetricsExposition({
      metrics,
      neighbours: options.config.neighbours.get(options.name) ?? [],
    });
    this.#routes = new Map<string, (url: URL) => Response | Promise<Response>>([
      ["/healthz", (url) => this.#health(url)],
      ["/status", () => json(200, this.status())],
      ["/metrics", () => this.#metrics()],
    ]);
  }

  /** `host:port` it serves on. */
  get address(): string {
    return formatAddress(this.#options.address);
  }

  /**
   * Binds the address and serves in the background; starts sampling rates and event-loop
   * lag. Throws MonitorListenError when the address cannot be bound.
   */
  start(): void {
    const { address, logger, name } = this.#options;
    try {
      const tls = this.#options.tls;
      this.#httpServer = Deno.serve({
        hostname: address.host,
        port: address.port,
        ...(tls && { cert: tls.cert, key: tls.key }),
        onListen: () => {},
        onError: (error) => {
          logger.error("monitor: {error}", { error: String(error) });
          return json(500, { error: "internal error" });
        },
      }, (request) => this.#handle(request));
    } catch (error) {
      const why = error instanceof Deno.errors.AddrInUse
        ? "address in use"
        : (error as Error).message;
      throw new MonitorListenError(`${name} cannot serve its monitor on ${this.address}: ${why}`);
    }
    this.#eventLoopLag.start();
    this.#sampleRates();
    const sampler = setInterval(() => this.#sampleRates(), RATE_SAMPLE_INTERVAL_MS);
    Deno.unrefTimer(sampler);
    this.#sampler = sampler;
  }

  /** Stops serving (requests in flight get a short grace) and sampling. */
  async stop(): Promise<void> {
    clearInterval(this.#sampler);
    this.#eventLoopLag.stop();
    const httpServer = this.#httpServer;
    this.#httpServer = undefined;
    if (httpServer === undefined) return;
    await raceAbort(
      httpServer.shutdown(),
      AbortSignal.timeout(MONITOR_STOP_GRACE_MS),
      () => undefined,
    );
  }

  /** This server's status now (what `GET /status` answers). */
  status(): ServerStatus {
    const { name, config, provider, address, server } = this.#options;
    return buildServerStatus({
      name,
      config,
      provider,
      monitorAddress: address,
      server,
      rates: this.#rates,
      eventLoopLag: this.#eventLoopLag,
      nowMs: performance.now(),
    });
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    // The live page's shell holds no data, and a browser cannot put a header on a
    // navigation: it is served without the token; its `/events` needs it like the rest.
    const isPageShell = url.pathname === "/" && this.#options.livePage !== undefined;
    if (!isPageShell && !this.#authorized(request)) {
      return json(401, { error: "unauthorized" }, { "www-authenticate": 'Bearer realm="herd"' });
    }
    if (url.pathname === "/" || url.pathname === "/events") {
      const { livePage } = this.#options;
      return livePage === undefined ? json(404, { error: "not found" }) : livePage.handle(request);
    }
    const route = this.#routes.get(url.pathname);
    if (route === undefined) return json(404, { error: "not found" });
    if (request.method !== "GET") {
      return json(405, { error: "method not allowed" }, { allow: "GET" });
    }
    return await route(url);
  }

  /** With a token: the request's bearer token, compared in constant time. */
  #authorized(request: Request): boolean {
    if (this.#tokenDigest === undefined) return true;
    const header = request.headers.get("authorization") ?? "";
    const isBearer = header.slice(0, BEARER_PREFIX.length).toLowerCase() === BEARER_PREFIX;
    const presented = isBearer ? header.slice(BEARER_PREFIX.length) : "";
    return isBearer && timingSafeEqual(tokenDigest(presented), this.#tokenDigest);
  }

  /**
   * 200 while serving; 503 while loading or stopping, and with `?links=all` also while a
   * configured link is down (naming those links): a load balancer's or a probe's answer.
   */
  #health(url: URL): Response {
    const { server } = this.#options;
    const links = url.searchParams.get("links");
    if (links !== null && links !== "all") {
      return json(400, { error: 'the only "links" value is "all"' });
    }
    if (server.state !== "serving") return json(503, { status: server.state });
    if (links === "all") {
      const down = server.peers.linkReports().filter((link) => link.state !== "up");
      if (down.length > 0) {
        return json(503, { status: "link down", links: down.map((link) => link.peer) });
      }
    }
    return json(200, { status: "ok" });
  }

  #metrics(): Response {
    const text = this.#exposition.text(this.status());
    return new Response(text, {
      headers: { "content-type": this.#exposition.contentType, "cache-control": "no-store" },
    });
  }

  #sampleRates(): void {
    const nowMs = performance.now();
    for (const [key, total] of rateTotals(this.#options.server)) {
      this.#rates.sample(key, total, nowMs);
    }
  }
}
