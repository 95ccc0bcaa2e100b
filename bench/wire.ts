/**
 * The driver's own small herd client, for the few requests that are not load: is a server's
 * data set loaded, does a server hold an update yet. Load always comes from the native
 * generator (herdload.c); a JavaScript client would measure itself.
 *
 * Also the one place that knows how herdload names ids and times, so the driver can ask
 * about ids the generator registered.
 */

const READ_BYTES = 64 * 1024;
/** A reply longer than this is not one this client asked for. */
const REPLY_BYTES_MAX = 1024 * 1024;

/** herdload's 16-byte id: the two-character namespace and 14 hex digits. */
export function clientId(namespace: string, num: number): string {
  return namespace + num.toString(16).padStart(14, "0");
}

/** herdload's planned client time of id `num`: `base` seconds plus `num` nanoseconds. */
export function plannedTime(baseSeconds: number, num: number): string {
  if (num >= 1e9) throw new RangeError("planned times hold ids below 1e9");
  return `${baseSeconds}.${String(num).padStart(9, "0")}`;
}

/** One connection that sends a line and reads its whole reply, with a deadline. */
export class LineClient {
  readonly #conn: Deno.TcpConn;
  readonly #buffer = new Uint8Array(READ_BYTES);
  #pending = "";

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
  }

  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /**
   * Sends `line` and returns its reply: one line for IAMAT and `?`, the AT line, body and
   * empty line for WHATSAT. Throws if the server closes or `timeoutMs` passes.
   */
  async ask(line: string, timeoutMs: number): Promise<string> {
    const whatsat = line.startsWith("WHATSAT");
    await this.#conn.write(new TextEncoder().encode(line + "\n"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no reply to ${line} in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await this.#readReply(whatsat, timedOut);
    } finally {
      clearTimeout(timer);
    }
  }

  async #readReply(whatsat: boolean, timedOut: Promise<never>): Promise<string> {
    for (;;) {
      const end = replyEnd(this.#pending, whatsat);
      if (end !== -1) {
        const reply = this.#pending.slice(0, end);
        this.#pending = this.#pending.slice(end);
        return reply;
      }
      if (this.#pending.length > REPLY_BYTES_MAX) throw new Error("reply too long");
      const count = await Promise.race([this.#conn.read(this.#buffer), timedOut]);
      if (count === null) throw new Error("connection closed before the reply");
      this.#pending += new TextDecoder().decode(this.#buffer.subarray(0, count));
    }
  }

  /** True when the server holds `id` with client time exactly `time`. */
  async holds(id: string, time: string, timeoutMs = 5_000): Promise<boolean> {
    const reply = await this.ask(`WHATSAT ${id} 0.01 1`, timeoutMs);
    const fields = reply.split("\n", 1)[0].split(" ");
    return fields[0] === "AT" && fields[3] === id && fields[5] === time;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the server.
    }
  }
}

/** Where the first whole reply in `text` ends, or -1 while it is incomplete. */
function replyEnd(text: string, whatsat: boolean): number {
  const newline = text.indexOf("\n");
  if (newline === -1) return -1;
  if (!whatsat || text.startsWith("?")) return newline + 1;
  const end = text.indexOf("\n\n", newline + 1);
  return end === -1 ? -1 : end + 2;
}

/** Opens a client, runs `use`, and closes it whatever happens. */
export async function withClient<T>(
  port: number,
  use: (client: LineClient) => Promise<T>,
): Promise<T> {
  const client = await LineClient.connect(port);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
