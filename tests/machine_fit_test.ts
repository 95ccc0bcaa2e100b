import assert from "node:assert/strict";
import { DEFAULT_LIMITS, type Limits } from "../lib/config.ts";
import { fitLimitsToMachine, OPEN_FILES_SPARE } from "../lib/machine_fit.ts";

const ROOMY = { openFilesSoft: 1_048_576, heapLimitBytes: 4 * 2 ** 30 };
const NONE_GIVEN = new Set<keyof Limits>();

Deno.test("fitLimitsToMachine() keeps the defaults on a machine with room for them", () => {
  assert.deepEqual(fitLimitsToMachine(DEFAULT_LIMITS, NONE_GIVEN, ROOMY), {
    limits: DEFAULT_LIMITS,
    notes: [],
    warnings: [],
  });
});

Deno.test("fitLimitsToMachine() lowers a default connectionsMax to the open-files limit, quietly", () => {
  const { limits, notes, warnings } = fitLimitsToMachine(DEFAULT_LIMITS, NONE_GIVEN, {
    ...ROOMY,
    openFilesSoft: 1024,
  });
  assert.equal(limits.connectionsMax, 1024 - OPEN_FILES_SPARE);
  assert.deepEqual(warnings, []);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /connectionsMax lowered from 20000 to 960/);
});

Deno.test("fitLimitsToMachine() keeps an explicit connectionsMax and warns that it cannot fit", () => {
  const { limits, notes, warnings } = fitLimitsToMachine(
    { ...DEFAULT_LIMITS, connectionsMax: 5000 },
    new Set(["connectionsMax"]),
    { ...ROOMY, openFilesSoft: 1024 },
  );
  assert.equal(limits.connectionsMax, 5000);
  assert.deepEqual(notes, []);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /open-files limit is 1024, below connectionsMax \+ 64 \(5064\)/);
});

Deno.test("fitLimitsToMachine() never lowers connectionsMax below 1", () => {
  const { limits } = fitLimitsToMachine(DEFAULT_LIMITS, NONE_GIVEN, {
    ...ROOMY,
    openFilesSoft: 10,
  });
  assert.equal(limits.connectionsMax, 1);
});

Deno.test("fitLimitsToMachine() warns when the open-files limit could not be read", () => {
  const { limits, warnings } = fitLimitsToMachine(DEFAULT_LIMITS, NONE_GIVEN, {
    ...ROOMY,
    openFilesSoft: undefined,
  });
  assert.equal(limits.connectionsMax, DEFAULT_LIMITS.connectionsMax);
  assert.deepEqual(warnings, ["could not read or raise the open-files limit"]);
});

Deno.test("fitLimitsToMachine() lowers a default storeBytesMax to half a small heap", () => {
  const heapLimitBytes = 2 ** 30;
  const { limits, notes, warnings } = fitLimitsToMachine(DEFAULT_LIMITS, NONE_GIVEN, {
    ...ROOMY,
    heapLimitBytes,
  });
  assert.equal(limits.storeBytesMax, heapLimitBytes / 2);
  assert.deepEqual(warnings, []);
  assert.match(notes[0], /storeBytesMax lowered from 2147483648 to 536870912/);
});

Deno.test("fitLimitsToMachine() keeps an explicit storeBytesMax past half the heap and warns", () => {
  const { limits, warnings } = fitLimitsToMachine(
    { ...DEFAULT_LIMITS, storeBytesMax: 2 ** 40 },
    new Set(["storeBytesMax"]),
    ROOMY,
  );
  assert.equal(limits.storeBytesMax, 2 ** 40);
  assert.match(warnings[0], /storeBytesMax 1099511627776 is more than half the heap limit/);
});
