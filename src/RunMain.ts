/**
 * How a command runs in this process: effect's Node runtime (SIGTERM/SIGINT interrupt the
 * program, which then shuts down gracefully) with the project's exit codes. A stop by
 * SIGTERM/SIGINT after the graceful shutdown is a clean exit (0, as the DaemonSet's rolling
 * update expects), an exit code a command chose is kept (2 for bad flags, 1 for doctor's failures
 * or a fatal error), anything else is 1.
 *
 * May import: nothing of the project.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, type Effect, Exit, type Runtime } from "effect"

const teardown: Runtime.Teardown = (exit, onExit) => {
  const chosen = Number(process.exitCode ?? 0)
  if (chosen !== 0) return onExit(chosen)
  onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
}

/** Runs `program` as this process's main program (exits when it ends). */
export const runMain = <E>(program: Effect.Effect<void, E>): void => NodeRuntime.runMain(program, { teardown })
