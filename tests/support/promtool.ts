/**
 * `promtool check metrics` on an exposition, as the contract requires it to pass. promtool
 * must be installed (`.ci/run` installs Debian's `prometheus` package when it is missing):
 * without it the check fails with a message saying so — never skipped.
 */
import assert from "node:assert/strict";

const PROMTOOL = "/usr/bin/promtool";

/** Runs promtool on `text`; throws with its output when it finds a problem. Returns that output. */
export async function checkMetricsWithPromtool(text: string): Promise<string> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(PROMTOOL, {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new Error(
      `${PROMTOOL} could not be run (${error}): install it (Debian: apt-get install ` +
        "prometheus; .ci/run does) — the exposition must pass promtool check metrics",
    );
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, `promtool check metrics failed:\n${output}`);
  return output;
}
