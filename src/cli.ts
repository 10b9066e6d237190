/**
 * The `rds-csi` command line: `rds-csi node` (the DaemonSet runtime), `rds-csi controller` (the
 * Deployment runtime), `rds-csi doctor` (checks a node's or the controller's prerequisites) and
 * `rds-csi emulator` (an RDS of the project's own behind a real sshd, to try the driver without one). Parses and validates flags, then hands over to main.ts.
 *
 * May import: everything (this is an entry point).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Effect, Exit, Result, Runtime } from "effect"
import { Command } from "effect/cli"
import { readFileSync } from "node:fs"
import { nodeFlags, toSettings } from "./Config.ts"
import { controllerFlags, toControllerSettings } from "./controller/ControllerFlags.ts"
import { doctorCommand } from "./doctor/Doctor.ts"
import { emulatorCommand } from "./emulator/Command.ts"
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

const controller = Command.make("controller", controllerFlags, (parsed) =>
  Effect.gen(function*() {
    const settings = toControllerSettings(parsed, VERSION)
    if (Result.isFailure(settings)) {
      process.stderr.write(`rds-csi controller: ${settings.failure.message}\n`)
      process.exitCode = 2
      return
    }
    const { runController } = yield* Effect.promise(() => import("./controllerMain.ts"))
    yield* runController(settings.success)
  })).pipe(
    Command.withDescription(
      "Run the CSI controller: serve Identity and Controller on the CSI socket; create, fence, grow and delete volumes on the RDS over SSH."
    )
  )

export const cli = Command.make("rds-csi").pipe(
  Command.withDescription("Kubernetes CSI driver for NVMe over TCP block storage."),
  Command.withSubcommands([node, controller, doctorCommand(VERSION), emulatorCommand])
)

/**
 * Exit codes: a stop by SIGTERM/SIGINT after the graceful shutdown is a clean exit (0, as the
 * DaemonSet's rolling update expects), an exit code a command chose is kept (2 for bad flags,
 * 1 for doctor's failures or a fatal error), anything else is 1.
 */
const teardown: Runtime.Teardown = (exit, onExit) => {
  const chosen = Number(process.exitCode ?? 0)
  if (chosen !== 0) return onExit(chosen)
  onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
}

/** Runs the command line in this process (exits when done; SIGTERM/SIGINT interrupt gracefully). */
export const runCli = (): void =>
  Command.run(cli, { version: VERSION }).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain({ teardown }))

if (import.meta.main) runCli()
