/** The clearable deadline: it aborts when its time is up, and not once cleared. */
import assert from "node:assert/strict";
import { deadlineAfter } from "../lib/abortable.ts";

Deno.test("deadlineAfter() aborts its signal once the time is up", async () => {
  const deadline = deadlineAfter(5);
  assert.equal(deadline.signal.aborted, false);
  await new Promise((resolve) => deadline.signal.addEventListener("abort", resolve));
  assert.equal(deadline.signal.aborted, true);
});

Deno.test("deadlineAfter(): a cleared deadline never aborts and leaves no timer", async () => {
  const deadline = deadlineAfter(5);
  deadline.clear();
  // Deno's op sanitizer fails this test if the timer were still pending at its end.
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(deadline.signal.aborted, false);
});
