/**
 * The Prometheus text exposition format 0.0.4, written out: metric families (a name, help,
 * a type and their samples) in, the body of a `/metrics` answer out. Pure: no registry, no
 * state. herd reads every value at scrape time, so all it needs of a client library is this
 * formatting — and `prom-client`, a CommonJS package, cost 3–4 MB of every server's memory
 * at rest (with the live page's map library, the runtime's CommonJS loader: 7 MB).
 *
 * @example
 * ```ts
 * formatMetricFamilies([{
 *   name: "herd_clients", help: "Clients held.", type: "gauge",
 *   samples: [{ name: "herd_clients", labels: {}, value: 3 }],
 * }]); // "# HELP herd_clients Clients held.\n# TYPE herd_clients gauge\nherd_clients 3\n"
 * ```
 */

/** The `Content-Type` of the format. */
export const PROMETHEUS_TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One sample: a series (its metric name, with a histogram's suffix, and labels) and value. */
export interface MetricSample {
  name: string;
  /** Label names and values, in the order written. */
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A metric family: what `# HELP` and `# TYPE` describe, and its samples. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: readonly MetricSample[];
}

/** The families in the text format: each its help, type and samples, a blank line between. */
export function formatMetricFamilies(families: readonly MetricFamily[]): string {
  const blocks = families.map((family) => {
    const lines = [
      `# HELP ${family.name} ${escapeHelp(family.help)}`,
      `# TYPE ${family.name} ${family.type}`,
    ];
    for (const sample of family.samples) {
      lines.push(`${sample.name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
    return lines.join("\n");
  });
  return `${blocks.join("\n\n")}\n`;
}

function formatLabels(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/** A value as the format spells it: `+Inf`, `-Inf` and `NaN` by name, numbers as JavaScript. */
function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** Help text: a backslash and a line feed escaped (the format's rule for help). */
function escapeHelp(help: string): string {
  return help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** A label value: a backslash, a double quote and a line feed escaped. */
function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}
