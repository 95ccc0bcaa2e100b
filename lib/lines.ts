/**
 * Splits a byte stream into lines of wire text (one code unit per byte), knowing nothing of
 * the protocol above. A line ends in `\n`; one `\r` before it is dropped. A line longer than
 * the limit is cut to its first `lineBytesMax` bytes and the rest, up to the next `\n`, is
 * discarded — so a partial line never holds more than `lineBytesMax + 1` bytes.
 */
import { Buffer } from "node:buffer";

/** One complete line; `tooLong` when it was cut at the limit. */
export interface Line {
  text: string;
  tooLong: boolean;
}

const NEWLINE = 0x0a;
const NON_ASCII = /[\u0080-\uffff]/;
const asciiEncoder = new TextEncoder();
const CARRIAGE_RETURN = "\r";

export class LineSplitter {
  #lineBytesMax: number;
  #partial = "";
  #discarding = false;

  constructor(lineBytesMax: number) {
    this.#lineBytesMax = lineBytesMax;
  }

  /**
   * Changes the limit for lines not yet complete (e.g. once a connection turns out to be a
   * peer link); lines already returned keep the limit they were split under.
   */
  setLineBytesMax(lineBytesMax: number): void {
    this.#lineBytesMax = lineBytesMax;
  }

  /** Bytes held of a line not yet ended. */
  get partialBytes(): number {
    return this.#partial.length;
  }

  /** Feeds bytes; returns the lines they complete, in order. */
  push(chunk: Uint8Array): Line[] {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const lines: Line[] = [];
    let start = 0;
    while (start < bytes.length) {
      const end = bytes.indexOf(NEWLINE, start);
      if (end === -1) {
        this.#hold(bytes.toString("latin1", start), lines);
        break;
      }
      const piece = bytes.toString("latin1", start, end);
      start = end + 1;
      if (this.#discarding) {
        this.#discarding = false;
        continue;
      }
      const line = this.#finish(this.#partial + piece);
      this.#partial = "";
      lines.push(line);
    }
    return lines;
  }

  /** The bytes after the last `\n` when the peer half-closes, as a final line, if any. */
  end(): Line | undefined {
    const rest = this.#partial;
    this.#partial = "";
    if (this.#discarding || rest === "") {
      this.#discarding = false;
      return undefined;
    }
    // No `\n` follows, so a trailing `\r` is part of the line.
    return this.#finish(rest, false);
  }

  #finish(raw: string, endsInNewline = true): Line {
    const text = endsInNewline && raw.endsWith(CARRIAGE_RETURN) ? raw.slice(0, -1) : raw;
    if (text.length <= this.#lineBytesMax) return { text, tooLong: false };
    return { text: text.slice(0, this.#lineBytesMax), tooLong: true };
  }

  #hold(piece: string, lines: Line[]): void {
    if (this.#discarding) return;
    this.#partial += piece;
    // One extra byte may be the `\r` of a line exactly at the limit.
    if (this.#partial.length > this.#lineBytesMax + 1) {
      lines.push({ text: this.#partial.slice(0, this.#lineBytesMax), tooLong: true });
      this.#partial = "";
      this.#discarding = true;
    }
  }
}

/** Wire text back to its bytes (one byte per code unit); ASCII, the usual case, natively. */
export function encodeWireText(text: string): Uint8Array {
  return NON_ASCII.test(text) ? Buffer.from(text, "latin1") : asciiEncoder.encode(text);
}

/**
 * Text (any Unicode) as the wire text of its UTF-8 bytes: itself when it is ASCII, as JSON
 * bodies usually are.
 */
export function utf8AsWireText(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, "utf8").toString("latin1") : text;
}

/**
 * Wire text's bytes, in `scratch` when they fit (valid until its next use), else in a new
 * array. A code unit above 255 is not wire text: it becomes a 0, which no field accepts.
 */
export function wireBytesInto(text: string, scratch: Uint8Array): Uint8Array {
  const bytes = text.length <= scratch.length ? scratch : new Uint8Array(text.length);
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    bytes[index] = code > 0xff ? 0 : code;
  }
  return bytes;
}
