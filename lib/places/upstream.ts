/**
 * One upstream Places call with a deadline and retries, shared by the Google providers.
 *
 * Owns: the retry rule (only connect/network errors, HTTP 5xx and 429 are retried), backoff
 * with jitter bounded by the deadline and by {@link ATTEMPTS_MAX}, a bounded read of each
 * response, keeping the API key out of everything returned or reported, and the report of
 * each attempt. Must not know: either API's URL, headers or body shapes (a provider passes a
 * ready request and a pure interpreter of the response), clients, bounds or sharing.
 *
 * The deadline is the caller's AbortSignal: when it aborts, the call resolves at once with
 * the body of the last HTTP response (`UNKNOWN_ERROR` if there was none) and never rejects.
 */

import { raceAbort, systemWaitClock, type WaitClock } from "../abortable.ts";
import { backoffDelayMs, type BackoffOptions } from "../backoff.ts";
import {
  type PlacesBody,
  type PlacesProvider,
  type PlacesQuery,
  unknownErrorBody,
} from "./provider.ts";

/**
 * Backoff between attempts: from 100 ms, and at most 1000 ms so that a long deadline still
 * retries about once a second.
 */
export const PLACES_BACKOFF: BackoffOptions = { firstMs: 100, maxMs: 1000 };
/** Attempts per lookup whatever the deadline: a long deadline must not mean unbounded calls. */
export const ATTEMPTS_MAX = 8;
/** A response body larger than this is not a Places answer (20 results are ~50 KB). */
export const RESPONSE_BYTES_MAX = 4 * 1024 * 1024;
/** Nesting deeper than this is not a Places answer (real ones are under 10 deep). */
export const ANSWER_DEPTH_MAX = 32;
/** What stands in for the API key wherever it would otherwise show. */
export const REDACTED = "REDACTED";

/** One upstream attempt, as reported to {@link UpstreamOptions.onCall} (never holds the key). */
export interface UpstreamCallReport {
  provider: PlacesProvider["name"];
  /** The request URL with `key=REDACTED`. */
  url: string;
  /** 1 for the first attempt of a lookup, 2 for its first retry, … */
  attempt: number;
  /** Absent when no HTTP response arrived (connect error, deadline). */
  httpStatus?: number;
  /** The status this attempt alone maps to (`UNKNOWN_ERROR` when it got no response). */
  placesStatus: string;
  /** From sending the request to having its whole body (or giving up on it). */
  latencyMs: number;
  /** Why the attempt gave no usable answer: network error, deadline, not a Places answer. */
  error?: string;
}

/** Called once per upstream attempt, synchronously; whatever it throws is ignored. */
export type UpstreamCallObserver = (report: UpstreamCallReport) => void;

/** The subset of `fetch` a provider uses; `globalThis.fetch` is one. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** Time as the retry loop sees it; tests pass one that does not really wait. */
export type UpstreamClock = WaitClock;

/** What every Google provider is configured with. */
export interface UpstreamOptions {
  /** The API key (read from GOOGLE_PLACES_API_KEY by the caller); never returned or reported. */
  apiKey: string;
  /** Replaces scheme and host (and may add a path prefix) of the API's default base URL. */
  baseUrl?: string;
  /** Default `globalThis.fetch`. */
  fetchImpl?: FetchLike;
  /** Called once per upstream attempt, e.g. to log each Places call with status and latency. */
  onCall?: UpstreamCallObserver;
  /** Default {@link systemWaitClock}. */
  clock?: UpstreamClock;
  /** Jitter source in [0, 1); default `Math.random`. */
  random?: () => number;
}

/**
 * A Places provider whose lookup also takes the deadline as a time on its clock
 * (`deadlineAtMs`, same scale as {@link UpstreamClock.nowMs}). With it, a backoff sleep that
 * would end after the deadline is not started and the lookup answers at once; without it,
 * the sleep is cut short when `signal` aborts. `signal` alone always bounds the lookup.
 */
export interface DeadlineAwareProvider extends PlacesProvider {
  lookup(query: PlacesQuery, signal: AbortSignal, deadlineAtMs?: number): Promise<PlacesBody>;
}

/** A request ready to send; `url` may hold the key (it is redacted before it is reported). */
export interface UpstreamRequest {
  url: string;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
}

/** What one HTTP response means in the legacy shape, and why it is unusable if it is. */
export interface UpstreamVerdict {
  body: PlacesBody;
  error?: string;
}

/** A provider's pure reading of one HTTP response (status and whole body text). */
export type UpstreamInterpreter = (httpStatus: number, text: string) => UpstreamVerdict;

/** Sends `request` with retries until an answer or `signal` aborts; see the module doc. */
export type UpstreamCaller = (
  request: UpstreamRequest,
  interpret: UpstreamInterpreter,
  signal: AbortSignal,
  deadlineAtMs?: number,
) => Promise<PlacesBody>;

type AttemptOutcome =
  /** `text` is undefined when the body could not be had; `bodyError` says why. */
  | { kind: "response"; httpStatus: number; text: string | undefined; bodyError?: string }
  | { kind: "failed"; error: string };

const ABORTED = Symbol("aborted");

/**
 * Whether an HTTP status is worth another attempt: 429 and every 5xx. Anything else is the
 * API's answer, even if it is an error.
 *
 * @example
 * ```ts
 * isRetryableHttpStatus(503); // true
 * isRetryableHttpStatus(200); // false — a legacy 200 body is never retried
 * ```
 */
export function isRetryableHttpStatus(httpStatus: number): boolean {
  return httpStatus === 429 || (httpStatus >= 500 && httpStatus <= 599);
}

/**
 * The body for an HTTP response that carries no usable Places answer: `OVER_QUERY_LIMIT` for
 * 429, `UNKNOWN_ERROR` for anything else.
 *
 * @example
 * ```ts
 * httpStatusBody(429).status; // "OVER_QUERY_LIMIT"
 * ```
 */
export function httpStatusBody(httpStatus: number): PlacesBody {
  return httpStatus === 429
    ? { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT" }
    : unknownErrorBody();
}

/**
 * `text` with every occurrence of the key itself (raw or percent-encoded) replaced by
 * `REDACTED`. An empty key redacts nothing.
 *
 * @example
 * ```ts
 * redactKey("The provided API key AIzaSECRET is invalid.", "AIzaSECRET"); // "The provided API key REDACTED is invalid."
 * ```
 */
export function redactKey(text: string, apiKey: string): string {
  if (apiKey === "") return text;
  let redacted = text.replaceAll(apiKey, REDACTED);
  const encoded = encodeURIComponent(apiKey);
  if (encoded !== apiKey) redacted = redacted.replaceAll(encoded, REDACTED);
  return redacted;
}

/**
 * A URL, or text that may quote one (an error message), fit to log: every `key=` query
 * parameter's value becomes `REDACTED`, and so does any other occurrence of the key.
 *
 * @example
 * ```ts
 * redactUrl("https://h/json?location=1,2&key=AIzaSECRET", "AIzaSECRET"); // "https://h/json?location=1,2&key=REDACTED"
 * ```
 */
export function redactUrl(text: string, apiKey: string): string {
  return redactKey(text.replace(/([?&]key=)[^&#\s)"']*/gi, `$1${REDACTED}`), apiKey);
}

/**
 * A copy of a parsed JSON value with the key redacted from every string and property name.
 * Throws RangeError if it is nested deeper than {@link ANSWER_DEPTH_MAX} (not a Places
 * answer, and a risk to every recursive walk after this one).
 *
 * @example
 * ```ts
 * scrubKey({ error_message: "bad key AIzaSECRET" }, "AIzaSECRET"); // { error_message: "bad key REDACTED" }
 * ```
 */
export function scrubKey<T>(value: T, apiKey: string): T {
  return scrubValue(value, apiKey, 0) as T;
}

function scrubValue(value: unknown, apiKey: string, depth: number): unknown {
  if (depth > ANSWER_DEPTH_MAX) {
    throw new RangeError(`answer nested deeper than ${ANSWER_DEPTH_MAX}`);
  }
  if (typeof value === "string") return redactKey(value, apiKey);
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, apiKey, depth + 1));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map((
        [name, item],
      ) => [redactKey(name, apiKey), scrubValue(item, apiKey, depth + 1)]),
    );
  }
  return value;
}

/**
 * The base URL to use: `baseUrl` (e.g. from `--places-url`) without trailing slashes, or
 * `defaultUrl` when it is absent or empty.
 *
 * @example
 * ```ts
 * placesBaseUrl("http://127.0.0.1:9000/", "https://maps.googleapis.com"); // "http://127.0.0.1:9000"
 * ```
 */
export function placesBaseUrl(baseUrl: string | undefined, defaultUrl: string): string {
  return (baseUrl === undefined || baseUrl === "" ? defaultUrl : baseUrl).replace(/\/+$/, "");
}

/**
 * A coordinate or radius as plain decimal text, never in exponent form (`1e-7` would be
 * misread upstream).
 *
 * @example
 * ```ts
 * decimalText(-118.445127); // "-118.445127"
 * decimalText(1e-7); // "0.0000001"
 * ```
 */
export function decimalText(value: number): string {
  const text = String(value);
  if (!/e/i.test(text)) return text;
  return value.toFixed(20).replace(/\.?0+$/, "");
}

/**
 * The shared retry loop for one provider. Each call of the returned function sends the
 * request, reads the whole response (up to {@link RESPONSE_BYTES_MAX}), maps it with
 * `interpret`, and retries connect errors, HTTP 5xx and 429 with {@link backoffDelayMs}
 * while the deadline and {@link ATTEMPTS_MAX} allow. It resolves the moment `signal` aborts,
 * with the last response's body (`UNKNOWN_ERROR` if none), and never rejects. Everything it
 * returns or reports has the key redacted.
 *
 * @example
 * ```ts
 * const call = createUpstreamCaller("google", { apiKey });
 * const body = await call({ url, method: "GET" }, legacyBodyFromResponse, AbortSignal.timeout(5000));
 * ```
 */
export function createUpstreamCaller(
  provider: PlacesProvider["name"],
  options: UpstreamOptions,
): UpstreamCaller {
  const { apiKey } = options;
  const fetchImpl: FetchLike = options.fetchImpl ?? ((url, init) => fetch(url, init));
  const clock = options.clock ?? systemWaitClock;
  const random = options.random ?? Math.random;

  const report = (call: Omit<UpstreamCallReport, "provider" | "url">, url: string) => {
    if (options.onCall === undefined) return;
    const safe: UpstreamCallReport = { provider, url: redactUrl(url, apiKey), ...call };
    if (safe.error !== undefined) safe.error = redactUrl(safe.error, apiKey);
    try {
      options.onCall(safe);
    } catch {
      // An observer's failure must not change the answer a client gets.
    }
  };

  const judge = (
    outcome: AttemptOutcome & { kind: "response" },
    interpret: UpstreamInterpreter,
  ) => {
    if (outcome.text === undefined) {
      return {
        body: httpStatusBody(outcome.httpStatus),
        error: `HTTP ${outcome.httpStatus}: ${outcome.bodyError}`,
      };
    }
    try {
      const verdict = interpret(outcome.httpStatus, outcome.text);
      return { ...verdict, body: scrubKey(verdict.body, apiKey) };
    } catch (error) {
      return {
        body: httpStatusBody(outcome.httpStatus),
        error: `HTTP ${outcome.httpStatus}: ${describeError(error)}`,
      };
    }
  };

  return async (request, interpret, signal, deadlineAtMs) => {
    let lastResponseBody: PlacesBody | undefined;
    const answer = () => lastResponseBody ?? unknownErrorBody();
    for (let attempt = 1;; attempt++) {
      if (signal.aborted) return answer();
      const startMs = clock.nowMs();
      const outcome = await raceAbort(
        sendOnce(fetchImpl, request, signal),
        signal,
        (): typeof ABORTED => ABORTED,
      );
      const latencyMs = Math.round(clock.nowMs() - startMs);
      if (outcome === ABORTED) {
        const error = "aborted at the deadline before an answer";
        report({ attempt, placesStatus: "UNKNOWN_ERROR", latencyMs, error }, request.url);
        return answer();
      }
      if (outcome.kind === "failed") {
        report(
          { attempt, placesStatus: "UNKNOWN_ERROR", latencyMs, error: outcome.error },
          request.url,
        );
      } else {
        const verdict = judge(outcome, interpret);
        lastResponseBody = verdict.body;
        const { httpStatus } = outcome;
        const placesStatus = verdict.body.status;
        report({ attempt, httpStatus, placesStatus, latencyMs, error: verdict.error }, request.url);
        if (!isRetryableHttpStatus(httpStatus)) return verdict.body;
      }
      if (attempt >= ATTEMPTS_MAX) return answer();
      const delayMs = backoffDelayMs(attempt, random(), PLACES_BACKOFF);
      if (deadlineAtMs !== undefined && clock.nowMs() + delayMs >= deadlineAtMs) return answer();
      await raceAbort(clock.sleep(delayMs, signal), signal, () => undefined);
    }
  };
}

/** One HTTP exchange: the status and whole body text, or why there was none. Never rejects. */
async function sendOnce(
  fetchImpl: FetchLike,
  request: UpstreamRequest,
  signal: AbortSignal,
): Promise<AttemptOutcome> {
  let response: Response;
  try {
    response = await fetchImpl(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal,
      // A redirect would carry the key (in the URL or a header) to wherever it points.
      redirect: "manual",
    });
  } catch (error) {
    return { kind: "failed", error: `no response: ${describeError(error)}` };
  }
  try {
    const text = await readTextBounded(response, RESPONSE_BYTES_MAX);
    const bodyError = text === undefined ? `body over ${RESPONSE_BYTES_MAX} bytes` : undefined;
    return { kind: "response", httpStatus: response.status, text, bodyError };
  } catch (error) {
    // The server answered: its status decides about retrying (a 200 never is), not the cut.
    const bodyError = `body lost: ${describeError(error)}`;
    return { kind: "response", httpStatus: response.status, text: undefined, bodyError };
  }
}

/** The body as text, or `undefined` (body cancelled) once it passes `bytesMax`. */
async function readTextBounded(response: Response, bytesMax: number): Promise<string | undefined> {
  const declaredBytes = Number(response.headers.get("content-length") ?? 0);
  if (declaredBytes > bytesMax) {
    await response.body?.cancel();
    return undefined;
  }
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let totalBytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    totalBytes += value.byteLength;
    if (totalBytes > bytesMax) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(totalBytes);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** An error's message with its causes, on one line (the caller redacts the key). */
function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 4; depth++) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(": ").replace(/\s+/g, " ");
}
