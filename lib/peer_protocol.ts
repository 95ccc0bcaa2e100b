/**
 * The peer wire protocol as pure functions: one complete line in, a typed message or the
 * reason it is invalid out; every peer line formatted; and the peer line limit. Knows no
 * sockets, no store, no clock and no secret — lib/peers.ts and lib/peer_link.ts act on the
 * messages, lib/peer_auth.ts makes the nonces and proofs.
 *
 * Lines are wire text (one code unit per byte) ending in `\n`; fields are separated by exactly
 * one space, with none before the first or after the last, and no field is empty:
 *
 *     PEER <name> <version>       hello, first line each way; <version> plain digits ("2")
 *     CHALLENGE <nonce>           with HERD_SECRET, after the hello: 64 lowercase hex digits
 *     PROOF <hmac>                the answer to the other end's challenge: 64 lowercase hex
 *     HAVE <epoch> <epoch-known-of-you|-> <seq>
 *                                 first line after the handshake, once per link: this end's
 *                                 epoch (16 lowercase hex digits, one per run of a server),
 *                                 the other end's epoch it last knew (`-`: none, seq then 0)
 *                                 and the last sequence number of that epoch it holds
 *     U <seq> <AT line>           one update, as the sender's change <seq> (≥ 1); the AT line
 *                                 is the rest of the line and must parse as an AT line
 *     SYNCED <seq>                the catch-up has sent every change up to <seq>
 *     HB                          heartbeat: sent on a link that sent nothing for a while
 *
 * Sequence numbers are safe non-negative integers in plain digits: no sign, no leading zero,
 * no exponent, at most 16 digits. Every check is a loop over characters or a fixed split:
 * parsing costs time linear in the line's length whatever it holds.
 */
import { isNonce, isProof } from "./peer_auth.ts";
import { atLineBytesMax, parseAtLine } from "./protocol.ts";

/** Rises whenever a line above changes meaning; 2 added heartbeats. */
export const PEER_PROTOCOL_VERSION = "2";
/** Random bytes of an epoch; on the wire twice as many hex digits. */
export const EPOCH_BYTES = 8;
const EPOCH_HEX_DIGITS = EPOCH_BYTES * 2;
/** `Number.MAX_SAFE_INTEGER` has 16 digits. */
const SEQ_DIGITS_MAX = 16;
const VERSION_DIGITS_MAX = 9;
/** `U <seq> ` before the AT line of an update, at its longest. */
const UPDATE_PREFIX_BYTES_MAX = "U ".length + SEQ_DIGITS_MAX + " ".length;
/** Written for "the other end's epoch is not known" in HAVE. */
const NO_EPOCH = "-";

export interface PeerHello {
  kind: "PEER";
  name: string;
  version: string;
}

export interface PeerChallenge {
  kind: "CHALLENGE";
  nonce: string;
}

export interface PeerProof {
  kind: "PROOF";
  proof: string;
}

/** What one end holds of the other's change stream, sent once when a link comes up. */
export interface PeerHave {
  kind: "HAVE";
  epoch: string;
  /** The other end's epoch this end last knew of; undefined when it knows none. */
  epochKnownOfYou: string | undefined;
  /** The last of the other end's changes (in `epochKnownOfYou`) this end holds; 0 for none. */
  seqKnownOfYou: number;
}

/** One update as sent. */
export interface PeerUpdate {
  kind: "U";
  seq: number;
  atLine: string;
}

/** One update as received: the AT line has been checked, and its client id taken out. */
export interface ReceivedPeerUpdate extends PeerUpdate {
  clientId: string;
}

export interface PeerSynced {
  kind: "SYNCED";
  seq: number;
}

export interface PeerHeartbeat {
  kind: "HB";
}

/** A line that is not a valid peer message, with a reason for the log. */
export interface InvalidPeerLine {
  kind: "invalid";
  reason: string;
}

/** Every message one end may send the other. */
export type PeerMessage =
  | PeerHello
  | PeerChallenge
  | PeerProof
  | PeerHave
  | PeerUpdate
  | PeerSynced
  | PeerHeartbeat;

/** What a received line is: a message (an update with its client id) or invalid. */
export type ParsedPeerLine =
  | Exclude<PeerMessage, PeerUpdate>
  | ReceivedPeerUpdate
  | InvalidPeerLine;

/**
 * Parses one peer line (its `\n` already removed). Never throws; anything outside the
 * grammar in the module comment yields `{ kind: "invalid", reason }`.
 *
 * @example
 * ```ts
 * parsePeerLine("SYNCED 42"); // { kind: "SYNCED", seq: 42 }
 * parsePeerLine("SYNCED +42"); // { kind: "invalid", reason: "bad sequence number" }
 * ```
 */
export function parsePeerLine(line: string): ParsedPeerLine {
  const commandEnd = line.indexOf(" ");
  const command = commandEnd === -1 ? line : line.slice(0, commandEnd);
  switch (command) {
    case "PEER":
      return withFields(line, command, 2, parseHello);
    case "CHALLENGE":
      return withFields(
        line,
        command,
        1,
        ([nonce]) => isNonce(nonce) ? { kind: "CHALLENGE", nonce } : invalid("bad nonce"),
      );
    case "PROOF":
      return withFields(
        line,
        command,
        1,
        ([proof]) => isProof(proof) ? { kind: "PROOF", proof } : invalid("bad proof"),
      );
    case "HAVE":
      return withFields(line, command, 3, parseHave);
    case "U":
      return withFields(line, command, 2, parseUpdate, { lastTakesRest: true });
    case "SYNCED":
      return withFields(line, command, 1, ([seqText]) => {
        const seq = parseSeq(seqText);
        return seq === undefined ? invalid("bad sequence number") : { kind: "SYNCED", seq };
      });
    case "HB":
      return withFields(line, command, 0, () => ({ kind: "HB" }));
    case "":
      return invalid(line === "" ? "empty line" : "empty field");
    default:
      return invalid("unknown command");
  }
}

/**
 * A message as one line to send, `\n` included.
 *
 * @example
 * ```ts
 * formatPeerLine({ kind: "U", seq: 7, atLine }); // `U 7 ${atLine}\n`
 * ```
 */
export function formatPeerLine(message: PeerMessage): string {
  switch (message.kind) {
    case "PEER":
      return `PEER ${message.name} ${message.version}\n`;
    case "CHALLENGE":
      return `CHALLENGE ${message.nonce}\n`;
    case "PROOF":
      return `PROOF ${message.proof}\n`;
    case "HAVE": {
      const known = message.epochKnownOfYou ?? NO_EPOCH;
      return `HAVE ${message.epoch} ${known} ${message.seqKnownOfYou}\n`;
    }
    case "U":
      // join() builds one flat string: a template would keep a rope of the pieces.
      return ["U ", message.seq, " ", message.atLine, "\n"].join("");
    case "SYNCED":
      return `SYNCED ${message.seq}\n`;
    case "HB":
      return "HB\n";
  }
}

/** True when a connection's first line asks to be a peer: its first field is `PEER`. */
export function startsAsPeerHello(line: string): boolean {
  return line === "PEER" || line.startsWith("PEER ");
}

/** True when `text` has the form of an epoch: 16 lowercase hex digits. */
export function isEpoch(text: string): boolean {
  if (text.length !== EPOCH_HEX_DIGITS) return false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    const isHexDigit = (code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66);
    if (!isHexDigit) return false;
  }
  return true;
}

/**
 * The longest peer line a link must take: `U <seq> ` and the longest AT line a server makes
 * from a client line within `lineBytesMax` when server names are at most `serverNameBytesMax`
 * bytes. Every other peer line is shorter (a hello holds one name, the rest fixed fields).
 *
 * Why it covers every update: lib/protocol.ts's `atLineBytesMax` bounds an AT line from
 * what can make it longer — the IAMAT's id, location and time are within `lineBytesMax`
 * together, the skew's whole seconds have at most one digit more than the larger of the
 * time's and the receive time's, and the rest is `AT`, the server's name and five spaces —
 * and a sequence number has at most 16 digits (`Number.MAX_SAFE_INTEGER`).
 *
 * @example
 * ```ts
 * peerLineBytesMax(65536, 9); // atLineBytesMax(65536, 9) + 19
 * ```
 */
export function peerLineBytesMax(lineBytesMax: number, serverNameBytesMax: number): number {
  return UPDATE_PREFIX_BYTES_MAX + atLineBytesMax(lineBytesMax, serverNameBytesMax);
}

/**
 * Splits `line` after `command ` into exactly `count` fields separated by single spaces and
 * hands them to `parse`; with `lastTakesRest`, the last field is the rest of the line.
 */
function withFields(
  line: string,
  command: string,
  count: number,
  parse: (fields: string[]) => ParsedPeerLine,
  options: { lastTakesRest?: boolean } = {},
): ParsedPeerLine {
  const wrongCount = invalid(`${command} takes ${count} field${count === 1 ? "" : "s"}`);
  if (count === 0) return line === command ? parse([]) : wrongCount;
  const fields: string[] = [];
  let start = command.length + 1;
  if (start > line.length) return wrongCount;
  while (fields.length < count - 1) {
    const space = line.indexOf(" ", start);
    if (space === -1) return wrongCount;
    fields.push(line.slice(start, space));
    start = space + 1;
  }
  const last = line.slice(start);
  fields.push(last);
  if (fields.includes("")) return invalid("empty field");
  if (!options.lastTakesRest && last.includes(" ")) {
    return last.startsWith(" ") || last.endsWith(" ") ? invalid("empty field") : wrongCount;
  }
  return parse(fields);
}

function parseHello([name, version]: string[]): PeerHello | InvalidPeerLine {
  if (version.length > VERSION_DIGITS_MAX || !isDigits(version)) return invalid("bad version");
  return { kind: "PEER", name, version };
}

function parseHave([epoch, known, seqText]: string[]): PeerHave | InvalidPeerLine {
  if (!isEpoch(epoch)) return invalid("bad epoch");
  if (known !== NO_EPOCH && !isEpoch(known)) return invalid("bad epoch known of you");
  const seq = parseSeq(seqText);
  if (seq === undefined) return invalid("bad sequence number");
  if (known === NO_EPOCH && seq !== 0) return invalid("a sequence number without an epoch");
  return {
    kind: "HAVE",
    epoch,
    epochKnownOfYou: known === NO_EPOCH ? undefined : known,
    seqKnownOfYou: seq,
  };
}

function parseUpdate([seqText, atLine]: string[]): ReceivedPeerUpdate | InvalidPeerLine {
  const seq = parseSeq(seqText);
  if (seq === undefined || seq === 0) return invalid("bad sequence number");
  const fields = parseAtLine(atLine);
  if (fields === undefined) return invalid("bad AT line");
  return { kind: "U", seq, atLine, clientId: fields.clientId };
}

/** A sequence number in plain digits (no sign, no leading zero), if it is a safe integer. */
function parseSeq(text: string): number | undefined {
  if (text.length > SEQ_DIGITS_MAX || !isDigits(text)) return undefined;
  if (text.length > 1 && text[0] === "0") return undefined;
  const seq = Number(text);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/** True when `text` is one or more ASCII digits. */
function isDigits(text: string): boolean {
  if (text === "") return false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}

function invalid(reason: string): InvalidPeerLine {
  return { kind: "invalid", reason };
}
