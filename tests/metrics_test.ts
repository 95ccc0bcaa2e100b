import assert from "node:assert/strict";
import { validateConfig } from "../lib/config.ts";
import { Counters } from "../lib/counters.ts";
import {
  EVENT_LOOP_PROBE_INTERVAL_MS,
  EVENT_LOOP_RECENT_WINDOW_MS,
  EventLoopLagProbe,
} from "../lib/event_loop_lag.ts";
import {
  BucketHistogram,
  FLOOD_AGE_BUCKETS_SECONDS,
  HerdMetrics,
  LIMIT_COUNTERS,
  MetricsExposition,
  originReceivedSeconds,
  REPLY_COMMANDS,
  replyCommandSeries,
} from "../lib/metrics.ts";
import { buildServerStatus, type MonitoredServer } from "../lib/monitor.ts";
import type { PeerLinkReport } from "../lib/peers.ts";
import { RateWindow } from "../lib/rate_window.ts";
import type { ServerStatus } from "../lib/server_status.ts";
import { checkMetricsWithPromtool } from "./support/promtool.ts";

// ------------------------------------------------------------------------ flood age

Deno.test("originReceivedSeconds() adds the skew to the client's time", () => {
  assert.equal(originReceivedSeconds("AT Hill +0.5 kiwi +34-118 1700000000.25"), 1700000000.75);
  assert.equal(
    originReceivedSeconds("AT Hill -0.250000000 kiwi +34-118 1700000000.750000000"),
    1700000000.5,
  );
  assert.equal(originReceivedSeconds("AT Smith +2 k +0+0 10"), 12);
});

Deno.test("originReceivedSeconds() keeps sub-millisecond precision at today's times", () => {
  const seconds = originReceivedSeconds(
    "AT Hill +0.000123456 kiwi.cs.ucla.edu +34.068930-118.445127 1479413884.392014450",
  );
  assert.ok(Math.abs(seconds - 1479413884.392137906) < 1e-6, String(seconds));
});

Deno.test("originReceivedSeconds() is NaN for what is not an AT line", () => {
  for (
    const line of [
      "",
      "AT",
      "AT Hill",
      "IAMAT kiwi +34-118 1700000000",
      "AT Hill +0.5 kiwi +34-118 17x",
      "AT Hill +x kiwi +34-118 1700000000",
      "AT Hill + kiwi +34-118 1700000000",
    ]
  ) {
    assert.ok(Number.isNaN(originReceivedSeconds(line)), `${JSON.stringify(line)} gave a time`);
  }
});

Deno.test("HerdMetrics.observeFloodAge() counts now minus the origin's receive time", () => {
  const metrics = new HerdMetrics();
  const atLine = "AT Hill +0.001000000 kiwi +34-118 1700000000.000000000";
  metrics.observeFloodAge(atLine, 1700000000.003); // 2 ms old
  metrics.observeFloodAge(atLine, 1699999999.9); // the sender's clock is ahead: negative
  metrics.observeFloodAge("not an AT line", 1700000000);
  assert.equal(metrics.floodAge.count(), 2);
  const buckets = bucketCounts(metrics.floodAge);
  assert.equal(buckets.get("-1"), 0);
  assert.equal(buckets.get("-0.1"), 1, "a −101 ms age is at most −0.1 s");
  assert.equal(buckets.get("0.001"), 1, "a 2 ms age is not at most 1 ms");
  assert.equal(buckets.get("0.0025"), 2, "a 2 ms age is at most 2.5 ms");
  assert.ok(FLOOD_AGE_BUCKETS_SECONDS.some((bound) => bound < 0));
});

// ------------------------------------------------------------------------ histograms

/** The cumulative `_bucket` counts of an unlabelled histogram by `le`. */
function bucketCounts(histogram: BucketHistogram): Map<string, number> {
  const { samples } = histogram.family();
  return new Map(
    samples
      .filter((sample) => sample.name.endsWith("_bucket"))
      .map((sample) => [sample.labels.le, sample.value]),
  );
}

Deno.test("BucketHistogram counts a value in the first bucket whose bound it does not pass", () => {
  const histogram = new BucketHistogram({ name: "t_seconds", help: "t", buckets: [0.1, 1] });
  for (const value of [0.05, 0.1, 0.5, 1, 7]) histogram.observe(value);
  const { samples } = histogram.family();
  const shown = samples.map((v) => `${v.name}{le=${v.labels.le ?? ""}} ${v.value}`);
  assert.deepEqual(shown, [
    "t_seconds_bucket{le=0.1} 2",
    "t_seconds_bucket{le=1} 4",
    "t_seconds_bucket{le=+Inf} 5",
    "t_seconds_sum{le=} 8.65",
    "t_seconds_count{le=} 5",
  ]);
});

Deno.test("BucketHistogram keeps one series per fixed label value", () => {
  const histogram = new BucketHistogram({
    name: "t_seconds",
    help: "t",
    buckets: [1],
    label: { name: "command", values: REPLY_COMMANDS },
  });
  histogram.observe(0.5, 1);
  const { samples } = histogram.family();
  const commands = new Set(samples.map((sample) => sample.labels.command));
  assert.deepEqual([...commands], [...REPLY_COMMANDS]);
  assert.equal(histogram.count(0), 0);
  assert.equal(histogram.count(1), 1);
});

Deno.test("replyCommandSeries() tells IAMAT, WHATSAT and ? replies apart", () => {
  const question = "?".charCodeAt(0);
  const at = "A".charCodeAt(0);
  assert.equal(REPLY_COMMANDS[replyCommandSeries("IAMAT kiwi +1+1 1", at)], "IAMAT");
  assert.equal(REPLY_COMMANDS[replyCommandSeries(" \tWHATSAT kiwi 10 5", at)], "WHATSAT");
  assert.equal(REPLY_COMMANDS[replyCommandSeries("WHATSAT nobody 10 5", question)], "invalid");
  assert.equal(REPLY_COMMANDS[replyCommandSeries("", question)], "invalid");
});

// ------------------------------------------------------------------------ exposition

const CONFIG = validateConfig({
  servers: { Hill: { port: 1 }, Jaquez: { port: 2 }, Smith: { port: 3 } },
  links: [["Hill", "Jaquez"], ["Hill", "Smith"]],
});

function linkReport(peer: string, state: PeerLinkReport["state"]): PeerLinkReport {
  return {
    peer,
    state,
    sinceMs: Date.now(),
    dialledBy: "Hill",
    updatesSent: 3,
    updatesReceived: 1,
    bytesSent: 300,
    bytesReceived: 100,
    catchUp: { updatesSent: 0, sentAll: true, receivedAll: true },
    lastError: null,
  };
}

/** A server as the monitor reads it, with hostile text where a label could leak it. */
function fakeServer(counters: Counters, links: PeerLinkReport[]): MonitoredServer {
  return {
    state: "serving",
    connectionCounts: { clients: 2, handshakes: 0 },
    dataDirStatus: undefined,
    counters,
    store: { size: 4, bytes: 1600 },
    peers: { linkReports: () => links },
  };
}

function statusOf(server: MonitoredServer): ServerStatus {
  return buildServerStatus({
    name: "Hill",
    config: CONFIG,
    provider: "google-new",
    monitorAddress: { host: "127.0.0.1", port: 9 },
    server,
    rates: new RateWindow(),
    eventLoopLag: { recentMs: 0.5, maxMs: 3 },
    nowMs: performance.now(),
  });
}

function exposition(counters: Counters, links: PeerLinkReport[]): string {
  const metrics = new HerdMetrics();
  metrics.observeReply(replyCommandSeries("IAMAT kiwi +1+1 1", "A".charCodeAt(0)), 0.0002);
  metrics.observePlacesCall("google-new", 120);
  metrics.observePlacesCall("offline", 5); // makes no upstream calls: not a series
  const metricsExposition = new MetricsExposition({ metrics, neighbours: ["Jaquez", "Smith"] });
  return metricsExposition.text(statusOf(fakeServer(counters, links)));
}

Deno.test("the exposition passes promtool check metrics", async () => {
  const counters = new Counters();
  counters.add("iamat_stored", 3);
  counters.add("places_status_OK");
  const text = exposition(counters, [linkReport("Jaquez", "up")]);
  await checkMetricsWithPromtool(text);
});

Deno.test("every metric is herd_-prefixed, and only counters end in _total", () => {
  const text = exposition(new Counters(), [linkReport("Jaquez", "up")]);
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)];
  assert.ok(types.length >= 25, `only ${types.length} metrics`);
  for (const [, name, type] of types) {
    assert.ok(name.startsWith("herd_"), name);
    assert.equal(name.endsWith("_total"), type === "counter", `${name} is a ${type}`);
    if (type === "histogram") assert.match(name, /_seconds$/);
  }
});

Deno.test("label values come from fixed sets, never from counters or links outside them", () => {
  const counters = new Counters();
  counters.add("iamat_stored", 5);
  counters.add("places_status_free upstream text"); // as a buggy caller might name one
  counters.add("limit_clients_max", 2);
  const links = [linkReport("Jaquez", "up"), linkReport("Mallory", "up")];
  const text = exposition(counters, links);
  assert.doesNotMatch(text, /Mallory/);
  assert.doesNotMatch(text, /free upstream text/);
  assert.match(text, /^herd_lines_total\{kind="IAMAT",outcome="stored"\} 5$/m);
  assert.match(text, /^herd_limits_hit_total\{limit="clientsMax"\} 2$/m);
  assert.match(text, /^herd_store_full 1$/m);
  assert.match(text, /^herd_peer_link_up\{peer="Jaquez"\} 1$/m);
  assert.match(text, /^herd_peer_link_up\{peer="Smith"\} 0$/m, "a neighbour without a link");
  assert.match(text, /^herd_peer_link_updates_total\{peer="Jaquez",direction="sent"\} 3$/m);
  assert.match(text, /^herd_places_calls_total\{provider="google-new",status="other"\} 0$/m);
  assert.match(text, /^herd_reply_latency_seconds_count\{command="IAMAT"\} 1$/m);
  assert.match(text, /^herd_places_upstream_latency_seconds_count\{provider="google-new"\} 1$/m);
  assert.doesNotMatch(text, /provider="offline"\} 1/);
  const limitValues = [...text.matchAll(/herd_limits_hit_total\{limit="([^"]+)"\}/g)].map(
    ([, limit]) => limit,
  );
  assert.deepEqual(limitValues.sort(), Object.keys(LIMIT_COUNTERS).sort());
});

// ------------------------------------------------------------------------ rates and lag

Deno.test("RateWindow gives the growth per second since its oldest sample", () => {
  const rates = new RateWindow();
  assert.equal(rates.perSecond("iamat", 10, 1000), 0, "no sample yet");
  for (let second = 0; second < 8; second++) rates.sample("iamat", second * 100, second * 1000);
  // Five samples kept: the oldest is second 3 (300); now at 8 s the total is 800.
  assert.equal(rates.perSecond("iamat", 800, 8000), 100);
});

Deno.test("EventLoopLagProbe keeps the recent and the largest lag", () => {
  const lags: number[] = [];
  const probe = new EventLoopLagProbe({ onLagMs: (lagMs) => lags.push(lagMs) });
  const perSecond = EVENT_LOOP_RECENT_WINDOW_MS / EVENT_LOOP_PROBE_INTERVAL_MS;
  probe.record(100, 150);
  for (let sample = 0; sample < perSecond - 1; sample++) probe.record(100, 101);
  assert.equal(probe.recentMs, 50, "the 50 ms lag is within the last second of samples");
  probe.record(100, 101);
  probe.record(100, 99); // fired early: no lag
  assert.equal(probe.maxMs, 50);
  assert.equal(probe.recentMs, 1, "the 50 ms lag is over a second old");
  assert.equal(lags.length, perSecond + 2);
  assert.equal(lags.at(-1), 0);
});
