/**
 * The whole RDS emulator in-process: daemon (state + backend) and sshd in front of it, for
 * `rds-csi emulator` (Command.ts) and for integration tests, which start it in a scope:
 *
 *   const emu = yield* startEmulator({ dir, sshPort: 0 })
 *   // ssh -i emu.clientKey -p emu.sshPort emu.user@127.0.0.1 '/disk print detail'
 *   yield* emu.control("delay 2000")
 *
 * Unit tests that need no SSH use Daemon.startDaemon (with MemoryBackend.layer) or the pure
 * Interpreter.execute.
 *
 * May import: effect, node, ./*.
 */
import { Effect, type Layer } from "effect"
import type { Scope } from "effect"
import type { ChildProcessSpawner } from "effect/process/ChildProcessSpawner"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Backend, type BackendError, EmulatorError } from "./Backend.ts"
import { type CommandResult, startDaemon } from "./Daemon.ts"
import * as MemoryBackend from "./MemoryBackend.ts"
import type { EmulatorState } from "./Model.ts"
import * as NvmetBackend from "./NvmetBackend.ts"
import { startSshd } from "./Sshd.ts"

import { DEFAULT_SSH_PORT } from "./Defaults.ts"

export { DEFAULT_DIR, DEFAULT_SSH_PORT } from "./Defaults.ts"
export const DEFAULT_POOL_SIZE = 100 * 2 ** 30
/** Where the controller should put its volumes' files. */
export const VOLUME_PATH = "/storage-pool/k8s"

export interface EmulatorOptions {
  /** Work dir: keys, sshd_config, rds-shell, state.json, logs. */
  readonly dir: string
  /** Default 2222; 0 picks a free port. */
  readonly sshPort?: number
  readonly backend?: "memory" | "nvmet"
  /** Bytes; default 100 GiB. */
  readonly poolSize?: number
  /** nvmet: where `/storage-pool` lives on this host; default <dir>/storage. */
  readonly storageRoot?: string
  /** nvmet: the address its NVMe/TCP ports listen on; default 127.0.0.1. */
  readonly nvmeAddress?: string
  /** Default 0: a free port. */
  readonly daemonPort?: number
  /** A public key file to authorize instead of generating a client key pair. */
  readonly clientPublicKey?: string
  /** nvmet: default /sys/kernel/config/nvmet. */
  readonly configfsRoot?: string
  /** Default /usr/sbin/sshd. */
  readonly sshdPath?: string
  /** One line per command run; default: appended to <dir>/commands.log. */
  readonly log?: (line: string) => void
}

export interface Emulator {
  readonly dir: string
  readonly statePath: string
  readonly sshPort: number
  readonly daemonPort: number
  /** The SSH login user (whoever runs the emulator). */
  readonly user: string
  /** Host public key file (pin it: `--rds-host-key`). */
  readonly hostKeyPub: string
  /** Client private key file; undefined when a public key was given without its private key beside it. */
  readonly clientKey: string | undefined
  readonly nvmeAddress: string
  /** Runs a RouterOS command without SSH. */
  readonly run: (command: string) => Effect.Effect<CommandResult>
  /** A daemon control: `delay <ms>`, `fail-next <text>`, `state`, `count`, `flags on|off`, `crlf on|off`. */
  readonly control: (control: string) => Effect.Effect<CommandResult>
  readonly state: Effect.Effect<EmulatorState>
  /** What to pass to the controller, as separate arguments. */
  readonly controllerFlags: ReadonlyArray<string>
}

const backendLayer = (o: EmulatorOptions, dir: string): Layer.Layer<Backend, BackendError, ChildProcessSpawner> =>
  o.backend === "nvmet"
    ? NvmetBackend.layer({
      storageRoot: o.storageRoot ?? path.join(dir, "storage"),
      nvmeAddress: o.nvmeAddress ?? "127.0.0.1",
      ...(o.configfsRoot === undefined ? {} : { configfsRoot: o.configfsRoot })
    })
    : MemoryBackend.layer

/** Starts daemon and sshd; both stop when the scope closes. */
export const startEmulator = (options: EmulatorOptions): Effect.Effect<Emulator, EmulatorError, Scope.Scope | ChildProcessSpawner> =>
  Effect.gen(function*() {
    const dir = path.resolve(options.dir)
    yield* Effect.try({
      try: () => fs.mkdirSync(dir, { recursive: true, mode: 0o700 }),
      catch: (e) => new EmulatorError({ reason: "Options", detail: `cannot create ${dir}: ${String(e)}` })
    })
    const logFile = path.join(dir, "commands.log")
    const log = options.log ?? ((line: string) => fs.appendFileSync(logFile, line + "\n"))
    const statePath = path.join(dir, "state.json")
    const daemon = yield* startDaemon({
      statePath,
      poolSize: options.poolSize ?? DEFAULT_POOL_SIZE,
      port: options.daemonPort ?? 0,
      directories: [VOLUME_PATH],
      log
    }).pipe(
      Effect.provide(backendLayer(options, dir)),
      Effect.mapError((e) => (e._tag === "BackendError" ? new EmulatorError({ reason: "Backend", detail: e.message }) : e))
    )
    const sshd = yield* startSshd({
      dir,
      port: options.sshPort ?? DEFAULT_SSH_PORT,
      daemonPort: daemon.port,
      ...(options.clientPublicKey === undefined ? {} : { clientPublicKey: options.clientPublicKey }),
      ...(options.sshdPath === undefined ? {} : { sshdPath: options.sshdPath })
    })
    const nvmeAddress = options.nvmeAddress ?? "127.0.0.1"
    return {
      dir,
      statePath,
      sshPort: sshd.port,
      daemonPort: daemon.port,
      user: sshd.user,
      hostKeyPub: sshd.hostKeyPub,
      clientKey: sshd.clientKey,
      nvmeAddress,
      run: daemon.run,
      control: daemon.control,
      state: daemon.state,
      controllerFlags: [
        "--rds-address", `127.0.0.1:${sshd.port}`,
        "--rds-user", sshd.user,
        "--rds-ssh-key", sshd.clientKey ?? "<the private key of --client-key>",
        "--rds-host-key", sshd.hostKeyPub,
        "--volume-path", VOLUME_PATH,
        "--nvme-address", nvmeAddress
      ]
    } satisfies Emulator
  })
