/**
 * The live page as one HTML document: inline CSS, inline script, the world outline inline as
 * SVG — nothing loaded from anywhere else. The script reads `/events` with `fetch` (so it can
 * carry the monitor token, which `EventSource` cannot), takes the token from the URL's
 * fragment (`#token=…`, never sent to a server) or asks for it on a 401, and redraws on each
 * snapshot. Knows the snapshot's shape (lib/herd_view.ts) and nothing of how it is gathered.
 */
import { WORLD_MAP_HEIGHT_PX, WORLD_MAP_WIDTH_PX, worldOutlinePath } from "./world_map.ts";

let page: string | undefined;

/** The page; built on first use (the outline is loaded and projected then), then kept. */
export async function livePageHtml(): Promise<string> {
  page ??= buildPage(await worldOutlinePath());
  return page;
}

/** No snapshot for this long means the stream is stuck: the page reconnects. */
const STALL_TIMEOUT_MS = 5000;
/** How long the page waits before reconnecting after a lost stream. */
const RECONNECT_DELAY_MS = 1000;

const STYLE = `
:root { color-scheme: light; --up: #1a7f37; --down: #cf222e; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1f2328; background: #f6f8fa; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .75rem 1.25rem;
  background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; }
#connection { color: var(--muted); }
#connection.lost { color: var(--down); font-weight: 600; }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1.3fr); gap: 1rem;
  padding: 1rem 1.25rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem; }
section h2 { font-size: .95rem; margin: 0 0 .5rem; }
svg { width: 100%; height: auto; display: block; }
.stale svg, .stale table { opacity: .45; }
.node rect { fill: #fff; stroke-width: 2; }
.node.up rect { stroke: var(--up); }
.node.down rect { stroke: var(--down); fill: #fff5f5; }
.node .name { font-weight: 700; font-size: 15px; }
.node .detail { font-size: 11.5px; fill: var(--muted); }
.node.down .state { fill: var(--down); font-weight: 600; }
.node.up .state { fill: var(--up); font-weight: 600; }
.link line { stroke-width: 4; }
.link.up line { stroke: var(--up); }
.link.down line { stroke: var(--down); stroke-dasharray: 8 6; }
.link text { font-size: 11px; fill: var(--muted); paint-order: stroke; stroke: #fff;
  stroke-width: 4px; }
#land { fill: #dde3ea; stroke: #b6c0cb; stroke-width: .5; }
#map-frame { fill: #f3f8fc; }
.dot { fill: #d1242f; stroke: #fff; stroke-width: 1; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.up-text { color: var(--up); font-weight: 600; }
.down-text { color: var(--down); font-weight: 600; }
#tables { grid-column: 1 / -1; display: grid; grid-template-columns: 1.4fr 1fr; gap: 1rem; }
#token-form { display: none; gap: .5rem; }
#token-form.shown { display: flex; }
`;

const SCRIPT = `
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const STALL_TIMEOUT_MS = ${STALL_TIMEOUT_MS};
const RECONNECT_DELAY_MS = ${RECONNECT_DELAY_MS};
const LOCATION_AGE_MS_FADED = 60000;
const GRAPH = { width: 760, height: 440, nodeWidth: 186, nodeHeight: 74 };
const NODE_LINE_CHARS_MAX = 30;

function element(namespace, tag, attributes, children) {
  const node = namespace ? document.createElementNS(namespace, tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children || []) {
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}
const svg = (tag, attributes, children) => element(SVG, tag, attributes, children);
const html = (tag, attributes, children) => element(null, tag, attributes, children);
const rate = (value) => (Math.round(value * 10) / 10).toFixed(1);

/** The words of text in lines of at most charsMax (a longer word gets a line of its own). */
function wrap(text, charsMax) {
  const lines = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= charsMax) lines[last] += " " + word;
    else lines.push(word);
  }
  return lines;
}

function tokenFromFragment() {
  return new URLSearchParams(location.hash.slice(1)).get("token");
}

function setConnection(text, lost) {
  const status = document.getElementById("connection");
  status.textContent = text;
  status.className = lost ? "lost" : "";
  document.querySelector("main").classList.toggle("stale", Boolean(lost));
}

/** Servers on an ellipse in config order, so the drawing is the same at every reload. */
function nodePositions(servers) {
  const positions = new Map();
  const radiusX = GRAPH.width / 2 - GRAPH.nodeWidth / 2 - 6;
  const radiusY = GRAPH.height / 2 - GRAPH.nodeHeight / 2 - 6;
  servers.forEach((server, index) => {
    const angle = -Math.PI / 2 + 2 * Math.PI * index / servers.length;
    positions.set(server.name, {
      x: GRAPH.width / 2 + radiusX * Math.cos(angle),
      y: GRAPH.height / 2 + radiusY * Math.sin(angle),
    });
  });
  return positions;
}

function drawGraph(snapshot) {
  const positions = nodePositions(snapshot.servers);
  const links = snapshot.links.map((link) => {
    const [a, b] = link.ends.map((end) => positions.get(end));
    return svg("g", {
      class: "link " + (link.up ? "up" : "down"),
      "data-link": link.ends.join("-"),
      "data-up": String(link.up),
    }, [
      svg("title", {}, [link.ends.join(" – ") + ": " + (link.up ? "up" : "down") + " (" +
        link.ends.map((end) => end + " says " + (link.states[end] || "nothing")).join(", ") +
        ")"]),
      svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y }),
      svg("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, "text-anchor": "middle" },
        [rate(link.updatesPerSecond) + " upd/s"]),
    ]);
  });
  const nodes = snapshot.servers.map((server) => {
    const { x, y } = positions.get(server.name);
    const left = x - GRAPH.nodeWidth / 2;
    const top = y - GRAPH.nodeHeight / 2;
    const lines = server.up
      ? [
        server.clientsHeld + " clients · " + server.connections + " conns",
        "IAMAT " + rate(server.iamatPerSecond) + "/s · WHATSAT " + rate(server.whatsatPerSecond) +
        "/s",
      ]
      : wrap(server.error, NODE_LINE_CHARS_MAX).slice(0, 2);
    return svg("g", {
      class: "node " + (server.up ? "up" : "down"),
      "data-server": server.name,
      "data-up": String(server.up),
    }, [
      svg("title", {}, [server.name + ": " + (server.up ? server.state : "down: " + server.error)]),
      svg("rect", { x: left, y: top, width: GRAPH.nodeWidth, height: GRAPH.nodeHeight, rx: 8 }),
      svg("text", { x: left + 10, y: top + 20, class: "name" }, [server.name]),
      svg("text", { x: left + GRAPH.nodeWidth - 10, y: top + 20, class: "state",
        "text-anchor": "end" }, [server.up ? server.state : "down"]),
      ...lines.map((line, index) =>
        svg("text", { x: left + 10, y: top + 42 + index * 16, class: "detail" }, [line])
      ),
    ]);
  });
  document.getElementById("graph").replaceChildren(...links, ...nodes);
}

function drawMap(snapshot) {
  const dots = snapshot.locations.map((location) =>
    svg("circle", {
      class: "dot", cx: location.x, cy: location.y, r: 5,
      "fill-opacity": String(Math.max(0.25, 1 - location.ageMs / LOCATION_AGE_MS_FADED)),
      "data-latitude": location.latitude, "data-longitude": location.longitude,
    }, [svg("title", {}, [location.latitude + ", " + location.longitude])])
  );
  document.getElementById("map-dots").replaceChildren(...dots);
  document.getElementById("map-count").textContent = String(snapshot.locations.length);
}

function drawTables(snapshot) {
  const cell = (text, className) => html("td", className ? { class: className } : {}, [text]);
  const upCell = (up) => cell(up ? "up" : "down", up ? "up-text" : "down-text");
  document.getElementById("server-rows").replaceChildren(...snapshot.servers.map((server) =>
    html("tr", { "data-server-row": server.name }, server.up
      ? [cell(server.name), upCell(true), cell(server.state), cell(server.listen),
        cell(String(server.clientsHeld), "num"), cell(String(server.connections), "num"),
        cell(rate(server.iamatPerSecond), "num"), cell(rate(server.whatsatPerSecond), "num")]
      : [cell(server.name), upCell(false), html("td", { colspan: 6 }, [server.error])])
  ));
  document.getElementById("link-rows").replaceChildren(...snapshot.links.map((link) =>
    html("tr", {}, [cell(link.ends.join(" – ")), upCell(link.up),
      cell(link.ends.map((end) => end + ": " + (link.states[end] || "no answer")).join(", ")),
      cell(rate(link.updatesPerSecond), "num")])
  ));
}

function draw(snapshot) {
  drawGraph(snapshot);
  drawMap(snapshot);
  drawTables(snapshot);
  const serversUp = snapshot.servers.filter((server) => server.up).length;
  const linksUp = snapshot.links.filter((link) => link.up).length;
  document.getElementById("summary").textContent = serversUp + "/" + snapshot.servers.length +
    " servers up, " + linksUp + "/" + snapshot.links.length + " links up";
  setConnection("live from " + snapshot.gatheredBy + " at " +
    new Date(snapshot.at).toLocaleTimeString(), false);
}

function askForToken(message) {
  setConnection(message, true);
  document.getElementById("token-form").classList.add("shown");
}

/** One SSE event's data: its "data:" lines joined, or "" for a comment. */
function eventData(event) {
  return event.split("\\n").filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5)).join("\\n");
}

async function follow() {
  const token = tokenFromFragment();
  const aborter = new AbortController();
  let stall = setTimeout(() => aborter.abort(), STALL_TIMEOUT_MS);
  try {
    const response = await fetch("/events", {
      headers: token ? { authorization: "Bearer " + token } : {},
      cache: "no-store",
      signal: aborter.signal,
    });
    if (response.status === 401) {
      clearTimeout(stall);
      askForToken(token ? "the token was refused" : "this monitor needs its token");
      return;
    }
    if (!response.ok) throw new Error("HTTP " + response.status + " " + (await response.text()));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      clearTimeout(stall);
      stall = setTimeout(() => aborter.abort(), STALL_TIMEOUT_MS);
      buffered += value;
      let end;
      while ((end = buffered.indexOf("\\n\\n")) >= 0) {
        const data = eventData(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
        if (data !== "") draw(JSON.parse(data));
      }
    }
    setConnection("the server ended the stream; reconnecting…", true);
  } catch (error) {
    setConnection("lost the server (" + error.message + "); reconnecting…", true);
  } finally {
    clearTimeout(stall);
  }
  setTimeout(follow, RECONNECT_DELAY_MS);
}

document.getElementById("graph").setAttribute("viewBox", "0 0 " + GRAPH.width + " " + GRAPH.height);
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  document.getElementById("token-form").classList.remove("shown");
  // The fragment keeps the token across reloads and never goes to a server.
  location.hash = "token=" + encodeURIComponent(input.value);
  input.value = "";
  follow();
});
follow();
`;

function buildPage(landPath: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>herd — live</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>herd — live</h1>
  <span id="summary"></span>
  <span id="connection">connecting…</span>
  <form id="token-form">
    <input id="token" type="password" placeholder="HERD_MONITOR_TOKEN" autocomplete="off">
    <button>Connect</button>
  </form>
</header>
<main class="stale">
  <section>
    <h2>Servers and links</h2>
    <svg id="graph" role="img" aria-label="servers and links"></svg>
  </section>
  <section>
    <h2>Recently updated clients (<span id="map-count">0</span>, last minute)</h2>
    <svg id="map" viewBox="0 0 ${WORLD_MAP_WIDTH_PX} ${WORLD_MAP_HEIGHT_PX}" role="img"
      aria-label="world map of recently updated clients">
      <rect id="map-frame" width="${WORLD_MAP_WIDTH_PX}" height="${WORLD_MAP_HEIGHT_PX}"/>
      <path id="land" d="${landPath}"/>
      <g id="map-dots"></g>
    </svg>
  </section>
  <div id="tables">
    <section>
      <h2>Servers</h2>
      <table>
        <thead><tr><th>server</th><th></th><th>state</th><th>listen</th><th>clients</th>
          <th>conns</th><th>IAMAT/s</th><th>WHATSAT/s</th></tr></thead>
        <tbody id="server-rows"></tbody>
      </table>
    </section>
    <section>
      <h2>Links</h2>
      <table>
        <thead><tr><th>link</th><th></th><th>each end says</th><th>upd/s</th></tr></thead>
        <tbody id="link-rows"></tbody>
      </table>
    </section>
  </div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
