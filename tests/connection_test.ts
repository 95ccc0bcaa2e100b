/**
 * LineConnection's output side over an in-memory pair: `drained()` waits for the bytes queued
 * before it, not for an outbox that more sends keep filling.
 */
import assert from "node:assert/strict";
import { LineConnection } from "../lib/connection.ts";
import { memoryConnPair } from "./support/memory_conn.ts";

/** Enough for any one batch in these tests; the limit is not what they are about. */
const LIMITS = { lineBytesMax: 1024, outputBytesMax: 64 * 1024 * 1024 };
/** Bytes the reading end takes before a writer waits: small, so writes take several turns. */
const RECEIVE_BYTES_MAX = 4096;
/** Sends after the waited-for bytes, each while the earlier ones are still being written. */
const LATER_SENDS = 50;
/** Each later send: more than one write slice (64 KiB), so writes queue up behind the reader. */
const LATER_SEND_BYTES = 96 * 1024;

Deno.test("drained() resolves once the bytes queued before it are sent, while later sends keep the outbox full", async () => {
  const [serverEnd, clientEnd] = memoryConnPair({ receiveBytesMax: RECEIVE_BYTES_MAX });
  const connection = new LineConnection(serverEnd, LIMITS);
  // One byte the reader has not taken yet: the next write waits for it to read.
  connection.send(new Uint8Array(1));
  await connection.drained();
  connection.send(new Uint8Array(32 * 1024).fill(1));
  let laterSends = 0;
  let laterSendsWhenDrained: number | undefined;
  const waited = connection.drained().then(() => (laterSendsWhenDrained = laterSends));
  // Each turn queues more than one write slice while the reader takes one chunk: the outbox is
  // never empty during the loop.
  for (; laterSends < LATER_SENDS; laterSends++) {
    connection.send(new Uint8Array(LATER_SEND_BYTES).fill(2));
    await clientEnd.readChunk();
  }
  assert.ok(connection.unsentBytes > 0, "the outbox emptied: the test did not keep it busy");
  // Then the reader takes everything, so that a drained() waiting for an empty outbox ends too.
  const reading = (async () => {
    while ((await clientEnd.readChunk()) !== null) {
      // taken
    }
  })();
  await waited;
  assert.ok(
    laterSendsWhenDrained! < LATER_SENDS,
    "drained() waited until the later sends were sent too",
  );
  connection.close();
  await reading;
});

Deno.test("drained() resolves at once with nothing queued, and when the connection closes", async () => {
  const [serverEnd, clientEnd] = memoryConnPair({ receiveBytesMax: RECEIVE_BYTES_MAX });
  const connection = new LineConnection(serverEnd, LIMITS);
  await connection.drained();
  connection.send(new Uint8Array(64 * 1024));
  const waited = connection.drained();
  connection.close("done");
  await waited;
  assert.equal(connection.unsentBytes, 0);
  clientEnd.close();
});

Deno.test("text and bytes queued in one turn go out in order, byte for byte, in one write", async () => {
  const [serverEnd, clientEnd] = memoryConnPair({ receiveBytesMax: RECEIVE_BYTES_MAX });
  const connection = new LineConnection(serverEnd, LIMITS);
  connection.sendText("AT Hill +0.1 caf\u00e9\u00ff +1+1 5\n");
  connection.send(new Uint8Array([0x7b, 0xe6, 0x9d, 0xb1, 0x7d, 0x0a]));
  connection.sendText("? \u0000\u007f\u0080\n");
  connection.sendText("ascii\n");
  const expected = [
    ..."AT Hill +0.1 caf\u00e9\u00ff +1+1 5\n".split("").map((char) => char.charCodeAt(0)),
    0x7b,
    0xe6,
    0x9d,
    0xb1,
    0x7d,
    0x0a,
    0x3f,
    0x20,
    0x00,
    0x7f,
    0x80,
    0x0a,
    ..."ascii\n".split("").map((char) => char.charCodeAt(0)),
  ];
  assert.equal(connection.unsentBytes, expected.length);
  await connection.drained();
  assert.deepEqual([...(await clientEnd.readChunk())!], expected);
  connection.close();
  clientEnd.close();
});
