/**
 * A server with a data dir, in this process: a stop writes every update it stored before it
 * returns — also those that came from a neighbour, whose writes nobody waits for — and a
 * restart over the same directory holds them again; a data dir in a newer format is refused
 * with a DataDirError; while the disk fails, IAMATs past dataDirBacklogMax are refused and
 * WHATSATs still answered, until the backlog drains. And the idle timeout on the server's
 * injected clock.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { validateConfig } from "../lib/config.ts";
import { Counters } from "../lib/counters.ts";
import { systemWaitClock } from "../lib/abortable.ts";
import { unknownErrorBody } from "../lib/places/provider.ts";
import { DataDirError, HerdServer, type HerdServerOptions } from "../lib/server.ts";
import { freePorts, pollUntil } from "./support/herd_processes.ts";
import { updateLogPath } from "../lib/update_log.ts";
import { FaultyFileSystem } from "./support/faulty_file_system.ts";
import { WireClient } from "./support/wire_client.ts";

const UPDATES = 2000;

function serverIn(
  dataDir: string,
  port: number,
  options: Partial<HerdServerOptions> & { limits?: Record<string, number> } = {},
): HerdServer {
  return new HerdServer({
    name: "Hill",
    config: validateConfig({ servers: { Hill: { port } }, links: [], limits: options.limits }),
    places: { name: "offline", lookup: () => Promise.resolve(unknownErrorBody()) },
    logger: getLogger(["test"]),
    counters: new Counters(),
    dataDir,
    ...options,
  });
}

async function withDataDir(body: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "herd-server-data-" });
  try {
    await body(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
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
        first.store.offer({ clientId: `flooded${i}`, atLine: atLine(i) }, { fromPeer: "Jaquez" }),
        "stored",
      );
    }
    await first.stop();
    // Read at once: what the stop did not write by the time it returned is not there.
    const [header, ...records] = Deno.readTextFileSync(updateLogPath(dataDir, "Hill")).split("\n");
    assert.equal(header, "herd-updates 2");
    assert.equal(records.length - 1, UPDATES);

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

Deno.test("a data dir in a newer format stops the start with a one-line DataDirError", async () => {
  await withDataDir(async (dataDir) => {
    await Deno.writeTextFile(updateLogPath(dataDir, "Hill"), "herd-updates 3\n");
    const server = serverIn(dataDir, freePorts(1)[0]);
    try {
      await assert.rejects(server.start(), (error: Error) => {
        assert.ok(error instanceof DataDirError);
        assert.match(error.message, /^--data-dir .*format 3, written by a newer herd[^\n]*$/);
        return true;
      });
    } finally {
      await server.stop();
    }
  });
});

Deno.test("while the disk fails, IAMATs past dataDirBacklogMax get `? line`, WHATSATs are answered, and the backlog drains", async () => {
  await withDataDir(async (dataDir) => {
    const fileSystem = new FaultyFileSystem();
    const counters = new Counters();
    const [port] = freePorts(1);
    const server = serverIn(dataDir, port, {
      limits: { dataDirBacklogMax: 3 },
      dataDirFileSystem: fileSystem,
      counters,
    });
    await server.start();
    try {
      await using writer = await WireClient.connect(port);
      await using reader = await WireClient.connect(port);
      const iamat = (id: string) => `IAMAT ${id} +34.068930-118.445127 1700000000`;
      await reader.write(`${iamat("known")}\n`);
      await reader.readAtReply();

      fileSystem.fail("write", { times: Infinity });
      await writer.write(["a0", "a1", "a2"].map((id) => `${iamat(id)}\n`).join(""));
      await pollUntil(() => counters.get("iamat_stored") === 4, { what: "the IAMATs stored" });
      await reader.write(`${iamat("late")}\n`);
      assert.equal(await reader.readLine(), `? ${iamat("late")}`);
      assert.equal(counters.get("limit_data_dir_backlog"), 1);
      await reader.write("WHATSAT known 10 5\n");
      assert.match((await reader.readWhatsatReply()).atLine, /^AT Hill \S+ known /);
      assert.ok(counters.get("data_dir_write_failures") > 0);

      fileSystem.heal();
      for (const id of ["a0", "a1", "a2"]) {
        assert.match(await writer.readAtReply(), new RegExp(`^AT Hill \\S+ ${id} `));
      }
      await reader.write(`${iamat("late")}\n`);
      assert.match(await reader.readAtReply(), /^AT Hill \S+ late /);
    } finally {
      await server.stop();
    }
    const held = Deno.readTextFileSync(updateLogPath(dataDir, "Hill"));
    for (const id of ["known", "a0", "a1", "a2", "late"]) assert.match(held, new RegExp(` ${id} `));
  });
});

Deno.test("a client silent for idleTimeoutMs on the server's clock is closed; a busy one is not", async () => {
  let nowMs = 0;
  const clock = { ...systemWaitClock, nowMs: () => nowMs };
  const [port] = freePorts(1);
  const server = serverIn("", port, {
    dataDir: undefined,
    limits: { idleTimeoutMs: 600_000 },
    waitClock: clock,
  });
  await server.start();
  try {
    await using silent = await WireClient.connect(port);
    await using busy = await WireClient.connect(port);
    await busy.write("IAMAT busy +1+1 1\n");
    assert.match(await busy.readLine(), /^AT Hill /);
    nowMs = 300_000; // half the timeout: both still open
    await busy.write("IAMAT busy +1+1 2\n");
    assert.match(await busy.readLine(), /^AT Hill /);
    nowMs = 600_000; // the silent one's ten minutes are up; the busy one spoke 5 minutes ago
    assert.equal(await silent.readUntilEof({ timeoutMs: 3000 }), "");
    await busy.write("IAMAT busy +1+1 3\n");
    assert.match(await busy.readLine(), /^AT Hill /, "the busy client is still served");
    assert.equal(server.counters.get("limit_idle_timeout"), 1);
  } finally {
    await server.stop();
  }
});
