/**
 * NodePublishVolume checks what its bind reached, by number, as the pod will open it (stat of
 * the target: the file system's st_dev, or the bound node's rdev for raw block). Here the bind
 * of volume 1 lands on volume 2's disk (what a renumbering between the identity check and the
 * bind would do): publish must undo it and refuse, and record no published target.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import { entryAt } from "../../src/node/MountOps.ts"
import { nodeLayer } from "../../src/node/NodeLayer.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { StageStore } from "../../src/node/StageStore.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { KernelModel, MounterTest, NvmeCliTest, StageStoreTest, SysfsTest } from "../../src/testing/index.ts"
import type { VolumeCapability } from "../../src/domain/Volume.ts"
import { ADDRESS, block, ext4, nqnOf, PORT, publishRequest, RecordedEvents, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf } from "./harness.ts"

const GiB = 1024 ** 3

/** The model's Mounter, except that a bind of volume 1 (its staging path or its device node) binds volume 2's. */
const misbinding = Layer.effect(
  Mounter,
  Effect.gen(function*() {
    const inner = yield* Mounter
    const k = yield* KernelModel
    return Mounter.of({
      ...inner,
      mount: (source, target, options) =>
        Effect.gen(function*() {
          if (!options.bind) return yield* inner.mount(source, target, options)
          const one = yield* k.deviceOf(nqnOf(1))
          const two = yield* k.deviceOf(nqnOf(2))
          const swapped = source === stagingOf(1) ? stagingOf(2) : source === `/dev/${one?.name}` ? `/dev/${two?.name}` : source
          return yield* inner.mount(swapped, target, options)
        })
    })
  })
).pipe(Layer.provide(MounterTest.layer))

const run = <A, E>(body: Effect.Effect<A, E, any>) => {
  const settings = testSettings({})
  const poster = Layer.unwrap(Effect.gen(function*() {
    return EventPoster.layerRecording(settings.nodeId, yield* RecordedEvents)
  }))
  const host = Layer.mergeAll(NvmeCliTest.layer, SysfsTest.layer, misbinding, StageStoreTest.layer)
  const plugin = nodeLayer(host, poster).pipe(Layer.provideMerge(Settings.layer(settings)))
  return body.pipe(Effect.provide(plugin), Effect.provide(stateLayer)) as Effect.Effect<A, E>
}

const refusesTheWrongDisk = (capability: VolumeCapability) =>
  run(Effect.gen(function*() {
    const k = yield* KernelModel
    const volumes = yield* NodeVolumes
    const mounter = yield* Mounter
    for (const n of [1, 2]) {
      yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(n), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
      yield* volumes.stage(stageRequest(n, capability))
    }
    const two = yield* k.deviceOf(nqnOf(2))
    const refused = yield* Effect.flip(volumes.publish(publishRequest(1, 0, capability)))
    assert.strictEqual(refused._tag, "SafetyRefusal")
    assert.include(refused.message, `reached ${two?.devT}`)
    assert.isUndefined(entryAt(yield* mounter.mountinfo, targetOf(1, 0)), "the wrong bind is undone")
    assert.deepStrictEqual((yield* (yield* StageStore).get(volumeIdOf(1)))?.publishedTargets, [], "and not recorded")
  }))

describe("publish verifies the bind by number", () => {
  it.effect("a file system bind that reached another volume's disk: unbound, refused, not recorded", () => refusesTheWrongDisk(ext4))
  it.effect("a raw block bind that reached another volume's disk: unbound, refused, not recorded", () => refusesTheWrongDisk(block))
})
