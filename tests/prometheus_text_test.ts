import assert from "node:assert/strict";
import { formatMetricFamilies, type MetricFamily } from "../lib/prometheus_text.ts";

Deno.test("formatMetricFamilies() writes help, type and samples, a blank line between families", () => {
  const families: MetricFamily[] = [
    {
      name: "t_total",
      help: "Things.",
      type: "counter",
      samples: [
        { name: "t_total", labels: { kind: "a", outcome: "b" }, value: 3 },
        { name: "t_total", labels: { kind: "c", outcome: "d" }, value: 0 },
      ],
    },
    { name: "t_up", help: "Up.", type: "gauge", samples: [{ name: "t_up", labels: {}, value: 1 }] },
    { name: "t_none", help: "No series yet.", type: "gauge", samples: [] },
  ];
  assert.equal(
    formatMetricFamilies(families),
    [
      "# HELP t_total Things.",
      "# TYPE t_total counter",
      't_total{kind="a",outcome="b"} 3',
      't_total{kind="c",outcome="d"} 0',
      "",
      "# HELP t_up Up.",
      "# TYPE t_up gauge",
      "t_up 1",
      "",
      "# HELP t_none No series yet.",
      "# TYPE t_none gauge",
      "",
    ].join("\n"),
  );
});

Deno.test("formatMetricFamilies() escapes help and label values, and names the special values", () => {
  const text = formatMetricFamilies([{
    name: "t_seconds",
    help: "A back\\slash and a\nline feed.",
    type: "histogram",
    samples: [
      { name: "t_seconds_bucket", labels: { le: "+Inf", peer: 'q"uo\\te\nd' }, value: 2 },
      { name: "t_seconds_sum", labels: {}, value: Infinity },
      { name: "t_seconds_count", labels: {}, value: -Infinity },
      { name: "t_seconds_x", labels: {}, value: NaN },
      { name: "t_seconds_y", labels: {}, value: 0.1 + 0.2 },
    ],
  }]);
  assert.equal(
    text,
    [
      "# HELP t_seconds A back\\\\slash and a\\nline feed.",
      "# TYPE t_seconds histogram",
      't_seconds_bucket{le="+Inf",peer="q\\"uo\\\\te\\nd"} 2',
      "t_seconds_sum +Inf",
      "t_seconds_count -Inf",
      "t_seconds_x NaN",
      "t_seconds_y 0.30000000000000004",
      "",
    ].join("\n"),
  );
});
