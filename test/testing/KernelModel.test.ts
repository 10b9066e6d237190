import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { Nqn } from "../../src/domain/Ids.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import { DeviceResolver } from "../../src/nvme/DeviceResolver.ts"
import { NvmeCli } from "../../src/nvme/NvmeCli.ts"
import { classifyConnect } from "../../src/nvme/NvmeCliLive.ts"
import { NvmeTransport } from "../../src/nvme/NvmeTransport.ts"
import { Sysfs } from "../../src/nvme/Sysfs.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { ADDR, env, envWith, GiB, NQN, NQN2, PORT, target } from "./fixtures.ts"

const noop = () => Effect.void
const exportVolume = (nqn = NQN) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn, namespaces: [{ nsid: 1, nguid: "0123456789abcdef0123456789abcdef", sizeBytes: GiB }] })
  })

describe("KernelModel: connect and resolve through the real NvmeTransport and DeviceResolver", () => {
  it.effect("a connect yields nvme0, nvme-subsys0 and the multipath head nvme0n1 (259:1 after its hidden path)", () =>
    Effect.gen(function*() {
      yield* exportVolume()
      const attached = yield* (yield* NvmeTransport).attach(target(), noop)
      assert.strictEqual(attached.device.name, "nvme0n1")
      assert.strictEqual(attached.device.devT, "259:1")
      assert.strictEqual(attached.device.nguid, "0123456789abcdef0123456789abcdef")
      assert.deepStrictEqual(attached.device.controllers, ["nvme0"])
      assert.isTrue(attached.connected)
      const snap = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual(snap.controllers.map((c) => [c.name, c.state, c.subsystem, c.traddr, c.trsvcid]), [["nvme0", "live", "nvme-subsys0", ADDR, "4420"]])
      const resolved = yield* (yield* DeviceResolver).resolve(NQN as Nqn, target().namespace)
      assert.strictEqual(resolved.name, "nvme0n1")
      assert.strictEqual(yield* (yield* Sysfs).blockDevT("nvme0n1"), "259:1")
      assert.strictEqual(yield* (yield* Sysfs).blockDevT("nvme0c0n1"), undefined, "the per-path device is hidden")
    }).pipe(Effect.provide(env)))

  it.effect("attaching again reuses the connection; a second NQN gets the next numbers", () =>
    Effect.gen(function*() {
      yield* exportVolume()
      yield* exportVolume(NQN2)
      const transport = yield* NvmeTransport
      yield* transport.attach(target(), noop)
      const again = yield* transport.attach(target(), noop)
      assert.isFalse(again.connected)
      const second = yield* transport.attach(target(NQN2), noop)
      assert.strictEqual(second.device.name, "nvme1n1")
      assert.strictEqual(second.device.devT, "259:3")
      const view = yield* (yield* KernelModel).view
      assert.deepStrictEqual(view.controllers.map((c) => c.name), ["nvme0", "nvme1"])
    }).pipe(Effect.provide(env)))

  it.effect("nvme-cli absorbs 'already connected' without a new controller", () =>
    Effect.gen(function*() {
      yield* exportVolume()
      const cli = yield* NvmeCli
      const args = { nqn: NQN as Nqn, address: ADDR, port: PORT, ctrlLossTmo: -1, reconnectDelay: 5, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined }
      yield* cli.connect(args)
      yield* cli.connect(args)
      const subs = yield* cli.listSubsystems
      assert.deepStrictEqual(subs, [{ nqn: NQN, name: "nvme-subsys0", paths: [{ name: "nvme0", transport: "tcp", address: `traddr=${ADDR},trsvcid=${PORT}`, state: "live" }] }])
    }).pipe(Effect.provide(env)))

  it.effect("connect failures: unknown address and down link are Unreachable, an unexported NQN is Failed, injected ones are one-shot", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const cli = yield* NvmeCli
      const args = (nqn: string, address = ADDR) => ({ nqn: nqn as Nqn, address, port: PORT, ctrlLossTmo: -1, reconnectDelay: 5, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
      yield* exportVolume()
      const unknown = yield* Effect.flip(cli.connect(args(NQN, "10.9.9.9")))
      assert.strictEqual(unknown.reason, "Unreachable")
      assert.match(unknown.detail, /failed to write to nvme-fabrics device/)
      const noSuchNqn = yield* Effect.flip(cli.connect(args(NQN2)))
      assert.strictEqual(noSuchNqn.reason, "Failed")
      // The live wrapper, reading the same stderr, must reach the same verdict.
      for (const e of [unknown, noSuchNqn]) {
        const verdict = classifyConnect({ exitCode: e.exitCode ?? 1, stdout: "", stderr: e.detail })
        assert.strictEqual(verdict._tag === "Failed" ? verdict.reason : verdict._tag, e.reason)
      }
      yield* k.linkDown(ADDR, PORT)
      assert.strictEqual((yield* Effect.flip(cli.connect(args(NQN)))).reason, "Unreachable")
      yield* k.linkUp(ADDR, PORT)
      yield* k.failNvme("connect", { reason: "Timeout", detail: "nvme connect did not return" })
      assert.strictEqual((yield* Effect.flip(cli.connect(args(NQN)))).reason, "Timeout")
      yield* cli.connect(args(NQN))
      assert.strictEqual((yield* k.view).controllers.length, 1)
    }).pipe(Effect.provide(env)))

  it.effect("traddr is recorded as given; a host name is EINVAL like the kernel's 'malformed address' (the model resolves no names)", () =>
    Effect.gen(function*() {
      yield* exportVolume()
      const cli = yield* NvmeCli
      const args = (address: string) => ({ nqn: NQN as Nqn, address, port: PORT, ctrlLossTmo: -1, reconnectDelay: 5, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
      const named = yield* Effect.flip(cli.connect(args("rds.example.com")))
      assert.strictEqual(named.reason, "Failed")
      assert.match(named.detail, /Invalid argument/)
      assert.deepStrictEqual((yield* (yield* KernelModel).view).controllers, [])
      yield* cli.connect(args(ADDR))
      const snap = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual(snap.controllers.map((c) => c.traddr), [ADDR])
    }).pipe(Effect.provide(env)))

  // The kernel echoes traddr as nvme-cli gave it and its duplicate check compares strings: a
  // controller made with another spelling of the address must still be found, not doubled.
  it.effect("IPv6: a controller connected as 'FD00:0::5' is reused by a volume whose context says '[fd00:0:0::5]'", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const v6 = "FD00:0::5"
      yield* k.exportSubsystem({ address: v6, port: PORT, nqn: NQN, namespaces: [{ nsid: 1, nguid: "0123456789abcdef0123456789abcdef", sizeBytes: GiB }] })
      const cli = yield* NvmeCli
      yield* cli.connect({ nqn: NQN as Nqn, address: v6, port: PORT, ctrlLossTmo: -1, reconnectDelay: 5, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
      const snap = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual(snap.controllers.map((c) => c.traddr), ["fd00::5"], "Sysfs reports traddr in canonical form")
      const t = target(NQN, { nvmeAddress: "[fd00:0:0::5]" })
      assert.strictEqual(t.address, "fd00::5")
      const attached = yield* (yield* NvmeTransport).attach(t, noop)
      assert.isFalse(attached.connected, "the existing controller is the volume's")
      assert.strictEqual(attached.device.name, "nvme0n1")
      assert.deepStrictEqual((yield* k.view).controllers.map((c) => c.name), ["nvme0"])
      // The network's view: the link of that portal, by any spelling, reaches the controller.
      yield* k.linkDown("fd00::5", PORT)
      assert.deepStrictEqual((yield* (yield* Sysfs).snapshot).controllers.map((c) => c.state), ["connecting"])
      yield* k.linkUp("fd00:0:0:0:0:0:0:5", PORT)
      assert.deepStrictEqual((yield* (yield* Sysfs).snapshot).controllers.map((c) => c.state), ["live"])
    }).pipe(Effect.provide(env)))

  it.effect("disconnect by NQN removes every controller; disconnecting what is gone is success", () =>
    Effect.gen(function*() {
      yield* exportVolume()
      const transport = yield* NvmeTransport
      yield* transport.attach(target(), noop)
      yield* transport.detach(NQN as Nqn)
      const cli = yield* NvmeCli
      yield* cli.disconnect(NQN as Nqn)
      yield* cli.disconnectController("nvme7")
      const view = yield* (yield* KernelModel).view
      assert.deepStrictEqual([view.controllers, view.subsystems, view.devices], [[], [], []])
    }).pipe(Effect.provide(env)))
})

describe("KernelModel: faults", () => {
  it.effect("link down then up keeps controller and device names; I/O blocks meanwhile", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* exportVolume()
      const { device } = yield* (yield* NvmeTransport).attach(target(), noop)
      yield* k.linkDown(ADDR, PORT)
      const down = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual(down.controllers.map((c) => c.state), ["connecting"])
      assert.deepStrictEqual(down.namespaces.map((n) => [n.name, n.devT]), [["nvme0n1", device.devT]], "the head stays while the kernel reconnects")
      const transitions = (yield* k.log).filter((e) => e.what === "controller").map((e) => `${e.subject}: ${e.change}`)
      assert.includeMembers(transitions, ["nvme0: live -> resetting", "nvme0: resetting -> connecting"])
      yield* k.linkUp(ADDR, PORT)
      const up = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual(up.controllers.map((c) => [c.name, c.state]), [["nvme0", "live"]])
      assert.deepStrictEqual(up.namespaces.map((n) => [n.name, n.devT]), [["nvme0n1", "259:1"]])
    }).pipe(Effect.provide(env)))

  it.effect("target gone: controllers reconnect in vain until it exports again", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* exportVolume()
      yield* (yield* NvmeTransport).attach(target(), noop)
      yield* k.unexportSubsystem(ADDR, PORT, NQN)
      yield* k.linkDown(ADDR, PORT)
      yield* k.linkUp(ADDR, PORT)
      assert.deepStrictEqual((yield* k.view).controllers.map((c) => c.state), ["connecting"])
      yield* exportVolume()
      assert.deepStrictEqual((yield* k.view).controllers.map((c) => c.state), ["live"])
    }).pipe(Effect.provide(env)))

  it.effect("loss + reconnect with a mount holding the head: nvme1, nvme0n2, a new dev_t, and the old mount stale", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* exportVolume()
      yield* k.setNamespaceContent(NQN, 1, { signature: { _tag: "Filesystem", fsType: "ext4", uuid: "u-1", sizeBytes: GiB }, files: { "/db": "rows" } })
      const transport = yield* NvmeTransport
      const first = yield* transport.attach(target(), noop)
      const staging = "/var/lib/kubelet/staging/pvc-1"
      const { makeDirectory, mount, mountinfo } = yield* Mounter
      yield* makeDirectory(staging)
      yield* mount(`/dev/${first.device.name}`, staging, { fsType: "ext4", options: [], bind: false, readOnly: false })
      assert.strictEqual(yield* k.readFile(`${staging}/db`), "rows")

      assert.strictEqual(yield* k.loseControllers(NQN), 1)
      const lost = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual([lost.controllers, lost.namespaces], [[], []])
      assert.strictEqual((yield* Effect.flip(k.readFile(`${staging}/db`))).errno, "EIO")

      const second = yield* transport.attach(target(), noop)
      assert.strictEqual(second.device.name, "nvme0n2")
      assert.strictEqual(second.device.devT, "259:2")
      assert.deepStrictEqual(second.device.controllers, ["nvme1"])
      const staged = (yield* mountinfo).find((m) => m.mountPoint === staging)!
      assert.strictEqual(staged.devT, "259:1")
      assert.notStrictEqual(staged.devT, second.device.devT, "the staged mount is stale: its dev_t is not the NQN's device")
      const view = yield* k.view
      assert.isTrue(view.mounts.find((m) => m.mountPoint === staging)!.stale)
      assert.deepStrictEqual(view.subsystems.map((s) => [s.name, s.controllers]), [["nvme-subsys0", ["nvme1"]]])
      assert.deepStrictEqual((yield* k.namespace(NQN)).files, { "/db": "rows" }, "content lives with the target")
    }).pipe(Effect.provide(env)))

  it.effect("loss + reconnect with nothing holding the device: the numbers are free again (nvme0, nvme0n1)", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* exportVolume()
      const transport = yield* NvmeTransport
      yield* transport.attach(target(), noop)
      yield* k.loseControllers(NQN)
      const again = yield* transport.attach(target(), noop)
      assert.deepStrictEqual([again.device.name, again.device.devT, again.device.controllers], ["nvme0n1", "259:1", ["nvme0"]])
    }).pipe(Effect.provide(env)))

  it.effect("two portals to one subsystem: one head with two paths; I/O survives one link going down", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const cli = yield* NvmeCli
      const ns = [{ nsid: 1, sizeBytes: GiB, signature: { _tag: "Filesystem", fsType: "ext4", uuid: "u", sizeBytes: 0 } as const, files: { "/f": "v" } }]
      yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN, namespaces: ns })
      yield* k.exportSubsystem({ address: "10.0.1.5", port: PORT, nqn: NQN })
      const args = (address: string) => ({ nqn: NQN as Nqn, address, port: PORT, ctrlLossTmo: -1, reconnectDelay: 5, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
      yield* cli.connect(args(ADDR))
      yield* cli.connect(args("10.0.1.5"))
      const snap = yield* (yield* Sysfs).snapshot
      assert.deepStrictEqual(snap.namespaces.map((n) => [n.name, n.controllers]), [["nvme0n1", ["nvme0", "nvme1"]]])
      const m = yield* Mounter
      yield* m.makeDirectory("/var/lib/kubelet/mp")
      yield* m.mount("/dev/nvme0n1", "/var/lib/kubelet/mp", { fsType: "ext4", options: [], bind: false, readOnly: false })
      yield* k.linkDown(ADDR, PORT)
      assert.strictEqual(yield* k.readFile("/var/lib/kubelet/mp/f"), "v")
      yield* k.loseControllers(NQN)
      assert.strictEqual((yield* Effect.flip(k.readFile("/var/lib/kubelet/mp/f"))).errno, "EIO")
    }).pipe(Effect.provide(env)))

  it.effect("multipath off: the device is nvme<ctrl>n<nsid> and renumbers with the controller", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* exportVolume()
      yield* k.setNamespaceContent(NQN, 1, { signature: { _tag: "Filesystem", fsType: "xfs", uuid: "u-2", sizeBytes: GiB } })
      const transport = yield* NvmeTransport
      const first = yield* transport.attach(target(), noop)
      assert.deepStrictEqual([first.device.name, first.device.devT], ["nvme0n1", "259:0"])
      yield* k.syscall((s) => {
        s.paths.set("/mnt", "directory")
      })
      yield* (yield* Mounter).mount("/dev/nvme0n1", "/mnt", { fsType: undefined, options: [], bind: false, readOnly: false })
      yield* k.loseControllers(NQN)
      const second = yield* transport.attach(target(), noop)
      assert.deepStrictEqual([second.device.name, second.device.devT], ["nvme1n1", "259:1"])
    }).pipe(Effect.provide(envWith({ multipath: false }))))

  it.effect("a forced transient state shows in sysfs, and attach waits (bounded) instead of opening a second path", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* exportVolume()
      const transport = yield* NvmeTransport
      yield* transport.attach(target(), noop)
      yield* k.setControllerState("nvme0", "resetting")
      assert.deepStrictEqual((yield* (yield* Sysfs).snapshot).controllers.map((c) => c.state), ["resetting"])
      const pending = yield* Effect.forkChild(Effect.flip(transport.attach(target(), noop)))
      yield* TestClock.adjust("6 seconds")
      const failed = yield* Fiber.join(pending)
      assert.strictEqual(failed._tag, "ConnectFailed")
      assert.match(failed.message, /nvme0 resetting/)
      assert.deepStrictEqual((yield* k.view).controllers.map((c) => c.name), ["nvme0"], "no second path was opened")
      yield* k.failSysfs("EIO reading /sys/class/nvme/nvme0/state")
      assert.strictEqual((yield* Effect.flip((yield* Sysfs).snapshot))._tag, "SysfsError")
    }).pipe(Effect.provide(env)))
})
