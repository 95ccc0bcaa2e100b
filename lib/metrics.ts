/**
 * herd's Prometheus metrics: the fixed-bucket histograms the hot paths observe into (reply
 * latency, Places upstream latency, event-loop lag, flood age), and the exposition of one
 * server's metrics in the text format 0.0.4 (written by `prometheus_text.ts`).
 *
 * Counters and gauges are not counted here: at each scrape they are read from the
 * server's {@link ServerStatus} (its `Counters`, store, links), so nothing is counted twice
 * on the hot path. Every label value comes from a fixed set — commands, providers, Places
 * statuses, limit names, configured neighbours — never from a client or an upstream.
 *
 * Knows nothing of sockets, HTTP or the server's classes: only the status shape and the
 * names of the counters it exposes.
 */
import type { Limits } from "./config.ts";
import { PLACES_STATUSES } from "./places/provider.ts";
import type { ServerState, ServerStatus } from "./server_status.ts";
import { HERD_VERSION } from "./version.ts";
import {
  formatMetricFamilies,
  type MetricFamily,
  type MetricSample,
  PROMETHEUS_TEXT_CONTENT_TYPE,
} from "./prometheus_text.ts";

/** The `command` label of a reply: a valid IAMAT or WHATSAT, or any line answered `?`. */
export const REPLY_COMMANDS = ["IAMAT", "WHATSAT", "invalid"] as const;
const REPLY_IAMAT = 0;
const REPLY_WHATSAT = 1;
const REPLY_INVALID = 2;

/** The providers that make upstream calls (the offline one makes none). */
export const UPSTREAM_PROVIDERS = ["google", "google-new"] as const;

/** From 50 µs (an IAMAT handled in memory) to 10 s (a WHATSAT at a long placesTimeoutMs). */
export const REPLY_LATENCY_BUCKETS_SECONDS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];
/** One upstream attempt: tens of milliseconds when well, up to the Places deadline. */
export const PLACES_LATENCY_BUCKETS_SECONDS = [
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];
/** How late a 10 ms timer fired: under a millisecond when idle, seconds when stalled. */
export const EVENT_LOOP_LAG_BUCKETS_SECONDS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];
/**
 * Now minus the origin's receive time: sub-millisecond between servers of one host, and
 * negative buckets because across hosts it includes their clocks' difference.
 */
export const FLOOD_AGE_BUCKETS_SECONDS = [
  -1,
  -0.1,
  -0.01,
  0,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  60,
];

/**
 * The counter each limit's hits are counted under (see the contract's limits table);
 * `herd_limits_hit_total{limit}` takes its label values from these keys.
 */
export const LIMIT_COUNTERS: Readonly<Partial<Record<keyof Limits, string>>> = {
  connectionsMax: "limit_connections_max",
  outputBytesMax: "limit_output_bytes",
  idleTimeoutMs: "limit_idle_timeout",
  linesInFlightMax: "limit_lines_in_flight",
  lineBytesMax: "limit_line_bytes",
  clientsMax: "limit_clients_max",
  storeBytesMax: "limit_store_bytes",
  dataDirBacklogMax: "limit_data_dir_backlog",
  placesQueueMax: "limit_places_queue",
  placesTimeoutMs: "places_timeouts",
  monitorSubscribersMax: "limit_monitor_subscribers",
};

/** The `Counters` name of the IAMATs refused (store bounds or data-dir backlog). */
export const IAMAT_REFUSED_COUNTER = "iamat_refused";

export interface BucketHistogramOptions {
  /** The metric's name, ending in its base unit (`_seconds`). */
  name: string;
  help: string;
  /** Upper bounds, ascending; `+Inf` is added. */
  buckets: readonly number[];
  /** One label and its fixed values; the histogram keeps one series per value. */
  label?: { name: string; values: readonly string[] };
}

/**
 * A histogram whose observe is an array increment: no allocation, no label hashing
 * (prom-client's Histogram, used before, allocated and hashed on every observe: 250–440 ns
 * measured here, against ~5 ns).
 */
export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly #bounds: Float64Array;
  readonly #label: { name: string; values: readonly string[] } | undefined;
  /** Per label value: one count per bound and one past the last (`+Inf`). */
  readonly #counts: Float64Array;
  readonly #sums: Float64Array;

  constructor(options: BucketHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = Float64Array.from(options.buckets);
    this.#label = options.label;
    const series = options.label?.values.length ?? 1;
    this.#counts = new Float64Array(series * (this.#bounds.length + 1));
    this.#sums = new Float64Array(series);
  }

  /** Counts `value` in the series of label value number `series` (0 when unlabelled). */
  observe(value: number, series = 0): void {
    const bounds = this.#bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]) bucket += 1;
    this.#counts[series * (bounds.length + 1) + bucket] += 1;
    this.#sums[series] += value;
  }

  /** Observations of one series so far. */
  count(series = 0): number {
    const width = this.#bounds.length + 1;
    return this.#counts.subarray(series * width, (series + 1) * width).reduce((a, b) => a + b, 0);
  }

  /** The family as exposed: per series, cumulative buckets, then sum and count. */
  family(): MetricFamily {
    const samples: MetricSample[] = [];
    const labelValues = this.#label?.values ?? [undefined];
    const width = this.#bounds.length + 1;
    for (const [series, labelValue] of labelValues.entries()) {
      const labels: Record<string, string> = this.#label === undefined || labelValue === undefined
        ? {}
        : { [this.#label.name]: labelValue };
      let cumulative = 0;
      for (let bucket = 0; bucket < width; bucket++) {
        cumulative += this.#counts[series * width + bucket];
        const le = bucket < this.#bounds.length ? String(this.#bounds[bucket]) : "+Inf";
        samples.push({ name: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      }
      samples.push({ name: `${this.name}_sum`, labels, value: this.#sums[series] });
      samples.push({ name: `${this.name}_count`, labels, value: cumulative });
    }
    return { name: this.name, help: this.help, type: "histogram", samples };
  }
}

/** Wall-clock time in seconds, as fine as the platform gives (the skew's clock). */
export function wallClockSeconds(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}

/**
 * When the origin server received an AT line's IAMAT, in seconds since the epoch: the
 * client's time plus the skew (`AT <origin> <skew> <id> <location> <time>`). Reads the
 * fields in place (no substring, no allocation); NaN when the line is not an AT line.
 *
 * @example
 * ```ts
 * originReceivedSeconds("AT Hill +0.5 kiwi +34-118 1700000000.25"); // 1700000000.75
 * ```
 */
export function originReceivedSeconds(atLine: string): number {
  const skewStart = atLine.indexOf(" ", 3) + 1;
  const skewEnd = atLine.indexOf(" ", skewStart);
  const timeStart = atLine.lastIndexOf(" ") + 1;
  if (!atLine.startsWith("AT ") || skewStart === 0 || skewEnd < 0 || timeStart <= skewEnd) {
    return NaN;
  }
  return decimalAt(atLine, timeStart, atLine.length) + decimalAt(atLine, skewStart, skewEnd);
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** A `[+-]digits[.digits]` decimal read from `text[start, end)`; NaN if it is not one. */
function decimalAt(text: string, start: number, end: number): number {
  let index = start;
  const sign = text.charCodeAt(index) === 0x2d ? -1 : 1;
  if (text.charCodeAt(index) === 0x2b || sign < 0) index += 1;
  let whole = 0;
  let fraction = 0;
  let scale = 1;
  let inFraction = false;
  let digits = 0;
  for (; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x2e && !inFraction) {
      inFraction = true;
      continue;
    }
    if (code < DIGIT_0 || code > DIGIT_9) return NaN;
    digits += 1;
    if (inFraction) {
      scale /= 10;
      fraction += (code - DIGIT_0) * scale;
    } else {
      whole = whole * 10 + (code - DIGIT_0);
    }
  }
  return digits === 0 ? NaN : sign * (whole + fraction);
}

/**
 * The `command` series of a reply: `invalid` for a `?` reply, else the line's command — a
 * reply other than `?` only answers a valid IAMAT or WHATSAT, whose first non-blank
 * character tells which. Reads at most the line's leading blanks.
 */
export function replyCommandSeries(lineText: string, replyFirstByte: number): number {
  if (replyFirstByte === 0x3f) return REPLY_INVALID;
  let index = 0;
  while (index < lineText.length && lineText.charCodeAt(index) <= 0x20) index += 1;
  return lineText.charCodeAt(index) === 0x57 ? REPLY_WHATSAT : REPLY_IAMAT;
}

/** The histograms one server's hot paths observe into; one per server (tests run several). */
export class HerdMetrics {
  readonly replyLatency = new BucketHistogram({
    name: "herd_reply_latency_seconds",
    help: "Time from acting on the lines of a client read to a reply being ready, by command.",
    buckets: REPLY_LATENCY_BUCKETS_SECONDS,
    label: { name: "command", values: REPLY_COMMANDS },
  });
  readonly placesLatency = new BucketHistogram({
    name: "herd_places_upstream_latency_seconds",
    help: "Time of one upstream Places call, from request to whole body, by provider.",
    buckets: PLACES_LATENCY_BUCKETS_SECONDS,
    label: { name: "provider", values: UPSTREAM_PROVIDERS },
  });
  readonly eventLoopLag = new BucketHistogram({
    name: "herd_event_loop_lag_seconds",
    help: "How late a 10 ms timer fired: how long every client waited behind other work.",
    buckets: EVENT_LOOP_LAG_BUCKETS_SECONDS,
  });
  readonly floodAge = new BucketHistogram({
    name: "herd_flood_age_seconds",
    help: "On receipt of a live flood: now minus the origin's receive time (client time " +
      "plus skew); across hosts it includes their clock difference.",
    buckets: FLOOD_AGE_BUCKETS_SECONDS,
  });

  /** Observes a reply's latency in the series {@link replyCommandSeries} gives. */
  observeReply(series: number, seconds: number): void {
    this.replyLatency.observe(seconds, series);
  }

  /** Observes one upstream Places call of `provider` (ignored for one without calls). */
  observePlacesCall(provider: string, latencyMs: number): void {
    const series = (UPSTREAM_PROVIDERS as readonly string[]).indexOf(provider);
    if (series >= 0) this.placesLatency.observe(latencyMs / 1000, series);
  }

  /** Observes a live flood's age at `nowSeconds` (wall clock); skips a line it cannot read. */
  observeFloodAge(atLine: string, nowSeconds: number): void {
    const ageSeconds = nowSeconds - originReceivedSeconds(atLine);
    if (Number.isFinite(ageSeconds)) this.floodAge.observe(ageSeconds);
  }
}

/** Labels and value of one series of a counter or gauge read from a status. */
type Series = readonly [labels: Record<string, string>, value: number];

const SERVER_STATES: readonly ServerState[] = ["loading", "serving", "stopping"];
const LINK_DIRECTIONS = ["sent", "received"] as const;

/** `herd_lines_total{kind,outcome}`: each series and the `Counters` name it reads. */
const LINE_OUTCOMES: ReadonlyArray<readonly [kind: string, outcome: string, counter: string]> = [
  ["IAMAT", "stored", "iamat_stored"],
  ["IAMAT", "stale", "iamat_stale"],
  ["IAMAT", "refused", IAMAT_REFUSED_COUNTER],
  ["WHATSAT", "answered", "whatsat"],
  ["WHATSAT", "unknown_client", "whatsat_unknown_client"],
  ["invalid", "malformed", "lines_invalid"],
  ["invalid", "too_long", "limit_line_bytes"],
];

/** `herd_peer_events_total{event}`: link troubles, each with its `Counters` name. */
const PEER_EVENTS: ReadonlyArray<readonly [event: string, counter: string]> = [
  ["hello_refused", "peer_hello_refused"],
  ["version_refused", "peer_version_refused"],
  ["auth_failed", "peer_auth_failed"],
  ["heartbeat_missed", "peer_heartbeats_missed"],
  ["line_refused", "peer_lines_refused"],
];

/** Counters without labels: metric name, help, and the `Counters` name read at scrape. */
const PLAIN_COUNTERS: ReadonlyArray<readonly [name: string, help: string, counter: string]> = [
  ["herd_lines_received_total", "Client lines read (valid or not).", "lines_received"],
  ["herd_connections_accepted_total", "Client connections accepted.", "connections_accepted"],
  [
    "herd_slow_reader_pauses_total",
    "Times a client's lines waited for it to read its replies.",
    "slow_reader_pauses",
  ],
  ["herd_floods_sent_total", "Updates flooded to neighbours (one per link).", "floods_sent"],
  [
    "herd_floods_received_total",
    "Updates received from neighbours (live and catch-up).",
    "floods_received",
  ],
  [
    "herd_catch_up_updates_sent_total",
    "Updates sent to neighbours in catch-ups.",
    "catch_up_updates_sent",
  ],
  ["herd_peer_links_established_total", "Links to neighbours that came up.", "peer_links_up"],
  [
    "herd_tls_handshake_failures_total",
    "Accepted connections whose TLS handshake failed (e.g. plain text on a TLS port).",
    "tls_handshake_failures",
  ],
  ["herd_places_retries_total", "Upstream Places attempts that were retries.", "places_retries"],
  [
    "herd_places_shared_lookups_total",
    "WHATSATs answered by sharing a lookup already pending.",
    "places_shared_lookups",
  ],
  ["herd_data_dir_writes_total", "Batched writes to the data dir.", "data_dir_writes"],
  ["herd_data_dir_updates_written_total", "Updates written to the data dir.", "data_dir_updates"],
  [
    "herd_data_dir_write_failures_total",
    "Data-dir writes that failed (retried).",
    "data_dir_write_failures",
  ],
  [
    "herd_data_dir_compaction_failures_total",
    "Data-dir compactions that failed.",
    "data_dir_compaction_failures",
  ],
  [
    "herd_log_records_dropped_total",
    "Log records dropped because writing could not keep up (a slow, stalled or full disk).",
    "log_records_dropped",
  ],
  [
    "herd_monitor_subscribers_dropped_total",
    "Live-page subscribers dropped for not reading.",
    "monitor_subscribers_dropped",
  ],
];

export interface MetricsExpositionOptions {
  metrics: HerdMetrics;
  /** This server's configured neighbours: the fixed set of `peer` label values. */
  neighbours: readonly string[];
}

/** A metric whose series are read from the status at each scrape, all of them each time. */
interface StatusMetric {
  name: string;
  help: string;
  type: "counter" | "gauge";
  read: (status: ServerStatus) => Series[];
}

/**
 * One server's exposition: the histograms of {@link HerdMetrics}, and counters and gauges
 * that read the status given to {@link MetricsExposition.text} at scrape time.
 */
export class MetricsExposition {
  readonly #neighbours: readonly string[];
  readonly #histograms: readonly BucketHistogram[];
  readonly #statusMetrics: StatusMetric[] = [];

  constructor(options: MetricsExpositionOptions) {
    this.#neighbours = options.neighbours;
    const { metrics } = options;
    this.#histograms = [
      metrics.replyLatency,
      metrics.placesLatency,
      metrics.eventLoopLag,
      metrics.floodAge,
    ];
    this.#defineCounters();
    this.#defineGauges();
  }

  /** The Content-Type of {@link MetricsExposition.text}: the text format 0.0.4. */
  get contentType(): string {
    return PROMETHEUS_TEXT_CONTENT_TYPE;
  }

  /** Every metric as of `status`, in the Prometheus text format 0.0.4. */
  text(status: ServerStatus): string {
    const families = this.#histograms.map((histogram) => histogram.family());
    for (const { name, help, type, read } of this.#statusMetrics) {
      const samples = read(status).map(([labels, value]) => ({ name, labels, value }));
      families.push({ name, help, type, samples });
    }
    return formatMetricFamilies(families);
  }

  #counter(name: string, help: string, read: (status: ServerStatus) => Series[]): void {
    this.#statusMetrics.push({ name, help, type: "counter", read });
  }

  #gauge(name: string, help: string, read: (status: ServerStatus) => Series[]): void {
    this.#statusMetrics.push({ name, help, type: "gauge", read });
  }

  #defineCounters(): void {
    const counter = (status: ServerStatus, name: string) => status.counters[name] ?? 0;
    this.#counter(
      "herd_lines_total",
      "Client lines by kind and outcome.",
      (s) => LINE_OUTCOMES.map(([kind, outcome, name]) => [{ kind, outcome }, counter(s, name)]),
    );
    this.#counter(
      "herd_limits_hit_total",
      "Times a limit of the config was reached, by limit name.",
      (s) => Object.entries(LIMIT_COUNTERS).map(([limit, name]) => [{ limit }, counter(s, name!)]),
    );
    this.#counter(
      "herd_peer_events_total",
      "Peer link troubles, by event.",
      (s) => PEER_EVENTS.map(([event, name]) => [{ event }, counter(s, name)]),
    );
    this.#counter(
      "herd_places_calls_total",
      "Upstream Places calls by provider and the status they mapped to.",
      (s) =>
        [...PLACES_STATUSES, "other"].map((status) => [
          { provider: s.provider, status },
          counter(s, `places_status_${status}`),
        ]),
    );
    this.#counter(
      "herd_peer_link_updates_total",
      "Updates (U lines) on the link to each neighbour, by direction.",
      (s) =>
        this.#linkSeries(
          s,
          (link, direction) => direction === "sent" ? link.updatesSent : link.updatesReceived,
        ),
    );
    this.#counter(
      "herd_peer_link_bytes_total",
      "Bytes on the link to each neighbour, by direction.",
      (s) =>
        this.#linkSeries(
          s,
          (link, direction) => direction === "sent" ? link.bytesSent : link.bytesReceived,
        ),
    );
    for (const [name, help, counterName] of PLAIN_COUNTERS) {
      this.#counter(name, help, (s) => [[{}, counter(s, counterName)]]);
    }
  }

  /** One series per configured neighbour and direction; a neighbour not in the status is 0. */
  #linkSeries(
    status: ServerStatus,
    read: (link: ServerStatus["links"][number], direction: string) => number,
  ): Series[] {
    return this.#neighbours.flatMap((peer) => {
      const link = status.links.find((candidate) => candidate.peer === peer);
      return LINK_DIRECTIONS.map((direction): Series => [
        { peer, direction },
        link === undefined ? 0 : read(link, direction),
      ]);
    });
  }

  #defineGauges(): void {
    this.#gauge("herd_info", "Always 1; the version as a label.", () => [
      [{ version: HERD_VERSION }, 1],
    ]);
    this.#gauge("herd_start_time_seconds", "When this server started (Unix time).", (s) => [
      [{}, Date.parse(s.startedAt) / 1000],
    ]);
    this.#gauge(
      "herd_server_state",
      "1 for the server's state (loading its data dir, serving, stopping), else 0.",
      (s) => SERVER_STATES.map((state) => [{ state }, s.state === state ? 1 : 0]),
    );
    this.#gauge("herd_clients", "Clients whose latest location is held.", (s) => [
      [{}, s.clients.held],
    ]);
    this.#gauge(
      "herd_store_bytes",
      "Bytes the held clients count toward storeBytesMax.",
      (s) => [[{}, s.clients.bytes]],
    );
    this.#gauge(
      "herd_store_full",
      "1 once an update was refused for clientsMax or storeBytesMax (out of capacity).",
      (s) => [[{}, s.clients.full ? 1 : 0]],
    );
    this.#gauge(
      "herd_connections",
      "Open connections: clients, and neighbours' connections still in their handshake.",
      (s) => [
        [{ kind: "client" }, s.connections.clients],
        [{ kind: "handshake" }, s.connections.handshakes],
      ],
    );
    this.#gauge(
      "herd_peer_link_up",
      "1 while the link to the neighbour is up, else 0.",
      (s) =>
        this.#neighbours.map((peer) => [
          { peer },
          s.links.some((link) => link.peer === peer && link.state === "up") ? 1 : 0,
        ]),
    );
    this.#gauge(
      "herd_data_dir_backlog",
      "Updates waiting for a data-dir write (0 without --data-dir).",
      (s) => [[{}, s.dataDir?.backlog ?? 0]],
    );
    this.#gauge(
      "herd_data_dir_backlogged",
      "1 while IAMATs are refused because the data-dir backlog is full.",
      (s) => [[{}, s.dataDir?.backlogged ? 1 : 0]],
    );
  }
}
