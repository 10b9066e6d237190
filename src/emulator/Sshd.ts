/**
 * Puts the emulator behind Debian's OpenSSH sshd on 127.0.0.1, as a real RDS is reached. In a
 * work dir: an ed25519 host key and (unless the user brings a public key) a client key pair,
 * kept across restarts so a pinned host key stays valid; rds-shell, authorized_keys and
 * sshd_config (RdsShell.ts). sshd runs as a child (`-D -e`, its log in <dir>/sshd.log) until
 * the scope closes. As root it needs /run/sshd (made here); unprivileged it serves the
 * current user only, on a high port.
 *
 * May import: effect, node, process/Command, ./Backend (errors), ./RdsShell.
 */
import { Duration, Effect, Stream } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "effect/process/ChildProcess"
import { ChildProcessSpawner } from "effect/process/ChildProcessSpawner"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { FORCE_KILL_AFTER, runCommand } from "../process/Command.ts"
import { EmulatorError } from "./Backend.ts"
import { authorizedKeysLine, rdsShellScript, sshdConfig } from "./RdsShell.ts"

export const DEFAULT_SSHD = "/usr/sbin/sshd"
export const HOST_KEY = "ssh_host_ed25519_key"
export const CLIENT_KEY = "client_ed25519"

export interface SshdOptions {
  /** Work dir: keys, config, rds-shell, sshd.log. */
  readonly dir: string
  /** 0 picks a free port. */
  readonly port: number
  /** The daemon rds-shell talks to. */
  readonly daemonPort: number
  /** A public key file to authorize instead of generating a client key pair. */
  readonly clientPublicKey?: string
  /** Default /usr/sbin/sshd (an absolute path: sshd re-executes itself). */
  readonly sshdPath?: string
}

export interface Sshd {
  readonly port: number
  /** The login user: whoever runs the emulator. */
  readonly user: string
  /** The host public key file, to pin in the controller. */
  readonly hostKeyPub: string
  /** The client private key file, when the emulator made it or it sits next to the given `.pub`. */
  readonly clientKey: string | undefined
  readonly logFile: string
}

const failure = (reason: "Keys" | "Sshd", detail: string) => new EmulatorError({ reason, detail })
const text = (e: unknown) => (e instanceof Error ? e.message : String(e))
const fsDo = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: (e) => failure("Sshd", `${what}: ${text(e)}`) })

const keygen = (file: string, comment: string) =>
  Effect.gen(function*() {
    if (fs.existsSync(file)) return
    const out = yield* runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], Duration.seconds(30)).pipe(
      Effect.mapError((f) => failure("Keys", `ssh-keygen: ${f._tag === "Timeout" ? "timed out" : f.detail} (Debian: apt-get install openssh-client)`))
    )
    if (out.exitCode !== 0) return yield* failure("Keys", `ssh-keygen failed for ${file}: ${(out.stderr || out.stdout).trim()}`)
  })

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export const freePort = Effect.callback<number, EmulatorError>((resume) => {
  const srv = net.createServer()
  srv.once("error", (e) => resume(Effect.fail(failure("Sshd", `no free port: ${e.message}`))))
  srv.listen(0, "127.0.0.1", () => {
    const a = srv.address()
    const port = typeof a === "object" && a !== null ? a.port : 0
    srv.close(() => resume(Effect.succeed(port)))
  })
})

const accepts = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const s = net.connect(port, "127.0.0.1")
    s.once("connect", () => {
      s.destroy()
      resume(Effect.succeed(true))
    })
    s.once("error", () => resume(Effect.succeed(false)))
  })

const tailOf = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-5).join(" | ")
  } catch {
    return ""
  }
}

/** Writes keys and config, starts sshd and waits until it accepts connections (at most 10 s). */
export const startSshd = (options: SshdOptions): Effect.Effect<Sshd, EmulatorError, Scope.Scope | ChildProcessSpawner> =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner
    const dir = path.resolve(options.dir)
    const sshdPath = options.sshdPath ?? DEFAULT_SSHD
    if (!fs.existsSync(sshdPath)) return yield* failure("Sshd", `${sshdPath} not found (Debian: apt-get install openssh-server)`)
    yield* fsDo("create work dir", () => fs.mkdirSync(dir, { recursive: true, mode: 0o700 }))

    const hostKey = path.join(dir, HOST_KEY)
    yield* keygen(hostKey, "rds-emulator-host")
    let publicKeyFile: string
    let clientKey: string | undefined
    if (options.clientPublicKey !== undefined) {
      publicKeyFile = path.resolve(options.clientPublicKey)
      const priv = publicKeyFile.replace(/\.pub$/, "")
      clientKey = priv !== publicKeyFile && fs.existsSync(priv) ? priv : undefined
    } else {
      clientKey = path.join(dir, CLIENT_KEY)
      yield* keygen(clientKey, "rds-emulator-client")
      publicKeyFile = `${clientKey}.pub`
    }
    const publicKey = yield* Effect.try({
      try: () => fs.readFileSync(publicKeyFile, "utf8"),
      catch: (e) => failure("Keys", `cannot read ${publicKeyFile}: ${text(e)}`)
    })

    const port = options.port === 0 ? yield* freePort : options.port
    const rdsShell = path.join(dir, "rds-shell")
    const authorizedKeys = path.join(dir, "authorized_keys")
    const config = path.join(dir, "sshd_config")
    const logFile = path.join(dir, "sshd.log")
    yield* fsDo("write rds-shell", () => fs.writeFileSync(rdsShell, rdsShellScript(options.daemonPort), { mode: 0o755 }))
    yield* fsDo("chmod rds-shell", () => fs.chmodSync(rdsShell, 0o755))
    yield* fsDo("write authorized_keys", () => fs.writeFileSync(authorizedKeys, authorizedKeysLine(rdsShell, publicKey), { mode: 0o600 }))
    yield* fsDo("write sshd_config", () =>
      fs.writeFileSync(config, sshdConfig({ port, hostKey, pidFile: path.join(dir, "sshd.pid"), authorizedKeys }), { mode: 0o600 }))
    if (process.getuid?.() === 0) yield* fsDo("create /run/sshd", () => fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }))

    const log = fs.createWriteStream(logFile, { flags: "a" })
    yield* Effect.addFinalizer(() => Effect.sync(() => log.end()))
    const handle = yield* spawner.spawn(ChildProcess.make(sshdPath, ["-D", "-e", "-f", config], {
      extendEnv: true,
      stdin: "ignore",
      forceKillAfter: FORCE_KILL_AFTER
    })).pipe(Effect.mapError((e) => failure("Sshd", `cannot start ${sshdPath}: ${e.message}`)))
    const drain = (s: Stream.Stream<Uint8Array, unknown>) =>
      s.pipe(Stream.runForEach((chunk) => Effect.sync(() => void log.write(chunk))), Effect.ignore, Effect.forkScoped)
    yield* drain(handle.stdout)
    yield* drain(handle.stderr)

    const deadline = Date.now() + 10_000
    for (;;) {
      if (yield* accepts(port)) break
      const running = yield* handle.isRunning.pipe(Effect.orElseSucceed(() => false))
      if (!running || Date.now() > deadline) {
        yield* Effect.sleep(Duration.millis(100))
        return yield* failure("Sshd", `sshd ${running ? "did not listen" : "exited"} on 127.0.0.1:${port}: ${tailOf(logFile)} (log: ${logFile})`)
      }
      yield* Effect.sleep(Duration.millis(50))
    }
    return { port, user: os.userInfo().username, hostKeyPub: `${hostKey}.pub`, clientKey, logFile } satisfies Sshd
  })
