/**
 * A user-space bad link, for a kernel without `netem`: a TCP relay that holds every chunk
 * for a delay plus a random jitter, and stops forwarding altogether for a stall at a fixed
 * period, in both directions, keeping the byte order. It runs as its own process inside a
 * test's network namespace (`ip netns exec NS deno run -A netns_relay.ts JSON`) so the
 * servers' traffic crosses it there; it prints `relay listening on …` once every listener is
 * up and runs until killed. The harness side is `startRelay` in tests/support/netns.ts.
 */

/** One listener of the relay and where it forwards. */
export interface RelayRoute {
  listen: { host: string; port: number };
  target: { host: string; port: number };
}

/** How the relay spoils its links. */
export interface LinkShaping {
  /** Added to every chunk, each way. */
  delayMs: number;
  /** A further uniform random delay in [0, jitterMs), never reordering bytes. */
  jitterMs: number;
  /** Every `stallEveryMs`, nothing is forwarded for `stallMs`. */
  stallEveryMs: number;
  stallMs: number;
}

export interface RelayConfig {
  routes: RelayRoute[];
  shaping: LinkShaping;
}

const CHUNK_BYTES = 64 * 1024;
/** Bytes held per direction before the relay stops reading: a slow side pushes back. */
const QUEUED_BYTES_MAX = 4 * 1024 * 1024;

/** A chunk and when it may leave. */
interface HeldChunk {
  dueMs: number;
  bytes: Uint8Array;
}

/** The moment, at or after `atMs`, when no stall holds traffic. */
function afterStall(atMs: number, shaping: LinkShaping): number {
  const intoPeriodMs = atMs % shaping.stallEveryMs;
  return intoPeriodMs < shaping.stallMs ? atMs - intoPeriodMs + shaping.stallMs : atMs;
}

/** Forwards `from` to `to` with the shaping; resolves when either side ends. */
async function pipeShaped(from: Deno.Conn, to: Deno.Conn, shaping: LinkShaping): Promise<void> {
  const queue: HeldChunk[] = [];
  let queuedBytes = 0;
  let readerDone = false;
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  const reading = (async () => {
    const buffer = new Uint8Array(CHUNK_BYTES);
    let lastDueMs = 0;
    try {
      for (;;) {
        while (queuedBytes > QUEUED_BYTES_MAX) await new Promise<void>((r) => wakeReader = r);
        const count = await from.read(buffer);
        if (count === null) return;
        // Never before the previous chunk: TCP bytes keep their order whatever the jitter.
        lastDueMs = Math.max(
          lastDueMs,
          performance.now() + shaping.delayMs + Math.random() * shaping.jitterMs,
        );
        queue.push({ dueMs: lastDueMs, bytes: buffer.slice(0, count) });
        queuedBytes += count;
        wakeWriter?.();
      }
    } catch {
      // Reset or closed: the pair is torn down below.
    } finally {
      readerDone = true;
      wakeWriter?.();
    }
  })();
  try {
    for (;;) {
      const chunk = queue[0];
      if (chunk === undefined) {
        if (readerDone) return;
        await new Promise<void>((r) => wakeWriter = r);
        continue;
      }
      const waitMs = afterStall(chunk.dueMs, shaping) - performance.now();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      for (let offset = 0; offset < chunk.bytes.length;) {
        offset += await to.write(chunk.bytes.subarray(offset));
      }
      queue.shift();
      queuedBytes -= chunk.bytes.length;
      wakeReader?.();
    }
  } catch {
    // The other side closed: the pair is torn down by the caller.
  } finally {
    await reading.catch(() => {});
  }
}

async function relay(conn: Deno.TcpConn, route: RelayRoute, shaping: LinkShaping) {
  let target: Deno.TcpConn;
  try {
    target = await Deno.connect({ hostname: route.target.host, port: route.target.port });
  } catch {
    conn.close(); // nothing behind: the dialler sees the link fail, as it would directly
    return;
  }
  const closeBoth = () => {
    for (const side of [conn, target]) {
      try {
        side.close();
      } catch {
        // Already closed.
      }
    }
  };
  await Promise.all([
    pipeShaped(conn, target, shaping).finally(closeBoth),
    pipeShaped(target, conn, shaping).finally(closeBoth),
  ]);
}

async function serve(config: RelayConfig): Promise<void> {
  const listeners = config.routes.map((route) =>
    Deno.listen({ hostname: route.listen.host, port: route.listen.port })
  );
  const shown = config.routes.map((r) => `${r.listen.host}:${r.listen.port}`).join(", ");
  console.log(`relay listening on ${shown}`);
  await Promise.all(listeners.map(async (listener, index) => {
    for await (const conn of listener) relay(conn, config.routes[index], config.shaping);
  }));
}

if (import.meta.main) await serve(JSON.parse(Deno.args[0]) as RelayConfig);
