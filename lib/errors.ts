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

/**
 * The innermost cause of a network error, which is what a person needs: Deno nests it, in
 * `cause` and within messages (`fetch failed`, caused by `error sending request for url (…):
 * client error (Connect): tcp connect error: Connection refused (os error 111)` →
 * `connection refused`).
 */
export function networkErrorReason(error: unknown): string {
  let innermost = error;
  while (innermost instanceof Error && innermost.cause instanceof Error) {
    innermost = innermost.cause;
  }
  const message = oneLine(innermost instanceof Error ? innermost.message : String(innermost));
  const reason = message.split(": ").at(-1)!.replace(/ \(os error \d+\)$/, "");
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}
