/**
 * `herd --name NAME …`, the server's own start-up: flags, config, provider, limits fitted to
 * the machine, the server, its monitor and live page; warnings printed once; a graceful stop
 * on SIGINT/SIGTERM. main.ts only picks the subcommand and turns errors into exit codes.
 */
import { choosePlacesProvider, parseCli, UsageError } from "./cli.ts";
import { formatAddress, loadConfig, type ServerAddress } from "./config.ts";
import { Counters } from "./counters.ts";
import { type Logger, setupLogging } from "./log.ts";
import { createPlacesProvider } from "./places/select.ts";
import { PeerSecret, peerSecretWarnings } from "./peer_auth.ts";
import { raiseOpenFilesLimit } from "./open_files.ts";
import { fitLimitsToMachine } from "./machine_fit.ts";
import { getHeapStatistics } from "node:v8";
import { HerdServer } from "./server.ts";
import { HerdMetrics } from "./metrics.ts";
import { isLoopbackHost, Monitor, MonitorListenError } from "./monitor.ts";
import { HerdView } from "./herd_view.ts";
import { LivePage } from "./live_page.ts";
import type { ServerStatus } from "./server_status.ts";
import { readTlsFiles } from "./tls_files.ts";

/** After a first signal, the latest moment to be gone (the contract allows 3 s). */
const STOP_DEADLINE_MS = 2800;
/**
 * Set by `deno task herd:all` in each server's environment: it prints the warnings that
 * concern the whole herd once, so its servers only log them.
 */
const LAUNCHED_BY_HERD_ALL = "HERD_LAUNCHED_BY";

/**
 * `herd --name NAME …`: starts the server, its monitor and live page, and serves until a
 * signal stops it; resolves with the exit code. Start-up problems throw UsageError,
 * ConfigError, TlsFilesError or DataDirError (exit 2) or resolve 1 (a port in use).
 */
export async function runServeCommand(args: string[]): Promise<number> {
  const options = parseCli(args);
  const givenConfig = await loadConfig(options.configPath);
  if (!givenConfig.servers.has(options.name)) {
    throw new UsageError(
      `--name ${options.name} is not a server in the config (${
        [...givenConfig.servers.keys()].join(", ")
      })`,
    );
  }
  const apiKey = Deno.env.get("GOOGLE_PLACES_API_KEY");
  const providerName = choosePlacesProvider(options.places, {
    apiKey,
    placesApi: Deno.env.get("HERD_PLACES_API"),
  });
  const secretText = Deno.env.get("HERD_SECRET");
  if (secretText === "") {
    throw new UsageError("HERD_SECRET is empty: set it to a long random secret, or unset it");
  }
  const peerSecret = secretText === undefined ? undefined : await PeerSecret.fromText(secretText);
  const monitorAddress = options.monitor === undefined
    ? givenConfig.servers.get(options.name)!.monitor
    : options.monitor ?? undefined;
  const monitorToken = readMonitorToken(monitorAddress);
  const ownTls = givenConfig.servers.get(options.name)!.tls;
  const tls = givenConfig.tls && ownTls &&
    await readTlsFiles({ caPath: givenConfig.tls.caPath, ...ownTls });
  const counters = new Counters();
  const { logger, close: closeLog } = await setupLogging({
    dir: options.logDir,
    name: options.name,
    level: options.logLevel,
    format: options.logFormat,
    maxBytes: options.logMaxBytes,
    files: options.logFiles,
    onDropped: (records) => counters.add("log_records_dropped", records),
  });
  const openFiles = raiseOpenFilesLimit();
  const heapLimitBytes = getHeapStatistics().heap_size_limit;
  const fitted = fitLimitsToMachine(givenConfig.limits, givenConfig.limitsGiven, {
    openFilesSoft: openFiles?.soft,
    heapLimitBytes,
  });
  const config = { ...givenConfig, limits: fitted.limits };
  if (openFiles !== undefined) {
    logger.info("open-files limit: soft {soft}, hard {hard}", { ...openFiles });
  }
  for (const note of fitted.notes) logger.info(note);
  logger.info(
    "heap limit {heapLimitBytes} bytes; the store holds at most {clientsMax} clients and {storeBytesMax} bytes",
    {
      heapLimitBytes,
      clientsMax: config.limits.clientsMax,
      storeBytesMax: config.limits.storeBytesMax,
    },
  );
  // Only a server with a monitor pays for its histograms.
  const metrics = monitorAddress && new HerdMetrics();
  const places = createPlacesProvider(providerName, {
    apiKey: apiKey ?? "",
    baseUrl: options.placesUrl,
    fieldTier: config.placesFields,
    limits: config.limits,
    logger,
    counters,
    metrics,
  });
  keepServingOnBugs(logger);
  // Where it listens, which with `bind` may differ from the host its neighbours dial.
  const { bind, port } = config.servers.get(options.name)!;
  const server = new HerdServer({
    name: options.name,
    config,
    places,
    logger,
    counters,
    dataDir: options.dataDir,
    peerSecret,
    tls,
    metrics,
  });
  const livePage = monitorAddress && new LivePage({
    view: new HerdView({
      config,
      serverName: options.name,
      ownStatus: (): ServerStatus => monitor!.status(),
      store: server.store,
      monitorToken,
      monitorCa: tls?.ca,
    }),
    subscribersMax: config.limits.monitorSubscribersMax,
    logger,
    counters,
  });
  const monitor = monitorAddress && new Monitor({
    name: options.name,
    config,
    provider: providerName,
    server,
    address: monitorAddress,
    token: monitorToken,
    metrics: metrics!,
    logger,
    livePage,
    tls,
  });
  try {
    await server.start({ onListening: () => monitor?.start() });
  } catch (error) {
    await closeLog();
    if (error instanceof MonitorListenError) {
      console.error(`herd: ${error.message}`);
      return 1;
    }
    if ((error as { code?: string }).code === "EADDRINUSE") {
      console.error(`herd: ${options.name} cannot listen on ${bind}:${port}: address in use`);
      return 1;
    }
    throw error;
  }
  const herdWideWarnings = [
    ...config.warnings,
    ...peerSecretWarnings(secretText, { tls: tls !== undefined }),
  ];
  const printedByLauncher = Deno.env.get(LAUNCHED_BY_HERD_ALL) === "herd:all";
  for (const warning of [...fitted.warnings, ...herdWideWarnings]) {
    logger.warn(warning);
    if (printedByLauncher && herdWideWarnings.includes(warning)) continue;
    console.error(`herd: ${options.name}: warning: ${warning}`);
  }
  const herd = {
    stop: async () => {
      await server.stop();
      livePage?.close(); // its streams would otherwise hold the monitor's stop
      await monitor?.stop(); // after the server: /healthz says "stopping" meanwhile
    },
  };
  // Listening for signals before saying "listening": whoever waits for that line (herd:all,
  // a supervisor, a test) may send SIGINT at once, and must get a graceful stop.
  const stoppedOnSignal = stopOnSignal(herd, closeLog, logger.info.bind(logger));
  const monitorShown = monitor ? `monitor ${monitor.address}` : "no monitor";
  console.log(
    `${options.name} listening on ${bind}:${port} (places: ${providerName}, ${monitorShown})`,
  );
  logger.info(
    "started {name} on {address} places={places} monitor={monitor} limits={limits} neighbours={peers} logs={logs}",
    {
      logs:
        `${options.logFormat}, ${options.logFiles} files of at most ${options.logMaxBytes} bytes`,
      name: options.name,
      address: `${bind}:${port}`,
      monitor: monitor?.address ?? "none",
      places: providerName,
      limits: JSON.stringify(config.limits),
      peers: config.neighbours.get(options.name)!.join(",") || "none",
    },
  );
  return await stoppedOnSignal;
}

/**
 * HERD_MONITOR_TOKEN, read once: required for a monitor anyone but this machine can reach
 * (UsageError without it), and never empty.
 */
function readMonitorToken(address: ServerAddress | undefined): string | undefined {
  const token = Deno.env.get("HERD_MONITOR_TOKEN");
  if (token === "") {
    throw new UsageError("HERD_MONITOR_TOKEN is empty: set it to a long random token, or unset it");
  }
  if (address !== undefined && token === undefined && !isLoopbackHost(address.host)) {
    throw new UsageError(
      `the monitor on ${formatAddress(address)} is not on loopback: set HERD_MONITOR_TOKEN ` +
        "(every request must then carry it), or use a loopback address or --monitor off",
    );
  }
  return token;
}

/**
 * A bug in one connection's handling must not take every other client down with it: an
 * uncaught error or unhandled rejection is logged instead of ending the process.
 */
function keepServingOnBugs(logger: Logger): void {
  const report = (kind: string, error: unknown) =>
    logger.error("{kind} (server keeps running): {error}", {
      kind,
      error: error instanceof Error ? error.stack ?? error.message : String(error),
    });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report("unhandled rejection", event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    report("uncaught error", event.error);
  });
}

/** Waits for SIGINT/SIGTERM, stops gracefully; a second signal exits 1 at once. */
function stopOnSignal(
  server: { stop(): Promise<void> },
  closeLog: () => Promise<void>,
  log: (message: string) => void,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) Deno.exit(1);
      stopping = true;
      log("stopping on signal");
      setTimeout(() => Deno.exit(0), STOP_DEADLINE_MS);
      server.stop().then(() => {
        log("stopped");
        return closeLog();
      }).then(() => resolve(0));
    };
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  });
}
