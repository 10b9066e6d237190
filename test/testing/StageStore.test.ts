import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Mounter } from "../../src/mount/Mounter.ts"
import { StageStore, type StageRecord } from "../../src/node/StageStore.ts"
import { NvmeTransport } from "../../src/nvme/NvmeTransport.ts"
import { Sysfs } from "../../src/nvme/Sysfs.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { KernelModel, serviceLayers, Signature, StageStoreMemory, stateLayers } from "../../src/testing/index.ts"
import { ADDR, GiB, NQN, PORT, STAGING, target } from "./fixtures.ts"

const record = (volumeId: string): StageRecord => ({
  version: 1,
  volumeId,
  stagingPath: STAGING,
  nqn: NQN,
  address: ADDR,
  port: PORT,
  ctrlLossTmo: -1,
  reconnectDelay: 5,
  selector: {},
  device: { name: "nvme0n1", devT: "259:1", identity: { nsid: 1, nguid: "0123456789abcdef0123456789abcdef" } },
  accessType: "Mount",
  fsType: "ext4",
  mountFlags: [],
  readOnly: false,
  connectedByPlugin: true,
  complete: true,
  publishedTargets: [{ path: "/var/lib/kubelet/pods/u/volumes/x/mount", readOnly: false }],
  stagedAt: "2026-11-26T10:00:00.000Z"
})

// What a plugin process builds: the services over the shared state, plus the real transport.
const plugin = NvmeTransport.layer.pipe(Layer.provideMerge(serviceLayers), Layer.provideMerge(Settings.layer(testSettings())))

describe("StageStore test layer", () => {
  it.effect("put, get, list, remove round-trip through the schema as JSON text", () =>
    Effect.gen(function*() {
      const store = yield* StageStore
      yield* store.put(record("pvc-2"))
      yield* store.put(record("pvc-1"))
      assert.deepStrictEqual(yield* store.get("pvc-1"), record("pvc-1"))
      assert.deepStrictEqual((yield* store.list).map((r) => r.volumeId), ["pvc-1", "pvc-2"])
      assert.strictEqual(JSON.parse((yield* (yield* StageStoreMemory).files).get("pvc-1")!).device.devT, "259:1")
      yield* store.remove("pvc-1")
      yield* store.remove("pvc-1")
      assert.isUndefined(yield* store.get("pvc-1"))
    }).pipe(Effect.provide(plugin), Effect.provide(stateLayers)))

  it.effect("an unreadable record fails get and list (naming it) instead of being skipped; injected failures are one-shot", () =>
    Effect.gen(function*() {
      const store = yield* StageStore
      const memory = yield* StageStoreMemory
      yield* store.put(record("pvc-1"))
      yield* memory.writeRaw("pvc-bad", "{\"version\": 2")
      assert.strictEqual((yield* Effect.flip(store.get("pvc-bad"))).operation, "read")
      const listed = yield* Effect.flip(store.list)
      assert.strictEqual(listed.operation, "list")
      assert.match(listed.detail, /pvc-bad/)
      yield* memory.writeRaw("pvc-bad", JSON.stringify({ ...record("pvc-bad"), version: 2 }))
      assert.match((yield* Effect.flip(store.list)).detail, /pvc-bad/)
      yield* store.remove("pvc-bad")
      yield* memory.fail("write", "ENOSPC")
      assert.strictEqual((yield* Effect.flip(store.put(record("pvc-3")))).detail, "ENOSPC")
      yield* store.put(record("pvc-3"))
      assert.strictEqual((yield* store.list).length, 2)
    }).pipe(Effect.provide(plugin), Effect.provide(stateLayers)))

  it.effect("a simulated restart (plugin layers rebuilt, kernel and store kept) sees the records, the mounts and the connections", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN, namespaces: [{ nsid: 1, sizeBytes: GiB, signature: Signature.filesystem("ext4", "u", 0) }] })
      // First life: connect, mount, record.
      yield* Effect.gen(function*() {
        const { device } = yield* (yield* NvmeTransport).attach(target(), () => Effect.void)
        const m = yield* Mounter
        yield* m.makeDirectory(STAGING)
        yield* m.mount(`/dev/${device.name}`, STAGING, { fsType: "ext4", options: [], bind: false, readOnly: false })
        yield* (yield* StageStore).put(record("pvc-1"))
      }).pipe(Effect.provide(plugin))
      // Second life: nothing carried over but what the kernel and the state files hold.
      yield* Effect.gen(function*() {
        assert.deepStrictEqual((yield* (yield* StageStore).list).map((r) => r.volumeId), ["pvc-1"])
        assert.strictEqual((yield* (yield* Mounter).mountinfo).find((e) => e.mountPoint === STAGING)?.devT, "259:1")
        assert.deepStrictEqual((yield* (yield* Sysfs).snapshot).controllers.map((c) => [c.name, c.state]), [["nvme0", "live"]])
        assert.isFalse((yield* (yield* NvmeTransport).attach(target(), () => Effect.void)).connected)
      }).pipe(Effect.provide(plugin))
    }).pipe(Effect.provide(stateLayers)))
})
