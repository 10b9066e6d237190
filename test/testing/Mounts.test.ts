import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Mounter } from "../../src/mount/Mounter.ts"
import { NvmeTransport } from "../../src/nvme/NvmeTransport.ts"
import { BlkidFault, KernelModel, Signature } from "../../src/testing/index.ts"
import { ADDR, env, GiB, NQN, PORT, STAGING, target } from "./fixtures.ts"

const FS = { fsType: "ext4", options: [], bind: false, readOnly: false } as const
const BIND = { fsType: undefined, options: [], bind: true, readOnly: false } as const
const PUBLISH = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pvc-1/mount"
const BLOCK = "/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-1/uid-1"

/** Exports NQN with `signature` and `files`, attaches it, returns `/dev/<head>`. */
const attached = (signature: Signature = Signature.empty, files: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN, namespaces: [{ nsid: 1, sizeBytes: GiB, signature, files }] })
    const { device } = yield* (yield* NvmeTransport).attach(target(), () => Effect.void)
    return `/dev/${device.name}`
  })

const ext4 = Signature.filesystem("ext4", "a1b2c3d4-0000-4000-8000-000000000001", 0)

describe("blkid and mkfs", () => {
  it.effect("blkid -p reports the namespace's real content", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached()
      const m = yield* Mounter
      assert.deepStrictEqual(yield* m.probe(dev), { exitCode: 2, stdout: "", stderr: "" })
      yield* k.setNamespaceContent(NQN, 1, { signature: ext4 })
      const fs = yield* m.probe(dev)
      assert.strictEqual(fs.exitCode, 0)
      assert.match(fs.stdout, /^DEVNAME=\/dev\/nvme0n1\nUUID=a1b2c3d4-0000-4000-8000-000000000001\n.*TYPE=ext4\n/s)
      yield* k.setNamespaceContent(NQN, 1, { signature: Signature.partitionTable("gpt") })
      assert.match((yield* m.probe(dev)).stdout, /PTTYPE=gpt/)
      const missing = yield* m.probe("/dev/nvme9n9")
      assert.deepStrictEqual([missing.exitCode, missing.stdout], [2, ""], "blkid says 2 for a device it cannot open, too")
      assert.match(missing.stderr, /No such file or directory/)
    }).pipe(Effect.provide(env)))

  it.effect("injected blkid faults hit the next N probes in order, then the truth returns; 'always' stays", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(ext4)
      const m = yield* Mounter
      yield* k.injectBlkid(BlkidFault.exit(4), 2)
      yield* k.injectBlkid(BlkidFault.exit(2, "TYPE=ext4\n"))
      yield* k.injectBlkid(BlkidFault.garbage)
      yield* k.injectBlkid(BlkidFault.timeout)
      assert.strictEqual((yield* m.probe(dev)).exitCode, 4)
      assert.strictEqual((yield* m.probe(dev)).exitCode, 4)
      assert.deepStrictEqual(yield* m.probe(dev), { exitCode: 2, stdout: "TYPE=ext4\n", stderr: "blkid: probing failed (exit 2)" })
      assert.notMatch((yield* m.probe(dev)).stdout, /TYPE=/)
      const timeout = yield* Effect.flip(m.probe(dev))
      assert.deepStrictEqual([timeout.reason, timeout.operation], ["Timeout", "blkid"])
      assert.match((yield* m.probe(dev)).stdout, /TYPE=ext4/)
      yield* k.injectBlkid(BlkidFault.exit(8), "always")
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* m.probe(dev)).exitCode, 8)
      yield* k.clearFaults
      assert.strictEqual((yield* m.probe(dev)).exitCode, 0)
    }).pipe(Effect.provide(env)))

  it.effect("mkfs writes a signature, clears the files, is logged, and refuses a mounted device", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(Signature.filesystem("xfs", "old", 0), { "/a": "1", "/b": "2" })
      const m = yield* Mounter
      yield* m.mkfs(dev, "ext4")
      const ns = yield* k.namespace(NQN)
      assert.deepStrictEqual([ns.signature._tag, ns.signature._tag === "Filesystem" && ns.signature.fsType, ns.files], ["Filesystem", "ext4", {}])
      const [record] = yield* k.mkfsLog
      assert.deepStrictEqual([record?.device, record?.fsType, record?.outcome, record?.previous?._tag, record?.filesLost], ["/dev/nvme0n1", "ext4", "formatted", "Filesystem", 2])
      yield* m.makeDirectory(STAGING)
      yield* m.mount(dev, STAGING, FS)
      const busy = yield* Effect.flip(m.mkfs(dev, "ext4"))
      assert.deepStrictEqual([busy.reason, busy.exitCode], ["Busy", 1])
      assert.deepStrictEqual((yield* k.mkfsLog).map((r) => [r.outcome, r.filesLost]), [["formatted", 2], ["failed", 0]])
      yield* k.failMount("mkfs", { reason: "Failed", detail: "mkfs.ext4: injected" })
      assert.strictEqual((yield* Effect.flip(m.mkfs(dev, "ext4"))).detail, "mkfs.ext4: injected")
      assert.deepStrictEqual((yield* k.mkfsLog)[2]?.detail, "mkfs.ext4: injected", "injected failures are logged too")
    }).pipe(Effect.provide(env)))
})

describe("mounts", () => {
  it.effect("file system mount, bind, read-only bind: mountinfo fields and data through them", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(ext4, { "/data": "intact" })
      const m = yield* Mounter
      yield* m.makeDirectory(STAGING)
      yield* m.makeDirectory(PUBLISH)
      yield* m.mount(dev, STAGING, { ...FS, options: ["noatime", "data=ordered"] })
      yield* m.mount(STAGING, PUBLISH, { ...BIND, readOnly: true })
      const info = yield* m.mountinfo
      const staged = info.find((e) => e.mountPoint === STAGING)!
      const published = info.find((e) => e.mountPoint === PUBLISH)!
      assert.deepStrictEqual(
        [staged.devT, staged.root, staged.fsType, staged.source, staged.mountOptions, staged.superOptions],
        ["259:1", "/", "ext4", "/dev/nvme0n1", ["rw", "noatime"], ["rw", "data=ordered"]]
      )
      assert.deepStrictEqual([published.devT, published.root, published.mountOptions[0], published.parentId], ["259:1", "/", "ro", 22])
      assert.strictEqual(yield* k.readFile(`${PUBLISH}/data`), "intact")
      assert.strictEqual((yield* Effect.flip(k.writeFile(`${PUBLISH}/data`, "x"))).errno, "EROFS")
      yield* k.writeFile(`${STAGING}/new`, "row")
      assert.deepStrictEqual((yield* k.namespace(NQN)).files, { "/data": "intact", "/new": "row" })
      const stats = yield* m.statfs(PUBLISH)
      assert.deepStrictEqual([stats.totalBytes, stats.usedBytes], [GiB, 8192])
      yield* k.resizeNamespace(NQN, 1, 2 * GiB)
      assert.strictEqual(yield* m.deviceSize(dev), 2 * GiB)
      yield* m.resize(dev, "ext4", STAGING)
      assert.strictEqual((yield* m.statfs(STAGING)).totalBytes, 2 * GiB)
    }).pipe(Effect.provide(env)))

  it.effect("raw block publish: the row is devtmpfs's (root /nvme0n1), stat of the target gives the device's dev_t, kept after loss", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached()
      const m = yield* Mounter
      yield* m.makeFile(BLOCK)
      assert.strictEqual(yield* m.pathKind(BLOCK), "file")
      yield* m.mount(dev, BLOCK, BIND)
      const row = (yield* m.mountinfo).find((e) => e.mountPoint === BLOCK)!
      assert.deepStrictEqual([row.devT, row.root, row.fsType, row.source], ["0:5", "/nvme0n1", "devtmpfs", "udev"])
      assert.strictEqual(yield* m.pathKind(BLOCK), "blockDevice")
      assert.strictEqual(yield* m.deviceNumber(BLOCK), "259:1")
      yield* k.loseControllers(NQN)
      yield* (yield* NvmeTransport).attach(target(), () => Effect.void)
      assert.strictEqual(yield* m.deviceNumber(BLOCK), "259:1", "the bound inode keeps the old rdev: stale")
      assert.strictEqual(yield* m.deviceNumber("/dev/nvme0n2"), "259:2")
      const dirOnFile = yield* Effect.flip(m.mount(dev, STAGING, BIND))
      assert.strictEqual(dirOnFile.reason, "Failed")
    }).pipe(Effect.provide(env)))

  it.effect("unmount: NotMounted, Busy while held, lazy detaches but a held mount keeps its device (and the renumbering) alive", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(ext4)
      const m = yield* Mounter
      assert.strictEqual((yield* Effect.flip(m.unmount(STAGING, false))).reason, "NotMounted")
      yield* m.makeDirectory(STAGING)
      yield* m.mount(dev, STAGING, FS)
      yield* k.setHolders(`${STAGING}/dir`, [4242])
      assert.deepStrictEqual(yield* m.holders(STAGING), [4242])
      assert.strictEqual((yield* Effect.flip(m.unmount(STAGING, false))).reason, "Busy")
      assert.strictEqual((yield* Effect.flip(m.removePath(STAGING))).reason, "Busy")
      yield* k.loseControllers(NQN)
      yield* m.unmount(STAGING, true)
      assert.isUndefined((yield* m.mountinfo).find((e) => e.mountPoint === STAGING))
      const held = (yield* k.view).devices.find((d) => d.name === "nvme0n1")!
      assert.deepStrictEqual([held.present, held.heldBy], [false, [`${STAGING} (detached)`]])
      yield* k.setHolders(`${STAGING}/dir`, [])
      assert.isUndefined((yield* k.view).devices.find((d) => d.name === "nvme0n1"), "released with its last holder")
      const again = yield* (yield* NvmeTransport).attach(target(), () => Effect.void)
      assert.strictEqual(again.device.name, "nvme0n1")
      yield* m.removePath(STAGING)
      assert.strictEqual(yield* m.pathKind(STAGING), "missing")
    }).pipe(Effect.provide(env)))

  it.effect("while the link is down, I/O and mount block (Timeout); a stale mount gives Io on data and keeps statfs", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(ext4, { "/f": "v" })
      const m = yield* Mounter
      yield* m.makeDirectory(STAGING)
      yield* m.makeDirectory("/var/lib/kubelet/other")
      yield* m.mount(dev, STAGING, FS)
      yield* k.linkDown(ADDR, PORT)
      assert.strictEqual((yield* Effect.flip(m.mount(dev, "/var/lib/kubelet/other", FS))).reason, "Timeout")
      assert.strictEqual((yield* Effect.flip(k.readFile(`${STAGING}/f`))).errno, "ETIMEDOUT")
      yield* k.linkUp(ADDR, PORT)
      assert.strictEqual(yield* k.readFile(`${STAGING}/f`), "v")
      yield* k.loseControllers(NQN)
      assert.strictEqual((yield* Effect.flip(k.readFile(`${STAGING}/f`))).errno, "EIO")
      assert.strictEqual((yield* m.statfs(STAGING)).totalBytes, GiB)
      assert.isTrue((yield* k.view).mounts.find((x) => x.mountPoint === STAGING)!.stale)
      yield* m.unmount(STAGING, false)
      assert.deepStrictEqual((yield* k.view).devices, [], "an unmounted stale device is freed")
    }).pipe(Effect.provide(env)))

  it.effect("a wrong file-system type and injected tool failures map to MountError with the tool's exit code", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(ext4)
      const m = yield* Mounter
      yield* m.makeDirectory(STAGING)
      const wrong = yield* Effect.flip(m.mount(dev, STAGING, { ...FS, fsType: "xfs" }))
      assert.deepStrictEqual([wrong.reason, wrong.exitCode], ["Failed", 32])
      assert.match(wrong.detail, /wrong fs type/)
      yield* k.failMount("mount", { reason: "Failed", detail: "mount: permission denied" })
      assert.strictEqual((yield* Effect.flip(m.mount(dev, STAGING, FS))).detail, "mount: permission denied")
      yield* m.mount(dev, STAGING, FS)
      yield* k.setHost({ missingTools: ["mkfs.xfs"] })
      assert.deepStrictEqual(yield* m.missingTools, ["mkfs.xfs"])
    }).pipe(Effect.provide(env)))

  it.effect("read-only file-system mounts are made without replay (ext4 noload, xfs norecovery); xfs refuses norecovery read-write", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* attached(ext4, { "/f": "v" })
      const m = yield* Mounter
      const superOptionsAt = (p: string) => Effect.map(m.mountinfo, (info) => info.find((e) => e.mountPoint === p)?.superOptions)
      yield* m.makeDirectory(STAGING)
      yield* m.mount(dev, STAGING, { ...FS, readOnly: true })
      assert.deepStrictEqual(yield* superOptionsAt(STAGING), ["ro", "noload"])
      assert.strictEqual((yield* Effect.flip(k.writeFile(`${STAGING}/f`, "x"))).errno, "EROFS")
      yield* m.makeDirectory(PUBLISH)
      yield* m.mount(STAGING, PUBLISH, { ...BIND, readOnly: true })
      assert.deepStrictEqual((yield* m.mountinfo).find((e) => e.mountPoint === PUBLISH)?.mountOptions[0], "ro", "a bind takes no file-system option")
      yield* m.unmount(PUBLISH, false)
      yield* m.unmount(STAGING, false)
      yield* k.setNamespaceContent(NQN, 1, { signature: Signature.filesystem("xfs", "x1", 0) })
      const XFS = { ...FS, fsType: "xfs" } as const
      yield* m.mount(dev, STAGING, { ...XFS, readOnly: true })
      assert.deepStrictEqual(yield* superOptionsAt(STAGING), ["ro", "norecovery"])
      yield* m.unmount(STAGING, false)
      const rw = yield* Effect.flip(m.mount(dev, STAGING, { ...XFS, options: ["norecovery"] }))
      assert.deepStrictEqual([rw.reason, rw.exitCode], ["Failed", 32])
      yield* m.mount(dev, STAGING, XFS)
      assert.deepStrictEqual(yield* superOptionsAt(STAGING), ["rw"], "read-write replays as usual")
    }).pipe(Effect.provide(env)))
})
