/**
 * The live page in a real browser (Debian's Chromium driven by playwright-core) against a
 * real herd of five servers with monitors and a monitor token: the page shell loads without
 * the token and asks for it; with `#token=` it draws five servers and six links up, shows a
 * killed server and its links down within 2 s, and puts a client's dot on the map after an
 * IAMAT to another server. The screenshot is kept in a temporary directory, its path printed.
 * A browser that cannot start fails the test: it is never skipped.
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { projectToMap } from "../../lib/world_map.ts";
import {
  type Herd,
  HERD_LINKS,
  HERD_NAMES,
  pollUntil,
  startHerd,
} from "../support/herd_processes.ts";
import { WireClient } from "../support/wire_client.ts";

const CHROMIUM_PATH = "/usr/bin/chromium";
const MONITOR_TOKEN = "live-page-test-token";
/** The contract: a stopped server and its links show down within this. */
const DOWN_SHOWN_MS_MAX = 2000;
/** Links come up after the servers dial each other, with backoff on a loaded machine. */
const HERD_UP_TIMEOUT_MS = 20_000;
const DOT_TIMEOUT_MS = 5000;
const KILLED = "Smith";
const PAGE_OF = "Hill";
/** Clients spread over the world, so the screenshot shows the map in use. */
const CLIENTS: ReadonlyArray<{ id: string; latitude: number; longitude: number }> = [
  { id: "sydney", latitude: -33.8688, longitude: 151.2093 },
  { id: "ucla", latitude: 34.06893, longitude: -118.445127 },
  { id: "london", latitude: 51.5074, longitude: -0.1278 },
  { id: "nairobi", latitude: -1.2921, longitude: 36.8219 },
  { id: "tokyo", latitude: 35.6762, longitude: 139.6503 },
  { id: "sao-paulo", latitude: -23.5505, longitude: -46.6333 },
];

async function launchChromium(): Promise<Browser> {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ["--no-sandbox", "--disable-background-networking"],
    });
  } catch (error) {
    throw new Error(
      `the live-page test needs Chromium at ${CHROMIUM_PATH} (Debian: apt-get install chromium; ` +
        `.ci/run installs it) and it could not start: ${(error as Error).message}`,
    );
  }
}

/** `±DD.dddddd` with the sign and six decimals the client grammar accepts. */
function coordinate(value: number): string {
  return `${value < 0 ? "-" : "+"}${Math.abs(value).toFixed(6)}`;
}

async function iamat(herd: Herd, server: string, client: (typeof CLIENTS)[number]) {
  await using connection = await WireClient.connect(herd.port(server));
  const location = `${coordinate(client.latitude)}${coordinate(client.longitude)}`;
  await connection.write(`IAMAT ${client.id} ${location} ${Date.now() / 1000}\n`);
  assert.match(await connection.readAtReply(), /^AT /);
}

/** Counts the page's elements matching `selector`. */
function count(page: Page, selector: string): Promise<number> {
  return page.locator(selector).count();
}

function linkKey(a: string, b: string): string {
  return [a, b].sort().join("-");
}

Deno.test({
  name: "the live page draws the herd, shows a killed server down within 2 s, and a client's dot",
  // playwright-core keeps its own pipes and timers to the browser process.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using herd = await startHerd({
    monitors: true,
    args: ["--places", "offline"],
    env: { HERD_MONITOR_TOKEN: MONITOR_TOKEN },
  });
  const origin = `http://${herd.config.servers[PAGE_OF].monitor}`;
  const screenshotDir = await Deno.makeTempDir({ prefix: "herd_live_page_" });
  const browser = await launchChromium();
  try {
    const requested: string[] = [];
    const pageErrors: string[] = [];
    const openPage = async (url: string) => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 780 } });
      page.on("request", (request) => requested.push(request.url()));
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(url);
      return page;
    };

    // Without the token the shell still loads (it holds no data), and asks for it.
    const tokenless = await openPage(`${origin}/`);
    await tokenless.locator("#token-form.shown").waitFor({ timeout: 5000 });
    assert.match(await tokenless.locator("#connection").textContent() ?? "", /needs its token/);
    await tokenless.close();

    const page = await openPage(`${origin}/#token=${MONITOR_TOKEN}`);
    const upLinks = `#graph [data-link][data-up="true"]`;
    await pollUntil(async () => {
      const servers = await count(page, `#graph [data-server][data-up="true"]`);
      return servers === HERD_NAMES.length && await count(page, upLinks) === HERD_LINKS.length;
    }, {
      timeoutMs: HERD_UP_TIMEOUT_MS,
      what: "five servers and six links drawn up",
    });
    const drawnLinks = await page.locator("#graph [data-link]").evaluateAll((links) =>
      links.map((link) => link.getAttribute("data-link"))
    );
    assert.deepEqual(drawnLinks.sort(), HERD_LINKS.map(([a, b]) => linkKey(a, b)).sort());

    const killedAtMs = performance.now();
    await herd.kill(KILLED);
    const linksOfKilled = HERD_LINKS.filter((link) => link.includes(KILLED));
    const shownDownAfterMs = await pollUntil(async () => {
      const serverDown =
        await count(page, `#graph [data-server="${KILLED}"][data-up="false"]`) === 1;
      const linksDown = await Promise.all(
        linksOfKilled.map(async ([a, b]) =>
          await count(page, `#graph [data-link="${linkKey(a, b)}"][data-up="false"]`) === 1
        ),
      );
      return serverDown && linksDown.every(Boolean) && performance.now() - killedAtMs;
    }, {
      timeoutMs: DOWN_SHOWN_MS_MAX,
      intervalMs: 50,
      what: `${KILLED} and its links shown down`,
    });
    console.log(
      `${KILLED} and its links shown down ${Math.round(shownDownAfterMs)} ms after the kill`,
    );
    assert.equal(await count(page, upLinks), HERD_LINKS.length - linksOfKilled.length);

    // Sent to Campbell: the update reaches Hill by flooding, around the killed Smith.
    for (const client of CLIENTS) await iamat(herd, "Campbell", client);
    const [sydney] = CLIENTS;
    const dot = page.locator(`#map-dots circle[data-latitude="${sydney.latitude}"]`);
    await dot.waitFor({ timeout: DOT_TIMEOUT_MS });
    const expected = projectToMap(sydney.latitude, sydney.longitude);
    assert.ok(Math.abs(Number(await dot.getAttribute("cx")) - expected.x) < 1e-6);
    assert.ok(Math.abs(Number(await dot.getAttribute("cy")) - expected.y) < 1e-6);
    await pollUntil(async () => await count(page, "#map-dots circle") === CLIENTS.length, {
      timeoutMs: DOT_TIMEOUT_MS,
      what: `${CLIENTS.length} dots on the map`,
    });

    const screenshotPath = `${screenshotDir}/live-page.png`;
    await page.screenshot({ path: screenshotPath, fullPage: true });
    console.log(`live page screenshot: ${screenshotPath}`);

    assert.deepEqual(pageErrors, [], "the page's script failed");
    const elsewhere = requested.filter((url) => !url.startsWith(`${origin}/`));
    assert.deepEqual(elsewhere, [], "the page asked for something from elsewhere");
  } finally {
    await browser.close();
  }
});
