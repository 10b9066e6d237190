/**
 * RdsClient: runs one RouterOS command on the RDS and returns what it printed. Implementations:
 * RdsClientSsh (ssh2, one connection, bounded channels, pinned host key) and, for tests, any
 * function from command to output (testing/RdsClientTest.ts over the emulator's interpreter).
 *
 * Errors are typed by what the caller can do about them: the RDS cannot be reached, refused our
 * key, showed another host key, took too long, or ran the command and said no (with its output).
 * "no such item" and "not enough space" are recognised here, once, from the command's output.
 *
 * May import: rds/Commands, effect.
 */
import { Context, Data, type Effect } from "effect"
import type { CommandName, RosCommand } from "./Commands.ts"

export type RdsFailureReason =
  /** TCP connect failed, the connection dropped, or the SSH handshake broke. */
  | "Unreachable"
  /** The RDS refused our key (or user). */
  | "AuthFailed"
  /** The RDS presented a host key other than the pinned one: never retried. */
  | "HostKeyMismatch"
  /** No answer within the command timeout. */
  | "Timeout"

/** The command did not run to a known end. For a non-idempotent command its effect is unknown. */
export class RdsUnavailable extends Data.TaggedError("RdsUnavailable")<{
  readonly reason: RdsFailureReason
  readonly command: CommandName
  readonly detail: string
}> {
  override get message(): string {
    const what = {
      Unreachable: "RDS unreachable",
      AuthFailed: "RDS refused the SSH key",
      HostKeyMismatch: "RDS host key does not match the pinned key",
      Timeout: "RDS command timed out"
    }[this.reason]
    return `${what} (${this.command}): ${this.detail}`
  }
}

export type RdsCommandFailureReason = "NotFound" | "NoSpace" | "AlreadyExists" | "InvalidParameter" | "Failed"

/** The RDS ran the command and refused it; `output` is what it printed. */
export class RdsCommandFailed extends Data.TaggedError("RdsCommandFailed")<{
  readonly reason: RdsCommandFailureReason
  readonly command: CommandName
  readonly exitCode: number
  readonly output: string
}> {
  override get message(): string {
    return `RDS refused ${this.command} (exit ${this.exitCode}): ${this.output.trim().slice(0, 500)}`
  }
}

export type RdsError = RdsUnavailable | RdsCommandFailed

/** What a failing command's output means (the substrings the reference lists). */
export const failureReasonOf = (output: string): RdsCommandFailureReason => {
  const text = output.toLowerCase()
  if (text.includes("no such item")) return "NotFound"
  if (text.includes("not enough space")) return "NoSpace"
  if (text.includes("already exists") || text.includes("already have")) return "AlreadyExists"
  if (text.includes("invalid parameter") || text.includes("invalid value") || text.includes("syntax error") || text.includes("expected end of command")) {
    return "InvalidParameter"
  }
  return "Failed"
}

/**
 * RouterOS prints some failures and still exits 0 over SSH (seen on other RouterOS tools):
 * a first line starting `failure:` or `syntax error` is a failure whatever the exit status.
 */
export const looksFailed = (output: string): boolean => /^\s*(failure:|syntax error|bad command name|expected end of command|no such item|invalid value)/i.test(output)

export class RdsClient extends Context.Service<RdsClient, {
  /** Runs one command; the timeout, retries (idempotent commands only) and reconnects are inside. */
  readonly run: (command: RosCommand) => Effect.Effect<string, RdsError>
  /** The pinned host key's fingerprint and the address (for logs and doctor); never the private key. */
  readonly describe: string
}>()("rds-csi/rds/RdsClient") {}
