/**
 * RdsClient over the emulator's interpreter in memory (emulator/Interpreter.ts): the same
 * command parser and printer the emulator serves over SSH, without SSH, for unit and model
 * tests. Faults can be injected per command, the way SSH fails in the field:
 * - `drop-before`: the connection drops before the RDS ran the command (nothing changed);
 * - `drop-after`: it drops after the RDS ran it (the change happened, the answer is lost);
 * - `timeout-after`: no answer in time, though the RDS ran it;
 * - `auth`: the RDS refuses the key (nothing runs).
 * Like the SSH client, a failing command's output becomes RdsCommandFailed with its reason.
 *
 * May import: emulator (pure parts), rds/*, effect.
 */
import { Effect, Layer } from "effect"
import { execute } from "../emulator/Interpreter.ts"
import { type EmulatorState, initialState } from "../emulator/Model.ts"
import type { RosCommand } from "../rds/Commands.ts"
import { failureReasonOf, looksFailed, RdsClient, RdsCommandFailed, type RdsError, RdsUnavailable } from "../rds/RdsClient.ts"

export type RdsFault = "drop-before" | "drop-after" | "timeout-after" | "auth"

export interface RdsTestOptions {
  /** The pool's size in bytes (default 100 GiB). */
  readonly poolBytes?: number
  /** Decides a fault for each command (default: none). */
  readonly fault?: (command: RosCommand) => RdsFault | undefined
}

export interface RdsTest {
  readonly layer: Layer.Layer<RdsClient>
  /** The emulator's state now. */
  readonly state: () => EmulatorState
  /** Runs a command directly on the emulator (what an administrator would type), no faults. */
  readonly admin: (line: string) => { readonly output: string; readonly exitCode: number }
  /** Every command the client sent, in order (faulted ones included). */
  readonly sent: Array<RosCommand>
}

export const makeRdsTest = (options: RdsTestOptions = {}): RdsTest => {
  const bootedAt = Date.now()
  let state = initialState(options.poolBytes ?? 100 * 1024 ** 3, bootedAt)
  const sent: Array<RosCommand> = []
  const apply = (line: string) => {
    const outcome = execute(state, line, { now: Date.now(), bootedAt, flags: false })
    state = outcome.state
    return outcome
  }
  const unavailable = (command: RosCommand, reason: "Unreachable" | "Timeout" | "AuthFailed", detail: string) =>
    Effect.fail(new RdsUnavailable({ reason, command: command.name, detail }))
  const run = (command: RosCommand): Effect.Effect<string, RdsError> =>
    Effect.suspend((): Effect.Effect<string, RdsError> => {
      sent.push(command)
      const fault = options.fault?.(command)
      if (fault === "auth") return unavailable(command, "AuthFailed", "injected: authentication failed")
      if (fault === "drop-before") return unavailable(command, "Unreachable", "injected: connection dropped before the command ran")
      const outcome = apply(command.text)
      if (fault === "drop-after") return unavailable(command, "Unreachable", "injected: connection dropped after the command ran")
      if (fault === "timeout-after") return unavailable(command, "Timeout", "injected: no answer in time (the command ran)")
      if (outcome.exitCode !== 0 || looksFailed(outcome.output)) {
        return Effect.fail(new RdsCommandFailed({ reason: failureReasonOf(outcome.output), command: command.name, exitCode: outcome.exitCode, output: outcome.output }))
      }
      return Effect.succeed(outcome.output)
    })
  return {
    layer: Layer.succeed(RdsClient, RdsClient.of({ run, describe: "in-memory RDS emulator" })),
    state: () => state,
    admin: (line) => {
      const o = apply(line)
      return { output: o.output, exitCode: o.exitCode }
    },
    sent
  }
}
