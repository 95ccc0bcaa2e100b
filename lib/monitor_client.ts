/**
 * How one program reaches the herd's monitors: plain HTTP, or — when herd.json has `tls` —
 * HTTPS that trusts only the herd's CA (each monitor serves its server's certificate). Used
 * by `herd status` and by the live page's gathering, so both build a monitor's URL one way.
 */
import { formatAddress, type ServerAddress } from "./config.ts";

export interface MonitorClient {
  scheme: "http" | "https";
  /** The global fetch, with TLS bound to a client that trusts only the herd's CA. */
  fetch: typeof fetch;
}

/** Plain HTTP without `caPem`; else HTTPS trusting only that CA (PEM). */
export function monitorClient(caPem: string | undefined, baseFetch = fetch): MonitorClient {
  if (caPem === undefined) return { scheme: "http", fetch: baseFetch };
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  return {
    scheme: "https",
    fetch: (input, init) => baseFetch(input, { ...init, client }),
  };
}

/** The URL of a monitor's `/status`. */
export function monitorStatusUrl(client: Pick<MonitorClient, "scheme">, monitor: ServerAddress) {
  return `${client.scheme}://${formatAddress(monitor)}/status`;
}
