/**
 * What one herd server does with a client's line: store and flood an IAMAT, answer a
 * WHATSAT through the Places provider, or refuse the line. Owns the meaning of the protocol
 * but no sockets: the clock, the provider and the flood are passed in, so tests drive it
 * without a network and without sleeping.
 */
import { deadlineAfter } from "./abortable.ts";
import type { Counters } from "./counters.ts";
import { utf8AsWireText } from "./lines.ts";
import type { Logger } from "./log.ts";
import { showWireText } from "./log.ts";
import { IAMAT_REFUSED_COUNTER } from "./metrics.ts";
import {
  formatAtLine,
  formatInvalidReply,
  formatPlacesBody,
  type IamatMessage,
  parseAtLine,
  parseClientLine,
  parseLocation,
  type WhatsatMessage,
} from "./protocol.ts";
import { type ClientStore, STORE_LIMIT_COUNTERS, type StoredUpdate } from "./store.ts";
import type { SharedLookups } from "./places/shared.ts";
import { AnswerCache } from "./places/answer_cache.ts";
import type { PlacesBody } from "./places/provider.ts";

export interface ServiceOptions {
  serverName: string;
  store: ClientStore;
  places: SharedLookups;
  placesTimeoutMs: number;
  /** Current wall-clock time in integer nanoseconds since the epoch. */
  clockNs: () => bigint;
  /** Hands an accepted update to the neighbour links (without waiting for them). */
  flood: (update: StoredUpdate) => void;
  /**
   * With a data dir: resolves once every update stored so far is on disk, so an AT reply
   * waits for its update (or the equal or newer one held) to be durable.
   */
  committed?: () => Promise<void>;
  /**
   * With a data dir: false while `dataDirBacklogMax` updates wait for a write (a failing
   * disk); an IAMAT is then refused, so the updates held in memory stay bounded.
   */
  acceptsUpdates?: () => boolean;
  logger: Logger;
  counters: Counters;
}

/**
 * A reply ready to send now, or one that a Places lookup will complete: wire text (one code
 * unit per byte, the JSON body's UTF-8 bytes included), ending in `\n`. Text, not bytes, so a
 * read's replies are encoded together, in one call, when they are written.
 */
export type Reply = string | Promise<string>;

/** How {@link HerdService.handleLine} takes a line. */
export interface HandleLineOptions {
  /** The line was longer than `lineBytesMax` and is cut to it: it is refused. Default false. */
  tooLong?: boolean;
  /**
   * When the line was received, in integer nanoseconds of the wall clock (the lines of one read
   * share it); default: now, by the service's clock.
   */
  receivedNs?: bigint;
  /**
   * Aborts a pending lookup when the client has gone or the server is stopping; the reply
   * then carries the `UNKNOWN_ERROR` body.
   */
  signal: AbortSignal;
}

const NEWLINE = "\n";
/**
 * The provider stops this much before the client's deadline, so that the body it then maps
 * from the last response (e.g. a 429's OVER_QUERY_LIMIT) reaches the client in time.
 */
const PROVIDER_DEADLINE_MARGIN_MS_MAX = 5;
const REPLY_END = "\n\n";
/** Formatted bodies of immediate answers kept for repeated WHATSATs (see AnswerCache). */
const ANSWER_CACHE_BYTES_MAX = 4 * 1024 * 1024;

export class HerdService {
  readonly #options: ServiceOptions;
  /** IAMATs are being refused for the data dir's backlog (logged when this changes). */
  #refusingUpdates = false;
  readonly #answers = new AnswerCache({ bytesMax: ANSWER_CACHE_BYTES_MAX });

  constructor(options: ServiceOptions) {
    this.#options = options;
  }

  /**
   * Acts on one client line now (store, flood, start a lookup) and returns its reply: `? line`
   * for a line that is not a valid IAMAT or WHATSAT (its reason is logged at debug).
   *
   * @example
   * ```ts
   * const reply = service.handleLine("IAMAT kiwi +34-118 1700000000", { signal });
   * ```
   */
  handleLine(line: string, options: HandleLineOptions): Reply {
    const { counters, logger } = this.#options;
    const message = options.tooLong ? undefined : parseClientLine(line);
    switch (message?.kind) {
      case "IAMAT":
        return this.#iamat(message, line, options);
      case "WHATSAT":
        return this.#whatsat(message, line, options);
      case "invalid":
        counters.add("lines_invalid");
        if (logger.isEnabledFor("debug")) {
          logger.debug("invalid line from client: {reason}", { reason: message.reason });
        }
        return this.#invalid(line);
      default: // cut at lineBytesMax: refused without parsing
        counters.add("limit_line_bytes");
        logger.info("lineBytesMax reached: line cut and refused");
        return this.#invalid(line);
    }
  }

  #invalid(line: string): string {
    return formatInvalidReply(line);
  }

  #iamat(message: IamatMessage, line: string, options: HandleLineOptions): Reply {
    const { serverName, store, counters, logger, flood, committed } = this.#options;
    if (!this.#acceptsUpdates()) {
      counters.add(IAMAT_REFUSED_COUNTER);
      return this.#invalid(line);
    }
    const receivedNs = options.receivedNs ?? this.#options.clockNs();
    const atLine = formatAtLine(serverName, receivedNs, message);
    // The store keeps its own copy of the id: nothing of the client's line outlives this call.
    const result = store.offer({ clientId: message.clientId, atLine });
    if (result === "clientsMax" || result === "storeBytesMax") {
      counters.add(STORE_LIMIT_COUNTERS[result]);
      counters.add(IAMAT_REFUSED_COUNTER);
      logger.warn("{limit} reached: refused IAMAT for {id}", {
        limit: result,
        id: showWireText(message.clientId),
      });
      return this.#invalid(line);
    }
    if (result === "stored") {
      counters.add("iamat_stored");
      // Stored as given, with the latest sequence number: no lookup needed to hand it on.
      flood({ clientId: message.clientId, atLine, seq: store.lastSeq, fromPeer: undefined });
    } else {
      counters.add("iamat_stale");
    }
    const reply = atLine + NEWLINE;
    return committed === undefined ? reply : committed().then(() => reply);
  }

  /**
   * Whether the data dir takes another update. Each refusal is counted; the log says when
   * refusing starts and ends, not once per line of a flood.
   */
  #acceptsUpdates(): boolean {
    const { acceptsUpdates, counters, logger } = this.#options;
    const accepts = acceptsUpdates?.() ?? true;
    if (!accepts) counters.add("limit_data_dir_backlog");
    if (!accepts && !this.#refusingUpdates) {
      logger.warn("dataDirBacklogMax reached: refusing IAMATs until the data dir catches up");
    }
    if (accepts && this.#refusingUpdates) {
      logger.info("data dir backlog below dataDirBacklogMax: accepting IAMATs again");
    }
    this.#refusingUpdates = !accepts;
    return accepts;
  }

  #whatsat(message: WhatsatMessage, line: string, options: HandleLineOptions): Reply {
    const held = this.#options.store.get(message.clientId);
    const coordinates = held && parseLocation(parseAtLine(held.atLine)!.location);
    if (held === undefined || coordinates === undefined) {
      this.#options.counters.add("whatsat_unknown_client");
      return this.#invalid(line);
    }
    const { counters, placesTimeoutMs, places } = this.#options;
    counters.add("whatsat");
    const query = {
      latitude: coordinates.latitude,
      longitude: coordinates.longitude,
      radiusMetres: message.radiusMetres,
      locationKey: coordinates.key,
    };
    // An answer there already (the offline data set, loaded) is an immediate reply: no
    // deadline timers, no signals, no promise — and, being the same for the same query
    // whenever it is asked, its formatted body is kept for the next time.
    const answerKey = `${coordinates.key}|${message.radiusMetres}|${message.bound}`;
    const answered = this.#answers.get(answerKey);
    if (answered !== undefined) return whatsatReplyOf(held.atLine, answered);
    const immediate = places.answerNow(query);
    if (immediate !== undefined) {
      const body = formattedBody(immediate, message.bound);
      this.#answers.set(answerKey, body);
      return whatsatReplyOf(held.atLine, body);
    }
    const marginMs = Math.min(PROVIDER_DEADLINE_MARGIN_MS_MAX, Math.floor(placesTimeoutMs / 10));
    const providerDeadline = deadlineAfter(placesTimeoutMs - marginMs);
    const clientDeadline = deadlineAfter(placesTimeoutMs);
    // Read only now: a session makes its signal on first use, and most WHATSATs need none.
    const waiter = AbortSignal.any([clientDeadline.signal, options.signal]);
    return places.lookup(query, providerDeadline.signal, waiter).then((body) => {
      clientDeadline.clear();
      // Answered without the waiter giving up: the call itself is over, whoever shared it.
      if (!waiter.aborted) providerDeadline.clear();
      if (clientDeadline.signal.aborted) counters.add("places_timeouts");
      return whatsatReply(held.atLine, body, message.bound);
    });
  }
}

/** A WHATSAT's reply: the AT line held, the Places body cut to `bound`, an empty line. */
function whatsatReply(atLine: string, body: PlacesBody, bound: number): string {
  return whatsatReplyOf(atLine, formattedBody(body, bound));
}

/** The Places body cut to `bound` as the reply's UTF-8 bytes in wire text, with the closing empty line. */
function formattedBody(body: PlacesBody, bound: number): string {
  return utf8AsWireText(formatPlacesBody(body, bound) + REPLY_END);
}

function whatsatReplyOf(atLine: string, formatted: string): string {
  return atLine + NEWLINE + formatted;
}
