/**
 * One herd server: listens on its port, tells clients from neighbours by the first line,
 * enforces the connection limits (count, idle time), logs counters every minute, and stops
 * gracefully. The decisions about lines live in the service, those about links in peers.
 */
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { deadlineAfter, raceAbort, systemWaitClock, type WaitClock } from "./abortable.ts";
import type { Config } from "./config.ts";
import { LineConnection } from "./connection.ts";
import { NodeSocketConn } from "./node_socket.ts";
import { ClientSession, type ClientSessionOptions } from "./client_session.ts";
import type { Counters } from "./counters.ts";
import type { Logger } from "./log.ts";
import type { HerdMetrics } from "./metrics.ts";
import type { PeerSecret } from "./peer_auth.ts";
import type { Line } from "./lines.ts";
import { startsAsPeerHello } from "./peer_protocol.ts";
import { dialTcp, PeerLinks, tlsDialer } from "./peers.ts";
import { atLineBytesMax, isAtLineBytes } from "./protocol.ts";
import type { DataDirStatus, ServerState } from "./server_status.ts";
import { HerdService } from "./service.ts";
import { ClientStore } from "./store.ts";
import {
  type LoadReport,
  type LogFileSystem,
  RECORD_PREFIX_BYTES,
  recordRoomOf,
  UpdateLog,
  updateLogPath,
} from "./update_log.ts";
import { OneLineError } from "./errors.ts";
import type { PlacesProvider } from "./places/provider.ts";
import { SharedLookups } from "./places/shared.ts";
import type { TlsFiles } from "./tls_files.ts";

const COUNTERS_LOG_INTERVAL_MS = 60_000;
const IDLE_SWEEP_INTERVAL_MS_MAX = 1000;
/** How long a stop lets pending Places calls run before answering them UNKNOWN_ERROR. */
export const STOP_LOOKUP_GRACE_MS = 2000;
/** How long a stop then waits for replies and peer floods to be written before closing. */
const STOP_WRITE_GRACE_MS = 300;
/** How long a connection past connectionsMax may take to say it is a neighbour (contract). */
const PEER_HELLO_PAST_LIMIT_WAIT_MS = 1000;
/** Connections past connectionsMax waiting for their first line at once; more are closed. */
const PEER_HELLO_PAST_LIMIT_WAITS_MAX = 16;
/**
 * How long a TLS handshake may take. node's default (120 s) would let a silent or plain-text
 * connection hold a socket that connectionsMax does not yet count.
 */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The data dir cannot be created, read or written at start. */
export class DataDirError extends OneLineError {
  override name = "DataDirError";
}

export interface HerdServerOptions {
  name: string;
  config: Config;
  places: PlacesProvider;
  logger: Logger;
  /** Shared with whoever else reports (the Places provider's call log). */
  counters: Counters;
  /** Where accepted updates are kept across restarts; none when undefined. */
  dataDir?: string;
  /** The data dir's file system; tests fail chosen calls through it. Default the real one. */
  dataDirFileSystem?: LogFileSystem;
  /** HERD_SECRET, which every peer must prove it knows; peers are unauthenticated without. */
  peerSecret?: PeerSecret;
  /** With TLS (contract §7): the CA, this server's certificate and key, read at start. */
  tls?: TlsFiles;
  /** Wall-clock time for skews; default the system's. */
  clockNs?: () => bigint;
  /** Monotonic time and waiting, for idle connections and peer links; default the system's. */
  waitClock?: WaitClock;
  /** With a monitor: the histograms the hot paths observe into (lib/metrics.ts). */
  metrics?: HerdMetrics;
}

/** How {@link HerdServer.start} reports its progress. */
export interface HerdServerStartOptions {
  /**
   * Called once the port is bound, before the data dir loads (e.g. to start the monitor,
   * which reports `loading` meanwhile); what it throws fails the start.
   */
  onListening?: () => void;
}

/** Wall-clock time in integer nanoseconds, finer than Date.now() where the platform allows. */
export function systemClockNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

export class HerdServer {
  readonly counters: Counters;
  readonly store: ClientStore;
  readonly peers: PeerLinks;
  readonly #options: HerdServerOptions;
  readonly #waitClock: WaitClock;
  readonly #service: HerdService;
  /** What every client session is made with: one object for all of them. */
  readonly #sessionOptions: ClientSessionOptions;
  readonly #sessions = new Set<ClientSession>();
  /** Connections that said hello as a peer and are not links yet: they count as clients do. */
  readonly #handshakes = new Set<LineConnection>();
  #helloWaitsPastLimit = 0;
  readonly #stopLookups = new AbortController();
  readonly #updateLog: UpdateLog | undefined;
  /** Resolves once what the data dir holds is loaded: connections wait for it. */
  readonly #loaded = Promise.withResolvers<void>();
  #listener: Server | undefined;
  #timers: ReturnType<typeof setInterval>[] = [];
  #state: ServerState = "loading";

  constructor(options: HerdServerOptions) {
    this.#options = options;
    this.#waitClock = options.waitClock ?? systemWaitClock;
    const { config, name, logger } = options;
    this.counters = options.counters;
    this.store = new ClientStore({
      clientsMax: config.limits.clientsMax,
      storeBytesMax: config.limits.storeBytesMax,
      onStored: (atLine) => this.#updateLog?.append(atLine),
    });
    const updateLog = options.dataDir === undefined ? undefined : new UpdateLog({
      path: updateLogPath(options.dataDir, name),
      latest: this.store,
      logger,
      counters: this.counters,
      // Neighbours' AT lines are kept too: any server of the config may have made one.
      recordBytesMax: RECORD_PREFIX_BYTES + atLineBytesMax(
        config.limits.lineBytesMax,
        Math.max(...[...config.servers.keys()].map((server) => server.length)),
      ),
      backlogMax: config.limits.dataDirBacklogMax,
      fileSystem: options.dataDirFileSystem,
    });
    this.#updateLog = updateLog;
    this.peers = new PeerLinks({
      serverName: name,
      neighbours: config.neighbours.get(name)!,
      addresses: config.servers,
      store: this.store,
      lineBytesMax: config.limits.lineBytesMax,
      heartbeatMs: config.limits.peerHeartbeatMs,
      logger,
      counters: this.counters,
      secret: options.peerSecret,
      certificateRequired: options.tls !== undefined,
      dial: options.tls === undefined ? dialTcp : tlsDialer(options.tls),
      clock: this.#waitClock,
      random: Math.random,
      // Links are not read while the data dir is behind: their updates would only wait.
      readGate: updateLog &&
        (() => updateLog.backlogged ? updateLog.whenBelowBacklog() : undefined),
      metrics: options.metrics,
    });
    this.#service = new HerdService({
      serverName: name,
      store: this.store,
      places: new SharedLookups(options.places, this.counters),
      placesTimeoutMs: config.limits.placesTimeoutMs,
      clockNs: options.clockNs ?? systemClockNs,
      flood: (update) => this.peers.flood(update),
      committed: updateLog && (() => updateLog.committed()),
      acceptsUpdates: updateLog && (() => !updateLog.backlogged),
      logger,
      counters: this.counters,
    });
    this.#sessionOptions = {
      service: this.#service,
      linesInFlightMax: config.limits.linesInFlightMax,
      logger,
      counters: this.counters,
      clockMs: () => this.#waitClock.nowMs(),
      clockNs: options.clockNs ?? systemClockNs,
      stopSignal: this.#stopLookups.signal,
      metrics: options.metrics,
    };
  }

  /**
   * Binds the port on the server's `bind` address (rejects with the system's error, e.g. code
   * EADDRINUSE, if it cannot), loads the data dir (the port, held, keeps a second copy of this
   * server off the same files), then serves and dials neighbours in the background.
   */
  async start(options: HerdServerStartOptions = {}): Promise<void> {
    const address = this.#options.config.servers.get(this.#options.name)!;
    const listener = this.#createListener();
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen({ host: address.bind, port: address.port }, () => {
        listener.off("error", reject);
        resolve();
      });
    });
    listener.on("error", (error) => {
      this.#options.logger.warn("listener error: {error}", { error: String(error) });
    });
    this.#listener = listener;
    try {
      options.onListening?.();
    } catch (error) {
      listener.close();
      this.#listener = undefined;
      throw error;
    }
    await this.#loadDataDir();
    this.#loaded.resolve();
    if (this.#state === "loading") this.#state = "serving";
    this.peers.start();
    const { idleTimeoutMs } = this.#options.config.limits;
    this.#timers.push(
      setInterval(() => this.#closeIdle(), Math.min(idleTimeoutMs, IDLE_SWEEP_INTERVAL_MS_MAX)),
      setInterval(() => this.logCounters(), COUNTERS_LOG_INTERVAL_MS),
    );
  }

  /**
   * A plain `node:net` listener, or with TLS a `node:tls` one on the same port for clients
   * and peers: it asks every connection for a certificate without requiring one (clients
   * have none), and what the certificate proves is checked when a connection says hello as
   * a peer. Connections are served only once their handshake is done.
   */
  #createListener(): Server {
    const { tls, logger } = this.#options;
    const socketOptions = { allowHalfOpen: true, noDelay: true };
    if (tls === undefined) return createServer(socketOptions, (socket) => this.#accept(socket));
    const listener = createTlsServer({
      ...socketOptions,
      ...tls,
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    }, (socket) => this.#accept(socket));
    listener.on("tlsClientError", (error, socket) => {
      // Plain text on a TLS port, a client that distrusts our certificate, a timeout.
      this.counters.add("tls_handshake_failures");
      // The address may be gone already when the other end has closed.
      logger.info("TLS handshake with {remote} failed: {error}", {
        remote: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
        error: error.message,
      });
    });
    return listener;
  }

  /** Loading the data dir (lines wait), serving, or stopping. */
  get state(): ServerState {
    return this.#state;
  }

  /** Open client connections, and neighbours' connections not yet links. */
  get connectionCounts(): { clients: number; handshakes: number } {
    return { clients: this.#sessions.size, handshakes: this.#handshakes.size };
  }

  /** The data dir's path and backlog; undefined without `--data-dir`. */
  get dataDirStatus(): DataDirStatus | undefined {
    const updateLog = this.#updateLog;
    if (updateLog === undefined) return undefined;
    return {
      path: updateLogPath(this.#options.dataDir!, this.#options.name),
      backlog: updateLog.backlog,
      backlogged: updateLog.backlogged,
      writeFailures: this.counters.get("data_dir_write_failures"),
    };
  }

  logCounters(): void {
    this.#options.logger.info("counters: clients={clients} links={links} {counters}", {
      clients: this.store.size,
      links: this.peers.linkedPeers.join(",") || "none",
      counters: this.counters.format(),
    });
  }

  /**
   * Stops accepting and reading, answers the lines already read (lookups still pending after
   * {@link STOP_LOOKUP_GRACE_MS} get the UNKNOWN_ERROR body), closes every connection.
   */
  async stop(): Promise<void> {
    this.#state = "stopping";
    for (const timer of this.#timers) clearInterval(timer);
    this.#listener?.close();
    this.#listener = undefined;
    const graceTimer = setTimeout(() => this.#stopLookups.abort(), STOP_LOOKUP_GRACE_MS);
    const sessionsDone = [...this.#sessions].map((session) => {
      const closed = new Promise<void>((resolve) => session.connection.onClose(() => resolve()));
      session.stop();
      return closed;
    });
    // A client that does not read its replies must not hold the stop past its deadline.
    const closeTimeout = AbortSignal.timeout(STOP_LOOKUP_GRACE_MS + STOP_WRITE_GRACE_MS);
    await raceAbort(Promise.all(sessionsDone), closeTimeout, () => undefined);
    for (const session of this.#sessions) session.connection.close("server stopping");
    clearTimeout(graceTimer);
    await raceAbort(this.peers.stop(), AbortSignal.timeout(STOP_WRITE_GRACE_MS), () => undefined);
    this.peers.closeAll();
    await this.#updateLog?.close();
    this.logCounters();
  }

  /** Loads the updates kept in the data dir, then rewrites it with the latest of each. */
  async #loadDataDir(): Promise<void> {
    const { dataDir, logger } = this.#options;
    if (this.#updateLog === undefined) return;
    const startedMs = performance.now();
    let report: LoadReport;
    try {
      await Deno.mkdir(dataDir!, { recursive: true });
      this.store.reserve(await recordRoomOf(updateLogPath(dataDir!, this.#options.name)));
      report = await this.#updateLog.load((bytes, start, end) => {
        const isWellFormed = isAtLineBytes(bytes, start, end);
        if (isWellFormed) this.store.restore(bytes, start, end);
        return isWellFormed;
      });
      await this.#updateLog.open();
    } catch (error) {
      throw new DataDirError(`--data-dir ${dataDir}: ${(error as Error).message}`);
    }
    const level = report.skipped > 0 ? "warn" : "info";
    logger[level](
      "data dir {path}: {clients} clients from {records} records ({skipped} torn or damaged, skipped; {malformed} of them malformed) in {ms} ms",
      {
        path: updateLogPath(dataDir!, this.#options.name),
        clients: this.store.size,
        records: report.records,
        skipped: report.skipped,
        malformed: report.malformed,
        ms: Math.round(performance.now() - startedMs),
      },
    );
  }

  #accept(socket: Socket): void {
    const { limits } = this.#options.config;
    const connection = new LineConnection(new NodeSocketConn(socket), {
      lineBytesMax: limits.lineBytesMax,
      outputBytesMax: limits.outputBytesMax,
    });
    if (this.#listener === undefined) {
      connection.close("server stopping");
      return;
    }
    if (this.#sessions.size + this.#handshakes.size >= limits.connectionsMax) {
      this.#admitNeighbourOnly(connection);
      return;
    }
    this.#serve(connection);
  }

  /**
   * Past connectionsMax a connection is kept only if its first line, within
   * {@link PEER_HELLO_PAST_LIMIT_WAIT_MS}, is a neighbour's hello: a herd whose clients fill
   * every slot must still link. Any other is closed without a reply.
   */
  async #admitNeighbourOnly(connection: LineConnection): Promise<void> {
    let first: Line[] | null = null;
    if (this.#helloWaitsPastLimit < PEER_HELLO_PAST_LIMIT_WAITS_MAX) {
      this.#helloWaitsPastLimit += 1;
      const deadline = deadlineAfter(PEER_HELLO_PAST_LIMIT_WAIT_MS);
      first = await raceAbort(firstLines(connection), deadline.signal, () => null);
      deadline.clear();
      this.#helloWaitsPastLimit -= 1;
    }
    if (first !== null && this.peers.isNeighbourHello(first[0])) {
      await this.#loaded.promise;
      await this.#handOverToPeers(connection, first);
      return;
    }
    this.counters.add("limit_connections_max");
    this.#options.logger.warn("connectionsMax reached: closed {remote} without reply", {
      remote: connection.remote,
    });
    connection.close("connectionsMax");
  }

  async #serve(connection: LineConnection): Promise<void> {
    const { logger } = this.#options;
    const session = new ClientSession(connection, this.#sessionOptions);
    this.#sessions.add(session);
    this.counters.add("connections_accepted");
    logger.debug("client {remote} connected", { remote: connection.remote });
    connection.onClose((reason) => {
      if (!this.#sessions.delete(session)) return; // became a peer link: peers log it
      if (reason === "output limit") this.counters.add("limit_output_bytes");
      const level = reason === "done" ? "debug" : "warn";
      logger[level]("client {remote} closed: {reason}", { remote: connection.remote, reason });
    });
    await this.#loaded.promise;
    const first = await firstLines(connection);
    if (first !== null && startsAsPeerHello(first[0].text)) {
      this.#sessions.delete(session);
      await this.#handOverToPeers(connection, first);
      return;
    }
    return session.serve(first ?? []);
  }

  /** Lets the peers module make a link of a hello's connection, counted until it is one. */
  async #handOverToPeers(connection: LineConnection, first: Line[]): Promise<void> {
    this.#handshakes.add(connection);
    try {
      await this.peers.accept(connection, first);
    } finally {
      this.#handshakes.delete(connection);
    }
  }

  #closeIdle(): void {
    const { idleTimeoutMs } = this.#options.config.limits;
    const now = this.#waitClock.nowMs();
    for (const session of this.#sessions) {
      if (now - session.lastReadMs >= idleTimeoutMs) {
        this.counters.add("limit_idle_timeout");
        session.connection.close("idle timeout");
      }
    }
  }
}

/**
 * The lines of a connection's first read that brings any, or null if it ends first. A loop,
 * not a chain of promises: a client trickling a line a byte a read must not lengthen one.
 */
async function firstLines(connection: LineConnection): Promise<Line[] | null> {
  let lines: Line[] | null = [];
  while (lines !== null && lines.length === 0) lines = await connection.readLines();
  return lines;
}
