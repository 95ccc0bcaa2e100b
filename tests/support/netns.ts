/**
 * Five separate hosts on one machine, for fault tests: a network namespace per server
 * (`herd-<run>-<n>`) with its address 198.18.0.n/24 (the benchmarking range, used only inside
 * these namespaces) on a veth to a bridge in a namespace of its own (`herd-<run>-net`), and
 * one herd server per host started there (`ip netns exec`). Faults are real link faults: a
 * host's veth set down (no FIN, no RST reaches anyone), the herd split across two bridges, and
 * a relay process that delays, jitters and stalls one link (tests/support/netns_relay.ts).
 *
 * How the test reaches the servers: each host also has a control veth to the test's own (root)
 * namespace, with a /32 route there to the host's 198.18.0.n through it. The test dials the
 * servers' own addresses; the faults touch only the bridge side, so the test can still write
 * to and read from a host cut off from the herd. Everything made is named with the run's
 * random prefix and removed on dispose (deleting a namespace deletes its veths and their
 * root-side ends and routes), also when the test failed.
 */
import {
  type Herd,
  HERD_NAMES,
  type HerdConfigJson,
  type HerdOptions,
  pollUntil,
  REPO_DIR,
  ServerProcess,
  startHerd,
} from "./herd_processes.ts";
import type { LinkShaping, RelayRoute } from "./netns_relay.ts";

/** Each `ip` command must finish within this. */
const IP_TIMEOUT_MS = 10_000;
const HOST_SUBNET = "198.18.0";
/** Control links: host n has 198.18.1.(4n+1)/30, the test's namespace 198.18.1.(4n+2). */
const CONTROL_SUBNET = "198.18.1";
const RELAY_LISTEN_TIMEOUT_MS = 15_000;

/** Runs `ip ARGS`; throws one line with its stderr if it fails. */
async function ip(...args: string[]): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ip", {
      args,
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(IP_TIMEOUT_MS),
    }).output();
  } catch (error) {
    throw new Error(`ip ${args.join(" ")}: ${error}`);
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`ip ${args.join(" ")} failed: ${stderr}`);
  }
}

/** Five hosts on a bridge; dispose to remove them. */
export class HostNetwork implements AsyncDisposable {
  /** The run's random prefix, e.g. `herd-3fa9c1`. */
  readonly prefix: string;
  readonly #names: readonly string[];
  /** `ip` arguments that remove what was made, in the order it was made. */
  readonly #undo: string[][] = [];
  /** Relay processes, stopped before the namespaces they run in are removed. */
  readonly #relays: ServerProcess[] = [];

  private constructor(prefix: string, names: readonly string[]) {
    this.prefix = prefix;
    this.#names = names;
  }

  /**
   * Builds the network for `names` (default the contract's five, host n = the nth name).
   * Throws one line saying why when namespaces cannot be made (not root, no `ip`).
   */
  static async create(names: readonly string[] = HERD_NAMES): Promise<HostNetwork> {
    const run = crypto.randomUUID().slice(0, 6);
    const network = new HostNetwork(`herd-${run}`, names);
    try {
      await network.#build(run);
    } catch (error) {
      await network[Symbol.asyncDispose]();
      throw new Error(
        `cannot build the test network (these tests need root and iproute2): ${
          (error as Error).message
        }`,
      );
    }
    return network;
  }

  /** The address `name` has and listens on. */
  address(name: string): string {
    return `${HOST_SUBNET}.${this.#index(name)}`;
  }

  namespace(name: string): string {
    return `${this.prefix}-${this.#index(name)}`;
  }

  /** The command that runs a program on `name`'s host. */
  launcher(name: string): string[] {
    return ["ip", "netns", "exec", this.namespace(name)];
  }

  /** Cuts `name`'s host off: its bridge-side veth goes down, packets are silently lost. */
  async cut(name: string): Promise<void> {
    await this.#onBridge("link", "set", this.#bridgePort(name), "down");
  }

  async heal(name: string): Promise<void> {
    await this.#onBridge("link", "set", this.#bridgePort(name), "up");
  }

  /** Splits the herd in two: `group`'s hosts move to a second bridge, the rest stay. */
  async split(group: readonly string[]): Promise<void> {
    for (const name of group) {
      await this.#onBridge("link", "set", this.#bridgePort(name), "master", "split");
    }
  }

  /** Puts every host back on the one bridge. */
  async join(): Promise<void> {
    for (const name of this.#names) {
      await this.#onBridge("link", "set", this.#bridgePort(name), "master", "herd");
    }
  }

  /**
   * Starts a relay on `name`'s host for `routes` with `shaping` and waits until it listens;
   * disposing the network kills it.
   */
  async startRelay(name: string, routes: RelayRoute[], shaping: LinkShaping): Promise<void> {
    const [command, ...prefix] = this.launcher(name);
    const child = new Deno.Command(command, {
      args: [
        ...prefix,
        Deno.execPath(),
        "run",
        "-A",
        "tests/support/netns_relay.ts",
        JSON.stringify({ routes, shaping }),
      ],
      cwd: REPO_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const relay = new ServerProcess("relay", 0, child);
    this.#relays.push(relay);
    await relay.waitListening(RELAY_LISTEN_TIMEOUT_MS);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.#relays.map((relay) => relay.stop("SIGKILL")));
    const failures: string[] = [];
    for (const args of this.#undo.reverse()) {
      await ip(...args).catch((error) => failures.push(error.message));
    }
    if (failures.length > 0) throw new Error(`cleaning up: ${failures.join("; ")}`);
  }

  async #build(run: string): Promise<void> {
    const bridgeNamespace = `${this.prefix}-net`;
    await this.#addNamespace(bridgeNamespace);
    for (const bridge of ["herd", "split"]) {
      await this.#onBridge("link", "add", bridge, "type", "bridge");
      await this.#onBridge("link", "set", bridge, "up");
    }
    for (const name of this.#names) {
      const n = this.#index(name);
      const namespace = this.namespace(name);
      await this.#addNamespace(namespace);
      await ip("-n", namespace, "link", "set", "lo", "up");
      // The herd's link: eth0 on the host, hN on the bridge.
      await ip(
        "link",
        "add",
        "eth0",
        "netns",
        namespace,
        "type",
        "veth",
        "peer",
        "name",
        this.#bridgePort(name),
        "netns",
        bridgeNamespace,
      );
      await this.#onBridge("link", "set", this.#bridgePort(name), "master", "herd", "up");
      await ip("-n", namespace, "addr", "add", `${this.address(name)}/24`, "dev", "eth0");
      await ip("-n", namespace, "link", "set", "eth0", "up");
      // The test's control link: never faulted, so a cut-off host can still be asked.
      const rootEnd = `hc${run}${n}`;
      const hostControl = `${CONTROL_SUBNET}.${4 * n + 1}`;
      await ip("link", "add", rootEnd, "type", "veth", "peer", "name", "ctl", "netns", namespace);
      // Deleted at once rather than with its namespace, which the kernel tears down later:
      // the next run's route to the same address must not find this one's still there.
      this.#undo.push(["link", "del", rootEnd]);
      await ip("addr", "add", `${CONTROL_SUBNET}.${4 * n + 2}/30`, "dev", rootEnd);
      await ip("link", "set", rootEnd, "up");
      await ip("-n", namespace, "addr", "add", `${hostControl}/30`, "dev", "ctl");
      await ip("-n", namespace, "link", "set", "ctl", "up");
      await ip("route", "add", `${this.address(name)}/32`, "via", hostControl, "dev", rootEnd);
    }
  }

  async #addNamespace(namespace: string): Promise<void> {
    await ip("netns", "add", namespace);
    this.#undo.push(["netns", "del", namespace]);
  }

  #onBridge(...args: string[]): Promise<void> {
    return ip("-n", `${this.prefix}-net`, ...args);
  }

  #bridgePort(name: string): string {
    return `h${this.#index(name)}`;
  }

  #index(name: string): number {
    const index = this.#names.indexOf(name);
    if (index < 0) throw new Error(`no host for ${name}`);
    return index + 1;
  }
}

/** Options of a herd on a HostNetwork: startHerd's, and where servers listen. */
export interface NetnsHerdOptions extends Omit<HerdOptions, "hosts" | "serverLauncher"> {
  /** `bind` of herd.json per server (e.g. `{ Campbell: "0.0.0.0" }`). */
  binds?: Readonly<Record<string, string>>;
}

/**
 * Starts the herd with one server on each host of `network`, each at its host's address
 * (`host` in herd.json). Dispose the herd before the network.
 *
 * @example
 * ```ts
 * await using network = await HostNetwork.create();
 * await using herd = await startNetnsHerd(network, { args: ["--places", "offline"] });
 * await network.cut("Hill");
 * ```
 */
export function startNetnsHerd(
  network: HostNetwork,
  options: NetnsHerdOptions = {},
): Promise<Herd> {
  const names = options.names ?? HERD_NAMES;
  const withBinds = (config: HerdConfigJson): HerdConfigJson => {
    const servers = { ...config.servers };
    for (const [name, bind] of Object.entries(options.binds ?? {})) {
      servers[name] = { ...servers[name], bind };
    }
    return { ...config, servers };
  };
  const seenBy = options.configSeenBy ?? ((_name: string, config: HerdConfigJson) => config);
  return startHerd({
    ...options,
    hosts: Object.fromEntries(names.map((name) => [name, network.address(name)])),
    serverLauncher: Object.fromEntries(names.map((name) => [name, network.launcher(name)])),
    configSeenBy: (name, config) => seenBy(name, withBinds(config)),
  });
}

/** Waits until `server`'s log says its link to `peer` is up (its last word on it). */
export async function waitLinked(herd: Herd, server: string, peer: string): Promise<void> {
  await pollUntil(async () => {
    const log = await herd.readLog(server);
    return log.lastIndexOf(`link to ${peer} up (`) > log.lastIndexOf(`link to ${peer} down:`);
  }, { timeoutMs: 15_000, what: `${server} to be linked to ${peer}` });
}
