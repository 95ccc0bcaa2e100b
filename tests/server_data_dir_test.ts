/**
 * A server with a data dir, in this process: a stop writes every update it stored before it
 * returns — also those that came from a neighbour, whose writes nobody waits for — and a
 * restart over the same directory holds them again.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { validateConfig } from "../lib/config.ts";
import { Counters } from "../lib/counters.ts";
import { unknownErrorBody } from "../lib/places/provider.ts";
import { HerdServer } from "../lib/server.ts";
import { freePorts } from "./support/herd_processes.ts";
import { updateLogPath } from "../lib/update_log.ts";

const UPDATES = 2000;

function serverIn(dataDir: string, port: number): HerdServer {
  return new HerdServer({
    name: "Hill",
    config: validateConfig({ servers: { Hill: { port } }, links: [] }),
    places: { name: "offline", lookup: () => Promise.resolve(unknownErrorBody()) },
    logger: getLogger(["test"]),
    counters: new Counters(),
    dataDir,
  });
}

function atLine(index: number): string {
  return `AT Jaquez +0.000000001 flooded${index} +34.068930-118.445127 1700000000`;
}

Deno.test("a server's stop writes the updates it stored; a restart holds them", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "herd-server-data-" });
  const [port] = freePorts(1);
  try {
    const first = serverIn(dataDir, port);
    await first.start();
    // As updates from a neighbour arrive: stored, written to disk in the background.
    for (let i = 0; i < UPDATES; i++) {
      assert.equal(
        first.store.offer({ clientId: `flooded${i}`, atLine: atLine(i) }, "Jaquez"),
        "stored",
      );
    }
    await first.stop();
    // Read at once: what the stop did not write by the time it returned is not there.
    const written = Deno.readTextFileSync(updateLogPath(dataDir, "Hill")).split("\n").length - 1;
    assert.equal(written, UPDATES);

    const second = serverIn(dataDir, port);
    await second.start();
    try {
      assert.equal(second.store.size, UPDATES);
      for (let i = 0; i < UPDATES; i++) {
        assert.equal(second.store.get(`flooded${i}`)?.atLine, atLine(i));
      }
    } finally {
      await second.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
