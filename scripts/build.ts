/**
 * `deno task build`: compiles `./herd` with `deno compile`. The offline data set comes along
 * with the npm packages it embeds; the offline loader's Worker module must be named.
 * `deno compile` needs the `denort` runtime: it is downloaded where that works, taken from
 * `DENORT_BIN=/path/to/denort` when set, and otherwise the build fails with one line saying so.
 */
import { SERVER_PERMISSIONS } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;

const args = [
  "compile",
  ...SERVER_PERMISSIONS,
  "--include",
  `${root}lib/places/offline_worker.ts`,
  "--output",
  `${root}herd`,
  `${root}main.ts`,
];
const denortBin = Deno.env.get("DENORT_BIN");
const result = await new Deno.Command(Deno.execPath(), {
  args,
  stdout: "inherit",
  stderr: "piped",
}).output();
if (!result.success) {
  const detail = new TextDecoder().decode(result.stderr).trim().split("\n").at(-1) ?? "";
  const reason = denortBin
    ? `deno compile failed with DENORT_BIN=${denortBin}`
    : "deno compile could not get the denort runtime (no download here); " +
      "set DENORT_BIN=/path/to/denort";
  console.error(`build: ${reason}: ${detail.replace(/\x1b\[[0-9;]*m/g, "")}`);
  Deno.exit(1);
}
console.log(`built ${root}herd`);
