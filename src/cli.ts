/**
 * The `rds-csi` command line: `rds-csi node` (the DaemonSet runtime) and `rds-csi doctor`
 * (checks a node's prerequisites). Parses and validates flags, then hands over to main.ts.
 *
 * May import: everything (this is an entry point).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Result } from "effect"
import { Command } from "effect/cli"
import { readFileSync } from "node:fs"
import { nodeFlags, toSettings } from "./Config.ts"
import { doctorCommand } from "./doctor/Doctor.ts"
import { runNode } from "./main.ts"

const VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version

const node = Command.make("node", nodeFlags, (parsed) =>
  Effect.gen(function*() {
    const settings = toSettings(parsed, VERSION, process.env)
    if (Result.isFailure(settings)) {
      process.stderr.write(`rds-csi node: ${settings.failure.message}\n`)
      process.exitCode = 2
      return
    }
    yield* runNode(settings.success)
  })).pipe(
    Command.withDescription(
      "Run the CSI node plugin: serve Identity and Node on the CSI socket, watch staged volumes, recover stale mounts, post events."
    )
  )

export const cli = Command.make("rds-csi").pipe(
  Command.withDescription("Kubernetes CSI driver for NVMe over TCP block storage."),
  Command.withSubcommands([node, doctorCommand(VERSION)])
)

/** Runs the command line in this process (exits when done; SIGTERM/SIGINT interrupt gracefully). */
export const runCli = (): void =>
  Command.run(cli, { version: VERSION }).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)

if (import.meta.main) runCli()
