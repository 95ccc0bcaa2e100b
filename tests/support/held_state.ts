/**
 * Waiting for what servers hold: polls each server's stored AT lines (read with WHATSAT)
 * until every client's line is what the test expects, and names a few wrong ones if not.
 */
import { type Herd, pollUntil } from "./herd_processes.ts";
import { heldAtLines } from "./wire_client.ts";

/**
 * Polls until every server in `servers` holds, for each of `clientIds`, a line `isRight`
 * accepts (`held` undefined: the server does not know the client).
 *
 * @example
 * ```ts
 * await waitUntilHeld(herd, HERD_NAMES, ["kiwi"], (_id, held) => held === expectedLine, {
 *   timeoutMs: 10_000,
 * });
 * ```
 */
export async function waitUntilHeld(
  herd: Herd,
  servers: readonly string[],
  clientIds: readonly string[],
  isRight: (clientId: string, held: string | undefined) => boolean,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<void> {
  let wrong: string[] = [];
  await pollUntil(async () => {
    wrong = [];
    for (const server of servers) {
      const held = await heldAtLines(herd.port(server), clientIds, herd.host(server));
      held.forEach((line, index) => {
        if (!isRight(clientIds[index], line)) {
          wrong.push(`${server} holds ${line ?? "nothing"} for ${clientIds[index]}`);
        }
      });
    }
    return wrong.length === 0;
  }, {
    ...options,
    what: () =>
      `${servers.join(", ")} to hold the expected lines (${wrong.length} wrong, e.g. ${
        wrong.slice(0, 3).join("; ")
      })`,
  });
}

/** A line's last field, the client's time, as a number (undefined for no line). */
export function heldTime(held: string | undefined): number | undefined {
  return held === undefined ? undefined : Number(held.slice(held.lastIndexOf(" ") + 1));
}

/** Polls until every server in `servers` holds exactly `expected` (client id → AT line). */
export function waitAllHold(
  herd: Herd,
  expected: ReadonlyMap<string, string>,
  servers: readonly string[],
  options: { timeoutMs: number; intervalMs?: number },
): Promise<void> {
  const isExpected = (id: string, held: string | undefined) => held === expected.get(id);
  return waitUntilHeld(herd, servers, [...expected.keys()], isExpected, options);
}
