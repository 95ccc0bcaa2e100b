import assert from "node:assert/strict";
import { type LimiterClock, limitProvider, UpstreamLimiter } from "../../lib/places/limiter.ts";
import type { PlacesBody, PlacesProvider } from "../../lib/places/provider.ts";

/** A clock that moves only when the test says; sleepers wake when their time has come. */
function manualClock() {
  let nowMs = 0;
  const sleepers: Array<{ untilMs: number; wake: () => void }> = [];
  const clock: LimiterClock = {
    nowMs: () => nowMs,
    sleep: (ms, signal) =>
      new Promise((wake) => {
        sleepers.push({ untilMs: nowMs + ms, wake });
        signal.addEventListener("abort", () => wake(), { once: true });
      }),
  };
  const advance = async (ms: number) => {
    nowMs += ms;
    for (const sleeper of sleepers.splice(0)) {
      if (sleeper.untilMs <= nowMs) sleeper.wake();
      else sleepers.push(sleeper);
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { clock, advance };
}

const never = () => new AbortController().signal;

Deno.test("no more than concurrencyMax slots are held at once", async () => {
  const limiter = new UpstreamLimiter({ concurrencyMax: 2, callsPerSecondMax: 100, queueMax: 10 });
  const first = await limiter.acquire(never());
  const second = await limiter.acquire(never());
  let thirdGranted = false;
  const third = limiter.acquire(never()).then((release) => {
    thirdGranted = true;
    return release;
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(thirdGranted, false);
  assert.equal(limiter.inFlight, 2);
  assert.equal(limiter.waiting, 1);
  assert.equal(typeof first, "function");
  (first as () => void)();
  const release = await third;
  assert.equal(thirdGranted, true);
  assert.equal(limiter.inFlight, 2);
  (second as () => void)();
  (release as () => void)();
  assert.equal(limiter.inFlight, 0);
});

Deno.test("a lookup past queueMax is refused at once with full", async () => {
  const limiter = new UpstreamLimiter({ concurrencyMax: 1, callsPerSecondMax: 100, queueMax: 2 });
  await limiter.acquire(never());
  limiter.acquire(never());
  limiter.acquire(never());
  assert.equal(await limiter.acquire(never()), "full");
});

Deno.test("a queued lookup whose signal aborts leaves the queue", async () => {
  const limiter = new UpstreamLimiter({ concurrencyMax: 1, callsPerSecondMax: 100, queueMax: 1 });
  await limiter.acquire(never());
  const leaving = new AbortController();
  const queued = limiter.acquire(leaving.signal);
  leaving.abort();
  assert.equal(await queued, "aborted");
  assert.equal(limiter.waiting, 0);
});

Deno.test("call starts are paced by the token bucket", async () => {
  const { clock, advance } = manualClock();
  const limiter = new UpstreamLimiter(
    { concurrencyMax: 10, callsPerSecondMax: 2, queueMax: 10 },
    clock,
  );
  assert.equal(await limiter.startCall(never()), true);
  assert.equal(await limiter.startCall(never()), true);
  let thirdStarted = false;
  const third = limiter.startCall(never()).then((started) => (thirdStarted = started));
  await advance(100);
  assert.equal(thirdStarted, false);
  await advance(400);
  await third;
  assert.equal(thirdStarted, true);
});

Deno.test("waiting for a token stops when the signal aborts", async () => {
  const { clock } = manualClock();
  const limiter = new UpstreamLimiter(
    { concurrencyMax: 1, callsPerSecondMax: 1, queueMax: 1 },
    clock,
  );
  await limiter.startCall(never());
  const deadline = new AbortController();
  const waiting = limiter.startCall(deadline.signal);
  deadline.abort();
  assert.equal(await waiting, false);
});

Deno.test("a limited provider answers OVER_QUERY_LIMIT when the queue is full", async () => {
  const answers: Array<(body: PlacesBody) => void> = [];
  const slow: PlacesProvider = {
    name: "google",
    lookup: () => new Promise((answer) => answers.push(answer)),
  };
  const limiter = new UpstreamLimiter({ concurrencyMax: 1, callsPerSecondMax: 100, queueMax: 0 });
  const limited = limitProvider(slow, limiter);
  const query = { latitude: 0, longitude: 0, radiusMetres: 1000 };
  const first = limited.lookup(query, never());
  assert.equal((await limited.lookup(query, never())).status, "OVER_QUERY_LIMIT");
  await new Promise((resolve) => setTimeout(resolve, 0));
  answers[0]({ html_attributions: [], results: [], status: "ZERO_RESULTS" });
  assert.equal((await first).status, "ZERO_RESULTS");
  assert.equal(limiter.inFlight, 0);
});
