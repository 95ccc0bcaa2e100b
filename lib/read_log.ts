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
  readonly #lines: string[] = [];
  /** Each line's immediate reply (wire text), or undefined. */
  readonly #replies: Array<string | undefined> = [];
  #shown: Array<{ line: string; reply: string | null }> | undefined;
  #wireBytes = 0;

  /** Lines added so far. */
  get size(): number {
    return this.#lines.length;
  }

  /**
   * Adds a line and its immediate reply (undefined when it will come later); true once the
   * record is full and should be logged before more lines are added.
   */
  add(line: string, reply: string | undefined): boolean {
    this.#lines.push(line);
    this.#replies.push(reply);
    this.#wireBytes += line.length + (reply?.length ?? 0);
    return this.#wireBytes >= RECORD_WIRE_BYTES_MAX;
  }

  /** The text form, also where a value is joined as a string (e.g. LogTape's `message`). */
  toString(): string {
    return this.toLogText();
  }

  toLogText(): string {
    return this.toJSON().map(({ line, reply }) => `${line} -> ${reply ?? REPLY_FOLLOWS}`)
      .join(READ_LINES_SEPARATOR);
  }

  /** Each line and reply as the log shows wire text (cut, escaped); computed once. */
  toJSON(): Array<{ line: string; reply: string | null }> {
    this.#shown ??= this.#lines.map((line, index) => {
      const reply = this.#replies[index];
      const shown = reply === undefined ? null : showWireText(withoutFinalNewline(reply));
      return { line: showWireText(line), reply: shown };
    });
    return this.#shown;
  }
}

function withoutFinalNewline(reply: string): string {
  return reply.endsWith("\n") ? reply.slice(0, -1) : reply;
}
