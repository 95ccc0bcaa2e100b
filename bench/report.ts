/**
 * Turns a run's results into verdicts against the targets and into the printed
 * table. A figure from a row where the generator's own CPU reached 0.95 (it, not the server,
 * was the limit) is "not measured", never a met target. Pure: no I/O.
 */
import type { CatchUpPhase, CatchUpResults } from "./scenario_catch_up.ts";
import type { FloodResults, FloodRow } from "./scenario_flood.ts";
import { type LogCostResults, logKindLabel } from "./scenario_logs.ts";
import type { IdleResults, MemoryResults } from "./scenario_memory.ts";
import type { MonitorCostResults } from "./scenario_monitor.ts";
import type { ScaleResults } from "./scenario_scale.ts";
import type { ThroughputResults, ThroughputRow } from "./scenario_throughput.ts";
import type { TlsCostResults } from "./scenario_tls.ts";
import type { LoadResult } from "./generator.ts";

/** Generator CPU per wall second from which a row measured the generator, not the server. */
export const GEN_SATURATED = 0.95;
const KIB = 1024;
const MIB = 1024 * 1024;

export interface BenchResults {
  meta: {
    started: string;
    host: string;
    cores: number;
    pinning: string;
    quick: boolean;
    loadAverage: string;
    deno: string;
    logLevel: string;
    wallSeconds?: number;
  };
  throughput?: ThroughputResults;
  flood?: FloodResults;
  memory?: MemoryResults;
  idle?: IdleResults;
  catchUp?: CatchUpResults;
  monitor?: MonitorCostResults;
  scale?: ScaleResults;
  tls?: TlsCostResults;
  logs?: LogCostResults;
  errors: Array<{ scenario: string; error: string }>;
  targets?: Verdict[];
}

export interface Verdict {
  target: string;
  measured: string;
  /** `measured`: a figure the issue asks to see, with no target to meet. */
  verdict: "meets" | "MISSES" | "not measured" | "measured";
  reason?: string;
}

// ---------------------------------------------------------------- verdicts

const num = (result: LoadResult | undefined, key: string): number => Number(result?.[key] ?? NaN);

function saturated(...results: Array<LoadResult | undefined>): string | undefined {
  const busiest = Math.max(...results.map((result) => num(result, "gen_cpu")));
  return busiest >= GEN_SATURATED
    ? `generator saturated (gen_cpu ${busiest.toFixed(2)})`
    : undefined;
}

function judge(target: string, measured: string, ok: boolean, reason?: string): Verdict {
  return { target, measured, verdict: ok ? "meets" : "MISSES", reason };
}

function notMeasured(target: string, reason: string, measured = "-"): Verdict {
  return { target, measured, verdict: "not measured", reason };
}

/** How much the ceiling's c=64 row moved between its row and the end of the rows, in %. */
function driftPercent(throughput: ThroughputResults): number | undefined {
  const first = throughput.rows.find((row) => row.label === "iamat c=64");
  if (!first || !throughput.ceilingAgain) return undefined;
  return (num(throughput.ceilingAgain, "rate") / num(first.ceiling, "rate") - 1) * 100;
}

/** Host drift beyond which a ratio gets a warning: the host, not herd, moved it. */
const DRIFT_PERCENT_NOTED = 10;

function ratioVerdict(row: ThroughputRow | undefined, name: string, drift?: number): Verdict {
  const target = `IAMAT ${name} >= 0.8x the bare Deno ceiling`;
  if (!row) return notMeasured(target, "row not run");
  const [herd, ceiling] = [num(row.herd, "rate"), num(row.ceiling, "rate")];
  const measured = `${(herd / ceiling).toFixed(2)}x (${fmtRate(herd)} vs ${fmtRate(ceiling)}/s)`;
  const busy = saturated(row.herd, row.ceiling);
  const noisy = drift !== undefined && Math.abs(drift) > DRIFT_PERCENT_NOTED
    ? `host drifted ${drift.toFixed(0)} % during the rows: noisy`
    : undefined;
  return busy
    ? notMeasured(target, busy, measured)
    : judge(target, measured, herd >= 0.8 * ceiling, noisy);
}

/** p999 and the per-connection spread at c=256, with the ceiling's own figures for scale. */
function fairnessVerdicts(row: ThroughputRow | undefined): Verdict[] {
  const p999Target = "IAMAT c=256: p999 <= 20 ms";
  const spreadTarget = "IAMAT c=256: every connection >= half the busiest one's replies";
  if (!row) {
    return [notMeasured(p999Target, "row not run"), notMeasured(spreadTarget, "row not run")];
  }
  const spread = (result: LoadResult) =>
    `${num(result, "conn_min")}..${num(result, "conn_max")} (${
      (num(result, "conn_min") / num(result, "conn_max")).toFixed(2)
    })`;
  const p999 = num(row.herd, "p999_us");
  const p999Text = `${fmtMs(p999)} ms`;
  const p999Scale = `bare Deno ceiling: ${fmtMs(num(row.ceiling, "p999_us"))} ms`;
  const spreadScale = `bare Deno ceiling: ${spread(row.ceiling)}`;
  const fair = num(row.herd, "conn_min") * 2 >= num(row.herd, "conn_max");
  const busy = saturated(row.herd);
  if (busy) {
    return [
      notMeasured(p999Target, busy, p999Text),
      notMeasured(spreadTarget, busy, spread(row.herd)),
    ];
  }
  return [
    judge(p999Target, p999Text, p999 <= 20_000, p999Scale),
    judge(spreadTarget, spread(row.herd), fair, spreadScale),
  ];
}

function whatsatVerdict(whatsat: LoadResult | undefined): Verdict {
  const target = "offline WHATSAT (radius 10, bound 20) >= 10k/s at c=16";
  if (!whatsat) return notMeasured(target, "row not run");
  const measured = `${fmtRate(num(whatsat, "rate"))}/s`;
  const busy = saturated(whatsat);
  return busy
    ? notMeasured(target, busy, measured)
    : judge(target, measured, num(whatsat, "rate") >= 10_000);
}

function throughputVerdicts(throughput: ThroughputResults | undefined): Verdict[] {
  const row = (prefix: string) => throughput?.rows.find((r) => r.label.startsWith(prefix));
  const drift = throughput && driftPercent(throughput);
  return [
    ratioVerdict(row("iamat c=64"), "c=64", drift),
    ratioVerdict(row("pipelined"), "pipelined", drift),
    ...fairnessVerdicts(row("iamat c=256")),
    whatsatVerdict(throughput?.whatsat),
  ];
}

const FLOOD_P99_MAX_US: Record<number, number> = { 1000: 1000, 10_000: 5000 };
/** The largest event-loop lag of any server during the row, where the issue sets one. */
const FLOOD_LAG_MAX_MS: Record<number, number> = { 1000: 5 };

function floodVerdicts(flood: FloodResults | undefined, rates: number[]): Verdict[] {
  return rates.flatMap((rate) => {
    const latencyTarget = `flood two hops at ${fmtRate(rate)}/s: p99 <= ${
      FLOOD_P99_MAX_US[rate] / 1000
    } ms`;
    const lostTarget = `flood two hops at ${fmtRate(rate)}/s: no update lost`;
    const lagMaxMs = FLOOD_LAG_MAX_MS[rate];
    const lagTarget = lagMaxMs === undefined
      ? undefined
      : `flood two hops at ${fmtRate(rate)}/s: max event-loop lag <= ${lagMaxMs} ms`;
    const row = flood?.rows.find((r) => r.rate === rate);
    if (!row) {
      return [latencyTarget, lostTarget, lagTarget].flatMap((target) =>
        target === undefined ? [] : [notMeasured(target, "row not run")]
      );
    }
    return [
      floodLatencyVerdict(latencyTarget, row),
      floodLostVerdict(lostTarget, row),
      ...(lagTarget === undefined || lagMaxMs === undefined
        ? []
        : [floodLagVerdict(lagTarget, row, lagMaxMs)]),
    ];
  });
}

/** The largest event-loop lag any of the five servers showed during the row. */
function floodLagVerdict(target: string, row: FloodRow, maxMs: number): Verdict {
  const lag = row.lag;
  if (lag?.maxMs === undefined) {
    return notMeasured(target, "no monitor's /status was read during the row");
  }
  const measured = `${fmtLagMs(lag.maxMs)} ms at ${lag.server} (median of the servers' ${
    fmtLagMs(lag.medianMs)
  } ms)`;
  const busy = saturated(row.load);
  if (busy) return notMeasured(target, busy, measured);
  const notes = [
    lag.failed > 0 ? `${lag.failed} of ${lag.polls} /status reads failed` : undefined,
    num(row.load, "rate_acked") < 0.95 * row.rate ? "Hill fell behind the rate" : undefined,
  ].filter((note) => note !== undefined);
  return judge(target, measured, lag.maxMs <= maxMs, notes.join("; ") || undefined);
}

function floodLatencyVerdict(target: string, row: FloodRow): Verdict {
  const p99 = num(row.load, "prop_p99_us");
  const tracked = num(row.load, "tracked");
  const gaveUp = num(row.load, "gave_up");
  const measured = `${fmtMs(p99)} ms (upper bound; lower ${
    fmtMs(num(row.load, "prop_low_p99_us"))
  } ms)`;
  const busy = saturated(row.load);
  if (busy) return notMeasured(target, busy, measured);
  if (tracked === 0) return notMeasured(target, "no update was tracked");
  if (gaveUp > 0) {
    return judge(
      target,
      measured,
      false,
      `${gaveUp} of ${tracked} tracked updates not at Campbell within 2 s`,
    );
  }
  const behind = num(row.load, "rate_acked") < 0.95 * row.rate;
  return judge(
    target,
    measured,
    p99 <= FLOOD_P99_MAX_US[row.rate],
    behind ? "Hill fell behind the rate" : undefined,
  );
}

function floodLostVerdict(target: string, row: FloodRow): Verdict {
  const sent = num(row.load, "sent");
  if (row.lost === undefined) {
    return notMeasured(
      target,
      `Hill still owed ${num(row.load, "unacked")} AT replies, or the check ran out of time`,
    );
  }
  return judge(target, `${row.lost} of ${sent} lost`, row.lost === 0);
}

function memoryVerdicts(memory: MemoryResults | undefined): Verdict[] {
  const restTarget = "one idle server, offline data set loaded: <= 80 MB RSS";
  const perClientTarget = "<= 200 B RSS per stored client at 1M clients";
  if (!memory) {
    return [
      notMeasured(restTarget, "scenario not run"),
      notMeasured(perClientTarget, "scenario not run"),
    ];
  }
  const restBytes = memory.restRssKb * KIB;
  const rest = judge(restTarget, `${fmtMiB(restBytes)} MB`, restBytes <= 80 * MIB);
  const million = memory.checkpoints.find((c) => c.clients >= 1_000_000);
  if (million) {
    const measured = `${million.bytesPerClient.toFixed(0)} B/client`;
    return [rest, judge(perClientTarget, measured, million.bytesPerClient <= 200)];
  }
  const last = memory.checkpoints.at(-1);
  const seen = last
    ? `${last.bytesPerClient.toFixed(0)} B/client at ${fmtCount(last.clients)}`
    : "-";
  const why = last?.partial ? "registering 1M clients hit the time cap" : "this run stops below 1M";
  return [rest, notMeasured(perClientTarget, why, seen)];
}

function idleVerdicts(idle: IdleResults | undefined): Verdict[] {
  const freshTarget = "10k idle connections: a fresh client's AT within 50 ms";
  const perConnTarget = "10k idle connections: <= 8 KB RSS per connection";
  if (!idle) {
    return [
      notMeasured(freshTarget, "scenario not run"),
      notMeasured(perConnTarget, "scenario not run"),
    ];
  }
  const opened = num(idle.load, "opened");
  const maxUs = num(idle.load, "probe_max_us");
  const failed = num(idle.load, "probe_failed");
  const perConn = num(idle.load, "bytes_per_conn");
  const freshText = `max ${fmtMs(maxUs)} ms over ${num(idle.load, "probes")} probes` +
    (failed ? `, ${failed} failed` : "");
  const perConnText = `${perConn.toFixed(0)} B/connection`;
  if (opened < 10_000) {
    const short = `only ${fmtCount(opened)} connections held`;
    return [
      notMeasured(freshTarget, short, freshText),
      notMeasured(perConnTarget, short, perConnText),
    ];
  }
  return [
    judge(freshTarget, freshText, failed === 0 && maxUs <= 50_000),
    judge(perConnTarget, perConnText, perConn <= 8 * KIB),
  ];
}

function catchUpVerdicts(catchUp: CatchUpResults | undefined): Verdict[] {
  const costTarget = "catch-up after a link was down for k updates costs O(k), not the store";
  const completeTarget = "catch-up: the follower holds every update afterwards";
  if (!catchUp) {
    return [
      notMeasured(costTarget, "scenario not run"),
      notMeasured(completeTarget, "scenario not run"),
    ];
  }
  const { restart, linkDown } = catchUp;
  const perUpdate = restart.bytesToFollower / restart.updates;
  const ratio = linkDown.bytesToFollower / (linkDown.updates * perUpdate);
  const costText =
    `${fmtBytes(linkDown.bytesToFollower)} for k=${fmtCount(linkDown.updates)} = ${
      ratio.toFixed(2)
    }x k updates ` +
    `(the store: ${fmtBytes(restart.bytesToFollower)})`;
  const complete = [restart, linkDown].every((phase) => num(phase.check, "ok") === phase.updates);
  const completeText = [restart, linkDown].map((phase) =>
    `${num(phase.check, "ok")}/${phase.updates}`
  ).join(", ");
  return [judge(costTarget, costText, ratio <= 3), judge(completeTarget, completeText, complete)];
}

export function verdicts(results: BenchResults, floodRates: number[]): Verdict[] {
  return [
    ...throughputVerdicts(results.throughput),
    ...floodVerdicts(results.flood, floodRates),
    ...memoryVerdicts(results.memory),
    ...idleVerdicts(results.idle),
    ...catchUpVerdicts(results.catchUp),
    monitorVerdict(results.monitor),
    ...scaleVerdicts(results.scale),
    tlsVerdict(results.tls),
    logVerdict(results.logs),
  ];
}

/** Flooding's cost is exact logic, so the measured figure must equal 2E − N + 1. */
function scaleVerdicts(scale: ScaleResults | undefined): Verdict[] {
  const target = "flooding, 25 servers: link messages per update = 2E - N + 1";
  if (!scale) return [notMeasured(target, "scenario not run")];
  return scale.rows.map((row) =>
    judge(
      `${target} (${row.label})`,
      `${row.messagesPerUpdate.toFixed(2)} vs ${row.expectedMessagesPerUpdate}`,
      row.messagesPerUpdate === row.expectedMessagesPerUpdate,
    )
  );
}

/** The mean IAMAT rate of each kind of row, and the noise: the widest same-kind spread. */
export function monitorCost(monitor: MonitorCostResults): {
  plain: number;
  monitored: number;
  ratio: number;
  noise: number;
} {
  const rates = (monitored: boolean) =>
    monitor.rows.filter((row) => row.monitored === monitored).map((row) => row.load);
  const { base, other, ratio, noise } = alternatingCost(rates(false), rates(true));
  return { plain: base, monitored: other, ratio, noise };
}

/**
 * Two kinds of alternating rows: each kind's mean rate, their ratio (other / base), and the
 * noise: the widest spread (max − min over the mean) between rows of one kind.
 */
function alternatingCost(baseRows: LoadResult[], otherRows: LoadResult[]): {
  base: number;
  other: number;
  ratio: number;
  noise: number;
} {
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const spread = (values: number[]) => (Math.max(...values) - Math.min(...values)) / mean(values);
  const [baseRates, otherRates] = [baseRows, otherRows].map((rows) =>
    rows.map((row) => num(row, "rate"))
  );
  const [base, other] = [mean(baseRates), mean(otherRates)];
  const noise = Math.max(spread(baseRates), spread(otherRates));
  return { base, other, ratio: other / base, noise };
}

/** TLS's IAMAT rate over plain TCP's, same server config, rows alternating. */
export function tlsCost(tls: TlsCostResults): {
  plain: number;
  tls: number;
  ratio: number;
  noise: number;
} {
  const rates = (overTls: boolean) =>
    tls.rows.filter((row) => row.tls === overTls).map((row) => row.load);
  const { base, other, ratio, noise } = alternatingCost(rates(false), rates(true));
  return { plain: base, tls: other, ratio, noise };
}

/** A measurement, not a target: the issue asks what TLS costs, not for a bound on it. */
function tlsVerdict(tls: TlsCostResults | undefined): Verdict {
  const target = `IAMAT c=64 over TLS / plain TCP, one server (a measurement, no target)`;
  if (!tls) return notMeasured(target, "row not run");
  if (tls.unavailable !== undefined || tls.rows.length === 0) {
    return notMeasured(target, tls.unavailable ?? "no rows");
  }
  const cost = tlsCost(tls);
  const measured = `${cost.ratio.toFixed(3)}x (${fmtRate(cost.tls)} vs ${
    fmtRate(cost.plain)
  }/s), noise ${(cost.noise * 100).toFixed(1)} %`;
  const busy = saturated(...tls.rows.map((row) => row.load));
  return busy ? notMeasured(target, busy, measured) : { target, measured, verdict: "measured" };
}

/**
 * The log's cost, rows alternating: rotated and json rates over never-rotated text, the
 * noise, and the rotations per second the rotated rows made (each reply is one record).
 */
export function logCost(logs: LogCostResults): {
  never: number;
  rotated: number;
  json: number;
  rotatedRatio: number;
  jsonRatio: number;
  noise: number;
  bytesPerRecord?: number;
  rotationsPerSecond?: number;
} {
  const loads = (kind: string) => logs.rows.filter((row) => row.kind === kind).map((r) => r.load);
  const rotated = alternatingCost(loads("never"), loads("rotated"));
  const json = alternatingCost(loads("never"), loads("json"));
  const kept = logs.rotatedLog;
  const bytesPerRecord = kept && kept.lines > 0 ? kept.bytes / kept.lines : undefined;
  return {
    never: rotated.base,
    rotated: rotated.other,
    json: json.other,
    rotatedRatio: rotated.ratio,
    jsonRatio: json.ratio,
    noise: Math.max(rotated.noise, json.noise),
    bytesPerRecord,
    rotationsPerSecond: bytesPerRecord === undefined
      ? undefined
      : rotated.other * bytesPerRecord / logs.rotateBytes,
  };
}

/** A measurement, not a target: the issue asks what rotation costs, not for a bound on it. */
function logVerdict(logs: LogCostResults | undefined): Verdict {
  const target = "IAMAT c=64 with the log rotated every 1 MiB / never rotated, one server " +
    "(a measurement, no target)";
  if (!logs) return notMeasured(target, "row not run");
  if (logs.rows.length === 0) return notMeasured(target, "no rows");
  const cost = logCost(logs);
  const measured = `${cost.rotatedRatio.toFixed(3)}x (${fmtRate(cost.rotated)} vs ${
    fmtRate(cost.never)
  }/s), noise ${(cost.noise * 100).toFixed(1)} %`;
  const busy = saturated(...logs.rows.map((row) => row.load));
  return busy ? notMeasured(target, busy, measured) : { target, measured, verdict: "measured" };
}

function monitorVerdict(monitor: MonitorCostResults | undefined): Verdict {
  const target = "IAMAT with a monitor scraped every second: no slower than the run's noise";
  if (!monitor) return notMeasured(target, "row not run");
  const { plain, monitored, ratio, noise } = monitorCost(monitor);
  const measured = `${ratio.toFixed(3)}x (${fmtRate(monitored)} vs ${fmtRate(plain)}/s), ` +
    `noise ${(noise * 100).toFixed(1)} %`;
  const busy = saturated(...monitor.rows.map((row) => row.load));
  return busy ? notMeasured(target, busy, measured) : judge(target, measured, ratio >= 1 - noise);
}

// ---------------------------------------------------------------- formatting

function fmtRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return "-";
  return perSecond >= 10_000 ? `${(perSecond / 1000).toFixed(0)}k` : perSecond.toFixed(0);
}
function fmtCount(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n);
}
function fmtMs(us: number): string {
  return Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 2 : 1) : "-";
}
function fmtLagMs(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? "-" : ms.toFixed(ms < 10 ? 2 : 1);
}
function fmtMiB(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}
function fmtBytes(bytes: number): string {
  return bytes >= MIB
    ? `${fmtMiB(bytes)} MB`
    : bytes >= KIB
    ? `${(bytes / KIB).toFixed(1)} KB`
    : `${bytes} B`;
}
const us = (result: LoadResult, key: string) =>
  Math.round(num(result, key)).toLocaleString("en-US");
const perSecond = (result: LoadResult) => Math.round(num(result, "rate")).toLocaleString("en-US");

/** Pads columns: those before `rightFrom` left-aligned (text), the rest right-aligned. */
function grid(header: string[], rows: string[][], rightFrom = 1): string[] {
  const widths = header.map((cell, i) =>
    Math.max(cell.length, ...rows.map((row) => (row[i] ?? "").length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i < rightFrom ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
}

/** The columns of one closed-loop result, as `loadCells` fills them. */
const LOAD_HEADER = [
  "replies/s",
  "p50",
  "p99",
  "p999",
  "max",
  "per-conn min..max",
  "gen_cpu",
  "err",
];

/** The generator's CPU use, starred where it was the limit. */
function genCpu(result: LoadResult): string {
  return num(result, "gen_cpu").toFixed(2) + (num(result, "gen_cpu") >= GEN_SATURATED ? "*" : "");
}

function loadCells(result: LoadResult): string[] {
  const faults = num(result, "errors") + num(result, "refused") + num(result, "closed") +
    num(result, "unanswered");
  return [
    perSecond(result),
    us(result, "p50_us"),
    us(result, "p99_us"),
    us(result, "p999_us"),
    us(result, "max_us"),
    `${num(result, "conn_min")}..${num(result, "conn_max")}`,
    genCpu(result),
    String(faults),
  ];
}

function throughputSection(throughput: ThroughputResults): string[] {
  const rows = throughput.rows.flatMap((row: ThroughputRow) => {
    const ratio = num(row.herd, "rate") / num(row.ceiling, "rate");
    const notMeasured = saturated(row.herd, row.ceiling) ? " (not measured)" : "";
    return [
      [row.label, "ceiling", ...loadCells(row.ceiling), ""],
      ["", "herd", ...loadCells(row.herd), `${ratio.toFixed(2)}x${notMeasured}`],
    ];
  });
  const lines = [
    "1-2. IAMAT, one server, closed loop (replies/s; latency in microseconds)",
    ...grid(["row", "server", ...LOAD_HEADER, "herd/ceiling"], rows, 2),
  ];
  const drift = driftPercent(throughput);
  if (throughput.ceilingAgain && drift !== undefined) {
    const signed = `${drift >= 0 ? "+" : ""}${drift.toFixed(0)} %`;
    lines.push(
      `ceiling iamat c=64 again after all rows: ${
        perSecond(throughput.ceilingAgain)
      }/s (${signed}): ` +
        "ratios closer than this are noise",
    );
  }
  lines.push(
    "per-conn: fewest..most replies of one connection in the window; err: errors + refused + closed + unanswered;",
    `* gen_cpu >= ${GEN_SATURATED}: the generator was the limit; such a row is not measured.`,
    "",
    "6. WHATSAT offline (radius 10, bound 20), c=16",
    ...grid(["row", "server", ...LOAD_HEADER], [[
      "whatsat c=16",
      "herd",
      ...loadCells(throughput.whatsat),
    ]], 2),
    `mean reply ${
      num(throughput.whatsat, "reply_bytes").toFixed(0)
    } bytes (the AT line, up to 20 places, ` +
      "an empty line): nearby places, so the figure depends on where the clients are.",
  );
  return lines;
}

function floodSection(flood: FloodResults): string[] {
  const rows = flood.rows.map((row) => {
    const load = row.load;
    return [
      `${fmtRate(row.rate)}/s`,
      fmtRate(num(load, "rate_sent")),
      fmtRate(num(load, "rate_acked")),
      us(load, "ack_p50_us"),
      us(load, "ack_p99_us"),
      us(load, "prop_p50_us"),
      us(load, "prop_p99_us"),
      us(load, "prop_p999_us"),
      us(load, "prop_max_us"),
      us(load, "prop_low_p99_us"),
      `${num(load, "seen")}/${num(load, "tracked")}`,
      us(load, "poll_p50_us"),
      fmtRate(num(load, "poll_n") / (num(load, "sent") / num(load, "rate_sent"))),
      row.lost === undefined ? "n/a" : `${row.lost}/${num(load, "sent")}`,
      genCpu(load),
      row.lag?.maxMs === undefined ? "-" : `${fmtLagMs(row.lag.maxMs)} (${row.lag.server})`,
      fmtLagMs(row.lag?.medianMs),
    ];
  });
  return [
    `3. Flood propagation ${flood.path}, open loop (microseconds)`,
    ...grid(
      [
        "rate",
        "sent/s",
        "acked/s",
        "AT p50",
        "AT p99",
        "prop p50",
        "p99",
        "p999",
        "max",
        "low p99",
        "seen",
        "poll p50",
        "polls/s",
        "lost",
        "gen_cpu",
        "lag max ms",
        "lag p50 ms",
      ],
      rows,
    ),
    "prop: IAMAT sent at Hill -> reply of the first WHATSAT poll at Campbell that found it (upper bound);",
    "low: -> the last poll that did not (lower bound); the true time is between, within one poll round trip",
    "(poll p50). seen: tracked updates found within 2 s. polls/s: the polling's own load on Campbell.",
    "lost: updates sent but not at Campbell with exactly their time. All five servers share core 0.",
    "lag: event-loop lag (a 10 ms timer's lateness) from each server's /status, read every 500 ms",
    "during the row; max: the largest over the servers (whose), p50: the median of their largest.",
  ];
}

function memorySection(memory: MemoryResults | undefined, idle: IdleResults | undefined): string[] {
  const lines: string[] = [];
  if (memory) {
    lines.push(
      `4. Memory per stored client (VmRSS; at rest with the offline data set loaded: ${
        fmtMiB(memory.restRssKb * KIB)
      } MB)`,
      ...grid(
        ["clients", "RSS MB", "peak MB", "B/client", "registered/s"],
        memory.checkpoints.map((c) => [
          fmtCount(c.clients) + (c.partial ? " (partial: time cap)" : ""),
          fmtMiB(c.rssKb * KIB),
          fmtMiB(c.hwmKb * KIB),
          c.bytesPerClient.toFixed(0),
          Math.round(c.registerPerSecond).toLocaleString("en-US"),
        ]),
      ),
      "B/client = (RSS - RSS at rest) / clients; ids 16 B, locations 21 B, the stored AT line counted.",
      "",
    );
  }
  if (idle) {
    const load = idle.load;
    lines.push(
      "5. Idle connections (each said one IAMAT, then silent)",
      ...grid(
        [
          "held",
          "open s",
          "closed by server",
          "B/conn",
          "fresh AT p50 ms",
          "max ms",
          "failed",
          "idle still answer",
        ],
        [[
          `${num(load, "opened")}/${num(load, "asked")}`,
          num(load, "open_seconds").toFixed(1),
          String(num(load, "closed_by_server")),
          num(load, "bytes_per_conn").toFixed(0),
          fmtMs(num(load, "probe_p50_us")),
          fmtMs(num(load, "probe_max_us")),
          String(num(load, "probe_failed")),
          `${num(load, "idle_sample_ok")}/${num(load, "idle_sampled")}`,
        ]],
      ),
      "",
    );
  }
  return lines;
}

const CATCH_UP_HEADER = [
  "what",
  "total ms",
  "link ms",
  "transfer ms",
  "links",
  "bytes to Campbell",
  "B/update",
  "updates sent (log)",
  "held after",
];

function catchUpSection(catchUp: CatchUpResults): string[] {
  const row = (phase: CatchUpPhase) => [
    phase.what,
    phase.totalMs === undefined ? "never" : phase.totalMs.toFixed(0),
    phase.linkMs === undefined ? "-" : phase.linkMs.toFixed(0),
    phase.totalMs === undefined || phase.linkMs === undefined
      ? "-"
      : (phase.totalMs - phase.linkMs).toFixed(0),
    String(phase.connections),
    fmtBytes(phase.bytesToFollower),
    (phase.bytesToFollower / phase.updates).toFixed(0),
    phase.loggedUpdates === undefined ? "n/a" : String(phase.loggedUpdates),
    `${num(phase.check, "ok")}/${phase.updates}`,
  ];
  return [
    "7. Catch-up, Hill -> Campbell over one proxied link",
    ...grid(CATCH_UP_HEADER, [row(catchUp.restart), row(catchUp.linkDown)]),
    "total: from restart (spawn) or link restored to the sentinel (last change) held; link: to the first",
    "connection through the proxy (start-up, redial backoff); links: connections the proxies forwarded",
    "meanwhile (2: both ends dialled); bytes: TCP payload toward Campbell counted by the proxies.",
  ];
}

function monitorSection(monitor: MonitorCostResults): string[] {
  const { ratio, noise } = monitorCost(monitor);
  const rows = monitor.rows.map((row) => [
    row.monitored ? "monitor, scraped 1/s" : "no monitor",
    ...loadCells(row.load),
    row.monitored ? `${row.scrapes} (slowest ${row.scrapeMsMax.toFixed(1)} ms)` : "-",
  ]);
  return [
    `8. Monitor cost: IAMAT c=${monitor.conns}, one server, rows alternating`,
    ...grid(["row", ...LOAD_HEADER, "scrapes of /metrics + /status"], rows),
    `with/without: ${ratio.toFixed(3)}x; noise (widest spread between rows of one kind): ` +
    `${(noise * 100).toFixed(1)} %`,
  ];
}

function tlsSection(tls: TlsCostResults): string[] {
  const title = `10. TLS cost: IAMAT c=${tls.conns}, one server, rows alternating`;
  if (tls.unavailable !== undefined) return [title, `not measured: ${tls.unavailable}`];
  const { ratio, noise } = tlsCost(tls);
  const rows = tls.rows.map((row) => [row.tls ? "TLS" : "plain TCP", ...loadCells(row.load)]);
  return [
    title,
    ...grid(["row", ...LOAD_HEADER], rows),
    `TLS/plain: ${ratio.toFixed(3)}x; noise (widest spread between rows of one kind): ` +
    `${(noise * 100).toFixed(1)} %. Handshakes before the window: the cost of encrypted lines.`,
  ];
}

function logSection(logs: LogCostResults): string[] {
  const cost = logCost(logs);
  const rows = logs.rows.map((row) => [logKindLabel(row.kind), ...loadCells(row.load)]);
  const rotations = cost.rotationsPerSecond === undefined || cost.bytesPerRecord === undefined
    ? "rotations/s not known (no kept log read)"
    : `about ${cost.rotationsPerSecond.toFixed(1)} rotations/s in the rotated rows (${
      cost.bytesPerRecord.toFixed(0)
    } bytes per record)`;
  return [
    `11. Log cost: IAMAT c=${logs.conns}, one server at info (a record per reply), rows alternating`,
    ...grid(["row", ...LOAD_HEADER], rows),
    `rotated/never: ${cost.rotatedRatio.toFixed(3)}x; json/never: ${
      cost.jsonRatio.toFixed(3)
    }x; noise (widest spread between rows of one kind): ${(cost.noise * 100).toFixed(1)} %; ` +
    `${rotations}`,
    `rotated: --log-max-bytes ${logs.rotateBytes} --log-files ${logs.logFiles}; ` +
    "rotations/s = replies/s x bytes per record / file size, bytes per record from the kept files.",
  ];
}

function scaleSection(scale: ScaleResults): string[] {
  const rows = scale.rows.map((row) => [
    row.label,
    `${row.servers}/${row.links}`,
    `${row.messagesPerUpdate.toFixed(2)} (${row.expectedMessagesPerUpdate})`,
    (row.receivedPerUpdate - (row.servers - 1)).toFixed(2),
    `${row.hops.max} (${row.diameter})`,
    `${row.hops.onShortestPath}/${row.hops.arrivals}`,
    `${row.convergenceMs.median} / ${row.convergenceMs.max}`,
    `${row.serverRssMb.median} / ${row.serverRssMb.max}`,
    `${row.catchUp.server} (${row.catchUp.linksOfServer})`,
    `${row.catchUp.updatesReceived} for ${row.catchUp.clients}, ${
      fmtBytes(row.catchUp.bytesReceived)
    }`,
    String(row.catchUp.totalMs),
  ]);
  return [
    `9. How flooding scales: ${
      scale.rows[0]?.updates ?? 0
    } updates to seeded-random servers, one at a time`,
    ...grid([
      "graph",
      "N/E",
      "msgs/update (2E-N+1)",
      "dups/update",
      "hops max (diameter)",
      "shortest-path arrivals",
      "converge ms p50 / max",
      "RSS MB p50 / max",
      "restarted (links)",
      "catch-up received",
      "catch-up ms",
    ], rows),
    "msgs: U lines sent, summed over every server's floods_sent (exact); dups: lines dropped on arrival.",
    "hops: the path each server's first arrival took (from its log); converge: origin receive -> last",
    "server's first arrival, all servers sharing the server core; catch-up: U lines the restarted server",
    "received from its neighbours (each streams its whole store to a new epoch), spawn -> all held.",
  ];
}

function targetsSection(targets: Verdict[]): string[] {
  return [
    "Targets (default log level; measured, not asserted)",
    ...grid(
      ["target", "measured", "verdict"],
      targets.map((t) => [t.target, t.measured, t.verdict + (t.reason ? ` (${t.reason})` : "")]),
      3,
    ),
  ];
}

export function formatTable(results: BenchResults): string {
  const { meta } = results;
  const lines = [
    `herd benchmark ${meta.started}  ${meta.host}, ${meta.cores} cores, ${meta.pinning}`,
    `deno ${meta.deno}; herd log level ${meta.logLevel}; load average at start ${meta.loadAverage}` +
    (meta.quick ? "; --quick (short rows, small counts)" : ""),
    "",
  ];
  if (results.throughput) lines.push(...throughputSection(results.throughput), "");
  if (results.flood) lines.push(...floodSection(results.flood), "");
  lines.push(...memorySection(results.memory, results.idle));
  if (results.catchUp) lines.push(...catchUpSection(results.catchUp), "");
  if (results.monitor) lines.push(...monitorSection(results.monitor), "");
  if (results.scale) lines.push(...scaleSection(results.scale), "");
  if (results.tls) lines.push(...tlsSection(results.tls), "");
  if (results.logs) lines.push(...logSection(results.logs), "");
  if (results.targets) lines.push(...targetsSection(results.targets), "");
  for (const { scenario, error } of results.errors) {
    lines.push(`error in ${scenario}: ${error.split("\n")[0]}`);
  }
  if (meta.wallSeconds !== undefined) lines.push(`wall time ${meta.wallSeconds.toFixed(0)} s`);
  return lines.join("\n");
}
