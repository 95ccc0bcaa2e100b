/**
 * One TCP (or TLS) connection as lines in and bytes out, for clients and peers alike. Reading
 * hands back whole lines; writing queues bytes or wire text and sends everything queued in one
 * write, so many replies share a syscall (and queued text is encoded in one call). Unsent output
 * past `outputBytesMax` closes the connection: a reader that never reads must not grow memory
 * without bound. Knows nothing of the protocol.
 */
import { Buffer } from "node:buffer";
import { encodeWireText, type Line, LineSplitter } from "./lines.ts";

const READ_BUFFER_BYTES_MIN = 2 * 1024;
const READ_BUFFER_BYTES_MAX = 64 * 1024;
/** The most one write hands the socket (see `#writeOutbox`). */
const WRITE_SLICE_BYTES_MAX = 64 * 1024;

export interface LineConnectionOptions {
  lineBytesMax: number;
  outputBytesMax: number;
}

/** Why a connection was closed, for the log. */
export type CloseReason = "done" | "output limit" | "write failed" | "read failed" | string;

/**
 * What an accepted TLS connection's certificate proved: the names it verifiably carries, or
 * why none (no certificate, another CA, expired…).
 */
export type PeerCertificateCheck = { names: readonly string[] } | { refused: string };

/** What a connection needs of a socket: NodeSocketConn and DenoConnChunks provide it. */
export interface ByteConn {
  readonly remoteAddr: Deno.Addr;
  /** On an accepted TLS connection, its certificate's check; undefined on plain TCP. */
  readonly peerCertificate?: PeerCertificateCheck;
  /** The next bytes received (used before the next call), or null at end of input. */
  readChunk(): Promise<Uint8Array | null>;
  /**
   * Whether the last `readChunk` found nothing received and had to wait for the other end;
   * undefined where the connection cannot tell, which counts as having waited.
   */
  readonly lastReadWaited?: boolean;
  /**
   * Makes a pending `readChunk` (and every later one) return null at once, as at end of input;
   * writing goes on. Without it a read in progress cannot be cut short.
   */
  interruptRead?(): void;
  /** Resolves with how many bytes were handed to the kernel. */
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/**
 * A dialled `Deno.Conn` as a ByteConn, reading into one buffer that grows while reads fill
 * it, so a quiet link stays small.
 */
export class DenoConnChunks implements ByteConn {
  readonly #conn: Deno.Conn;
  #buffer = new Uint8Array(READ_BUFFER_BYTES_MIN);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    // Replies are already batched per turn; Nagle's algorithm would only add latency.
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
  }

  get remoteAddr(): Deno.Addr {
    return this.#conn.remoteAddr;
  }

  async readChunk(): Promise<Uint8Array | null> {
    const bytesRead = await this.#conn.read(this.#buffer);
    if (bytesRead === null) return null;
    const chunk = this.#buffer.subarray(0, bytesRead);
    if (bytesRead === this.#buffer.length && this.#buffer.length < READ_BUFFER_BYTES_MAX) {
      this.#buffer = new Uint8Array(this.#buffer.length * 2);
    }
    return chunk;
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  close(): void {
    this.#conn.close();
  }
}

/** A wait in `drained()`: until this many bytes in all were handed to the kernel. */
interface DrainWaiter {
  untilSentBytes: number;
  wake: () => void;
}

export class LineConnection {
  readonly #conn: ByteConn;
  readonly remote: string;
  readonly #splitter: LineSplitter;
  #outputBytesMax: number;
  #outbox: Array<Uint8Array | string> = [];
  #unsentBytes = 0;
  #sentBytes = 0;
  #receivedBytes = 0;
  #writing = false;
  /** Each waits until `sentBytes` reaches its mark (or the connection closes). */
  #drainWaiters: DrainWaiter[] = [];
  #closeReason: CloseReason | undefined;
  #closeListeners: Array<(reason: CloseReason) => void> = [];
  #sawEnd = false;
  #readStopped = false;

  constructor(conn: ByteConn, options: LineConnectionOptions) {
    this.#conn = conn;
    const address = conn.remoteAddr as Deno.NetAddr;
    this.remote = `${address.hostname}:${address.port}`;
    this.#splitter = new LineSplitter(options.lineBytesMax);
    this.#outputBytesMax = options.outputBytesMax;
  }

  /**
   * Sets new limits once a connection is known to be of another kind (a client's connection
   * that said hello as a peer): lines not yet complete and output not yet queued get them.
   */
  setLimits(limits: LineConnectionOptions): void {
    this.#splitter.setLineBytesMax(limits.lineBytesMax);
    this.#outputBytesMax = limits.outputBytesMax;
  }

  get isClosed(): boolean {
    return this.#closeReason !== undefined;
  }

  /** See {@link ByteConn.peerCertificate}: whom the other end proved to be, under TLS. */
  get peerCertificate(): PeerCertificateCheck | undefined {
    return this.#conn.peerCertificate;
  }

  get unsentBytes(): number {
    return this.#unsentBytes;
  }

  /** Bytes handed to the kernel so far: shows whether the other end reads at all. */
  get sentBytes(): number {
    return this.#sentBytes;
  }

  /** Bytes read from the other end so far. */
  get receivedBytes(): number {
    return this.#receivedBytes;
  }

  /**
   * True while unsent output, with `heldBytes` more that its producer already made but holds
   * back for now (replies waiting behind a slow one), is past half of `outputBytesMax`: the
   * other end reads slower than it asks, so whoever produces the output should make no more
   * until it drains, as long as the other end reads at all.
   */
  isBackedUpWith(heldBytes: number): boolean {
    return this.#unsentBytes + heldBytes > this.#outputBytesMax / 2;
  }

  /**
   * Whether the last `readLines` had to wait for the other end to send: false when its bytes
   * were already received, as they are while a client sends faster than it is served.
   */
  get lastReadWaited(): boolean {
    return this.#conn.lastReadWaited ?? true;
  }

  /** True once the peer half-closed (or the read side failed). */
  get sawEnd(): boolean {
    return this.#sawEnd;
  }

  /**
   * Waits for bytes and returns the lines they complete (possibly none). At end of input
   * returns the final unterminated line, if any, and then `null` from then on.
   */
  readLines(): Promise<Line[] | null> {
    if (this.#sawEnd || this.#readStopped || this.isClosed) return Promise.resolve(null);
    // Not an async function: an idle connection waits here (see NodeSocketConn.readChunk).
    return this.#conn.readChunk().then((chunk) => this.#linesOf(chunk), () => this.#linesOf(null));
  }

  /** The lines a chunk read completes; at end of input (null) the final unterminated one. */
  #linesOf(chunk: Uint8Array | null): Line[] | null {
    // Stopped meanwhile: neither these bytes nor a partial line are acted on.
    if (this.#readStopped) return null;
    if (chunk === null) {
      this.#sawEnd = true;
      const last = this.#splitter.end();
      return last === undefined ? null : [last];
    }
    this.#receivedBytes += chunk.length;
    const lines = this.#splitter.push(chunk);
    return lines;
  }

  /**
   * Stops reading: a `readLines` waiting now, and every later one, returns null as at end of
   * input (the server is stopping); what is queued for sending still goes out.
   */
  stopReading(): void {
    this.#readStopped = true;
    this.#conn.interruptRead?.();
  }

  /** Queues wire text (one byte per code unit); it goes out as {@link send}'s bytes do. */
  sendText(text: string): void {
    this.#queue(text);
  }

  /** Queues bytes; they go out with everything else queued in the same turn. */
  send(bytes: Uint8Array): void {
    this.#queue(bytes);
  }

  #queue(output: Uint8Array | string): void {
    if (this.isClosed) return;
    this.#outbox.push(output);
    this.#unsentBytes += output.length;
    if (this.#unsentBytes > this.#outputBytesMax) {
      this.close("output limit");
      return;
    }
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#writeOutbox());
    }
  }

  /**
   * Resolves once every byte queued so far has been handed to the kernel (or the connection
   * closed). Bytes queued later do not hold it back: a catch-up waiting between its batches on
   * a link that live floods keep busy was never woken while its outbox never emptied.
   */
  drained(): Promise<void> {
    if (!this.#writing || this.isClosed) return Promise.resolve();
    const untilSentBytes = this.#sentBytes + this.#unsentBytes;
    return new Promise((wake) => this.#drainWaiters.push({ untilSentBytes, wake }));
  }

  /** Calls `listener` once when the connection closes, with the reason. */
  onClose(listener: (reason: CloseReason) => void): void {
    if (this.#closeReason !== undefined) listener(this.#closeReason);
    else this.#closeListeners.push(listener);
  }

  /** Closes at once; unsent output is dropped. Safe to call more than once. */
  close(reason: CloseReason = "done"): void {
    if (this.isClosed) return;
    this.#closeReason = reason;
    this.#outbox = [];
    this.#unsentBytes = 0;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the other side; nothing left to release.
    }
    this.#wakeDrainWaiters();
    for (const listener of this.#closeListeners.splice(0)) listener(reason);
  }

  async #writeOutbox(): Promise<void> {
    try {
      while (this.#outbox.length > 0 && !this.isClosed) {
        const batch = outboxBytes(this.#outbox);
        this.#outbox = [];
        // In slices, so that `sentBytes` shows a slow reader's progress within a big batch:
        // a reader judged by it must not look idle while it takes a batch bit by bit.
        let offset = 0;
        while (offset < batch.length) {
          const end = Math.min(offset + WRITE_SLICE_BYTES_MAX, batch.length);
          const written = await this.#conn.write(batch.subarray(offset, end));
          offset += written;
          this.#unsentBytes -= written;
          this.#sentBytes += written;
          this.#wakeDrainWaiters();
        }
      }
    } catch {
      this.close("write failed");
    } finally {
      this.#writing = false;
      this.#wakeDrainWaiters();
    }
  }

  /** Wakes the waiters whose bytes are all sent; every one once nothing is being written. */
  #wakeDrainWaiters(): void {
    const all = !this.#writing || this.isClosed;
    const waiting: DrainWaiter[] = [];
    for (const waiter of this.#drainWaiters) {
      if (all || waiter.untilSentBytes <= this.#sentBytes) waiter.wake();
      else waiting.push(waiter);
    }
    this.#drainWaiters = waiting;
  }
}

/** What was queued, as the bytes of one write: runs of text joined before they are encoded. */
function outboxBytes(outbox: Array<Uint8Array | string>): Uint8Array {
  if (outbox.every((output) => typeof output === "string")) return encodeWireText(outbox.join(""));
  const parts = outbox.map((output) =>
    typeof output === "string" ? encodeWireText(output) : output
  );
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
