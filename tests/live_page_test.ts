import assert from "node:assert/strict";
import { validateConfig } from "../lib/config.ts";
import { Counters } from "../lib/counters.ts";
import { type HerdSnapshot, HerdView } from "../lib/herd_view.ts";
import {
  LivePage,
  type LivePageOptions,
  SNAPSHOT_INTERVAL_MS_DEFAULT,
  SUBSCRIBER_QUEUED_MESSAGES_MAX,
} from "../lib/live_page.ts";
import { ClientStore } from "../lib/store.ts";
import { captureLog } from "./support/captured_log.ts";
import { ManualClock, settle } from "./support/manual_clock.ts";

const INTERVAL_MS = SNAPSHOT_INTERVAL_MS_DEFAULT;

/** A view that counts its gatherings and whether it was told to pause. */
class CountingView {
  gatherings = 0;
  pauses = 0;
  gather(): Promise<HerdSnapshot> {
    this.gatherings += 1;
    return Promise.resolve({
      gatheredBy: "Alpha",
      at: new Date(0).toISOString(),
      servers: [],
      links: [],
      locations: [],
    });
  }
  pause(): void {
    this.pauses += 1;
  }
}

/** Reads an SSE response in the background, keeping each event's parsed `data`. */
function readEvents(response: Response) {
  const snapshots: HerdSnapshot[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const done = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += value;
      let end;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (event.startsWith("data: ")) snapshots.push(JSON.parse(event.slice(6)));
      }
    }
  })();
  return { snapshots, cancel: () => reader.cancel(), done };
}

async function withPage(
  options: Partial<LivePageOptions>,
  test: (page: LivePage, context: {
    clock: ManualClock;
    counters: Counters;
    logLines: () => string[];
  }) => Promise<void>,
): Promise<void> {
  await using log = await captureLog();
  const clock = new ManualClock();
  const counters = new Counters();
  const page = new LivePage({
    view: new CountingView(),
    subscribersMax: 64,
    logger: log.logger("Alpha"),
    counters,
    clock,
    ...options,
  });
  try {
    await test(page, { clock, counters, logLines: log.lines });
  } finally {
    page.close();
    await clock.advance(INTERVAL_MS); // lets the loop see it is closed
  }
}

/** What `page` answers to `request`: at once, for anything but the page itself. */
function answeredAtOnce(page: LivePage, request: Request): Response {
  const response = page.handle(request);
  assert.ok(response instanceof Response, `${request.url} was not answered at once`);
  return response;
}

function get(page: LivePage, path: string): Response {
  return answeredAtOnce(page, new Request(`http://127.0.0.1:12100${path}`));
}

Deno.test("GET / is the page, with the world outline inline and nothing from elsewhere", async () => {
  await withPage({}, async (page) => {
    // The first answer waits for the outline to load; later ones are the page kept.
    const response = await page.handle(new Request("http://127.0.0.1:12100/"));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(response.headers.get("content-security-policy")!, /default-src 'none'/);
    const html = await response.text();
    assert.match(html, /<path id="land" d="M[0-9]/);
    const urls = html.match(/https?:\/\/[^"' )]+/g) ?? [];
    assert.deepEqual([...new Set(urls)], ["http://www.w3.org/2000/svg"], "an outside URL");
    assert.doesNotMatch(html, /\bsrc=|@import|url\(|new EventSource/);
    assert.deepEqual(html.match(/\bhref="[^"]*"/g), ['href="data:,"'], "a link to elsewhere");
  });
});

Deno.test("handle() answers 404 for another path and 405 for another method", async () => {
  await withPage({}, async (page) => {
    assert.equal(get(page, "/status").status, 404);
    const post = answeredAtOnce(
      page,
      new Request("http://127.0.0.1:12100/events", { method: "POST" }),
    );
    assert.equal(post.status, 405);
    assert.equal(page.subscribers, 0);
    await Promise.all([get(page, "/status").body?.cancel(), post.body?.cancel()]);
  });
});

Deno.test("/events sends no more than one snapshot per interval however busy the store", async () => {
  const store = new ClientStore({ clientsMax: 1_000_000 });
  const config = validateConfig({ servers: { Alpha: { port: 20000 } }, links: [] });
  const view = new HerdView({
    config,
    serverName: "Alpha",
    ownStatus: () => Promise.reject(new Error("not needed here")),
    store,
  });
  let gatherings = 0;
  const countingView = {
    gather: () => (gatherings += 1, view.gather()),
    pause: () => view.pause(),
  };
  await withPage({ view: countingView }, async (page, { clock }) => {
    const first = readEvents(get(page, "/events"));
    const second = readEvents(get(page, "/events"));
    const runMs = 2000;
    let updates = 0;
    for (let elapsedMs = 0; elapsedMs < runMs; elapsedMs += 10) {
      for (let burst = 0; burst < 100; burst++, updates++) {
        const id = `c${updates}`;
        store.offer({ clientId: id, atLine: `AT Alpha +0.000000000 ${id} +1+1 1` });
      }
      await clock.advance(10);
    }
    const snapshotsMax = runMs / INTERVAL_MS + 1;
    for (const subscriber of [first, second]) {
      assert.ok(subscriber.snapshots.length <= snapshotsMax, `${subscriber.snapshots.length}`);
      assert.ok(subscriber.snapshots.length >= runMs / INTERVAL_MS, "too few snapshots");
    }
    // One gathering serves every subscriber.
    assert.equal(gatherings, first.snapshots.length);
    assert.ok(first.snapshots.at(-1)!.locations.length > 0, "no locations in the snapshots");
    await Promise.all([first.cancel(), second.cancel()]);
  });
});

Deno.test("one /events subscriber past monitorSubscribersMax gets 503, a warning and a count", async () => {
  await withPage({ subscribersMax: 2 }, async (page, { counters, logLines }) => {
    const subscribers = [readEvents(get(page, "/events")), readEvents(get(page, "/events"))];
    const refused = get(page, "/events");
    assert.equal(refused.status, 503);
    assert.match(await refused.text(), /too many live-page subscribers \(2\)/);
    assert.equal(counters.get("limit_monitor_subscribers"), 1);
    assert.ok(
      logLines().some((line) => line.startsWith("WARNING Alpha: monitorSubscribersMax (2)")),
      logLines().join("\n"),
    );
    await subscribers[0].cancel();
    await settle();
    const admitted = get(page, "/events");
    assert.equal(admitted.status, 200);
    assert.equal(admitted.headers.get("content-type"), "text/event-stream");
    await Promise.all([subscribers[1].cancel(), admitted.body!.cancel()]);
  });
});

Deno.test("a subscriber that does not read is dropped while the others keep getting snapshots", async () => {
  await withPage({}, async (page, { clock, counters, logLines }) => {
    const reading = readEvents(get(page, "/events"));
    const stuck = get(page, "/events").body!.getReader(); // never reads
    const intervals = SUBSCRIBER_QUEUED_MESSAGES_MAX + 2;
    await clock.advance(intervals * INTERVAL_MS, INTERVAL_MS);
    assert.equal(page.subscribers, 1);
    assert.equal(counters.get("monitor_subscribers_dropped"), 1);
    assert.ok(logLines().some((line) => line.includes("dropped a live-page subscriber")));
    await assert.rejects(() => stuck.read(), /too slow/);
    assert.ok(reading.snapshots.length >= intervals, `${reading.snapshots.length} snapshots`);
    await reading.cancel();
  });
});

Deno.test("gathering stops, and the view pauses, when the last subscriber leaves", async () => {
  const view = new CountingView();
  await withPage({ view }, async (page, { clock }) => {
    const subscriber = readEvents(get(page, "/events"));
    await clock.advance(2 * INTERVAL_MS, INTERVAL_MS);
    await subscriber.cancel();
    await clock.advance(INTERVAL_MS);
    const gatherings = view.gatherings;
    assert.equal(view.pauses, 1);
    await clock.advance(10 * INTERVAL_MS, INTERVAL_MS);
    assert.equal(view.gatherings, gatherings);
    // A new subscriber starts it again at once.
    const again = readEvents(get(page, "/events"));
    await settle();
    assert.equal(view.gatherings, gatherings + 1);
    await again.cancel();
  });
});

Deno.test("close() ends every subscription and refuses new ones", async () => {
  await withPage({}, async (page) => {
    const subscriber = readEvents(get(page, "/events"));
    page.close();
    await subscriber.done; // the stream ends
    assert.equal(page.subscribers, 0);
    assert.equal(get(page, "/events").status, 503);
  });
});
