/**
 * Tests of the offline data set's loader reading a file in chunks on this thread
 * (`loadColumns`): the same columns as scanning the bytes whole, whatever falls on a chunk
 * boundary; errors at their byte in the file; the event loop served while it loads; and
 * its limits.
 */

import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import {
  buildColumns,
  loadColumns,
  type OfflineColumns,
} from "../../lib/places/offline_columns.ts";

async function withDataFile(
  content: string,
  use: (url: URL) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, content);
    await use(pathToFileURL(path));
  } finally {
    await Deno.remove(path);
  }
}

/** Elements of every shape the scanner handles, each a different length, ~370 KB in all. */
function mixedDataSet(): string {
  const elements: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const name = i % 7 === 0 ? `Caf\\u00e9 \\"${i}\\"|Ñ` : `Place ${"x".repeat(i % 50)} ${i}`;
    const extra = i % 5 === 0 ? `, "extra": {"a": [1, "}", {"b": null}], "n": -12.5e3}` : "";
    const lat = ((i % 179) - 89 + (i % 1000) / 1000).toFixed(i % 6);
    const lng = ((i % 359) - 179).toFixed(3);
    const skipped = i % 11 === 0 ? `"lat": ${lat}` : `"lat": "${lat}"`;
    elements.push(
      `{"name": "${name}"${extra}, ${skipped},\n "lng": "${lng}", "country": "Z${i % 10}",` +
        ` "admin1": "A\\/${i % 13}"}`,
    );
  }
  return ` [\n${elements.join(" ,\r\n\t")}\n] \n`;
}

function assertSameColumns(actual: OfflineColumns, expected: OfflineColumns): void {
  assert.equal(actual.count, expected.count);
  assert.equal(actual.skippedCount, expected.skippedCount);
  assert.equal(actual.nodeSize, expected.nodeSize);
  for (const key of ["recordBytes", "recordOffsets", "nameBytes", "ids", "coords"] as const) {
    assert.deepEqual(Array.from(actual[key]), Array.from(expected[key]), key);
  }
}

Deno.test("loadColumns() reads a file in chunks into the same columns as buildColumns() of its bytes", async () => {
  const content = mixedDataSet();
  assert.ok(new TextEncoder().encode(content).length > 3 * 64 * 1024);
  const expected = buildColumns(new TextEncoder().encode(content));
  assert.equal(expected.count, 3000 - Math.ceil(3000 / 11));
  await withDataFile(content, async (url) => {
    assertSameColumns(await loadColumns(url), expected);
    assertSameColumns(await loadColumns(url, { sliceMs: 0 }), expected);
  });
});

Deno.test("loadColumns() yields to timers while it loads", async () => {
  await withDataFile(mixedDataSet(), async (url) => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await loadColumns(url, { sliceMs: 0 });
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 10, `${ticks} timer turns during the load`);
  });
});

Deno.test("loadColumns() names the byte of the file where it is not valid, past the first chunk", async () => {
  const content = mixedDataSet();
  const broken = content.slice(0, 150_000) + "#" + content.slice(150_001);
  const byte = new TextEncoder().encode(content.slice(0, 150_000)).length;
  let expected = "";
  try {
    buildColumns(new TextEncoder().encode(broken));
  } catch (error) {
    expected = (error as Error).message;
  }
  assert.match(expected, /the data set is not valid: .* at byte \d+$/);
  assert.ok(Number(expected.split(" ").at(-1)) >= byte - 200);
  await withDataFile(broken, async (url) => {
    await assert.rejects(loadColumns(url), (error: Error) => error.message === expected);
  });
});

Deno.test("loadColumns() rejects a file that ends inside the array or an element", async () => {
  const content = mixedDataSet();
  for (const end of [1, 100_000, content.lastIndexOf("]")]) {
    await withDataFile(content.slice(0, end), async (url) => {
      await assert.rejects(loadColumns(url), /the data set is not valid/);
    });
  }
});

Deno.test("loadColumns() refuses an element that is not finished after 1 MiB", async () => {
  const huge = `[{"name": "${"n".repeat(2 * 1024 * 1024)}", "lat": "1", "lng": "2"}]`;
  await withDataFile(huge, async (url) => {
    await assert.rejects(loadColumns(url), /an element longer than 1048576 bytes at byte 1/);
  });
});

Deno.test("loadColumns() stops when its signal aborts", async () => {
  await withDataFile(mixedDataSet(), async (url) => {
    const controller = new AbortController();
    const loading = loadColumns(url, { signal: controller.signal, sliceMs: 0 });
    controller.abort(new Error("stopped"));
    await assert.rejects(loading, /stopped/);
  });
});
