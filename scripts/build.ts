/**
 * `deno task build`: compiles `./herd` with `deno compile`. The offline data set comes along
 * with the npm packages it embeds.
 * `deno compile` needs the `denort` runtime: it is downloaded where that works, taken from
 * `DENORT_BIN=/path/to/denort` when set, and otherwise the build fails with one line saying so.
 */
import { SERVER_PERMISSIONS, SERVER_RUNTIME_FLAGS } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;

const args = [
  "compile",
  ...SERVER_PERMISSIONS,
  ...SERVER_RUNTIME_FLAGS,
  "--output",
  `${root}herd`,
  `${root}main.ts`,
];
const denortBin = Deno.env.get("DENORT_BIN");
const result = await new Deno.Command(Deno.execPath(), {
  args,
  stdout: "inherit",
  stderr: "piped",
  env: { NO_COLOR: "1" },
}).output();
if (!result.success) {
  const lines = new TextDecoder().decode(result.stderr).split("\n").map((line) => line.trim());
  const runtimeMissing = lines.some((line) => line.includes("Setting up base binary"));
  const detail = lines.find((line) => /^\d+: .*error/.test(line)) ??
    lines.find((line) => line.startsWith("error:")) ?? "deno compile failed";
  const reason = denortBin
    ? `deno compile failed with DENORT_BIN=${denortBin}`
    : runtimeMissing
    ? "deno compile could not download its denort runtime; set DENORT_BIN=/path/to/denort"
    : "deno compile failed";
  console.error(`build: ${reason} (${detail})`);
  Deno.exit(1);
}
console.log(`built ${root}herd`);
