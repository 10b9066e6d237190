/**
 * A small long-lived process that forks the plugin's commands for it. A fork copies the page
 * tables of the process that forks, and libuv's spawn blocks the event loop until the child has
 * exec'd: for a ~70 MB Node that is 2–3 ms of this host's CPU per command and 20–60 ms under the
 * VM's emulation, paid on every connect, blkid, mkfs, mount and umount, and it stalls every other
 * RPC meanwhile. perl-base (Essential in Debian, so in every Debian image and node:*-slim) forks a
 * ~5 MB process instead, as cheaply as the shell the bare commands run from; Node only writes a
 * line and reads one back (bench/README.md, issue 12).
 *
 * The protocol is lines of space-separated hex fields (so any byte but NUL passes):
 *   ← `ready`                         once, when it has started
 *   → `env <hex K=V>...`             the environment for the commands that follow
 *   → `run <id> <hex argv>...`        fork, exec (PATH searched), stdin /dev/null, pipes for 1 and 2
 *   → `call <id> <hex name> <hex arg>...`   fork; the child makes one system call (`mount source
 *                                      target type flags data`, an empty type or data NULL, or
 *                                      `umount2 target flags`) and exits with its errno (0:
 *                                      done), strerror on stderr; reported as `exit`
 *   → `kill <id> <signal number>`     signal a running command
 *   ← `exit <id> <code> <signal> <hex stdout> <hex stderr>`   once reaped, its output drained
 *   ← `error <id> <errno> <hex message>`                      the exec (or fork) failed
 * A command is reported once it has exited: what it wrote is all in its pipes by then, so a
 * grandchild still holding them does not keep it waiting. On end of input the helper finishes
 * the commands it runs and exits. runCommand (Command.ts) falls back to Node's own spawn when
 * perl is not on PATH or the helper keeps dying.
 *
 * May import: node:child_process, node:net, process/Path, process/SpawnHelperScript.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Socket } from "node:net"
import { onPath } from "./Path.ts"
import { callArgv, callsOn, type HelperCall, helperScript } from "./SpawnHelperScript.ts"

export { callsOn, type HelperCall }

/** How a command handed to the helper ended. */
export type HelperReply =
  | { readonly _tag: "Exit"; readonly code: number; readonly signal: number; readonly stdout: string; readonly stderr: string }
  | { readonly _tag: "ExecFailed"; readonly errno: number; readonly message: string }
  | { readonly _tag: "Lost"; readonly detail: string }

const hex = (s: string): string => Buffer.from(s, "utf8").toString("hex")
const unhex = (s: string | undefined): string => Buffer.from(s ?? "", "hex").toString("utf8")


class Helper {
  private readonly proc: ChildProcess
  private readonly pending = new Map<number, (r: HelperReply) => void>()
  private next = 0
  private sentEnv: string | undefined
  private input = ""
  private gone = false
  /** It has started and answers: until then runCommand spawns directly rather than wait. */
  ready = false
  /** It makes mount(2) and umount2(2) itself (call): this architecture's numbers are known. */
  readonly calls: boolean
  private readonly onGone: () => void

  constructor(perl: string, onGone: () => void) {
    this.onGone = onGone
    this.calls = callsOn(process.arch)
    this.proc = spawn(perl, ["-e", helperScript(process.arch)], { stdio: ["pipe", "pipe", "inherit"] })
    this.proc.on("error", (e) => this.lose(`the spawn helper failed: ${e.message}`))
    // "close", not "exit": the replies it wrote before it ended are read first.
    this.proc.on("close", (code, signal) => this.lose(`the spawn helper exited (${signal ?? `code ${code}`})`))
    this.proc.stdin?.on("error", () => {})
    this.proc.stdout?.setEncoding("utf8")
    this.proc.stdout?.on("data", (d: string) => this.read(d))
    // Never what keeps the plugin alive: a running command's own timer does that.
    this.proc.unref()
    for (const pipe of [this.proc.stdin, this.proc.stdout]) if (pipe instanceof Socket) pipe.unref()
  }

  /** Starts `argv` with `env`; `reply` is called once, when it has ended. Returns its id for kill. */
  run(argv: ReadonlyArray<string>, env: string, reply: (r: HelperReply) => void): number {
    const envLine = env === this.sentEnv ? "" : `env ${env}\n`
    if (!this.gone) this.sentEnv = env
    return this.send((id) => `${envLine}run ${id} ${argv.map(hex).join(" ")}\n`, reply)
  }

  /** Writes the lines for a new id, or replies Lost at once when it is gone. */
  private send(lines: (id: number) => string, reply: (r: HelperReply) => void): number {
    const id = this.next++
    if (this.gone) {
      reply({ _tag: "Lost", detail: "the spawn helper is gone" })
      return id
    }
    this.pending.set(id, reply)
    this.proc.stdin?.write(lines(id))
    return id
  }

  /** Makes `call` in a forked child (no exec); `reply` gets an Exit whose code is its errno. */
  call(call: HelperCall, reply: (r: HelperReply) => void): number {
    return this.send((id) => `call ${id} ${callArgv(call).map(hex).join(" ")}\n`, reply)
  }

  kill(id: number, signal: number): void {
    if (!this.gone && this.pending.has(id)) this.proc.stdin?.write(`kill ${id} ${signal}\n`)
  }

  private read(data: string): void {
    this.input += data
    let nl: number
    while ((nl = this.input.indexOf("\n")) >= 0) {
      const f = this.input.slice(0, nl).split(" ")
      this.input = this.input.slice(nl + 1)
      if (f[0] === "ready") {
        this.ready = !this.gone
        continue
      }
      const id = Number(f[1])
      const reply = this.pending.get(id)
      if (reply === undefined) continue
      this.pending.delete(id)
      if (f[0] === "exit") {
        reply({ _tag: "Exit", code: Number(f[2]), signal: Number(f[3]), stdout: unhex(f[4]), stderr: unhex(f[5]) })
      } else {
        reply({ _tag: "ExecFailed", errno: Number(f[2]), message: unhex(f[3]) })
      }
    }
  }

  private lose(detail: string): void {
    if (this.gone) return
    this.gone = true
    this.ready = false
    this.onGone()
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const reply of waiting) reply({ _tag: "Lost", detail })
  }
}

/** After this many helpers have died, the process spawns its commands itself. */
const MAX_LOSSES = 3
let current: Helper | undefined
let losses = 0
let wanted = false

const helperNow = (): Helper | undefined => {
  if (current !== undefined) return current
  if (losses >= MAX_LOSSES || process.env.RDS_CSI_SPAWN === "direct") return undefined
  const perl = onPath("perl")
  if (perl === undefined) return undefined
  const helper: Helper = new Helper(perl, () => {
    losses++
    if (current === helper) current = undefined
  })
  current = helper
  return current
}

/**
 * Starts the helper (once; later calls return it). The node plugin calls it once its start-up is
 * done: starting it is one more fork of this process, which readiness should not wait behind.
 * Undefined when perl is not on PATH, the helper has died MAX_LOSSES times, or
 * RDS_CSI_SPAWN=direct.
 */
export const startSpawnHelper = (): Helper | undefined => {
  wanted = true
  return helperNow()
}

/** The helper, if startSpawnHelper was called: started again after it died (MAX_LOSSES times). */
export const spawnHelper = (): Helper | undefined => (wanted ? helperNow() : undefined)

export type { Helper }

let lastEnv: { readonly key: string; readonly line: string } | undefined

/**
 * The environment line the helper gets: this process's environment with `extra` on top. Encoded
 * again only when the environment (or `extra`) changed since the last command: hex-encoding every
 * variable was ~5 ms of each command under the VM's emulation, and a plugin's environment does
 * not change while it runs (a test's may: comparing the plain text is a third of the cost).
 */
export const envLine = (extra: Readonly<Record<string, string>>): string => {
  const env = { ...process.env, ...extra }
  let key = ""
  for (const k in env) if (env[k] !== undefined) key += `${k}=${env[k]}\0`
  if (lastEnv?.key === key) return lastEnv.line
  const line = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => hex(`${k}=${v}`)).join(" ")
  lastEnv = { key, line }
  return line
}
