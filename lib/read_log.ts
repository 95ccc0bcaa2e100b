/**
 * What the log says of one read of a client: its lines, in order, each with its immediate
 * reply (or none yet: a lookup's reply is logged on its own when it is ready). The contract
 * lets the lines of one read be one record; pipelined lines then cost one record, not one
 * each. Shown as text `LINE -> REPLY ⏎ LINE -> (reply follows)` — `⏎` never occurs in shown
 * wire text, whose bytes outside printable ASCII are escaped — and in JSON as
 * `[{"line": …, "reply": …}]` (`reply` null when it follows).
 */
import { showWireText } from "./log.ts";
import type { LogText } from "./log_format.ts";

/**
 * A record is ended once its lines and replies pass this many bytes: a read of 64 KiB of
 * short lines must not become one record of hundreds of KiB (records are whole in a file).
 */
const RECORD_WIRE_BYTES_MAX = 2048;
/** Between two lines of one read in a text record. */
export const READ_LINES_SEPARATOR = " ⏎ ";
const REPLY_FOLLOWS = "(reply follows)";

export class ReadExchanges implements LogText {
  /**
   * Each line followed by its immediate reply (wire text), or undefined when it follows. A
   * record is made per read and most hold one line: made as a two-element array, not grown.
   */
  #exchanges: Array<string | undefined> = [];
  #wireBytes = 0;

  /** Lines added so far. */
  get size(): number {
    return this.#exchanges.length / 2;
  }

  /**
   * Adds a line and its immediate reply (undefined when it will come later); true once the
   * record is full and should be logged before more lines are added.
   */
  add(line: string, reply: string | undefined): boolean {
    if (this.#exchanges.length === 0) this.#exchanges = [line, reply];
    else this.#exchanges.push(line, reply);
    this.#wireBytes += line.length + (reply?.length ?? 0);
    return this.#wireBytes >= RECORD_WIRE_BYTES_MAX;
  }

  /** The text form, also where a value is joined as a string (e.g. LogTape's `message`). */
  toString(): string {
    return this.toLogText();
  }

  /** The text form: concatenated, not joined, as the record's line is made flat once anyway. */
  toLogText(): string {
    let text = "";
    for (let index = 0; index < this.#exchanges.length; index += 2) {
      const line = showWireText(this.#exchanges[index]!);
      const shown = `${line} -> ${shownReply(this.#exchanges[index + 1]) ?? REPLY_FOLLOWS}`;
      text = index === 0 ? shown : `${text}${READ_LINES_SEPARATOR}${shown}`;
    }
    return text;
  }

  /** Each line and reply as the log shows wire text (cut, escaped). */
  toJSON(): Array<{ line: string; reply: string | null }> {
    const shown: Array<{ line: string; reply: string | null }> = [];
    for (let index = 0; index < this.#exchanges.length; index += 2) {
      const line = showWireText(this.#exchanges[index]!);
      shown.push({ line, reply: shownReply(this.#exchanges[index + 1]) ?? null });
    }
    return shown;
  }
}

/** A reply as the log shows it, without its final `\n`; undefined when it follows. */
function shownReply(reply: string | undefined): string | undefined {
  return reply === undefined ? undefined : showWireText(withoutFinalNewline(reply));
}

function withoutFinalNewline(reply: string): string {
  return reply.endsWith("\n") ? reply.slice(0, -1) : reply;
}
