/**
 * RdsClient over SSH with ssh2 (pure JavaScript; its optional native crypto is not needed): one
 * connection, opened on first use and again after it drops (backoff between attempts), a bounded
 * number of exec channels on it at once, a timeout on every command (the channel is closed when
 * it fires), retries only for idempotent commands, and the RDS's host key pinned (compared byte
 * for byte with the configured public key; a mismatch is never retried). The Go driver this
 * descends from had no timeout and one mutex-guarded channel: a hung command hung every RPC.
 *
 * Logs name the command and its outcome, never the key. Metrics: per command, latency and
 * outcome; reconnects.
 *
 * May import: ssh2, node:crypto, rds/*, observability/ControllerMetrics, effect.
 */
import { Cause, Duration, Effect, Exit, Layer, Metric, Result, Schedule, type Scope, Semaphore } from "effect"
import { createHash } from "node:crypto"
import { Client, type ClientChannel, type ConnectConfig } from "ssh2"
import { rdsCommandDuration, rdsCommands, rdsReconnects } from "../observability/ControllerMetrics.ts"
import type { RosCommand } from "./Commands.ts"
import { failureReasonOf, looksFailed, RdsClient, RdsCommandFailed, type RdsError, type RdsFailureReason, RdsUnavailable } from "./RdsClient.ts"

export interface SshOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  /** The private key (OpenSSH or PEM); never logged. */
  readonly privateKey: Buffer
  /** The pinned host key blob (base64-decoded from `ssh-ed25519 AAAA…`); undefined = not checked (insecure flag). */
  readonly hostKey: Buffer | undefined
  readonly commandTimeout: Duration.Duration
  /** Exec channels open at once on the connection (OpenSSH's MaxSessions is 10). */
  readonly maxChannels: number
  /** Attempts for an idempotent command (first try included). */
  readonly attempts: number
}

/** `ssh-ed25519 AAAA… comment` or a known_hosts line → the key blob, or undefined. */
export const parsePublicKey = (text: string): Buffer | undefined => {
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/)
    const at = fields.findIndex((f) => /^(ssh-|ecdsa-|rsa-sha2-)/.test(f))
    const blob = at >= 0 ? fields[at + 1] : undefined
    if (blob !== undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return Buffer.from(blob, "base64")
  }
  return undefined
}

/** OpenSSH's fingerprint notation: `SHA256:…` (base64 without padding). */
export const fingerprint = (blob: Buffer): string => `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`

interface Exec {
  readonly output: string
  readonly exitCode: number | undefined
}

/** A metrics label for how a command ended: ok, a failure reason, interrupted or defect. */
const outcomeOf = (exit: Exit.Exit<string, RdsError>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const failure = Cause.findError(exit.cause)
  if (Result.isSuccess(failure)) return failure.success.reason
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "defect"
}

const unavailable = (command: RosCommand, reason: RdsFailureReason, detail: string) => new RdsUnavailable({ reason, command: command.name, detail })

export const make = (options: SshOptions): Effect.Effect<RdsClient["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const channels = yield* Semaphore.make(Math.max(1, options.maxChannels))
    let current: Promise<Client> | undefined
    let opened = 0

    /** Opens the connection; rejects with an RdsUnavailable-shaped reason. */
    const open = (): Promise<Client> =>
      new Promise((resolve, reject) => {
        const client = new Client()
        let hostKeyRejected = false
        const config: ConnectConfig = {
          host: options.host,
          port: options.port,
          username: options.user,
          privateKey: options.privateKey,
          readyTimeout: Duration.toMillis(options.commandTimeout),
          keepaliveInterval: 15_000,
          keepaliveCountMax: 3,
          hostVerifier: (key: Buffer) => {
            if (options.hostKey === undefined) return true
            hostKeyRejected = !key.equals(options.hostKey)
            return !hostKeyRejected
          }
        }
        client.once("ready", () => {
          // Each command is a few small packets each way (channel open, exec, data, exit, close):
          // with Nagle's algorithm against delayed ACKs every one of them waits ~40 ms.
          client.setNoDelay(true)
          client.removeAllListeners("error")
          client.on("error", () => {
            if (current !== undefined) current = undefined
          })
          client.once("close", () => {
            current = undefined
          })
          resolve(client)
        })
        client.once("error", (error: Error & { readonly level?: string }) => {
          client.end()
          const reason: RdsFailureReason = hostKeyRejected
            ? "HostKeyMismatch"
            : error.level === "client-authentication"
            ? "AuthFailed"
            : error.level === "client-timeout"
            ? "Timeout"
            : "Unreachable"
          reject(Object.assign(new Error(error.message), { reason }))
        })
        client.connect(config)
      })

    /** Ends the current connection (its commands in flight fail and, when idempotent, are retried). */
    const dropConnection = () => {
      const c = current
      current = undefined
      c?.then((client) => client.end(), () => undefined)
    }

    const connection = (command: RosCommand): Effect.Effect<Client, RdsUnavailable> =>
      Effect.tryPromise({
        try: () => {
          if (current === undefined) {
            const attempt = open()
            current = attempt
            attempt.then(() => {
              opened++
              if (opened > 1) Effect.runFork(Metric.update(rdsReconnects, 1))
            }, () => {
              if (current === attempt) current = undefined
            })
          }
          return current
        },
        catch: (e) => {
          const reason = (e as { readonly reason?: RdsFailureReason }).reason ?? "Unreachable"
          return unavailable(command, reason, e instanceof Error ? e.message : String(e))
        }
      })

    const exec = (client: Client, command: RosCommand): Effect.Effect<Exec, RdsUnavailable> =>
      Effect.callback<Exec, RdsUnavailable>((resume) => {
        let channel: ClientChannel | undefined
        let done = false
        const finish = (effect: Effect.Effect<Exec, RdsUnavailable>) => {
          if (done) return
          done = true
          resume(effect)
        }
        try {
          client.exec(command.text, (error, stream) => {
            if (error !== undefined && error !== null) {
              finish(Effect.fail(unavailable(command, "Unreachable", `exec: ${error.message}`)))
              return
            }
            channel = stream
            const chunks: Array<Buffer> = []
            let exitCode: number | undefined
            stream.on("data", (chunk: Buffer) => chunks.push(chunk))
            stream.stderr.on("data", (chunk: Buffer) => chunks.push(chunk))
            stream.on("exit", (code: number | null) => {
              exitCode = code ?? undefined
            })
            stream.on("close", () => {
              const output = Buffer.concat(chunks).toString("utf8")
              // A channel that closes without an exit status was cut (connection lost, sshd killed).
              if (exitCode === undefined) finish(Effect.fail(unavailable(command, "Unreachable", "the connection closed before the command finished")))
              else finish(Effect.succeed({ output, exitCode }))
            })
          })
        } catch (e) {
          current = undefined
          finish(Effect.fail(unavailable(command, "Unreachable", e instanceof Error ? e.message : String(e))))
        }
        return Effect.sync(() => {
          done = true
          channel?.close()
        })
      })

    const once = (command: RosCommand): Effect.Effect<string, RdsError> =>
      Effect.gen(function*() {
        const client = yield* connection(command)
        const result = yield* channels.withPermits(1)(exec(client, command))
        if (result.exitCode !== 0 || looksFailed(result.output)) {
          return yield* new RdsCommandFailed({
            reason: failureReasonOf(result.output),
            command: command.name,
            exitCode: result.exitCode ?? -1,
            output: result.output
          })
        }
        return result.output
      }).pipe(
        Effect.timeoutOrElse({
          duration: options.commandTimeout,
          // A command that hangs may mean a wedged connection (a half-open TCP session after a
          // network cut answers nothing until keep-alives give up): the next try gets a new one.
          orElse: () =>
            Effect.sync(() => dropConnection()).pipe(
              Effect.andThen(Effect.fail(unavailable(command, "Timeout", `no answer within ${Duration.format(options.commandTimeout)}`)))
            )
        })
      )

    const retryable = (e: RdsError) => e._tag === "RdsUnavailable" && e.reason !== "HostKeyMismatch" && e.reason !== "AuthFailed"

    const run = (command: RosCommand): Effect.Effect<string, RdsError> =>
      Effect.suspend(() => {
        const start = Date.now()
        const attempt = command.idempotent
          ? once(command).pipe(Effect.retry({
            while: retryable,
            schedule: Schedule.exponential(Duration.millis(200)).pipe(Schedule.jittered, Schedule.upTo({ times: Math.max(0, options.attempts - 1) }))
          }))
          : once(command)
        return attempt.pipe(
          Effect.onExit((exit) => {
            const outcome = outcomeOf(exit)
            const seconds = (Date.now() - start) / 1000
            return Effect.all([
              Metric.update(Metric.withAttributes(rdsCommands, { command: command.name, outcome }), 1),
              Metric.update(Metric.withAttributes(rdsCommandDuration, { command: command.name }), seconds),
              outcome === "ok"
                ? Effect.logDebug("rds command").pipe(Effect.annotateLogs({ command: command.text, duration_ms: Date.now() - start }))
                : Effect.logWarning("rds command failed").pipe(Effect.annotateLogs({ command: command.text, outcome, duration_ms: Date.now() - start }))
            ], { discard: true })
          })
        )
      })

    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const c = current
        current = undefined
        if (c !== undefined) await c.then((client) => client.end(), () => undefined)
      })
    )
    const where = `${options.user}@${options.host}:${options.port}`
    return RdsClient.of({
      run,
      describe: options.hostKey === undefined ? `${where} (host key NOT checked)` : `${where} (host key ${fingerprint(options.hostKey)})`
    })
  })

export const layer = (options: SshOptions): Layer.Layer<RdsClient> => Layer.effect(RdsClient, make(options))
