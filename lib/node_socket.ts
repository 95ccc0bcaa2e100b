/**
 * A `node:net` socket (or a `node:tls` one, which is a `node:net` socket too) as the ByteConn that LineConnection reads chunks from and writes to.
 * Accepted connections go through `node:net` because, measured here, Deno's own `Deno.listen` + `conn.read` loop lets some connections
 * run ahead and starves others under load (p999 of hundreds of ms at 256 connections),
 * while `node:net` under Deno serves them all evenly.
 */
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { ByteConn, PeerCertificateCheck } from "./connection.ts";
import { checkPeerCertificate } from "./tls_files.ts";

/** How long a TLS socket's close may wait for its close_notify to be sent. */
const TLS_CLOSE_WAIT_MS_MAX = 1000;
/** Received bytes not yet read; past this the socket is paused until they are. */
const BACKLOG_BYTES_MAX = 64 * 1024;

export class NodeSocketConn implements ByteConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly peerCertificate: PeerCertificateCheck | undefined;
  readonly #socket: Socket;
  readonly #chunks: Uint8Array[] = [];
  #backlogBytes = 0;
  #ended = false;
  #interrupted = false;
  #waitingReader: ((chunk: Uint8Array | null) => void) | undefined;
  /** See {@link ByteConn.lastReadWaited}. */
  lastReadWaited = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "?",
      port: socket.remotePort ?? 0,
    };
    // Checked once, after the TLS handshake (the socket comes from `secureConnection`).
    this.peerCertificate = socket instanceof TLSSocket ? checkPeerCertificate(socket) : undefined;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#backlogBytes += chunk.length;
      if (this.#backlogBytes > BACKLOG_BYTES_MAX) socket.pause();
      this.#wake();
    });
    const end = () => {
      this.#ended = true;
      this.#wake();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end); // the close that follows is what the reader sees
  }

  /**
   * The next chunk received, whole, or null at end of input (or once reading is interrupted).
   * Not an async function: an idle connection waits here, and a suspended frame per
   * connection is memory.
   */
  readChunk(): Promise<Uint8Array | null> {
    this.lastReadWaited = this.#chunks.length === 0;
    const next = this.#next();
    if (next !== undefined) return Promise.resolve(next);
    return new Promise((resolve) => (this.#waitingReader = resolve));
  }

  /** The next chunk, null at the end, or undefined while there is neither yet. */
  #next(): Uint8Array | null | undefined {
    if (this.#interrupted) return null;
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return this.#ended ? null : undefined;
    this.#backlogBytes -= chunk.length;
    if (this.#backlogBytes <= BACKLOG_BYTES_MAX && this.#socket.isPaused()) this.#socket.resume();
    return chunk;
  }

  interruptRead(): void {
    this.#interrupted = true;
    this.#wake();
  }

  /** Resolves once the bytes are handed to the kernel. */
  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error) => error ? reject(error) : resolve(bytes.length));
    });
  }

  close(): void {
    const socket = this.#socket;
    if (!(socket instanceof TLSSocket) || socket.destroyed) {
      socket.destroy();
      return;
    }
    // TLS ends with close_notify, without which a strict client (rustls) reports the end as a
    // truncation; a peer that does not take it within the bound is cut off anyway.
    socket.end();
    const cutOff = setTimeout(() => socket.destroy(), TLS_CLOSE_WAIT_MS_MAX);
    Deno.unrefTimer(cutOff);
    socket.once("close", () => clearTimeout(cutOff));
  }

  /** Hands a waiting reader the next chunk (or the end), once there is one. */
  #wake(): void {
    const reader = this.#waitingReader;
    if (reader === undefined) return;
    const next = this.#next();
    if (next === undefined) return;
    this.#waitingReader = undefined;
    reader(next);
  }
}
