/**
 * What the pod sees after a recovery (issue 10.3), on the in-memory kernel: a container started
 * with a PRIVATE copy of the mount (the CRI default) keeps the old device after fault C, so the
 * plugin must not say "recovered" while it does: VolumeCondition abnormal with "restart the pod",
 * one Warning VolumeRecoveredRestartPod on that pod, and with --restart-pods-on-recovery one
 * restart request. Once the container is gone, the condition is normal again and the record
 * stops watching the old device.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import type { HostPath } from "../../src/domain/Paths.ts"
import { PodRestarter, type RestartOutcome } from "../../src/kube/PodRestarter.ts"
import { HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { podUidOfTarget } from "../../src/node/StaleConsumers.ts"
import { StageStore } from "../../src/node/StageStore.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { ADDRESS, drive, events, ext4, nqnOf, plugin, PORT, stageRequest, stagingOf, stateLayer, volumeIdOf } from "./harness.ts"

const POD = "0c4f1b9e-6d2a-4c11-9e7b-3f5d2a1c8e90"
const TARGET = `/var/lib/kubelet/pods/${POD}/volumes/kubernetes.io~csi/pvc-1/mount` as HostPath

const restarts = Ref.makeUnsafe<ReadonlyArray<string>>([])
const recordingRestarter = Layer.succeed(PodRestarter, PodRestarter.of({
  restart: (podUid) => Effect.as(Ref.update(restarts, (all) => [...all, podUid]), { _tag: "Gone", podUid } satisfies RestartOutcome)
}))

const run = <A, E>(body: Effect.Effect<A, E, any>, restartPods = false) =>
  body.pipe(
    Effect.provide(plugin({ restartPodsOnRecovery: restartPods }).pipe(Layer.provide(recordingRestarter))),
    Effect.provide(stateLayer)
  ) as Effect.Effect<A, E>

const tick = drive(Effect.flatMap(HealthMonitor, (m) => m.tick))
const condition = Effect.map(Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(1))), (h) => h?.condition)

/** Stage and publish volume 1 for POD, then a container of POD starts (private copy) or not. */
const setup = (container: boolean) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    const volumes = yield* NodeVolumes
    yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(1), namespaces: [{ nsid: 1, sizeBytes: 1024 ** 3 }] })
    yield* volumes.stage(stageRequest(1))
    yield* volumes.publish({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1), targetPath: TARGET, capability: ext4, readOnly: false })
    yield* k.writeFile(`${TARGET}/db`, "rows")
    if (container) yield* k.startContainer(4242, POD, TARGET)
    const before = yield* k.deviceOf(nqnOf(1))
    // Fault C: the kernel deletes the controller; the plugin's monitor reconnects and recovers.
    yield* k.loseControllers(nqnOf(1))
    yield* tick
    const after = yield* k.deviceOf(nqnOf(1))
    return { before, after }
  })

describe("after a recovery, containers that still hold the old mount (issue 10.3)", () => {
  it.effect("a private copy: condition abnormal 'restart the pod', one Warning on that pod; gone with the container", () =>
    run(Effect.gen(function*() {
      const k = yield* KernelModel
      const store = yield* StageStore
      const { before, after } = yield* setup(true)
      assert.notStrictEqual(after?.devT, before?.devT, "the held old device forces a new number (as on the real kernel)")
      assert.strictEqual(yield* k.readFile(`${TARGET}/db`), "rows", "the host's path reaches the recovered volume")

      const c = yield* condition
      assert.isTrue(c?.abnormal, JSON.stringify(c))
      assert.include(c?.message ?? "", `pod(s) ${POD} still hold the old mount`)
      assert.include(c?.message ?? "", "restart the pod")
      yield* tick
      const warnings = (yield* events).filter((e) => e.startsWith("VolumeRecoveredRestartPod"))
      assert.strictEqual(warnings.length, 1, "one event per pod per recovery, not one per tick")
      assert.include(warnings[0]!, "restart the pod")
      assert.deepStrictEqual(yield* Ref.get(restarts), [], "no restart unless --restart-pods-on-recovery")

      yield* k.stopContainer(4242)
      yield* tick
      assert.isFalse((yield* condition)?.abnormal)
      assert.isUndefined((yield* store.get(volumeIdOf(1)))?.supersededDevTs, "the record stops watching the old device")
    })))

  it.effect("no container holding a copy (HostToContainer, or none running): no event, condition not abnormal", () =>
    run(Effect.gen(function*() {
      yield* setup(false)
      assert.isFalse((yield* condition)?.abnormal)
      assert.deepStrictEqual((yield* events).filter((e) => e.startsWith("VolumeRecoveredRestartPod")), [])
    })))

  it.effect("--restart-pods-on-recovery asks once to restart the pod holding the old mount", () =>
    run(Effect.gen(function*() {
      yield* Ref.set(restarts, [])
      yield* setup(true)
      yield* tick
      yield* tick
      assert.deepStrictEqual(yield* Ref.get(restarts), [POD])
    }), true))

  it("the pod UID comes from kubelet's target path", () => {
    assert.strictEqual(podUidOfTarget(TARGET), POD)
    assert.isUndefined(podUidOfTarget("/mnt/elsewhere"))
  })
})
