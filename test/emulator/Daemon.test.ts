/**
 * The emulator daemon over its loopback TCP protocol, and the generated rds-shell (bash, as
 * sshd runs it, with SSH_ORIGINAL_COMMAND set) in front of it: output and exit statuses,
 * controls, one command at a time, state kept across restarts. No sshd here (Sshd.host.test.ts).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { type Action, Backend, BackendError } from "../../src/emulator/Backend.ts"
import { EXIT_MARKER, startDaemon } from "../../src/emulator/Daemon.ts"
import * as MemoryBackend from "../../src/emulator/MemoryBackend.ts"
import { rdsShellScript } from "../../src/emulator/RdsShell.ts"

const dirs: Array<string> = []
const tmpDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "rds-emu-"))
  dirs.push(d)
  return d
}
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })))

const ADD = "/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=10G slot=pvc-1 nvme-tcp-export=yes " +
  "nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1"

/** One request over TCP; the raw answer. */
const send = (port: number, line: string) =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => s.write(`${line}\n`))
      let data = ""
      s.setEncoding("utf8")
      s.on("data", (c: string) => (data += c))
      s.on("end", () => resolve(data))
      s.on("error", reject)
    })
  )

/** rds-shell for `port`, run by bash as sshd would run it. */
const shell = (port: number, command: string | undefined) =>
  Effect.promise(() => {
    const script = path.join(tmpDir(), "rds-shell")
    fs.writeFileSync(script, rdsShellScript(port), { mode: 0o755 })
    const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...(command === undefined ? {} : { SSH_ORIGINAL_COMMAND: command }) }
    return new Promise<{ stdout: string; stderr: string; code: number }>((resolve) =>
      execFile("bash", [script], { env }, (error, stdout, stderr) =>
        resolve({ stdout, stderr, code: error === null ? 0 : typeof error.code === "number" ? error.code : -1 })
      )
    )
  })

const daemonIn = (dir: string, backend: Layer.Layer<Backend> = MemoryBackend.layer) =>
  startDaemon({ statePath: path.join(dir, "state.json"), poolSize: 100 * 2 ** 30 }).pipe(Effect.provide(backend))

describe("daemon protocol", () => {
  it.live("answers output then \\0exit=N; errors exit 1; bad requests exit 2", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      assert.strictEqual(yield* send(d.port, `cmd ${ADD}`), `${EXIT_MARKER}0\n`)
      const printed = yield* send(d.port, "cmd /disk print detail where slot=pvc-1")
      assert.match(printed, /^type=file slot="pvc-1"[^]*file-offset=0\n\u0000exit=0\n$/)
      assert.strictEqual(yield* send(d.port, `cmd ${ADD}`), `failure: item with such name already exists\n${EXIT_MARKER}1\n`)
      assert.strictEqual(yield* send(d.port, "hello"), `rds-emulator: expected \`cmd <command>\` or \`ctl <control>\`\n${EXIT_MARKER}2\n`)
      assert.strictEqual(yield* send(d.port, "ctl count"), `3\n${EXIT_MARKER}0\n`)
      const state = JSON.parse((yield* send(d.port, "ctl state")).split(EXIT_MARKER)[0]!) as { disks: ReadonlyArray<{ slot: string }> }
      assert.deepStrictEqual(state.disks.map((x) => x.slot), ["pvc-1"])
    }))

  it.live("ctl fail-next: the next command prints the text, exits 1 and does not run", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      yield* d.control("fail-next failure: timeout while talking to the disk")
      assert.deepStrictEqual(yield* d.run(ADD), { output: "failure: timeout while talking to the disk\n", exitCode: 1 })
      assert.strictEqual((yield* d.state).disks.length, 0)
      assert.strictEqual((yield* d.run(ADD)).exitCode, 0)
    }))

  it.live("ctl delay: answers come late, one command at a time; a client that gives up still gets the change made", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      yield* d.control("delay 150")
      const start = Date.now()
      yield* Effect.all([send(d.port, "cmd /disk print detail"), send(d.port, "cmd /disk print detail"), send(d.port, "cmd /disk print detail")], {
        concurrency: "unbounded"
      })
      assert.isAtLeast(Date.now() - start, 440, "three delayed commands, serialized")
      // a client that hangs up before the answer
      yield* Effect.promise(() =>
        new Promise<void>((resolve) => {
          const s = net.connect(d.port, "127.0.0.1", () => {
            s.write(`cmd ${ADD}\n`)
            setTimeout(() => {
              s.destroy()
              resolve()
            }, 20)
          })
        })
      )
      yield* Effect.sleep(250)
      assert.strictEqual((yield* d.state).disks.length, 1)
      yield* d.control("delay 0")
      const t = Date.now()
      yield* send(d.port, "cmd /disk print detail")
      assert.isBelow(Date.now() - t, 100)
    }))

  it.live("a backend failure fails the command with `failure: ...` and leaves the state as it was", () =>
    Effect.gen(function*() {
      const failing = Layer.succeed(Backend, Backend.of({
        kind: "memory",
        apply: (a: Action) =>
          a._tag === "Export" ? Effect.fail(new BackendError({ reason: "Configfs", path: "/x", detail: "enable namespace: EIO" })) : Effect.void,
        restore: () => Effect.void
      }))
      const d = yield* daemonIn(tmpDir(), failing)
      assert.deepStrictEqual(yield* d.run(ADD), { output: "failure: enable namespace: EIO (/x)\n", exitCode: 1 })
      assert.strictEqual((yield* d.state).disks.length, 0)
    }))

  it.live("`directories` are made at start (the controller's volume path exists before the first volume)", () =>
    Effect.gen(function*() {
      const d = yield* startDaemon({ statePath: path.join(tmpDir(), "state.json"), poolSize: 2 ** 30, directories: ["/storage-pool/k8s"] })
        .pipe(Effect.provide(MemoryBackend.layer))
      const out = yield* d.run("/file print detail where name=\"storage-pool/k8s\"")
      assert.match(out.output, /^name=storage-pool\/k8s type=directory creation-time=\w{3}\/\d\d\/\d{4} \d\d:\d\d:\d\d\n$/)
    }))

  it.live("the state survives a restart; a state file that is not a state stops the daemon", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const actions: Array<Action> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const d = yield* daemonIn(dir, MemoryBackend.layerRecording(actions))
        yield* d.run(ADD)
      }))
      assert.deepStrictEqual(actions.map((a) => a._tag), ["CreateDirectory", "CreateFile", "Export"])
      const again = yield* Effect.scoped(Effect.gen(function*() {
        const d = yield* daemonIn(dir)
        return yield* d.run("/disk print detail where slot=pvc-1")
      }))
      assert.include(again.output, "nvme-tcp-server-nqn=\"nqn.2000-02.com.mikrotik:pvc-1\"")
      assert.deepStrictEqual(fs.readdirSync(dir), ["state.json"])
      fs.writeFileSync(path.join(dir, "state.json"), "{\"version\": 2}")
      const broken = yield* Effect.exit(Effect.scoped(daemonIn(dir)))
      assert.isTrue(Exit.isFailure(broken))
      assert.include(String(broken), "is not an emulator state")
    }))
})

describe("rds-shell (bash) in front of the daemon", () => {
  it.live("prints multi-line output exactly and exits with the command's status", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      assert.deepStrictEqual(yield* shell(d.port, ADD), { stdout: "", stderr: "", code: 0 })
      const listed = yield* shell(d.port, "/disk print detail where slot~\"pvc-\"")
      assert.strictEqual(listed.stdout, (yield* d.run("/disk print detail where slot~\"pvc-\"")).output)
      assert.strictEqual(listed.stdout.split("\n").length, 12)
      assert.strictEqual(listed.code, 0)
      assert.deepStrictEqual(yield* shell(d.port, "/disk remove numbers=7"), { stdout: "no such item\n", stderr: "", code: 1 })
      assert.deepStrictEqual(yield* shell(d.port, "/disk print detail where slot=\"it's \\\"quoted\\\"\""), { stdout: "", stderr: "", code: 0 })
    }))

  it.live("one SSH command is one command: an inner newline is refused, trailing ones dropped", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      const two = yield* shell(d.port, `${ADD}\n/disk remove [find slot=pvc-1]`)
      assert.strictEqual(two.code, 1)
      assert.include(two.stdout, "one command per SSH session")
      assert.strictEqual((yield* d.state).disks.length, 0)
      assert.strictEqual((yield* shell(d.port, `${ADD}\n`)).code, 0)
      assert.strictEqual((yield* d.state).disks.length, 1)
    }))

  it.live("crlf switch: \\r\\n line ends come through unchanged", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      yield* d.control("crlf on")
      const out = yield* shell(d.port, "/disk print detail where mount-point=storage-pool")
      assert.match(out.stdout, /^name=\/storage-pool type=directory [^\r\n]*\r\n {15}/)
      assert.isTrue(out.stdout.endsWith("\r\n"))
    }))

  it.live("no command, or no daemon: clear messages, exit 1 and 255", () =>
    Effect.gen(function*() {
      const d = yield* daemonIn(tmpDir())
      const none = yield* shell(d.port, undefined)
      assert.strictEqual(none.code, 1)
      assert.include(none.stderr, "one command per SSH session")
      const port = yield* Effect.scoped(Effect.map(daemonIn(tmpDir()), (x) => x.port))
      const down = yield* shell(port, "/disk print detail")
      assert.strictEqual(down.code, 255)
      assert.include(down.stderr, "is not running")
    }))
})
