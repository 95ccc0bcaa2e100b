/**
 * Microbenchmark of the store alone: the cost of one accepted update when a million clients
 * are held, for updates spread over all of them and for a few clients that move all the
 * time (the case where moving a map entry to the end made V8 rehash the whole map).
 *
 *     deno run bench/store_updates.ts [clients]
 */
import { ClientStore } from "../lib/store.ts";

const CLIENTS = Number(Deno.args[0] ?? 1_000_000);
const UPDATES = 200_000;
const HOT_CLIENTS = 10;

function atLine(clientId: string, time: number): string {
  return `AT Hill +0.100000000 ${clientId} +34.068930-118.445127 ${time}`;
}

const store = new ClientStore({ clientsMax: CLIENTS });
for (let i = 0; i < CLIENTS; i++) {
  store.offer({ clientId: `client${i}`, atLine: atLine(`client${i}`, 1_700_000_000) });
}

const patterns: Array<[string, (i: number) => string]> = [
  ["spread over all clients", () => `client${Math.floor(Math.random() * CLIENTS)}`],
  [`${HOT_CLIENTS} hot clients`, (i) => `client${i % HOT_CLIENTS}`],
];
let time = 1_700_000_001;
for (const [name, pickClient] of patterns) {
  const startedMs = performance.now();
  let slowestMs = 0;
  for (let i = 0; i < UPDATES; i++) {
    const clientId = pickClient(i);
    const updateStartedMs = performance.now();
    store.offer({ clientId, atLine: atLine(clientId, time++) });
    slowestMs = Math.max(slowestMs, performance.now() - updateStartedMs);
  }
  const meanUs = ((performance.now() - startedMs) * 1000) / UPDATES;
  console.log(
    `${CLIENTS} clients, ${name}: ${meanUs.toFixed(2)} µs per update, slowest ${
      slowestMs.toFixed(1)
    } ms`,
  );
}
