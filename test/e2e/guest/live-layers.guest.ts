/**
 * Runs INSIDE the VM (Node 24 with type stripping, as root), after live-layers.sh has exported
 * a kernel nvmet-tcp subsystem on 127.0.0.1:4420. Drives the live layers against the real
 * kernel — NvmeTransport.layer over NvmeCliLive + SysfsLive, MounterLive, Format's
 * ensureFilesystem, StageStoreLive — and writes every step's outcome and duration to the JSON
 * file named by argv[2]; the host test (test/e2e/live-layers.test.ts) asserts on it.
 *
 *   node live-layers.guest.ts RESULT_JSON NQN NGUID
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Duration, Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import type { NodeId } from "../../../src/domain/Ids.ts"
import { volumeTarget } from "../../../src/domain/Volume.ts"
import { classifyProbe, ensureFilesystem } from "../../../src/mount/Format.ts"
import { Mounter } from "../../../src/mount/Mounter.ts"
import { MounterLive } from "../../../src/mount/MounterLive.ts"
import { StageStore } from "../../../src/node/StageStore.ts"
import { StageStoreLive } from "../../../src/node/StageStoreLive.ts"
import { NvmeCli } from "../../../src/nvme/NvmeCli.ts"
import { NvmeCliLive } from "../../../src/nvme/NvmeCliLive.ts"
import { NvmeTransport } from "../../../src/nvme/NvmeTransport.ts"
import { Sysfs } from "../../../src/nvme/Sysfs.ts"
import { SysfsLive } from "../../../src/nvme/SysfsLive.ts"
import { Settings, testSettings } from "../../../src/Settings.ts"

const [resultFile, nqnArg, nguid] = process.argv.slice(2) as [string, string, string]
const STAGING = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/smoke/globalmount"
const PUBLISH = "/var/lib/kubelet/pods/smoke-pod/volumes/kubernetes.io~csi/pvc-smoke/mount"

interface Step {
  readonly name: string
  readonly ms: number
  readonly ok: boolean
  readonly detail: string
}
const steps: Array<Step> = []
const startedAt = performance.now()

/** Runs one step, records it; a failed step fails the program with its message. */
const step = <A, E, R>(name: string, eff: Effect.Effect<A, E, R>, show: (a: A) => string = () => "") =>
  Effect.suspend(() => {
    const t0 = performance.now()
    return eff.pipe(
      Effect.tap((a) => Effect.sync(() => steps.push({ name, ms: Math.round(performance.now() - t0), ok: true, detail: show(a) }))),
      Effect.tapCause((cause) => Effect.sync(() => steps.push({ name, ms: Math.round(performance.now() - t0), ok: false, detail: String(cause) })))
    )
  })

const check = (cond: boolean, what: string) => cond ? Effect.void : Effect.fail(new Error(`check failed: ${what}`))

const settings = testSettings({
  nodeId: "e2e-guest" as NodeId,
  stateDir: "/run/rds-csi-e2e/state",
  sysfsRoot: "/sys",
  procRoot: "/proc",
  commandTimeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(30),
  connectAttempts: 3,
  connectBackoff: Duration.millis(200),
  deviceWaitTimeout: Duration.seconds(15)
})
const host = Layer.mergeAll(NvmeCliLive, SysfsLive, MounterLive, StageStoreLive).pipe(
  Layer.provideMerge(Layer.mergeAll(NodeServices.layer, Settings.layer(settings)))
)
const services = Layer.provideMerge(NvmeTransport.layer, host)

const program = Effect.gen(function*() {
  const cli = yield* NvmeCli
  const sysfs = yield* Sysfs
  const mounter = yield* Mounter
  const transport = yield* NvmeTransport
  const store = yield* StageStore
  const target = Result.getOrThrow(volumeTarget({ nqn: nqnArg, nvmeAddress: "127.0.0.1", nvmePort: "4420", ctrlLossTmo: "30", reconnectDelay: "1", nguid }))
  const noRetry = () => Effect.void

  yield* step("nvme version", cli.version, (v) => v)
  yield* step("missing mount tools", mounter.missingTools, (t) => JSON.stringify(t)).pipe(Effect.tap((t) => check(t.length === 0, "all mount tools present")))
  yield* step("fabrics available", sysfs.fabricsAvailable, String)

  // The health monitor reads sysfs afresh when the device nodes' version moves: the kernel's
  // devtmpfs must report the nodes a connect adds and a disconnect removes (inotify on /dev).
  const devices = yield* sysfs.deviceWatch
  const versionMoved = (from: string | undefined) =>
    Effect.gen(function*() {
      for (let i = 0; i < 100; i++) {
        const v = yield* devices.version
        if (v !== from) return v
        yield* Effect.sleep("50 millis")
      }
      return from
    })
  const beforeAttach = yield* devices.version
  yield* check(beforeAttach !== undefined, "/dev is watched")

  const attached = yield* step("attach (connect + wait for the namespace head)", transport.attach(target, noRetry), (a) =>
    `${a.device.name} ${a.device.devT} nsid=${a.device.nsid} ctrls=${a.device.controllers} connected=${a.connected} failed=${a.failedAttempts}`)
  const device = `/dev/${attached.device.name}`
  yield* check(attached.connected && attached.failedAttempts === 0 && attached.device.nguid === target.namespace.nguid, "fresh connection with the pinned nguid")
  const afterAttach = yield* step("device nodes' version after the connect", versionMoved(beforeAttach), (v) => `${beforeAttach} → ${v}`)
  yield* check(afterAttach !== undefined && afterAttach !== beforeAttach, "the connect's new device nodes moved the version")
  const again = yield* step("attach again (reuses the live controller)", transport.attach(target, noRetry), (a) => `connected=${a.connected}`)
  yield* check(!again.connected && again.device.devT === attached.device.devT, "reused, same device")
  yield* step("nvme connect again ('already connected' absorbed)", cli.connect({
    nqn: target.nqn, address: target.address, port: target.port, ctrlLossTmo: 30, reconnectDelay: 1,
    keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined
  }))
  const subs = yield* step("nvme list-subsys", cli.listSubsystems, (s) => JSON.stringify(s))
  yield* check(subs.some((s) => s.nqn === target.nqn && s.paths.some((p) => p.state === "live")), "list-subsys shows the live path")

  const probe = yield* step("blkid -p on the fresh namespace", mounter.probe(device), (o) => `exit ${o.exitCode} '${o.stdout.trim()}'`)
  yield* check(classifyProbe(probe)._tag === "Empty", "a fresh namespace is proven empty")
  const formatted = yield* step("ensureFilesystem ext4 (formats)", ensureFilesystem(device, "ext4"), (r) => `formatted=${r.formatted}`)
  yield* check(formatted.formatted, "formatted")
  const kept = yield* step("ensureFilesystem ext4 again (keeps it)", ensureFilesystem(device, "ext4"), (r) => `formatted=${r.formatted} ${r.verdict._tag}`)
  yield* check(!kept.formatted, "not formatted twice")
  const refused = yield* step("ensureFilesystem xfs on ext4 (refused)", Effect.flip(ensureFilesystem(device, "xfs")), (e) => e.message)
  yield* check(refused._tag === "FormatRefused", "refused")

  yield* step("mkdir staging", mounter.makeDirectory(STAGING))
  yield* step("mount staging", mounter.mount(device, STAGING, { fsType: "ext4", options: ["noatime"], bind: false, readOnly: false }))
  const staged = yield* step("mountinfo", mounter.mountinfo, (m) => JSON.stringify(m.findLast((e) => e.mountPoint === STAGING)))
  yield* check(staged.findLast((e) => e.mountPoint === STAGING)?.devT === attached.device.devT, "mountinfo dev_t is the device's")
  yield* step("deviceNumber of the device node", mounter.deviceNumber(device), String).pipe(Effect.tap((d) => check(d === attached.device.devT, "stat rdev = sysfs dev")))
  yield* step("write + fsync a file", Effect.sync(() => {
    const fd = fs.openSync(`${STAGING}/hello`, "w")
    fs.writeSync(fd, "hello from the live layers\n")
    fs.fsyncSync(fd)
    fs.closeSync(fd)
  }))
  yield* step("statfs", mounter.statfs(STAGING), (s) => `${s.totalBytes} total, ${s.usedBytes} used`)
  yield* step("mkdir publish", mounter.makeDirectory(PUBLISH))
  yield* step("bind publish read-only", mounter.mount(STAGING, PUBLISH, { fsType: undefined, options: [], bind: true, readOnly: true }))
  const pub = (yield* mounter.mountinfo).findLast((e) => e.mountPoint === PUBLISH)
  yield* check(pub?.mountOptions.includes("ro") === true && pub.devT === attached.device.devT, "the bind is read-only on the same device")
  yield* step("fileSystemDevice of the bind target (stat st_dev)", mounter.fileSystemDevice(PUBLISH), String).pipe(
    Effect.tap((d) => check(d === attached.device.devT, "st_dev through the bind = the namespace's sysfs dev (publish's check after binding)"))
  )
  yield* check(fs.readFileSync(`${PUBLISH}/hello`, "utf8").startsWith("hello"), "data visible through the bind")
  yield* step("holders of staging (none)", mounter.holders(STAGING), (h) => JSON.stringify(h)).pipe(Effect.tap((h) => check(h.length === 0, "nobody holds it")))
  yield* step("unmount publish", mounter.unmount(PUBLISH, false))
  yield* step("remove publish dir", mounter.removePath(PUBLISH))
  yield* step("unmount staging", mounter.unmount(STAGING, false))
  const notMounted = yield* step("unmount staging again (NotMounted)", Effect.flip(mounter.unmount(STAGING, false)), (e) => e.reason)
  yield* check(notMounted.reason === "NotMounted", "NotMounted")

  yield* step("stage record put/get/list", Effect.gen(function*() {
    yield* store.put({
      version: 1, volumeId: "smoke", stagingPath: STAGING, nqn: target.nqn, address: target.address, port: target.port,
      ctrlLossTmo: 30, reconnectDelay: 1, selector: { nguid },
      device: { name: attached.device.name, devT: attached.device.devT, identity: { nsid: attached.device.nsid } },
      accessType: "Mount", fsType: "ext4", mountFlags: [], readOnly: false, connectedByPlugin: true, complete: true, publishedTargets: [],
      stagedAt: new Date().toISOString()
    })
    const back = yield* store.get("smoke")
    const all = yield* store.list
    yield* check(back?.device.devT === attached.device.devT && all.length === 1, "record read back")
  }))

  yield* Effect.sleep("200 millis") // the record writes and mounts above touch no device node; let any late event land
  const beforeDetach = yield* devices.version
  yield* step("detach (disconnect + wait until sysfs shows none)", transport.detach(target.nqn))
  const afterDetach = yield* step("device nodes' version after the disconnect", versionMoved(beforeDetach), (v) => `${beforeDetach} → ${v}`)
  yield* check(afterDetach !== undefined && afterDetach !== beforeDetach, "the disconnect's removed device nodes moved the version")
  const after = yield* step("snapshot after detach", sysfs.snapshot, (s) => `${s.controllers.length} controllers, ${s.namespaces.length} namespaces`)
  yield* check(!after.controllers.some((c) => c.subsysnqn === target.nqn), "no controller left")
  yield* step("nvme list-subsys after detach", cli.listSubsystems, (s) => JSON.stringify(s))

  const refusedConnect = yield* step("connect to a closed port (Unreachable)", Effect.flip(cli.connect({
    nqn: target.nqn, address: "127.0.0.1", port: 4421, ctrlLossTmo: 30, reconnectDelay: 1,
    keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined
  })), (e) => `${e.reason}: ${e.detail}`)
  yield* check(refusedConnect.reason === "Unreachable", "Unreachable")
})

const exit = await Effect.runPromiseExit(program.pipe(Effect.scoped, Effect.provide(services)))
const result = { ok: exit._tag === "Success", totalMs: Math.round(performance.now() - startedAt), steps, error: exit._tag === "Failure" ? String(exit.cause) : undefined }
fs.writeFileSync(resultFile, JSON.stringify(result, null, 2) + "\n")
for (const s of steps) console.log(`[guest] ${s.ok ? "ok  " : "FAIL"} ${String(s.ms).padStart(5)} ms  ${s.name}${s.detail ? `: ${s.detail.slice(0, 200)}` : ""}`)
if (!result.ok) console.log(`[guest] error: ${result.error}`)
process.exit(result.ok ? 0 : 1)
