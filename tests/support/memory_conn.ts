/**
 * Two ByteConns joined in memory, for tests of sessions and peer links without sockets or
 * sleeps. Bytes written at one end are read at the other in the same chunks. Each end holds
 * at most `receiveBytesMax` unread bytes: past it the writer's `write` stays pending until
 * the reader reads, as a socket's send does when the other side stops reading.
 */
import type { ByteConn } from "../../lib/connection.ts";

export interface MemoryConnPairOptions {
  /** Unread bytes an end holds before its writer waits (default 1 MiB). */
  receiveBytesMax?: number;
}

/** One end of a memory pair; `halfClose` ends the other end's input, like shutdown(SHUT_WR). */
export class MemoryConn implements ByteConn {
  readonly remoteAddr: Deno.NetAddr;
  peer!: MemoryConn;
  readonly #receiveBytesMax: number;
  readonly #chunks: Uint8Array[] = [];
  #unreadBytes = 0;
  #inputEnded = false;
  #closed = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriters: Array<() => void> = [];
  lastReadWaited = false;
  #interrupted = false;

  constructor(port: number, receiveBytesMax: number) {
    this.remoteAddr = { transport: "tcp", hostname: "memory", port };
    this.#receiveBytesMax = receiveBytesMax;
  }

  /** True once this end was closed (by its owner). */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Bytes received and not yet read at this end. */
  get unreadBytes(): number {
    return this.#unreadBytes;
  }

  async readChunk(): Promise<Uint8Array | null> {
    this.lastReadWaited = this.#chunks.length === 0;
    while (this.#chunks.length === 0 || this.#interrupted) {
      if (this.#inputEnded || this.#closed || this.#interrupted) return null;
      await new Promise<void>((resolve) => (this.#wakeReader = resolve));
    }
    const chunk = this.#chunks.shift()!;
    this.#unreadBytes -= chunk.length;
    for (const wake of this.#wakeWriters.splice(0)) wake();
    return chunk;
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.#closed || this.peer.#closed) throw new Error("connection closed");
    const receiver = this.peer;
    while (
      receiver.#unreadBytes > 0 && receiver.#unreadBytes + bytes.length > receiver.#receiveBytesMax
    ) {
      await new Promise<void>((resolve) => receiver.#wakeWriters.push(resolve));
      if (this.#closed || receiver.#closed) throw new Error("connection closed");
    }
    receiver.#chunks.push(bytes.slice());
    receiver.#unreadBytes += bytes.length;
    receiver.#wake();
    return bytes.length;
  }

  /** Makes a pending read and every later one return null, as the server's stop does. */
  interruptRead(): void {
    this.#interrupted = true;
    this.#wake();
  }

  /** Ends what the other end reads (after the bytes already written), like shutdown(SHUT_WR). */
  halfClose(): void {
    this.peer.#inputEnded = true;
    this.peer.#wake();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake();
    for (const wake of this.#wakeWriters.splice(0)) wake();
    this.peer.#inputEnded = true;
    this.peer.#wake();
    for (const wake of this.peer.#wakeWriters.splice(0)) wake();
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }
}

/** Two joined ends: what `a` writes, `b` reads, and the other way round. */
export function memoryConnPair(options: MemoryConnPairOptions = {}): [MemoryConn, MemoryConn] {
  const receiveBytesMax = options.receiveBytesMax ?? 1024 * 1024;
  const a = new MemoryConn(1, receiveBytesMax);
  const b = new MemoryConn(2, receiveBytesMax);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
