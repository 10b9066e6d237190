/**
 * Running a host tool the one way this plugin does: execFile semantics (argv, never a shell),
 * stdin closed, `LC_ALL=C` so messages can be classified, stdout and stderr collected, SIGTERM
 * at the timeout (or on interruption) and SIGKILL `FORCE_KILL_AFTER` later; the effect ends only
 * once the child has exited, so no command outlives the operation that ran it. Shared by the
 * nvme-cli and mount layers (and the doctor and emulator); each maps RunFailure into its own
 * error.
 *
 * One callback per command, through the spawn helper (SpawnHelper.ts: a small process forks, not
 * this one), else straight on node:child_process. Effect's ChildProcessSpawner (output as
 * Streams, a scope, fibers for stdout, stderr and the exit) cost twice the CPU of the fork itself
 * per command (bench/README.md, issue 12), paid on every stage, publish and unstage. runCall
 * has the helper's fork make a mount(2) or umount2(2) itself, under the same contract.
 *
 * May import: effect, node:child_process, node:os, process/SpawnHelper, process/SpawnHelperScript.
 */
import { Clock, Context, Duration, Effect } from "effect"
import { spawn } from "node:child_process"
import * as os from "node:os"
import { envLine, type Helper, type HelperCall, type HelperReply, spawnHelper } from "./SpawnHelper.ts"
import { callArgv } from "./SpawnHelperScript.ts"

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

const errnoOf = (e: unknown): string => (e as NodeJS.ErrnoException)?.code ?? ""

/**
 * How many commands an operation ran and how long they took, summed: the RPC layer gives each
 * call one (csi/Rpc.ts) and logs it beside the call's duration, so that a slow call says whether
 * the time went to the host's tools or to the plugin. Outside a call, none is kept.
 */
export interface CommandTally {
  count: number
  ms: number
}
export const CommandTally = Context.Reference<CommandTally | undefined>("rds-csi/process/CommandTally", { defaultValue: () => undefined })

/** Runs `command args` and waits for it, at most `timeout` (then it is killed: Timeout). */
export const runCommand = (
  command: string,
  args: ReadonlyArray<string>,
  timeout: Duration.Duration
): Effect.Effect<CommandOutput, RunFailure> =>
  Effect.suspend(() => {
    // Until the helper is started and answers, commands do not wait for it.
    const helper = spawnHelper()
    return tallied(helper?.ready === true ? runThrough(helper, command, args, timeout) : runDirect(command, args, timeout))
  })

const signalName = (n: number): string => Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`

/** Through the spawn helper (SpawnHelper.ts): the same contract, without forking this process. */
export const runThrough = (
  helper: Helper,
  command: string,
  args: ReadonlyArray<string>,
  timeout: Duration.Duration
): Effect.Effect<CommandOutput, RunFailure> => {
  const argv = [command, ...args]
  return through(helper, command, argv, (reply) => helper.run(argv, envLine({ LC_ALL: "C" }), reply), timeout)
}

/**
 * A mount(2) or umount2(2) made by a fork of the spawn helper that execs nothing (SpawnHelper.ts:
 * `call`): the mount layer's binds and unmounts without loading mount(8) and its libraries, most
 * of a `mount --bind` under the VM's emulation (bench/README.md, issue 12). Its output's exitCode
 * is the call's errno (0: done), its stderr the errno's text. Undefined when no helper answers or
 * this architecture's numbers are unknown: the caller runs the command instead. Tallied as a
 * command, timed out and interrupted as one (a call stuck in the kernel holds its own child,
 * never the helper).
 */
export const runCall = (call: HelperCall, timeout: Duration.Duration): Effect.Effect<CommandOutput, RunFailure> | undefined => {
  const helper = spawnHelper()
  if (helper?.ready !== true || !helper.calls) return undefined
  return tallied(through(helper, `${call.name}(2)`, callArgv(call), (reply) => helper.call(call, reply), timeout))
}

const tallied = <A, E>(run: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const tally = yield* CommandTally
    if (tally === undefined) return yield* run
    const start = yield* Clock.currentTimeMillis
    return yield* Effect.onExit(run, () =>
      Effect.map(Clock.currentTimeMillis, (end) => {
        tally.count++
        tally.ms += end - start
      }))
  })

const through = (
  helper: Helper,
  command: string,
  strings: ReadonlyArray<string>,
  start: (reply: (r: HelperReply) => void) => number,
  timeout: Duration.Duration
): Effect.Effect<CommandOutput, RunFailure> =>
  Effect.callback<CommandOutput, RunFailure>((resume) => {
    // exec (or the kernel, for a call's path) would cut an argument at its NUL and act on
    // something else: refused, as Node refuses it.
    if (strings.some((a) => a.includes("\0"))) {
      return resume(Effect.fail({ _tag: "SpawnFailed", detail: `${command}: an argument contains a NUL byte` }))
    }
    let timedOut = false
    let done = false
    let killTimer: NodeJS.Timeout | undefined
    let onGone: (() => void) | undefined
    const stop = () => {
      if (killTimer !== undefined) return
      helper.kill(id, os.constants.signals.SIGTERM)
      killTimer = setTimeout(() => helper.kill(id, os.constants.signals.SIGKILL), Duration.toMillis(FORCE_KILL_AFTER))
    }
    const timer = setTimeout(() => {
      timedOut = true
      stop()
    }, Duration.toMillis(timeout))
    const id = start((r) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (killTimer !== undefined) clearTimeout(killTimer)
      if (onGone !== undefined) return onGone()
      if (r._tag === "Lost") return resume(Effect.fail({ _tag: "SpawnFailed", detail: `${command}: ${r.detail}` }))
      if (r._tag === "ExecFailed") {
        return resume(Effect.fail(
          r.errno === os.constants.errno.ENOENT
            ? { _tag: "NotInstalled", detail: `${command}: not found on PATH` }
            : { _tag: "SpawnFailed", detail: `${command}: ${r.message}` }
        ))
      }
      if (timedOut) return resume(Effect.fail({ _tag: "Timeout" }))
      if (r.signal !== 0) return resume(Effect.fail({ _tag: "SpawnFailed", detail: `${command} was killed by ${signalName(r.signal)}` }))
      resume(Effect.succeed({ exitCode: r.code, stdout: r.stdout, stderr: r.stderr }))
    })
    // Interrupted: stop the child and wait until it has exited.
    return Effect.callback<void>((gone) => {
      if (done) return gone(Effect.void)
      onGone = () => gone(Effect.void)
      stop()
    })
  })

/** Node's own spawn: this process forks. */
export const runDirect = (
  command: string,
  args: ReadonlyArray<string>,
  timeout: Duration.Duration
): Effect.Effect<CommandOutput, RunFailure> =>
  Effect.callback<CommandOutput, RunFailure>((resume) => {
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    let timedOut = false
    let exited = false
    let done = false
    let killTimer: NodeJS.Timeout | undefined
    let onGone: (() => void) | undefined
    let child: ReturnType<typeof spawn>
    try {
      child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } })
    } catch (e) {
      // Arguments Node refuses before forking (a NUL byte in one, say).
      return resume(Effect.fail({ _tag: "SpawnFailed", detail: `${command}: ${(e as Error)?.message ?? String(e)}` }))
    }
    const finish = (result: Effect.Effect<CommandOutput, RunFailure>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (killTimer !== undefined) clearTimeout(killTimer)
      // A killed child's own children may still hold its pipes: do not wait for them.
      child.stdout?.destroy()
      child.stderr?.destroy()
      if (onGone !== undefined) onGone()
      else resume(result)
    }
    const stop = () => {
      if (exited) return finish(Effect.fail({ _tag: "Timeout" }))
      if (killTimer !== undefined) return
      child.kill("SIGTERM")
      killTimer = setTimeout(() => child.kill("SIGKILL"), Duration.toMillis(FORCE_KILL_AFTER))
    }
    const timer = setTimeout(() => {
      timedOut = true
      stop()
    }, Duration.toMillis(timeout))
    child.stdout?.on("data", (b: Buffer) => stdout.push(b))
    child.stderr?.on("data", (b: Buffer) => stderr.push(b))
    child.on("error", (e) =>
      finish(Effect.fail(
        errnoOf(e) === "ENOENT"
          ? { _tag: "NotInstalled", detail: `${command}: not found on PATH` }
          : { _tag: "SpawnFailed", detail: `${command}: ${e.message}` }
      )))
    child.on("exit", () => {
      exited = true
      if (timedOut || onGone !== undefined) finish(Effect.fail({ _tag: "Timeout" }))
    })
    // "close": the child has exited and both pipes are drained.
    child.on("close", (code, signal) => {
      if (timedOut) return finish(Effect.fail({ _tag: "Timeout" }))
      if (code === null) return finish(Effect.fail({ _tag: "SpawnFailed", detail: `${command} was killed by ${signal ?? "a signal"}` }))
      finish(Effect.succeed({ exitCode: code, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") }))
    })
    // Interrupted: stop the child and wait until it has exited.
    return Effect.callback<void>((gone) => {
      if (done) return gone(Effect.void)
      onGone = () => gone(Effect.void)
      stop()
    })
  })

/** The last `n` characters of a tool's output, for error messages. */
export const tail = (s: string, n = 500): string => {
  const t = s.trim()
  return t.length <= n ? t : "…" + t.slice(-n)
}
