/**
 * Errors that end the program with one line on stderr. Whatever a file or a flag held —
 * newlines, control bytes — the message stays one printable line.
 */

/** `message` flattened to one line: line breaks become spaces, control bytes `?`. */
export function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, " ").replace(/[^ -~\u0080-\uffff]/g, "?");
}

/** An error whose message is always a single line, fit for stderr as it is. */
export class OneLineError extends Error {
  constructor(message: string) {
    super(oneLine(message));
  }
}
