/**
 * The server's logger as `setupLogging` makes it: info records with fields go straight to the
 * file (past LogTape's dispatch) in the chosen format, other levels through LogTape, and the
 * level still decides what is written.
 */
import assert from "node:assert/strict";
import { setupLogging } from "../lib/log.ts";

async function logged(
  options: { level: "info" | "warn"; format: "text" | "json" },
  log: (logger: Awaited<ReturnType<typeof setupLogging>>["logger"]) => void,
): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "herd_log_test_" });
  try {
    const { logger, close } = await setupLogging({
      dir,
      name: "Hill",
      maxBytes: 1 << 20,
      files: 2,
      onDropped: () => {},
      ...options,
    });
    log(logger);
    await close();
    return (await Deno.readTextFile(`${dir}/Hill.log`)).trimEnd().split("\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("info with fields is written in order with the rest, its template filled in", async () => {
  const lines = await logged({ level: "info", format: "text" }, (logger) => {
    logger.info("client {remote}: {line}", { remote: "127.0.0.1:5", line: "IAMAT {x}" });
    logger.warn("a warning about {what}", { what: "something" });
    logger.info("a finished message with {braces}");
    assert.equal(logger.isEnabledFor("info"), true);
  });
  assert.deepEqual(lines.map((line) => line.slice(25)), [
    "[INF] client 127.0.0.1:5: IAMAT {x}",
    "[WRN] a warning about something",
    "[INF] a finished message with {braces}",
  ]);
});

Deno.test("at warn, info is not written, whichever way it is called", async () => {
  const lines = await logged({ level: "warn", format: "text" }, (logger) => {
    logger.info("client {remote}: {line}", { remote: "127.0.0.1:5", line: "IAMAT a" });
    logger.info("plain");
    logger.warn("kept");
    assert.equal(logger.isEnabledFor("info"), false);
  });
  assert.deepEqual(lines.map((line) => line.slice(25)), ["[WRN] kept"]);
});

Deno.test("in JSON an info record carries its fields and the server's name", async () => {
  const [line] = await logged({ level: "info", format: "json" }, (logger) => {
    logger.info("flood to {peer}: {update}", { peer: "Smith", update: "AT Hill +0.1 a +1+1 1" });
  });
  const record = JSON.parse(line);
  assert.equal(record.server, "Hill");
  assert.equal(record.level, "info");
  assert.equal(record.message, "flood to Smith: AT Hill +0.1 a +1+1 1");
  assert.equal(record.peer, "Smith");
  assert.equal(record.update, "AT Hill +0.1 a +1+1 1");
});
