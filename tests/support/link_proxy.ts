/**
 * A TCP forwarder placed on one direction of a peer link, so a test or the benchmark can
 * count the bytes a catch-up really sends (TCP payload, not headers) and cut a link without
 * stopping either server. Cutting closes every forwarded connection and closes new ones at
 * once until restored; both servers then see the link down and keep redialling, as they
 * would through a real network failure (unlike SIGSTOP, under which TCP keeps the link up).
 *
 * `LinkProxies` puts one in each direction of every link of a test herd: each server's own
 * config gives its neighbours' addresses as the proxies' ports.
 */
import type { HerdConfigJson } from "./herd_processes.ts";

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

/**
 * A LinkProxy for each direction of each link of a herd. Pass `route` as startHerd's
 * `configSeenBy`: every server then dials each neighbour through its own proxy, so a test
 * can cut and restore any link while all five keep running. Dispose to close them all.
 *
 * @example
 * ```ts
 * using proxies = new LinkProxies();
 * await using herd = await startHerd({ configSeenBy: proxies.route });
 * proxies.cut("Hill", "Smith");
 * ```
 */
export class LinkProxies implements Disposable {
  /** By `dialler>listener`. */
  readonly #proxies = new Map<string, LinkProxy>();

  /** `name`'s own config: each neighbour's port replaced by a new proxy's that forwards to it. */
  readonly route = (name: string, config: HerdConfigJson): HerdConfigJson => {
    const servers = { ...config.servers };
    for (const [a, b] of config.links) {
      if (a !== name && b !== name) continue;
      const peer = a === name ? b : a;
      const proxy = new LinkProxy(config.servers[peer].port);
      this.#proxies.set(directionKey(name, peer), proxy);
      servers[peer] = { ...servers[peer], port: proxy.port };
    }
    return { ...config, servers };
  };

  /** The proxies of the link a–b: a dialling b, then b dialling a. */
  between(a: string, b: string): LinkProxy[] {
    return [directionKey(a, b), directionKey(b, a)].map((key) => {
      const proxy = this.#proxies.get(key);
      if (proxy === undefined) throw new Error(`no proxy for ${key}: not a routed link`);
      return proxy;
    });
  }

  /** Cuts the link a–b both ways. */
  cut(a: string, b: string): void {
    for (const proxy of this.between(a, b)) proxy.cut();
  }

  /** Restores the link a–b both ways. */
  restore(a: string, b: string): void {
    for (const proxy of this.between(a, b)) proxy.restore();
  }

  /** Restores every link. */
  restoreAll(): void {
    for (const proxy of this.#proxies.values()) proxy.restore();
  }

  [Symbol.dispose](): void {
    for (const proxy of this.#proxies.values()) proxy.close();
  }
}

function directionKey(dialler: string, listener: string): string {
  return `${dialler}>${listener}`;
}
