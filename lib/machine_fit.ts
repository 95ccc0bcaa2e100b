/**
 * Fits the limits to the machine a server runs on, as a pure function of what start-up
 * learnt about it (the open-files limit after raising it, the heap limit): a limit left at its
 * default is lowered to what the machine can honour, quietly (an info note); one that
 * herd.json set explicitly is kept, with a warning. Knows nothing of how the facts are read.
 */
import type { Limits } from "./config.ts";

/** File descriptors beyond client connections: peer links, logs, the listener, Places calls. */
export const OPEN_FILES_SPARE = 64;
/**
 * The part of the heap the store may fill: the rest is for connections, replies in flight,
 * catch-up batches and the offline data set.
 */
export const STORE_HEAP_FRACTION = 0.5;

/** What start-up learnt about the machine. */
export interface MachineFacts {
  /** The open-files soft limit after raising it; undefined when it could not be read. */
  openFilesSoft: number | undefined;
  /** The runtime's heap limit in bytes (V8's `heap_size_limit`). */
  heapLimitBytes: number;
}

/** The limits to run with, and what to tell the operator about them. */
export interface FittedLimits {
  limits: Limits;
  /** Limits lowered to fit, for the log at info. */
  notes: string[];
  /** Problems the operator should fix, for the log and stderr. */
  warnings: string[];
}

/**
 * `limits` fitted to `facts`; `given` names the limits herd.json set explicitly.
 *
 * @example
 * ```ts
 * const { limits, notes, warnings } = fitLimitsToMachine(config.limits, config.limitsGiven, {
 *   openFilesSoft: 1024,
 *   heapLimitBytes: 4 * 2 ** 30,
 * }); // limits.connectionsMax 960, one note, no warning
 * ```
 */
export function fitLimitsToMachine(
  limits: Readonly<Limits>,
  given: ReadonlySet<keyof Limits>,
  facts: MachineFacts,
): FittedLimits {
  const fitted: Limits = { ...limits };
  const notes: string[] = [];
  const warnings: string[] = [];
  const { openFilesSoft, heapLimitBytes } = facts;
  if (openFilesSoft === undefined) {
    warnings.push("could not read or raise the open-files limit");
  } else if (openFilesSoft < limits.connectionsMax + OPEN_FILES_SPARE) {
    if (given.has("connectionsMax")) {
      warnings.push(
        `open-files limit is ${openFilesSoft}, below connectionsMax + ${OPEN_FILES_SPARE} ` +
          `(${limits.connectionsMax + OPEN_FILES_SPARE}): the system will refuse connections ` +
          "before herd's limit does",
      );
    } else {
      fitted.connectionsMax = Math.max(1, openFilesSoft - OPEN_FILES_SPARE);
      notes.push(
        `connectionsMax lowered from ${limits.connectionsMax} to ${fitted.connectionsMax} ` +
          `to fit the open-files limit ${openFilesSoft}`,
      );
    }
  }
  const storeBytesBudget = Math.floor(heapLimitBytes * STORE_HEAP_FRACTION);
  if (limits.storeBytesMax > storeBytesBudget) {
    if (given.has("storeBytesMax")) {
      warnings.push(
        `storeBytesMax ${limits.storeBytesMax} is more than half the heap limit ` +
          `${heapLimitBytes}: the heap may run out before the store refuses clients`,
      );
    } else {
      fitted.storeBytesMax = Math.max(1_048_576, storeBytesBudget);
      notes.push(
        `storeBytesMax lowered from ${limits.storeBytesMax} to ${fitted.storeBytesMax} ` +
          `to fit half the heap limit ${heapLimitBytes}`,
      );
    }
  }
  return { limits: fitted, notes, warnings };
}
