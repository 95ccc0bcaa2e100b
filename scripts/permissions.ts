/**
 * How a herd server is run: its permissions (network, its config/log files, env, rlimit FFI) and
 * its runtime flags. `deno task herd`, `deno task herd:all`, `./herd` and `deno task bench` all
 * run servers so; deno.json's `herd` task spells the same flags out (tests/permissions_test.ts
 * checks that it does).
 */

/** The permissions a herd server runs with. */
export const SERVER_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-ffi",
];

/**
 * V8 flags of every server launcher (measured in docs/performance.md):
 * - the young generation capped at 4 MB a semi-space (its default grows to 16 MB under load):
 *   a server under load held ~45 MB more for it (180 against 135 MB after 256k clients at
 *   c=64), as fast, with shorter scavenges (session 5);
 * - a full collection started when memory outside the JavaScript heap has grown 4 times past
 *   what the last one left, not 1.1 times: a store growing under load (its arena and arrays
 *   are such memory, freed by the store itself, not by the collector) set off one every 1–2 s,
 *   each a 20–30 ms stall; c=256 p999 21–38 ms against 16–23 ms (session 6).
 */
export const SERVER_RUNTIME_FLAGS = [
  "--v8-flags=--max-semi-space-size=4,--external-memory-max-growing-factor=4",
];
