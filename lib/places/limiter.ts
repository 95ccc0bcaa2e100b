/**
 * Upstream limits for a billed Places API, per server: at most `concurrencyMax` lookups
 * calling upstream at once, at most `queueMax` waiting for their turn (past that the answer is
 * `OVER_QUERY_LIMIT` at once), and call starts paced by a token bucket of
 * `callsPerSecondMax`. Knows nothing of HTTP or clients; the clock and sleep are injected.
 */
import { systemWaitClock, type WaitClock } from "../abortable.ts";
import type { PlacesBody, PlacesProvider, PlacesQuery } from "./provider.ts";
import { unknownErrorBody } from "./provider.ts";

export interface UpstreamLimits {
  concurrencyMax: number;
  callsPerSecondMax: number;
  queueMax: number;
}

/** Time as the token bucket sees it; tests pass one that does not really wait. */
export type LimiterClock = WaitClock;

/** The body for a lookup refused because too many are already waiting. */
export function overQueryLimitBody(): PlacesBody {
  return { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT" };
}

export class UpstreamLimiter {
  readonly #limits: UpstreamLimits;
  readonly #clock: LimiterClock;
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];
  #tokens: number;
  #tokensAtMs: number;

  constructor(limits: UpstreamLimits, clock: LimiterClock = systemWaitClock) {
    this.#limits = limits;
    this.#clock = clock;
    this.#tokens = limits.callsPerSecondMax;
    this.#tokensAtMs = clock.nowMs();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Waits for a call slot. Returns the function that frees it, "full" when `queueMax`
   * lookups already wait, or "aborted" when `signal` aborts first.
   */
  acquire(signal: AbortSignal): Promise<(() => void) | "full" | "aborted"> {
    if (signal.aborted) return Promise.resolve("aborted");
    if (this.#inFlight < this.#limits.concurrencyMax && this.#waiting.length === 0) {
      return Promise.resolve(this.#take());
    }
    if (this.#waiting.length >= this.#limits.queueMax) return Promise.resolve("full");
    return new Promise((resolve) => {
      const onAbort = () => {
        const index = this.#waiting.indexOf(grant);
        if (index !== -1) this.#waiting.splice(index, 1);
        resolve("aborted");
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolve(this.#take());
      };
      this.#waiting.push(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Waits until the token bucket allows one more call to start; false if `signal` aborts. */
  async startCall(signal: AbortSignal): Promise<boolean> {
    const { callsPerSecondMax } = this.#limits;
    while (!signal.aborted) {
      const nowMs = this.#clock.nowMs();
      const refill = ((nowMs - this.#tokensAtMs) / 1000) * callsPerSecondMax;
      this.#tokens = Math.min(callsPerSecondMax, this.#tokens + refill);
      this.#tokensAtMs = nowMs;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return true;
      }
      await this.#clock.sleep(((1 - this.#tokens) / callsPerSecondMax) * 1000, signal);
    }
    return false;
  }

  #take(): () => void {
    this.#inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight -= 1;
      this.#waiting.shift()?.();
    };
  }
}

/**
 * A provider whose lookups each hold one slot of `limiter` while they run (retries are
 * sequential, so calls in flight never exceed the slots). The provider's HTTP calls should
 * go through {@link limitedFetch} with the same limiter so every attempt is paced.
 */
export function limitProvider(
  provider: PlacesProvider,
  limiter: UpstreamLimiter,
  onQueueFull: () => void = () => {},
): PlacesProvider {
  return {
    name: provider.name,
    async lookup(query: PlacesQuery, signal: AbortSignal): Promise<PlacesBody> {
      const release = await limiter.acquire(signal);
      if (release === "full") {
        onQueueFull();
        return overQueryLimitBody();
      }
      if (release === "aborted") return unknownErrorBody();
      try {
        return await provider.lookup(query, signal);
      } finally {
        release();
      }
    },
  };
}

/** `fetch` that first waits for the limiter's token bucket (bounded by the request's signal). */
export function limitedFetch(limiter: UpstreamLimiter, fetchImpl: typeof fetch = fetch) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const signal = init?.signal ?? new AbortController().signal;
    if (!(await limiter.startCall(signal))) {
      throw signal.reason ?? new DOMException("aborted while waiting to start", "AbortError");
    }
    return fetchImpl(input, init);
  };
}
