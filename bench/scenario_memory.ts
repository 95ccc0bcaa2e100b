/**
 * Memory of one fresh herd server (VmRSS from /proc/PID/status): at rest with its offline
 * data set loaded; after storing 100k and 1M distinct clients (16-byte ids, 21-byte
 * locations; every stored AT line counts); and while holding 10k idle connections, during
 * which fresh clients must still get their AT within 50 ms.
 */
import { type Context, startSingleServer } from "./context.ts";
import type { LoadResult } from "./generator.ts";
import { settledRssKb, statusKb } from "./processes.ts";

export interface ClientCheckpoint {
  clients: number;
  rssKb: number;
  hwmKb: number;
  bytesPerClient: number;
  registerPerSecond: number;
  /** Registration hit its time cap: fewer clients than planned. */
  partial: boolean;
}

export interface MemoryResults {
  restRssKb: number;
  checkpoints: ClientCheckpoint[];
}

export async function runMemory(context: Context): Promise<MemoryResults> {
  const server = await startSingleServer(context, "memory.json");
  try {
    const pid = server.process.pid;
    const restRssKb = await settledRssKb(pid, 1500);
    context.log(`memory: at rest ${(restRssKb / 1024).toFixed(1)} MB`);
    const checkpoints: ClientCheckpoint[] = [];
    let stored = 0;
    let spentMs = 0;
    for (const target of context.settings.clientCheckpoints) {
      context.log(`memory: registering up to ${target} clients`);
      const capMs = Math.max(1000, context.settings.registerCapMs - spentMs);
      const result = await context.generator.run("register", {
        port: server.port,
        ns: "mc",
        first: stored,
        count: target - stored,
        conns: 8,
        depth: 32,
        maxMs: capMs,
      }, capMs + 15_000);
      spentMs += Number(result.seconds) * 1000;
      stored += Number(result.ok);
      const rssKb = await settledRssKb(pid, 1500);
      checkpoints.push({
        clients: stored,
        rssKb,
        hwmKb: statusKb(pid, "VmHWM") ?? 0,
        bytesPerClient: ((rssKb - restRssKb) * 1024) / stored,
        registerPerSecond: Number(result.rate),
        partial: stored < target,
      });
      if (stored < target) break;
    }
    return { restRssKb, checkpoints };
  } finally {
    await server.process.stop();
  }
}

export interface IdleResults {
  restRssKb: number;
  load: LoadResult;
}

export async function runIdle(context: Context): Promise<IdleResults> {
  const server = await startSingleServer(context, "idle.json");
  try {
    const restRssKb = await settledRssKb(server.process.pid, 1000);
    context.log(`idle: opening ${context.settings.idleConns} idle connections`);
    const load = await context.generator.run("idle", {
      port: server.port,
      conns: context.settings.idleConns,
      probes: context.settings.idleProbes,
      pid: server.process.pid,
      maxMs: 30_000,
    }, 60_000);
    return { restRssKb, load };
  } finally {
    await server.process.stop();
  }
}
