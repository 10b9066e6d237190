/**
 * The controller over a real OpenSSH sshd on loopback, in front of the RDS emulator (memory
 * backend): the production SSH client (ssh2, pinned host key, bounded channels, timeouts,
 * reconnects), the production gRPC edge, the emulator's forced command. Proves: the volume life
 * cycle over SSH, a wrong host key refused before any command runs, a refused key, a connection
 * killed mid-command recovered (idempotent commands retried on a new connection), the command
 * timeout honoured (and the CO's retry finding the late command's work), `rds-csi doctor
 * controller` against it.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Scope } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { execFile, execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type ControllerSettings, testControllerSettings } from "../../src/controller/ControllerSettings.ts"
import { controllerServices, serveController, sshOptions } from "../../src/controllerMain.ts"
import { type Emulator, startEmulator } from "../../src/emulator/Emulator.ts"
import * as RdsClientSsh from "../../src/rds/RdsClientSsh.ts"
import { makeCsiClient, rpc, status, statusOf } from "../csi/client.ts"
import { daemonSetNodeOptions } from "../deploy/nodeOptions.ts"

const GiB = 1024 ** 3
const NODE_A = "node-a,nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-000000000001"
const mountCap = { mount: { fs_type: "ext4", mount_flags: [] }, access_mode: { mode: "SINGLE_NODE_WRITER" } }
const create = (name: string, bytes = GiB) => ({ name, volume_capabilities: [mountCap], capacity_range: { required_bytes: bytes } })

let emu: Emulator
let scope: Scope.Closeable
let dir: string

beforeAll(async () => {
  dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rds-csi-ssh-"))
  scope = await Effect.runPromise(Scope.make())
  emu = await Effect.runPromise(
    startEmulator({ dir: Path.join(dir, "emulator"), sshPort: 0, backend: "memory", poolSize: 20 * GiB }).pipe(
      Scope.provide(scope),
      Effect.provide(NodeServices.layer)
    )
  )
}, 60_000)

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  Fs.rmSync(dir, { recursive: true, force: true })
})

const settingsFor = (name: string, overrides: Partial<ControllerSettings> = {}): ControllerSettings =>
  testControllerSettings({
    endpoint: `unix://${dir}/${name}.sock`,
    rdsHost: "127.0.0.1",
    rdsPort: emu.sshPort,
    rdsUser: emu.user,
    sshKeyFile: emu.clientKey!,
    hostKeyFile: emu.hostKeyPub,
    insecureSkipHostKeyCheck: false,
    ...overrides
  })

/** The controller with the production SSH client, served for the life of the test's scope. */
const controllerOverSsh = (settings: ControllerSettings) =>
  Effect.gen(function*() {
    const options = yield* sshOptions(settings)
    const path = yield* serveController.pipe(Effect.provide(controllerServices(settings, RdsClientSsh.layer(options))))
    const client = makeCsiClient(path)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
    return client
  })

const control = (line: string) => Effect.runPromise(emu.control(line)).then((r) => r.output.trim())
const commandCount = async () => Number((await control("count")).match(/\d+/)?.[0] ?? NaN)
const diskSlots = () => Effect.runPromise(emu.state).then((s) => s.disks.map((d) => d.slot))

/** Runs a command to its end without blocking this process (the emulator answers from it). */
const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  new Promise<{ readonly status: number | null; readonly stdout: string; readonly stderr: string }>((resolve) => {
    execFile(process.execPath, args, { encoding: "utf8", timeout: 60_000, env }, (error, stdout, stderr) =>
      resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }))
  })

/** Every per-connection sshd process (the listener's descendants, from the emulator's pid file), killed at once. */
const killSessions = (): number => {
  const listener = Fs.readFileSync(Path.join(emu.dir, "sshd.pid"), "utf8").trim()
  const descendants: Array<string> = []
  const walk = (pid: string) => {
    const children = spawnSync("pgrep", ["-P", pid], { encoding: "utf8" }).stdout.split("\n").filter((p) => p !== "")
    for (const c of children) {
      descendants.push(c)
      walk(c)
    }
  }
  walk(listener)
  if (descendants.length > 0) spawnSync("kill", ["-KILL", ...descendants])
  return descendants.length
}

describe("controller over a real sshd (emulator, memory backend)", () => {
  it.live("the volume life cycle over SSH", () =>
    Effect.gen(function*() {
      const client = yield* controllerOverSsh(settingsFor("life"))
      const v = yield* rpc(() => client.CreateVolume(create("pvc-ssh-1", 1.5 * GiB)))
      assert.strictEqual(Number(v.volume.capacity_bytes), 1.5 * GiB)
      assert.include(yield* Effect.promise(diskSlots), "pvc-ssh-1")
      yield* rpc(() => client.ControllerPublishVolume({ volume_id: "pvc-ssh-1", node_id: NODE_A, volume_capability: mountCap }))
      const grown = yield* rpc(() => client.ControllerExpandVolume({ volume_id: "pvc-ssh-1", capacity_range: { required_bytes: 2 * GiB } }))
      assert.strictEqual(Number(grown.capacity_bytes), 2 * GiB)
      const listed = yield* rpc(() => client.ListVolumes({}))
      assert.deepStrictEqual(listed.entries.map((e) => e.volume.volume_id), ["pvc-ssh-1"])
      assert.match(listed.entries[0]!.status.volume_condition?.message ?? "", /fenced to host nqn\.2014-08/)
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "pvc-ssh-1", node_id: NODE_A }))
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-ssh-1" }))
      assert.notInclude(yield* Effect.promise(diskSlots), "pvc-ssh-1")
      assert.isTrue((yield* rpc(() => client.Probe({}))).ready?.value)
    }))

  it.live("a wrong host key is refused before any command runs; a refused key says so", () =>
    Effect.gen(function*() {
      const other = Path.join(dir, "other_host_key")
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other])
      const before = yield* Effect.promise(commandCount)
      const wrongHost = yield* controllerOverSsh(settingsFor("wronghost", { hostKeyFile: `${other}.pub` }))
      const r = yield* statusOf(wrongHost.CreateVolume(create("pvc-mitm")))
      assert.strictEqual(r.code, status.UNAVAILABLE)
      assert.match(r.details, /host key does not match the pinned key/)
      assert.strictEqual(yield* Effect.promise(commandCount), before, "no command reached the emulator")
      assert.isFalse((yield* rpc(() => wrongHost.Probe({}))).ready?.value)
      const wrongKey = yield* controllerOverSsh(settingsFor("wrongkey", { sshKeyFile: other }))
      const auth = yield* statusOf(wrongKey.CreateVolume(create("pvc-auth")))
      assert.strictEqual(auth.code, status.UNAVAILABLE)
      assert.match(auth.details, /refused the SSH key/)
      assert.notInclude(yield* Effect.promise(diskSlots), "pvc-mitm")
    }))

  it.live("a connection killed mid-command: the idempotent command is retried on a new connection", () =>
    Effect.gen(function*() {
      const client = yield* controllerOverSsh(settingsFor("killed", { commandTimeout: Duration.seconds(10) }))
      yield* rpc(() => client.CreateVolume(create("pvc-kill")))
      const reconnects = () => Effect.runPromise(PrometheusMetrics.format()).then((t) => Number(/rds_csi_rds_ssh_reconnects_total\S* (\d+)/.exec(t)?.[1] ?? 0))
      const before = yield* Effect.promise(reconnects)
      yield* Effect.promise(() => control("delay 1500"))
      const listing = client.ListVolumes({})
      yield* Effect.sleep(Duration.millis(600))
      assert.isAbove(killSessions(), 0, "an SSH session was open to kill")
      yield* Effect.promise(() => control("delay 0"))
      const listed = yield* Effect.promise(() => listing)
      assert.include(listed.entries.map((e) => e.volume.volume_id), "pvc-kill")
      assert.isAbove(yield* Effect.promise(reconnects), before, "a new SSH connection was opened")
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-kill" }))
    }))

  it.live("the command timeout is honoured; the CO's retry finds what the late command did", () =>
    Effect.gen(function*() {
      const client = yield* controllerOverSsh(settingsFor("timeout", { commandTimeout: Duration.seconds(1) }))
      yield* rpc(() => client.ListVolumes({})) // connected
      yield* Effect.promise(() => control("delay 2500"))
      const start = Date.now()
      const r = yield* statusOf(client.CreateVolume(create("pvc-late")))
      const took = Date.now() - start
      yield* Effect.promise(() => control("delay 0"))
      // The print is idempotent (3 attempts of 1 s), so the first timeout costs up to ~3.5 s; the
      // add is not retried. Either way the call ends long before the emulator would answer all.
      assert.strictEqual(r.code, status.DEADLINE_EXCEEDED, r.details)
      assert.isBelow(took, 5_000, `CreateVolume took ${took} ms`)
      yield* Effect.sleep(Duration.seconds(3)) // the late commands finish on the emulator
      const again = yield* rpc(() => client.CreateVolume(create("pvc-late")))
      assert.strictEqual(again.volume.volume_id, "pvc-late")
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-late" }))
      assert.notInclude(yield* Effect.promise(diskSlots), "pvc-late")
    }))

  it("rds-csi doctor controller: every check OK against the emulator; a wrong host key FAILs with the fix", async () => {
    const cli = Path.resolve("dist/rds-csi.mjs")
    const args = [
      cli, "doctor", "controller", "--endpoint", "unix:///tmp/unused.sock", "--rds-address", `127.0.0.1:${emu.sshPort}`, "--rds-user", emu.user,
      "--rds-ssh-key", emu.clientKey!, "--nvme-address", "127.0.0.1"
    ]
    // Asynchronously: the emulator's daemon answers from this very process.
    const good = await run([...args, "--rds-host-key", emu.hostKeyPub])
    assert.strictEqual(good.status, 0, good.stdout + good.stderr)
    assert.match(good.stdout, /OK\s+rds ssh\s+.*answers, RouterOS 7/)
    assert.match(good.stdout, /OK\s+rds volume path\s+\/storage-pool\/k8s exists/)
    assert.match(good.stdout, /this controller can manage volumes on the RDS/)
    const other = Path.join(dir, "doctor_other_key")
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other])
    const bad = await run([...args, "--rds-host-key", `${other}.pub`])
    assert.strictEqual(bad.status, 1, bad.stdout + bad.stderr)
    assert.match(bad.stdout, /FAIL\s+rds ssh\s+RDS host key does not match/)
    assert.match(bad.stdout, /fix: the RDS presented another host key/)
    assert.notMatch(bad.stdout + bad.stderr, /PRIVATE KEY/)
    assert.notMatch(good.stdout, /WARN \(#|"level"/, "no log lines in the report")
    // As the image runs it: bin/rds-csi.js under the image's NODE_OPTIONS (the node plugin's: --jitless, which has no
    // WebAssembly for the SSH library, and the node plugin's blob), which it drops by starting again.
    const imaged = await run([Path.resolve("bin/rds-csi.js"), ...args.slice(1), "--rds-host-key", emu.hostKeyPub], { ...process.env, NODE_OPTIONS: daemonSetNodeOptions(Path.resolve(".")) })
    assert.strictEqual(imaged.status, 0, imaged.stdout + imaged.stderr)
    assert.match(imaged.stdout, /OK\s+rds ssh\s+.*answers, RouterOS 7/)
  })
})

