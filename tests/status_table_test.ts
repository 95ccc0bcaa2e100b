import assert from "node:assert/strict";
import {
  formatStatusTable,
  isHerdUp,
  type ServerReport,
  statusJson,
  summarizeServer,
} from "../lib/status_table.ts";
import type { ServerStatus } from "../lib/server_status.ts";
import { link, serverStatus } from "./support/server_status_fixture.ts";

function report(
  name: string,
  neighbours: string[],
  answer: ServerReport["answer"],
  port = 12000,
): ServerReport {
  return {
    name,
    address: `127.0.0.1:${port}`,
    monitor: answer.kind === "no-monitor" ? undefined : `127.0.0.1:${port + 100}`,
    neighbours,
    answer,
  };
}

const JAQUEZ_UP = report("Jaquez", ["Hill"], {
  kind: "status",
  status: serverStatus("Jaquez", {
    clients: { held: 1234, bytes: 99, full: false },
    connections: { clients: 17, handshakes: 0 },
    rates: { iamatPerSecond: 812.34, whatsatPerSecond: 3.06 },
    links: [link("Hill")],
  }),
});

/** Hill answers, but its link to Smith is down: the newer of its two errors is Smith's. */
const HILL_LINK_DOWN = report("Hill", ["Jaquez", "Smith"], {
  kind: "status",
  status: serverStatus("Hill", {
    links: [
      link("Jaquez", { lastError: "heartbeat missed", since: "2026-01-01T00:00:01.000Z" }),
      link("Smith", {
        state: "connecting",
        since: "2026-01-01T00:05:00.000Z",
        lastError: "connect ECONNREFUSED 127.0.0.1:12002: the neighbour is not listening",
      }),
    ],
  }),
}, 12001);

const SMITH_UNREACHABLE = report("Smith", ["Hill"], {
  kind: "failed",
  reason: "connection refused",
}, 12002);
const SINGLETON_NO_MONITOR = report("Singleton", [], { kind: "no-monitor" }, 12003);

Deno.test("formatStatusTable() lays out one aligned row per server, in config order", () => {
  assert.equal(
    formatStatusTable([JAQUEZ_UP, HILL_LINK_DOWN, SMITH_UNREACHABLE, SINGLETON_NO_MONITOR]),
    [
      "SERVER     ADDRESS          UP                      CLIENTS  CONNECTIONS  LINKS  IAMAT/S  WHATSAT/S  LAST ERROR",
      "Jaquez     127.0.0.1:12000  yes                        1234           17    1/1    812.3        3.1  -",
      "Hill       127.0.0.1:12001  yes                           0            0    1/2      0.0        0.0  Smith: connect ECONNREFUSED 127.0.0.1:12002: th…",
      "Smith      127.0.0.1:12002  no: connection refused        -            -    -/1        -          -  -",
      "Singleton  127.0.0.1:12003  no monitor                    -            -    -/0        -          -  -",
      "",
    ].join("\n"),
  );
});

Deno.test("summarizeServer() calls a server healthy only when it serves with every configured link up", () => {
  assert.equal(summarizeServer(JAQUEZ_UP).healthy, true);
  assert.equal(summarizeServer(JAQUEZ_UP).reason, null);
  assert.equal(summarizeServer(HILL_LINK_DOWN).healthy, false);
  assert.equal(summarizeServer(HILL_LINK_DOWN).reason, "1 of 2 links up");
  assert.equal(summarizeServer(SMITH_UNREACHABLE).healthy, false);
  assert.equal(summarizeServer(SINGLETON_NO_MONITOR).reason, "no monitor");
});

Deno.test("summarizeServer() shows a server that is loading or stopping as not up", () => {
  for (const state of ["loading", "stopping"] as const) {
    const summary = summarizeServer(
      report("Hill", [], { kind: "status", status: serverStatus("Hill", { state }) }),
    );
    assert.equal(summary.upText, `no: ${state}`);
    assert.equal(summary.healthy, false);
    assert.equal(summary.reason, state);
  }
});

Deno.test("summarizeServer() counts only the links the config gives, and only those up", () => {
  const status = serverStatus("Hill", {
    links: [link("Jaquez"), link("Smith", { state: "authenticating" }), link("Stranger")],
  });
  const summary = summarizeServer(report("Hill", ["Jaquez", "Smith"], { kind: "status", status }));
  assert.equal(summary.linksUp, 1);
  assert.equal(summary.linksConfigured, 2);
  // A configured link the server does not list at all is down too.
  const silent = summarizeServer(
    report("Hill", ["Jaquez"], { kind: "status", status: serverStatus("Hill") }),
  );
  assert.equal(silent.linksUp, 0);
  assert.equal(silent.healthy, false);
});

Deno.test("isHerdUp() holds only when every server is healthy", () => {
  assert.equal(isHerdUp([JAQUEZ_UP]), true);
  assert.equal(isHerdUp([]), true);
  for (const down of [HILL_LINK_DOWN, SMITH_UNREACHABLE, SINGLETON_NO_MONITOR]) {
    assert.equal(isHerdUp([JAQUEZ_UP, down]), false, down.name);
  }
});

Deno.test("statusJson() gives every server's verdict, reason and whole status", () => {
  const json = statusJson([JAQUEZ_UP, SMITH_UNREACHABLE, SINGLETON_NO_MONITOR]);
  assert.deepEqual(JSON.parse(JSON.stringify(json)), {
    up: false,
    servers: [
      {
        name: "Jaquez",
        address: "127.0.0.1:12000",
        monitor: "127.0.0.1:12100",
        up: true,
        reason: null,
        linksUp: 1,
        linksConfigured: 1,
        status: (JAQUEZ_UP.answer as { status: ServerStatus }).status,
      },
      {
        name: "Smith",
        address: "127.0.0.1:12002",
        monitor: "127.0.0.1:12102",
        up: false,
        reason: "connection refused",
        linksUp: null,
        linksConfigured: 1,
        status: null,
      },
      {
        name: "Singleton",
        address: "127.0.0.1:12003",
        monitor: null,
        up: false,
        reason: "no monitor",
        linksUp: null,
        linksConfigured: 0,
        status: null,
      },
    ],
  });
});
