/**
 * A TCP forwarder placed on one direction of a peer link, so the benchmark can count the
 * bytes a catch-up really sends (TCP payload, not headers) and cut a link without stopping
 * either server. Cutting closes every forwarded connection and closes new ones at once
 * until restored; both servers then see the link down and keep redialling, as they would
 * through a real network failure (unlike SIGSTOP, under which TCP keeps the link up).
 */

const CHUNK_BYTES = 64 * 1024;

/** Bytes that went through, by direction. */
export interface ProxyBytes {
  /** From the server that dialled to the one listening behind the proxy. */
  toTarget: number;
  /** Back from the listening server to the one that dialled. */
  fromTarget: number;
}

export class LinkProxy {
  /** The port servers dial instead of the target's. */
  readonly port: number;
  readonly #targetPort: number;
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<Deno.Conn>();
  #cut = false;
  #bytes: ProxyBytes = { toTarget: 0, fromTarget: 0 };
  /** performance.now() of every connection forwarded to the target. */
  #forwardedAtMs: number[] = [];

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#accept();
  }

  get bytes(): ProxyBytes {
    return { ...this.#bytes };
  }

  /** performance.now() of each connection forwarded at or after `sinceMs`. */
  forwardedSince(sinceMs: number): number[] {
    return this.#forwardedAtMs.filter((atMs) => atMs >= sinceMs);
  }

  /** Drops every forwarded connection and refuses new ones until `restore`. */
  cut(): void {
    this.#cut = true;
    for (const conn of this.#open) closeQuietly(conn);
    this.#open.clear();
  }

  restore(): void {
    this.#cut = false;
  }

  close(): void {
    this.cut();
    closeQuietly(this.#listener);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      if (this.#cut) closeQuietly(conn);
      else this.#forward(conn);
    }
  }

  async #forward(dialler: Deno.TcpConn): Promise<void> {
    let target: Deno.TcpConn;
    try {
      target = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    } catch {
      closeQuietly(dialler); // the server behind is down: the dialler sees the link fail
      return;
    }
    if (this.#cut) {
      closeQuietly(dialler);
      closeQuietly(target);
      return;
    }
    this.#forwardedAtMs.push(performance.now());
    for (const conn of [dialler, target]) {
      conn.setNoDelay(true);
      this.#open.add(conn);
    }
    const done = () => {
      for (const conn of [dialler, target]) {
        this.#open.delete(conn);
        closeQuietly(conn);
      }
    };
    await Promise.all([
      this.#pump(dialler, target, "toTarget").finally(done),
      this.#pump(target, dialler, "fromTarget").finally(done),
    ]);
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, direction: keyof ProxyBytes): Promise<void> {
    const buffer = new Uint8Array(CHUNK_BYTES);
    try {
      for (;;) {
        const count = await from.read(buffer);
        if (count === null) return;
        this.#bytes[direction] += count;
        for (let offset = 0; offset < count;) {
          offset += await to.write(buffer.subarray(offset, count));
        }
      }
    } catch {
      // Either side closed (or the link was cut): the pair is torn down by the caller.
    }
  }
}

function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch {
    // Already closed.
  }
}
