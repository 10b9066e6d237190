/**
 * The `rds-csi` command line: `rds-csi node` (the DaemonSet runtime), `rds-csi controller` (the
 * Deployment runtime), `rds-csi doctor` (checks a node's or the controller's prerequisites) and
 * `rds-csi emulator` (an RDS of the project's own behind a real sshd, to try the driver without one). Parses and validates flags, then hands over to main.ts.
 *
 * May import: everything (this is an entry point).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Result } from "effect"
import { Command } from "effect/cli"
import { nodeFlags } from "./CliFlags.ts"
import { toSettings } from "./Config.ts"
import { controllerFlags, toControllerSettings } from "./controller/ControllerFlags.ts"
import { doctorCommand } from "./doctor/Doctor.ts"
import { emulatorCommand } from "./emulator/Command.ts"
import { runNode } from "./main.ts"
import { runMain } from "./RunMain.ts"
import { VERSION } from "./Version.ts"

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

/** Runs the command line in this process (exits when done; SIGTERM/SIGINT interrupt gracefully). */
export const runCli = (): void =>
  runMain(Command.run(cli, { version: VERSION }).pipe(Effect.provide(NodeServices.layer)))

if (import.meta.main) runCli()
