/**
 * `/status` answers as a monitor gives them, for tests that read them (herd status, the live
 * page's herd view): every field filled with a plain default, changed where a test says.
 */
import { DEFAULT_LIMITS } from "../../lib/config.ts";
import type { LinkStatus, ServerStatus } from "../../lib/server_status.ts";

/** A link to `peer`, up, with nothing sent yet, changed by `change`. */
export function link(peer: string, change: Partial<LinkStatus> = {}): LinkStatus {
  return {
    peer,
    state: "up",
    since: "2026-01-01T00:00:00.000Z",
    dialledBy: peer,
    updatesSent: 0,
    updatesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    updatesPerSecond: 0,
    catchUp: { updatesSent: 0, sentAll: true, receivedAll: true },
    lastError: null,
    ...change,
  };
}

/** A serving server's status with no links, changed by `change`. */
export function serverStatus(name: string, change: Partial<ServerStatus> = {}): ServerStatus {
  return {
    name,
    version: "0.0.0",
    pid: 1,
    startedAt: "2026-01-01T00:00:00.000Z",
    uptimeSeconds: 60,
    state: "serving",
    listen: "127.0.0.1:12000",
    monitor: "127.0.0.1:12100",
    provider: "offline",
    clients: { held: 0, bytes: 0, full: false },
    connections: { clients: 0, handshakes: 0 },
    rates: { iamatPerSecond: 0, whatsatPerSecond: 0 },
    limits: { ...DEFAULT_LIMITS },
    counters: {},
    dataDir: null,
    eventLoopLagMs: { recent: 0, max: 0 },
    links: [],
    ...change,
  };
}
