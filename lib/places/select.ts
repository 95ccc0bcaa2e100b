/**
 * Builds the Places provider a server was asked for: Google's behind the upstream limits,
 * each upstream call logged (URL with the key redacted, status, latency) and counted. The
 * only module that knows every provider.
 */
import type { Limits, PlacesFieldTier } from "../config.ts";
import type { Counters } from "../counters.ts";
import type { Logger } from "../log.ts";
import type { HerdMetrics } from "../metrics.ts";
import { createGoogleLegacyProvider } from "./google_legacy.ts";
import { createGoogleNewProvider } from "./google_new.ts";
import { limitedFetch, limitProvider, UpstreamLimiter } from "./limiter.ts";
import { createOfflineProvider } from "./offline.ts";
import { type PlacesProvider, type PlacesProviderName, placesStatusLabel } from "./provider.ts";
import type { UpstreamCallReport } from "./upstream.ts";

export interface PlacesSelection {
  apiKey: string;
  /** Replaces scheme and host of Google's endpoints (tests point it at a fake). */
  baseUrl: string | undefined;
  fieldTier: PlacesFieldTier;
  limits: Limits;
  logger: Logger;
  counters: Counters;
  /** With a monitor: the upstream latency histogram. */
  metrics?: HerdMetrics;
}

/** The provider `name`; the offline one starts loading its data set in the background. */
export function createPlacesProvider(
  name: PlacesProviderName,
  selection: PlacesSelection,
): PlacesProvider {
  const { apiKey, baseUrl, fieldTier, limits, logger, counters, metrics } = selection;
  if (name === "offline") {
    const offline = createOfflineProvider();
    offline.ready.then(
      (stats) =>
        logger.info("offline places ready: {placeCount} places in {loadMs} ms", { ...stats }),
      (error) => logger.error("offline places unavailable: {error}", { error: error.message }),
    );
    return offline;
  }
  const limiter = new UpstreamLimiter({
    concurrencyMax: limits.placesConcurrencyMax,
    callsPerSecondMax: limits.placesCallsPerSecondMax,
    queueMax: limits.placesQueueMax,
  });
  const onCall = (call: UpstreamCallReport) => {
    counters.add("places_calls");
    counters.add(`places_status_${placesStatusLabel(call.placesStatus)}`);
    counters.add("places_latency_ms_total", Math.round(call.latencyMs));
    if (call.attempt > 1) counters.add("places_retries");
    metrics?.observePlacesCall(call.provider, call.latencyMs);
    logger.info("places call {provider} #{attempt} {url}: {status} in {latencyMs} ms", {
      ...call,
      latencyMs: Math.round(call.latencyMs),
      status: call.error ?? `HTTP ${call.httpStatus ?? "-"} ${call.placesStatus}`,
    });
  };
  const upstream = { apiKey, baseUrl, fetchImpl: limitedFetch(limiter), onCall };
  const provider = name === "google"
    ? createGoogleLegacyProvider(upstream)
    : createGoogleNewProvider({ ...upstream, fieldTier });
  return limitProvider(provider, limiter, () => {
    counters.add("limit_places_queue");
    logger.warn("placesQueueMax reached: a lookup was answered OVER_QUERY_LIMIT");
  });
}
