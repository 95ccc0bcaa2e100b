/**
 * The ceiling of `deno task bench`: a bare Deno TCP line server, what the runtime itself can
 * do with herd's traffic. No parsing and no state: each line `IAMAT <rest>` is answered with
 * `AT Ceiling +0.000000000 <rest>` (an AT-shaped line that echoes the client id, so the
 * generator checks it like a herd reply). Bytes in, bytes out, one write per read.
 *
 * Usage: deno run --allow-net bench/ceiling.ts PORT
 * Prints `Ceiling listening on 127.0.0.1:PORT` once it listens.
 */

const NEWLINE = 10;
const READ_BYTES = 64 * 1024;
const REPLY_PREFIX = new TextEncoder().encode("AT Ceiling +0.000000000 ");
/** Bytes of `IAMAT ` dropped from the front of each line. */
const COMMAND_BYTES = 6;

/** The replies for every whole line in `input`, and where the unfinished tail starts. */
export function answerLines(input: Uint8Array): { replies: Uint8Array; consumed: number } {
  const ends: number[] = [];
  let size = 0;
  let start = 0;
  for (let end = input.indexOf(NEWLINE); end !== -1; end = input.indexOf(NEWLINE, start)) {
    ends.push(end);
    size += REPLY_PREFIX.length + Math.max(0, end - start - COMMAND_BYTES) + 1;
    start = end + 1;
  }
  const replies = new Uint8Array(size);
  let at = 0;
  start = 0;
  for (const end of ends) {
    replies.set(REPLY_PREFIX, at);
    at += REPLY_PREFIX.length;
    const rest = input.subarray(Math.min(start + COMMAND_BYTES, end), end);
    replies.set(rest, at);
    at += rest.length;
    replies[at++] = NEWLINE;
    start = end + 1;
  }
  return { replies, consumed: start };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buffer = new Uint8Array(READ_BYTES);
  let tail = new Uint8Array(0);
  try {
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) return;
      let input = buffer.subarray(0, count);
      if (tail.length > 0) {
        const joined = new Uint8Array(tail.length + count);
        joined.set(tail);
        joined.set(input, tail.length);
        input = joined;
      }
      const { replies, consumed } = answerLines(input);
      // A line longer than a read buffer is not the generator's: drop it rather than grow.
      tail = input.length - consumed > READ_BYTES ? new Uint8Array(0) : input.slice(consumed);
      if (replies.length > 0) await writeAll(conn, replies);
    }
  } catch {
    // The client went away mid-read or mid-write: nothing to answer any more.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 0);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log(`Ceiling listening on 127.0.0.1:${listener.addr.port}`);
  for await (const conn of listener) serve(conn);
}
