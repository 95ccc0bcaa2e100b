import assert from "node:assert/strict";
import { SERVER_PERMISSIONS, SERVER_RUNTIME_FLAGS } from "../scripts/permissions.ts";

Deno.test("deno.json's herd task runs a server with the same permissions and flags as every launcher", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const expected = ["deno", "run", ...SERVER_PERMISSIONS, ...SERVER_RUNTIME_FLAGS, "main.ts"];
  assert.deepEqual(config.tasks.herd.split(" "), expected);
});
