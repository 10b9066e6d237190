/**
 * Running a host tool the one way this plugin does: execFile semantics (argv, never a shell),
 * stdin closed, `LC_ALL=C` so messages can be classified, stdout and stderr collected, SIGTERM
 * at the timeout and SIGKILL `FORCE_KILL_AFTER` later. Shared by the nvme-cli and mount layers;
 * each maps RunFailure into its own error.
 *
 * May import: effect/process.
 */
import { Duration, Effect, Stream } from "effect"
import type { PlatformError } from "effect/PlatformError"
import * as ChildProcess from "effect/process/ChildProcess"
import type { ChildProcessSpawner } from "effect/process/ChildProcessSpawner"

/** What a finished command printed. A non-zero exit is an output, not a failure. */
export interface CommandOutput {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** After SIGTERM (timeout or interruption), SIGKILL this much later. */
export const FORCE_KILL_AFTER = Duration.seconds(2)

/** Why a command produced no output at all. */
export type RunFailure =
  | { readonly _tag: "NotInstalled"; readonly detail: string }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "SpawnFailed"; readonly detail: string }

const spawnFailure = (e: PlatformError): RunFailure =>
  e.reason._tag === "NotFound" ? { _tag: "NotInstalled", detail: e.message } : { _tag: "SpawnFailed", detail: e.message }

const collect = (s: Stream.Stream<Uint8Array, PlatformError>) => s.pipe(Stream.decodeText(), Stream.mkString)

/** Runs `command args` and waits for it, at most `timeout` (then it is killed: Timeout). */
export const runCommand = (
  spawner: ChildProcessSpawner["Service"],
  command: string,
  args: ReadonlyArray<string>,
  timeout: Duration.Duration
): Effect.Effect<CommandOutput, RunFailure> =>
  Effect.scoped(Effect.gen(function*() {
    const handle = yield* spawner.spawn(ChildProcess.make(command, args, {
      extendEnv: true,
      env: { LC_ALL: "C" },
      stdin: "ignore",
      forceKillAfter: FORCE_KILL_AFTER
    }))
    const [stdout, stderr, exitCode] = yield* Effect.all([collect(handle.stdout), collect(handle.stderr), handle.exitCode], {
      concurrency: "unbounded"
    })
    return { exitCode: Number(exitCode), stdout, stderr } satisfies CommandOutput
  })).pipe(
    Effect.mapError(spawnFailure),
    Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail<RunFailure>({ _tag: "Timeout" }) })
  )

/** The last `n` characters of a tool's output, for error messages. */
export const tail = (s: string, n = 500): string => {
  const t = s.trim()
  return t.length <= n ? t : "…" + t.slice(-n)
}
