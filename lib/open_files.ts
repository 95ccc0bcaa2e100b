/**
 * Raises this process's open-files soft limit to its hard limit (each client connection is
 * a file descriptor), through libc's getrlimit/setrlimit. Knows nothing of servers; the
 * caller decides what to warn about.
 */

/** The open-files limits after raising, or undefined where they cannot be read. */
export interface OpenFilesLimit {
  soft: number;
  hard: number;
}

const LIBC_BY_OS: Partial<Record<typeof Deno.build.os, { path: string; rlimitNofile: number }>> = {
  linux: { path: "libc.so.6", rlimitNofile: 7 },
  darwin: { path: "libSystem.dylib", rlimitNofile: 8 },
};

/** Sets the soft limit to the hard one where the platform allows; returns both after. */
export function raiseOpenFilesLimit(): OpenFilesLimit | undefined {
  const libc = LIBC_BY_OS[Deno.build.os];
  if (libc === undefined) return undefined;
  try {
    const library = Deno.dlopen(libc.path, {
      getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
      setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    });
    try {
      const limit = new BigUint64Array(2); // struct rlimit { rlim_cur; rlim_max; }
      if (library.symbols.getrlimit(libc.rlimitNofile, limit) !== 0) return undefined;
      if (limit[0] < limit[1]) {
        const raised = BigUint64Array.of(limit[1], limit[1]);
        if (library.symbols.setrlimit(libc.rlimitNofile, raised) === 0) limit[0] = limit[1];
      }
      // RLIM_INFINITY is all ones; report it as the largest safe number.
      const toNumber = (value: bigint) => Number(BigInt.asUintN(53, value));
      return { soft: toNumber(limit[0]), hard: toNumber(limit[1]) };
    } finally {
      library.close();
    }
  } catch {
    return undefined;
  }
}
