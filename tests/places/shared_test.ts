import assert from "node:assert/strict";
import { Counters } from "../../lib/counters.ts";
import {
  type ImmediatePlacesProvider,
  type KeyedPlacesQuery,
  SharedLookups,
} from "../../lib/places/shared.ts";
import type { PlacesBody, PlacesProvider, PlacesQuery } from "../../lib/places/provider.ts";

/** A provider whose calls stay pending until the test answers them. */
function controlledProvider() {
  const calls: Array<{
    query: PlacesQuery;
    signal: AbortSignal;
    answer: (body: PlacesBody) => void;
  }> = [];
  const provider: PlacesProvider = {
    name: "google",
    lookup: (query, signal) =>
      new Promise((answer) => {
        calls.push({ query, signal, answer });
      }),
  };
  return { provider, calls };
}

const QUERY: KeyedPlacesQuery = {
  latitude: 34.06893,
  longitude: -118.445127,
  radiusMetres: 10_000,
  locationKey: "34.06893,-118.445127",
};

function okBody(count: number): PlacesBody {
  const results = Array.from({ length: count }, (_, index) => ({ name: `place ${index}` }));
  return { html_attributions: [], results, status: "OK" };
}

const never = () => new AbortController().signal;

Deno.test("identical lookups in flight share one upstream call", async () => {
  const { provider, calls } = controlledProvider();
  const counters = new Counters();
  const shared = new SharedLookups(provider, counters);
  const waiting = Array.from({ length: 20 }, () => shared.lookup(QUERY, never(), never()));
  assert.equal(calls.length, 1);
  assert.equal(counters.get("places_shared_lookups"), 19);
  calls[0].answer(okBody(20));
  const bodies = await Promise.all(waiting);
  for (const body of bodies) assert.equal(body.results.length, 20);
});

Deno.test("a lookup after the shared call was answered calls upstream again", async () => {
  const { provider, calls } = controlledProvider();
  const shared = new SharedLookups(provider, new Counters());
  const first = shared.lookup(QUERY, never(), never());
  calls[0].answer(okBody(3));
  await first;
  const second = shared.lookup(QUERY, never(), never());
  assert.equal(calls.length, 2);
  calls[1].answer(okBody(1));
  assert.equal((await second).results.length, 1);
});

Deno.test("lookups with another radius or location are not shared", () => {
  const { provider, calls } = controlledProvider();
  const shared = new SharedLookups(provider, new Counters());
  shared.lookup(QUERY, never(), never());
  shared.lookup({ ...QUERY, radiusMetres: 10_001 }, never(), never());
  shared.lookup({ ...QUERY, locationKey: "34.06893,-118.44512" }, never(), never());
  assert.equal(calls.length, 3);
  for (const call of calls) call.answer(okBody(0));
});

Deno.test("a waiter that leaves gets UNKNOWN_ERROR while the call goes on for the others", async () => {
  const { provider, calls } = controlledProvider();
  const shared = new SharedLookups(provider, new Counters());
  const leaving = new AbortController();
  const gone = shared.lookup(QUERY, never(), leaving.signal);
  const staying = shared.lookup(QUERY, never(), never());
  leaving.abort();
  assert.equal((await gone).status, "UNKNOWN_ERROR");
  assert.equal(calls[0].signal.aborted, false);
  calls[0].answer(okBody(2));
  assert.equal((await staying).results.length, 2);
});

Deno.test("the upstream call is aborted once every waiter has left", async () => {
  const { provider, calls } = controlledProvider();
  const shared = new SharedLookups(provider, new Counters());
  const leaving = [new AbortController(), new AbortController()];
  const waiting = leaving.map((controller) => shared.lookup(QUERY, never(), controller.signal));
  for (const controller of leaving) controller.abort();
  await Promise.all(waiting);
  assert.equal(calls[0].signal.aborted, true);
  calls[0].answer(okBody(0));
});

Deno.test("the shared call stops at its deadline", () => {
  const { provider, calls } = controlledProvider();
  const shared = new SharedLookups(provider, new Counters());
  const deadline = new AbortController();
  shared.lookup(QUERY, deadline.signal, never());
  deadline.abort();
  assert.equal(calls[0].signal.aborted, true);
  calls[0].answer(okBody(0));
});

/** A provider that answers at once when `ready`, else like controlledProvider. */
function immediateProvider(ready: boolean) {
  const { provider, calls } = controlledProvider();
  const immediate: ImmediatePlacesProvider = {
    ...provider,
    answerNow: () => (ready ? okBody(2) : undefined),
  };
  return { provider: immediate, calls };
}

Deno.test("a provider that can answer at once gives its body through answerNow, calling nothing", () => {
  const { provider, calls } = immediateProvider(true);
  const counters = new Counters();
  const shared = new SharedLookups(provider, counters);
  assert.deepEqual([shared.answerNow(QUERY), shared.answerNow(QUERY)], [okBody(2), okBody(2)]);
  assert.equal(calls.length, 0);
  assert.equal(counters.get("places_shared_lookups"), 0);
});

Deno.test("answerNow is undefined for a provider that cannot answer yet, or never can", () => {
  assert.equal(
    new SharedLookups(immediateProvider(false).provider, new Counters()).answerNow(QUERY),
    undefined,
  );
  assert.equal(
    new SharedLookups(controlledProvider().provider, new Counters()).answerNow(QUERY),
    undefined,
  );
});

Deno.test("a provider that cannot answer yet is called and shared as any other", () => {
  const { provider, calls } = immediateProvider(false);
  const shared = new SharedLookups(provider, new Counters());
  shared.lookup(QUERY, never(), never());
  shared.lookup(QUERY, never(), never());
  assert.equal(calls.length, 1);
  calls[0].answer(okBody(0));
});
