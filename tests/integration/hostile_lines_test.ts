/**
 * Contract §3's "Cost" paragraph against one real server process (offline provider, default
 * limits): while one client sends the worst-case lines of tests/support/hostile_lines.ts,
 * each exactly lineBytesMax (64 KiB) long, at full speed from one connection — reading every
 * reply, each checked — a second client's IAMATs, sent one at a time, are answered about as
 * fast as when the server is idle. Both latencies are measured in this test, on this machine.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { parseAtLine } from "../../lib/protocol.ts";
import { startHerd } from "../support/herd_processes.ts";
import { type HostileLine, hostileLines } from "../support/hostile_lines.ts";
import { wireBytes, WireClient } from "../support/wire_client.ts";

const SERVER = "Hill";
/** The default lineBytesMax: the herd.json of this test sets no limits. */
const LINE_BYTES_MAX = 65536;
/** How long the attacker sends. */
const ATTACK_MS = 2000;
/** Lines the attacker sends at most, however fast the server answers. */
const ATTACK_LINES_MAX = 50_000;
/** How long the attacker may wait for its last replies once it has stopped sending. */
const DRAIN_TIMEOUT_MS = 30_000;
/** Probes of the idle server that are not counted: the first calls compile the code. */
const WARM_UP_PROBES = 5;
const IDLE_PROBES = 20;
/** Probes under attack at most (they stop when the attack stops sending). */
const ATTACK_PROBES_MAX = 2000;
const PROBE_TIMEOUT_MS = 10_000;
/**
 * How much later than when idle a probe may be answered under attack, at the median: a
 * liveness margin, generous for a busy machine. Measured on 2 cores: about 1 ms idle and
 * 2–4 ms under attack; 15–30 ms when a busy connection never rested (lib/client_session.ts's
 * BUSY_MS_MAX), seconds with a quadratic parser.
 */
const LATENCY_MARGIN_MS = 20;
const PROBE_ID = "probe";
const PROBE_LOCATION = "+34.068930-118.445127";
const READ_CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/** Sends one IAMAT and waits for its AT line; returns how long that took, in ms. */
async function probeMs(client: WireClient): Promise<number> {
  const time = (Date.now() / 1000).toFixed(3);
  const startMs = performance.now();
  await client.write(`IAMAT ${PROBE_ID} ${PROBE_LOCATION} ${time}\n`);
  const atLine = await client.readAtReply({ timeoutMs: PROBE_TIMEOUT_MS });
  const elapsedMs = performance.now() - startMs;
  assert.ok(atLine.endsWith(` ${PROBE_ID} ${PROBE_LOCATION} ${time}`), atLine);
  return elapsedMs;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A hostile line as sent, and the reply expected for a line that is refused. */
interface Attempt {
  hostile: HostileLine;
  request: Uint8Array;
  refusal: Buffer;
}

/** Fails unless `reply` (without `\n`) is the server's answer to `hostile`. */
function assertAnswered(reply: Buffer, { hostile, refusal }: Attempt, index: number): void {
  const where = `reply ${index} (to the line with ${hostile.name})`;
  if (hostile.kind !== "IAMAT") {
    // Refused, or a WHATSAT for a client nobody announced: `? ` and the line.
    assert.ok(reply.equals(refusal), `${where}: ${reply.toString("latin1", 0, 80)}…`);
    return;
  }
  const fields = parseAtLine(reply.toString("latin1"));
  assert.ok(fields !== undefined, `${where} is not an AT line`);
  assert.equal(fields.serverName, SERVER, where);
  assert.equal(`${fields.clientId} ${fields.location} ${fields.time}`, hostile.echo, where);
}

/** What one attack did: lines sent (resolved when it stops sending), and every reply read. */
interface Attack {
  sending: Promise<number>;
  answered: Promise<number>;
}

/**
 * Sends `attempts` in turn, as fast as the server takes them, for ATTACK_MS (or
 * ATTACK_LINES_MAX lines) from one connection, while reading and checking every reply.
 */
async function startAttack(port: number, attempts: readonly Attempt[]): Promise<Attack> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
  let sent = 0;
  let sendingDone = false;
  const sending = (async () => {
    const deadlineMs = performance.now() + ATTACK_MS;
    try {
      while (performance.now() < deadlineMs && sent < ATTACK_LINES_MAX) {
        const { request } = attempts[sent % attempts.length];
        sent += 1;
        for (let written = 0; written < request.length;) {
          written += await conn.write(request.subarray(written));
        }
      }
    } finally {
      sendingDone = true;
    }
    return sent;
  })();
  const giveUp = setTimeout(() => conn.close(), ATTACK_MS + DRAIN_TIMEOUT_MS);
  const answered = (async () => {
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    let received = Buffer.alloc(0);
    let answered = 0;
    try {
      while (!sendingDone || answered < sent) {
        const count = await conn.read(chunk);
        if (count === null) throw new Error("the server closed the attacker's connection");
        received = Buffer.concat([received, chunk.subarray(0, count)]);
        for (let end = received.indexOf(NEWLINE); end !== -1; end = received.indexOf(NEWLINE)) {
          assert.ok(answered < sent, "a reply to a line that was not sent");
          assertAnswered(received.subarray(0, end), attempts[answered % attempts.length], answered);
          answered += 1;
          received = received.subarray(end + 1);
        }
      }
      return answered;
    } catch (error) {
      throw new Error(`the attacker got ${answered} of ${sent} replies: ${error}`);
    } finally {
      clearTimeout(giveUp);
      conn.close();
    }
  })();
  // Reported through `answered`: a failed write only ends the sending early.
  sending.catch(() => {});
  return { sending: sending.catch(() => sent), answered };
}

Deno.test("a client sending worst-case lines at full speed does not slow another's IAMATs", async () => {
  await using herd = await startHerd({
    names: [SERVER],
    links: [],
    args: ["--places", "offline"],
  });
  const attempts = hostileLines(LINE_BYTES_MAX).map((hostile) => ({
    hostile,
    request: wireBytes(`${hostile.line}\n`),
    refusal: Buffer.from(wireBytes(`? ${hostile.line}`)),
  }));
  await using prober = await WireClient.connect(herd.port(SERVER));
  for (let probe = 0; probe < WARM_UP_PROBES; probe++) await probeMs(prober);
  const idleMs: number[] = [];
  for (let probe = 0; probe < IDLE_PROBES; probe++) idleMs.push(await probeMs(prober));

  const attack = await startAttack(herd.port(SERVER), attempts);
  let attacking = true;
  attack.sending.finally(() => (attacking = false));
  const underAttackMs: number[] = [];
  while (attacking && underAttackMs.length < ATTACK_PROBES_MAX) {
    underAttackMs.push(await probeMs(prober));
  }
  const sent = await attack.sending;
  const answered = await attack.answered;

  const summary = `idle: median ${median(idleMs).toFixed(1)} ms, worst ` +
    `${Math.max(...idleMs).toFixed(1)} ms; under attack (${sent} lines of ` +
    `${LINE_BYTES_MAX} bytes in ${ATTACK_MS} ms): median ${median(underAttackMs).toFixed(1)} ms, ` +
    `worst ${Math.max(...underAttackMs).toFixed(1)} ms over ${underAttackMs.length} probes`;
  assert.equal(answered, sent, summary);
  assert.ok(sent >= attempts.length, `not every worst case was sent: ${summary}`);
  assert.ok(median(underAttackMs) <= median(idleMs) + LATENCY_MARGIN_MS, summary);
});
