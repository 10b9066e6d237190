/**
 * `rds-csi emulator`: an RDS emulator to try the whole driver without an RDS. Starts the
 * daemon and sshd (Emulator.ts), prints the controller flags that reach it, logs every
 * command to stderr and runs until SIGINT/SIGTERM. Registered in cli.ts next to `node`.
 *
 * May import: effect, ./Emulator, ./Model.
 */
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { DEFAULT_DIR, DEFAULT_SSH_PORT } from "./Defaults.ts"

const emulatorFlags = {
  dir: Flag.String("dir").pipe(
    Flag.withDescription(`Work dir: keys, sshd_config, rds-shell, state.json, logs. Default: ${DEFAULT_DIR}.`),
    Flag.withDefault(DEFAULT_DIR)
  ),
  sshPort: Flag.Int("ssh-port").pipe(
    Flag.withDescription(`The SSH port on 127.0.0.1 (0: any free port). Default: ${DEFAULT_SSH_PORT}.`),
    Flag.withDefault(DEFAULT_SSH_PORT)
  ),
  backend: Flag.Literals("backend", ["memory", "nvmet"]).pipe(
    Flag.withDescription(
      "memory: disks exist only in state.json. nvmet: sparse files under --storage-root exported over NVMe/TCP by the kernel target (root, modules nvmet and nvmet-tcp). Default: memory."
    ),
    Flag.withDefault("memory" as const)
  ),
  poolSize: Flag.String("pool-size").pipe(
    Flag.withDescription("Capacity of /storage-pool: bytes or with a binary unit (100G = 100 GiB). Default: 100G."),
    Flag.withDefault("100G")
  ),
  storageRoot: Flag.String("storage-root").pipe(
    Flag.withDescription("nvmet: the host directory holding storage-pool/. Default: <dir>/storage."),
    Flag.optional
  ),
  nvmeAddress: Flag.String("nvme-address").pipe(
    Flag.withDescription("nvmet: the address the NVMe/TCP port listens on, and the one nodes connect to. Default: 127.0.0.1."),
    Flag.withDefault("127.0.0.1")
  ),
  daemonPort: Flag.Int("daemon-port").pipe(
    Flag.withDescription("The daemon's port on 127.0.0.1 (0: any free port). Default: 0."),
    Flag.withDefault(0)
  ),
  clientKey: Flag.String("client-key").pipe(
    Flag.withDescription("A public key file to authorize. Default: generate <dir>/client_ed25519."),
    Flag.optional
  )
} as const

/** `rds-csi emulator`. */
export const emulatorCommand = Command.make("emulator", emulatorFlags, (f) =>
  Effect.gen(function*() {
    // Loaded only when this command runs: `rds-csi node` never loads the emulator.
    const { parsePoolSize } = yield* Effect.promise(() => import("./Model.ts"))
    const poolSize = parsePoolSize(f.poolSize)
    if (poolSize === undefined) {
      yield* Console.error(`rds-csi emulator: --pool-size ${f.poolSize}: expected bytes or a size like 100G`)
      process.exitCode = 2
      return
    }
    const storageRoot = Option.getOrUndefined(f.storageRoot)
    const clientKey = Option.getOrUndefined(f.clientKey)
    const { startEmulator } = yield* Effect.promise(() => import("./Emulator.ts"))
    yield* Effect.scoped(Effect.gen(function*() {
      const emu = yield* startEmulator({
        dir: f.dir,
        sshPort: f.sshPort,
        backend: f.backend,
        poolSize,
        nvmeAddress: f.nvmeAddress,
        daemonPort: f.daemonPort,
        log: (line) => process.stderr.write(`${line}\n`),
        ...(storageRoot === undefined ? {} : { storageRoot }),
        ...(clientKey === undefined ? {} : { clientPublicKey: clientKey })
      })
      yield* Console.error(
        `RDS emulator (${f.backend} backend, state ${emu.statePath}) on ssh://${emu.user}@127.0.0.1:${emu.sshPort}; ` +
          `try: ssh -i ${emu.clientKey ?? "<key>"} -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -p ${emu.sshPort} ${emu.user}@127.0.0.1 '/disk print detail'\n` +
          "Controller flags (stdout):"
      )
      yield* Console.log(emu.controllerFlags.join(" "))
      return yield* Effect.never
    })).pipe(
      Effect.catchTag("EmulatorError", (e) =>
        Effect.gen(function*() {
          yield* Console.error(`rds-csi emulator: ${e.message}`)
          process.exitCode = 1
        }))
    )
  })).pipe(
    Command.withDescription(
      "Run an RDS (RouterOS) emulator behind OpenSSH on 127.0.0.1: the /disk and /file commands the controller sends, printing what a real RDS prints. Prints the controller flags to reach it; runs until SIGINT/SIGTERM."
    )
  )
