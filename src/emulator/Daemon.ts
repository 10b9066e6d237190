/**
 * The emulator daemon: holds the state (StateFile.ts), runs RouterOS commands through the
 * Interpreter and the Backend one at a time, and answers on a loopback TCP port.
 *
 * Protocol, one request per connection: the client sends one line, `cmd <RouterOS command>` or
 * `ctl <control>`; the daemon answers with the output and a last line `\0exit=<N>\n`, then
 * closes. (The NUL cannot occur in output, so the generated rds-shell finds it with bash's
 * `read -d ''`.) Controls, for tests and benchmarks:
 *
 *   ctl delay <ms>         every later command answers <ms> after it ran (0: off). The command
 *                          has run when the client gives up: a client timeout or a killed
 *                          connection leaves the change made, as a slow RDS would.
 *   ctl fail-next <text>   the next command prints <text> and exits 1 without running
 *   ctl state              the state as JSON          ctl count   commands run so far
 *   ctl flags on|off       listings with a `Flags:` header and flag letters (RouterOS 7 style)
 *   ctl crlf on|off        output lines end with \r\n (as some SSH servers send them)
 *
 * A command's backend actions run before its state is committed; when one fails the command
 * prints `failure: <why>`, exits 1 and the state stays as it was. Every command is logged,
 * one line with its exit status.
 *
 * May import: effect, node, ./Backend, ./Interpreter, ./Model, ./StateFile.
 */
import { Clock, Effect, FiberSet, Semaphore } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { Backend, EmulatorError } from "./Backend.ts"
import { execute } from "./Interpreter.ts"
import { type EmulatorState, withDirectories } from "./Model.ts"
import * as StateFile from "./StateFile.ts"

export interface CommandResult {
  readonly output: string
  readonly exitCode: number
}

export interface DaemonOptions {
  /** The JSON state file (created with a fresh pool when absent). */
  readonly statePath: string
  /** The pool's size in bytes. */
  readonly poolSize: number
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number
  /** Directories that must exist in the pool (`/storage-pool/k8s`), made at start when missing. */
  readonly directories?: ReadonlyArray<string>
  /** Where the one-line command log goes (default: nowhere). */
  readonly log?: (line: string) => void
}

export interface Daemon {
  /** The TCP port it listens on (127.0.0.1). */
  readonly port: number
  /** Runs one RouterOS command, exactly as `cmd <command>` over TCP. */
  readonly run: (command: string) => Effect.Effect<CommandResult>
  /** One control, exactly as `ctl <control>` over TCP (`delay 100`, `state`, ...). */
  readonly control: (control: string) => Effect.Effect<CommandResult>
  /** The current state. */
  readonly state: Effect.Effect<EmulatorState>
}

/** The marker that ends every answer. */
export const EXIT_MARKER = "\u0000exit="
const MAX_REQUEST = 1024 * 1024

const answer = (r: CommandResult): string => `${r.output}${EXIT_MARKER}${r.exitCode}\n`
const ok = (output: string): CommandResult => ({ output, exitCode: 0 })
const onOff = (v: string): boolean | undefined => (v === "on" ? true : v === "off" ? false : undefined)

/** Starts the daemon; it stops (port closed, connections dropped) when the scope closes. */
export const startDaemon = (options: DaemonOptions): Effect.Effect<Daemon, EmulatorError, Scope.Scope | Backend> =>
  Effect.gen(function*() {
    const backend = yield* Backend
    const bootedAt = yield* Clock.currentTimeMillis
    const loaded = yield* StateFile.load(options.statePath, options.poolSize, bootedAt)
    let state = withDirectories(loaded, options.directories ?? [], bootedAt)
    if (state !== loaded) yield* StateFile.save(options.statePath, state)
    yield* backend.restore(state).pipe(
      Effect.mapError((e) => new EmulatorError({ reason: "Backend", detail: `restoring ${options.statePath}: ${e.message}` }))
    )
    const lock = yield* Semaphore.make(1)
    const log = options.log ?? (() => {})
    const switches = { delayMs: 0, failNext: undefined as string | undefined, flags: false, crlf: false, count: 0 }

    const runUnlocked = (command: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        let result: CommandResult
        if (switches.failNext !== undefined) {
          result = { output: `${switches.failNext}\n`, exitCode: 1 }
          switches.failNext = undefined
        } else {
          const outcome = execute(state, command, { now, bootedAt, flags: switches.flags })
          const applied = yield* Effect.forEach(outcome.actions, (a) => backend.apply(a), { discard: true }).pipe(
            Effect.map(() => undefined),
            Effect.catch((e) => Effect.succeed(e.message))
          )
          if (applied !== undefined) {
            result = { output: `failure: ${applied}\n`, exitCode: 1 }
          } else {
            result = { output: outcome.output, exitCode: outcome.exitCode }
            if (outcome.state !== state) {
              state = outcome.state
              const saved = yield* StateFile.save(options.statePath, state).pipe(
                Effect.map(() => undefined),
                Effect.catch((e) => Effect.succeed(e.detail))
              )
              if (saved !== undefined) {
                log(`${new Date(now).toISOString()} state not saved: ${saved}`)
                result = { output: `${result.output}failure: state not saved: ${saved}\n`, exitCode: 1 }
              }
            }
          }
        }
        switches.count++
        log(`${new Date(now).toISOString()} exit=${result.exitCode} ${command}`)
        if (switches.delayMs > 0) yield* Effect.sleep(switches.delayMs)
        return switches.crlf ? { ...result, output: result.output.replace(/\n/g, "\r\n") } : result
      })

    const run = (command: string): Effect.Effect<CommandResult> => lock.withPermits(1)(runUnlocked(command))

    const control = (text: string): Effect.Effect<CommandResult> =>
      Effect.sync(() => {
        const [verb = "", ...rest] = text.trim().split(/\s+/)
        const arg = rest.join(" ")
        switch (verb) {
          case "delay": {
            const ms = Number(arg)
            if (!/^\d+$/.test(arg)) return { output: "ctl delay: expected milliseconds\n", exitCode: 2 }
            switches.delayMs = ms
            return ok(`delay ${ms}\n`)
          }
          case "fail-next":
            if (arg === "") return { output: "ctl fail-next: expected the text to print\n", exitCode: 2 }
            switches.failNext = text.trim().slice("fail-next".length).trim()
            return ok("fail-next armed\n")
          case "state":
            return ok(JSON.stringify(state, null, 1) + "\n")
          case "count":
            return ok(`${switches.count}\n`)
          case "flags":
          case "crlf": {
            const v = onOff(arg)
            if (v === undefined) return { output: `ctl ${verb}: expected on or off\n`, exitCode: 2 }
            switches[verb] = v
            return ok(`${verb} ${arg}\n`)
          }
          default:
            return { output: `unknown control: ${verb} (delay, fail-next, state, count, flags, crlf)\n`, exitCode: 2 }
        }
      })

    const request = (line: string): Effect.Effect<CommandResult> =>
      line.startsWith("cmd ") || line === "cmd"
        ? run(line.slice(4))
        : line.startsWith("ctl ")
        ? control(line.slice(4))
        : Effect.succeed({ output: "rds-emulator: expected `cmd <command>` or `ctl <control>`\n", exitCode: 2 })

    const fork = yield* FiberSet.makeRuntime<never, void, never>()
    const sockets = new Set<net.Socket>()
    const onConnection = (socket: net.Socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
      let buffer = ""
      let done = false
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => {
        if (done) return
        buffer += chunk
        const nl = buffer.indexOf("\n")
        if (nl < 0 && buffer.length <= MAX_REQUEST) return
        done = true
        const line = (nl < 0 ? buffer : buffer.slice(0, nl)).replace(/\r$/, "")
        const reply = nl < 0 ? Effect.succeed({ output: "rds-emulator: request too long\n", exitCode: 2 }) : request(line)
        fork(reply.pipe(Effect.map((r) => {
          if (!socket.destroyed) socket.end(answer(r))
        })))
      })
    }

    const server = yield* Effect.acquireRelease(
      Effect.callback<net.Server, EmulatorError>((resume) => {
        const srv = net.createServer(onConnection)
        srv.once("error", (e) => resume(Effect.fail(new EmulatorError({ reason: "Listen", detail: `127.0.0.1:${options.port ?? 0}: ${e.message}` }))))
        srv.listen(options.port ?? 0, "127.0.0.1", () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.callback<void>((resume) => {
          for (const s of sockets) s.destroy()
          srv.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0

    return { port, run, control, state: Effect.sync(() => state) } satisfies Daemon
  })
