/**
 * How a herd server is run: its permissions (network, its config/log files, env, rlimit FFI) and
 * its runtime flags. `deno task herd`, `deno task herd:all`, `./herd` and `deno task bench` all
 * run servers so; deno.json's `herd` task spells the same flags out.
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
 * V8's young generation capped at 4 MB a semi-space (its default grows to 16 MB under load):
 * a server under load held ~45 MB more for it (180 against 135 MB after 256k clients at c=64),
 * as fast, with shorter scavenges (measured in docs/performance.md, session 5).
 */
export const SERVER_RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=4"];
