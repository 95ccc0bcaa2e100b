/**
 * The live page's two routes: `GET /`, the page itself (static: it holds no data, so a
 * browser can load it by navigation), and `GET /events`, Server-Sent Events carrying a
 * snapshot of the whole herd. One loop gathers a snapshot every {@link
 * SNAPSHOT_INTERVAL_MS_DEFAULT} while anyone subscribes, never per client line, and writes
 * the same bytes to every subscriber; subscribers are capped, and one that does not read is
 * dropped rather than buffered for. Knows no auth (the monitor in front checks the token on
 * `/events`), no sockets and how the herd is gathered (lib/herd_view.ts).
 */
import { systemWaitClock, type WaitClock } from "./abortable.ts";
import type { Counters } from "./counters.ts";
import type { HerdView } from "./herd_view.ts";
import { livePageHtml } from "./live_page_html.ts";
import type { Logger } from "./log.ts";

/** Snapshots go out at most once per this: a few a second, whatever the traffic. */
export const SNAPSHOT_INTERVAL_MS_DEFAULT = 500;
/**
 * Messages a subscriber may have waiting (beyond what the socket holds): a browser that stops
 * reading is dropped after about this many intervals instead of growing the server's memory.
 */
export const SUBSCRIBER_QUEUED_MESSAGES_MAX = 8;

export interface LivePageOptions {
  view: Pick<HerdView, "gather" | "pause">;
  /** `monitorSubscribersMax`: one more subscriber is refused with 503. */
  subscribersMax: number;
  logger: Logger;
  counters: Counters;
  snapshotIntervalMs?: number;
  /** Default the system's; tests step a manual one. */
  clock?: WaitClock;
}

const encoder = new TextEncoder();

export class LivePage {
  readonly #options: LivePageOptions;
  readonly #clock: WaitClock;
  readonly #subscribers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #gathering = false;
  readonly #closed = new AbortController();

  constructor(options: LivePageOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemWaitClock;
  }

  /** Subscribers of `/events` now. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Answers `GET /` and `GET /events`; 405 for another method, 404 for another path. */
  handle(request: Request): Response | Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname !== "/" && pathname !== "/events") return textResponse(404, "not found");
    if (request.method !== "GET") return textResponse(405, "method not allowed");
    return pathname === "/" ? pageResponse() : this.#subscribe();
  }

  /** Ends every subscription and the gathering loop (the monitor is stopping). */
  close(): void {
    this.#closed.abort();
    for (const subscriber of this.#subscribers) subscriber.close();
    this.#subscribers.clear();
  }

  #subscribe(): Response {
    const { subscribersMax, logger, counters } = this.#options;
    if (this.#closed.signal.aborted) return textResponse(503, "stopping");
    if (this.#subscribers.size >= subscribersMax) {
      counters.add("limit_monitor_subscribers");
      logger.warn("monitorSubscribersMax ({max}) reached: /events refused with 503", {
        max: subscribersMax,
      });
      return textResponse(503, `too many live-page subscribers (${subscribersMax})`);
    }
    let subscriber!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        subscriber = controller;
      },
      cancel: () => {
        this.#subscribers.delete(subscriber);
      },
    }, new CountQueuingStrategy({ highWaterMark: SUBSCRIBER_QUEUED_MESSAGES_MAX }));
    this.#subscribers.add(subscriber);
    // A comment first, so the browser has the headers before the first snapshot is gathered.
    subscriber.enqueue(encoder.encode(": herd live page\n\n"));
    if (!this.#gathering) this.#gatherWhileSubscribed();
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
    });
  }

  /** Gathers and sends a snapshot every interval until the last subscriber leaves. */
  async #gatherWhileSubscribed(): Promise<void> {
    const { view, snapshotIntervalMs = SNAPSHOT_INTERVAL_MS_DEFAULT } = this.#options;
    this.#gathering = true;
    try {
      while (this.#subscribers.size > 0 && !this.#closed.signal.aborted) {
        const startedMs = this.#clock.nowMs();
        const snapshot = await view.gather();
        this.#send(encoder.encode(`data: ${JSON.stringify(snapshot)}\n\n`));
        const elapsedMs = this.#clock.nowMs() - startedMs;
        await this.#clock.sleep(Math.max(0, snapshotIntervalMs - elapsedMs), this.#closed.signal);
      }
    } finally {
      // Even after a bug in a gathering, the next subscriber starts the loop again.
      view.pause();
      this.#gathering = false;
    }
  }

  #send(message: Uint8Array): void {
    for (const subscriber of this.#subscribers) {
      if ((subscriber.desiredSize ?? 0) > 0) {
        subscriber.enqueue(message);
        continue;
      }
      this.#subscribers.delete(subscriber);
      this.#options.counters.add("monitor_subscribers_dropped");
      this.#options.logger.warn(
        "dropped a live-page subscriber: {queued} messages waiting unread",
        { queued: SUBSCRIBER_QUEUED_MESSAGES_MAX },
      );
      subscriber.error(new Error("live-page subscriber too slow"));
    }
  }
}

async function pageResponse(): Promise<Response> {
  return new Response(await livePageHtml(), {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      // The browser itself holds the page to its promise: nothing from another origin.
      "content-security-policy":
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    },
  });
}

function textResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
