/**
 * The shape of one server's `GET /status` answer, shared by the monitor that builds it, the
 * live page that gathers every server's, and `herd status` that prints them. Types only: how
 * a status is built is lib/monitor.ts's, how it is shown the readers'.
 */
import type { Limits } from "./config.ts";

/** Whether a server answers clients: loading its data dir, serving, or stopping. */
export type ServerState = "loading" | "serving" | "stopping";

/** A link to one configured neighbour, as this server sees it. */
export type LinkState = "up" | "down" | "connecting" | "authenticating";

export interface LinkStatus {
  /** The neighbour's name. */
  peer: string;
  state: LinkState;
  /** When the link entered `state` (ISO 8601). */
  since: string;
  /** Who dialled the current (or last) connection: this server's name or the neighbour's. */
  dialledBy: string | null;
  /** Updates (`U` lines) sent and received on this link since this server started. */
  updatesSent: number;
  updatesReceived: number;
  /** Bytes sent and received on this link's connections since this server started. */
  bytesSent: number;
  bytesReceived: number;
  /** Updates sent per second over the last few seconds, both ways together. */
  updatesPerSecond: number;
  /** The catch-up of the current connection: updates sent so far, and whether each end is done. */
  catchUp: { updatesSent: number; sentAll: boolean; receivedAll: boolean };
  /** Why the link last went down or failed to come up; null when it never did. */
  lastError: string | null;
}

export interface DataDirStatus {
  path: string;
  /** Updates waiting for a write, against `dataDirBacklogMax`. */
  backlog: number;
  /** True while new IAMATs are refused because the backlog is full. */
  backlogged: boolean;
  writeFailures: number;
}

export interface ServerStatus {
  name: string;
  /** herd's version. */
  version: string;
  pid: number;
  /** ISO 8601. */
  startedAt: string;
  uptimeSeconds: number;
  state: ServerState;
  /** `host:port` of the client and peer port, and of the monitor. */
  listen: string;
  monitor: string;
  provider: "google" | "google-new" | "offline";
  clients: {
    held: number;
    /** As counted toward `storeBytesMax`. */
    bytes: number;
    /** True once an update was refused for `clientsMax` or `storeBytesMax`: out of capacity. */
    full: boolean;
  };
  connections: { clients: number; handshakes: number };
  /** IAMAT and WHATSAT lines per second over the last few seconds. */
  rates: { iamatPerSecond: number; whatsatPerSecond: number };
  limits: Limits;
  /** Every counter of the `counters:` log line, by name. */
  counters: Record<string, number>;
  /** null without `--data-dir`. */
  dataDir: DataDirStatus | null;
  /** How late the event loop ran a timer, lately and at most since start. */
  eventLoopLagMs: { recent: number; max: number };
  /** One entry per configured neighbour, sorted by name. */
  links: LinkStatus[];
}
