/**
 * herd's command line: `herd status`, `herd client`, or (the default) one server with
 * `herd --name NAME …`. Every start-up problem is one line on stderr and exit 2 (1 for a port
 * in use); each subcommand lives in its own module.
 */
import { UsageError } from "./lib/cli.ts";
import { ConfigError } from "./lib/config.ts";
import { oneLine } from "./lib/errors.ts";
import { runClientCommand } from "./lib/client_command.ts";
import { runServeCommand } from "./lib/serve_command.ts";
import { DataDirError } from "./lib/server.ts";
import { runStatusCommand } from "./lib/status_command.ts";
import { TlsFilesError } from "./lib/tls_files.ts";

/** The bearer token `herd status` sends to the monitors. */
const MONITOR_TOKEN_VARIABLE = "HERD_MONITOR_TOKEN";

function main(args: string[]): Promise<number> {
  // Subcommands share the binary; each takes the arguments after its name.
  if (args[0] === "status") {
    const token = Deno.env.get(MONITOR_TOKEN_VARIABLE) || undefined;
    return runStatusCommand(args.slice(1), { token });
  }
  if (args[0] === "client") return runClientCommand(args.slice(1));
  return runServeCommand(args);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`herd: ${oneLine(message)}`);
    const isUsage = error instanceof UsageError || error instanceof ConfigError ||
      error instanceof DataDirError || error instanceof TlsFilesError;
    Deno.exit(isUsage ? 2 : 1);
  }
}
