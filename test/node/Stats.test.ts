/**
 * NodeGetVolumeStats over the in-memory kernel: a volume path that does not exist is
 * VolumeNotFound (gRPC NOT_FOUND), in raw block mode as in file system mode.
 */
import { assert, describe, it } from "@effect/vitest"
import { status } from "@grpc/grpc-js"
import { Effect } from "effect"
import type { HostPath } from "../../src/domain/Paths.ts"
import type { VolumeCapability } from "../../src/domain/Volume.ts"
import { statusOf } from "../../src/csi/GrpcStatus.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { ADDRESS, block, ext4, nqnOf, plugin, PORT, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf } from "./harness.ts"

const GiB = 1024 ** 3

const run = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  body.pipe(Effect.provide(plugin()), Effect.provide(stateLayer)) as Effect.Effect<A, E>

/** Exports volume `n`, stages it with `capability` and publishes it to pod 0. */
const stagedAndPublished = (n: number, capability: VolumeCapability) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    const volumes = yield* NodeVolumes
    yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(n), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
    yield* volumes.stage(stageRequest(n, capability))
    yield* volumes.publish({ volumeId: volumeIdOf(n), stagingPath: stagingOf(n), targetPath: targetOf(n), capability, readOnly: false })
  })

/** What kubelet (or an operator) removing a target behind the plugin's back leaves: nothing at the path. */
const removeBehindOurBack = (path: HostPath) =>
  Effect.gen(function*() {
    const mounter = yield* Mounter
    yield* mounter.unmount(path, false)
    yield* mounter.removePath(path)
    assert.strictEqual(yield* mounter.pathKind(path), "missing")
  })

/** Stats of volume `n` at `path`, expected to fail NOT_FOUND naming the path. */
const expectNotFound = (n: number, path: HostPath) =>
  Effect.gen(function*() {
    const volumes = yield* NodeVolumes
    const error = yield* Effect.flip(volumes.stats({ volumeId: volumeIdOf(n), volumePath: path }))
    assert.strictEqual(error._tag, "VolumeNotFound")
    assert.include(error.message, `volume path ${path} does not exist`)
    assert.strictEqual(statusOf(error).code, status.NOT_FOUND)
  })

describe("NodeVolumes.stats: the volume path must exist", () => {
  it.effect("raw block: a published target that is gone is NOT_FOUND, not the device's size", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* stagedAndPublished(1, block)
      const stats = yield* volumes.stats({ volumeId: volumeIdOf(1), volumePath: targetOf(1) })
      assert.deepStrictEqual(stats.usage, { _tag: "Block", totalBytes: GiB })
      yield* removeBehindOurBack(targetOf(1))
      yield* expectNotFound(1, targetOf(1))
    })))

  it.effect("raw block: a staging path that was never created is NOT_FOUND", () =>
    run(Effect.gen(function*() {
      yield* stagedAndPublished(1, block)
      assert.strictEqual(yield* (yield* Mounter).pathKind(stagingOf(1)), "missing")
      yield* expectNotFound(1, stagingOf(1))
    })))

  it.effect("file system: a published target that is gone is NOT_FOUND naming the path", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* stagedAndPublished(1, ext4)
      assert.strictEqual((yield* volumes.stats({ volumeId: volumeIdOf(1), volumePath: targetOf(1) })).usage?._tag, "Filesystem")
      yield* removeBehindOurBack(targetOf(1))
      yield* expectNotFound(1, targetOf(1))
      // the staging mount is untouched and still answers
      assert.strictEqual((yield* volumes.stats({ volumeId: volumeIdOf(1), volumePath: stagingOf(1) })).usage?._tag, "Filesystem")
    })))
})
