/**
 * Regression tests of the node-plugin review (issue 10), each on the in-memory kernel through
 * the production composition: a node reboot is not an outage, raw-block devices that swap names
 * are never handed to the wrong pod, an interrupted unstage is never undone by the monitor,
 * volumes sharing one subsystem never lose each other's connection, a failed stage leaves
 * nothing behind, and re-stage compatibility covers every field the spec cares about.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import type { Nqn, VolumeId } from "../../src/domain/Ids.ts"
import type { HostPath } from "../../src/domain/Paths.ts"
import type { TargetAddress } from "../../src/domain/Target.ts"
import { HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { entryAt } from "../../src/node/MountOps.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { StageStore } from "../../src/node/StageStore.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import { NvmeCli } from "../../src/nvme/NvmeCli.ts"
import { KernelModel, NvmeCliTest, Signature } from "../../src/testing/index.ts"
import { ADDRESS, block, drive, ext4, nqnOf, PORT, publishRequest, runPlugin, stageRequest, stagingOf, target, targetOf, volumeIdOf } from "./harness.ts"

const GiB = 1024 ** 3

const run = runPlugin

const exportVolume = (n: number, namespaces: ReadonlyArray<{ readonly nsid: number; readonly signature?: Signature }> = [{ nsid: 1 }]) =>
  Effect.flatMap(KernelModel, (k) =>
    k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(n), namespaces: namespaces.map((ns) => ({ sizeBytes: GiB, ...ns })) }))


const liveControllers = (nqn: string) =>
  Effect.map(Effect.flatMap(KernelModel, (k) => k.view), (v) => v.controllers.filter((c) => c.nqn === nqn && c.state !== "removed").map((c) => c.name))

const tick = drive(Effect.flatMap(HealthMonitor, (m) => m.tick))

const connectByHand = (nqn: Nqn) =>
  Effect.flatMap(NvmeCli, (cli) =>
    cli.connect({ nqn, address: ADDRESS, port: PORT, ctrlLossTmo: -1, reconnectDelay: 2, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })).pipe(
      Effect.provide(NvmeCliTest.layer)
    )

describe("a node reboot is not an outage (issue 10.1)", () => {
  it.effect("records of the earlier boot: the monitor never reconnects or remounts, never recreates a deleted pod's target; unstage and restage work", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      const store = yield* StageStore
      const mounter = yield* Mounter
      yield* exportVolume(1)
      yield* exportVolume(2)
      yield* volumes.stage(stageRequest(1))
      yield* volumes.publish(publishRequest(1, 0))
      yield* volumes.stage(stageRequest(2))
      yield* volumes.publish(publishRequest(2, 1))

      yield* k.reboot
      // While the node was down, pod-0 was deleted (its volume may be in use on another node now).
      yield* k.removeTree("/var/lib/kubelet/pods/pod-0")
      for (let i = 0; i < 3; i++) yield* tick

      assert.deepStrictEqual(yield* liveControllers(nqnOf(1)), [], "no monitor-driven connect for a record of another boot")
      assert.deepStrictEqual(yield* liveControllers(nqnOf(2)), [])
      const mounts = yield* mounter.mountinfo
      for (const p of [stagingOf(1), targetOf(1, 0), stagingOf(2), targetOf(2, 1)]) assert.isUndefined(entryAt(mounts, p), `${p} mounted by the monitor`)
      assert.strictEqual(yield* mounter.pathKind(targetOf(1, 0)), "missing", "the deleted pod's target was recreated")
      const health = yield* Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(1)))
      assert.isTrue(health?.condition.abnormal, "VolumeCondition says the volume waits for kubelet")
      assert.include(health?.condition.message ?? "", "before the node restarted")

      // kubelet: the deleted pod's volume is unstaged (no FAILED_PRECONDITION, nothing connected)…
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      assert.isUndefined(yield* store.get(volumeIdOf(1)))
      // …a publish before the new stage is refused, and the living pod's volume is staged and published again.
      const early = yield* Effect.flip(volumes.publish(publishRequest(2, 1)))
      assert.strictEqual(early._tag, "FailedPrecondition")
      yield* volumes.stage(stageRequest(2))
      const restaged = yield* store.get(volumeIdOf(2))
      assert.deepStrictEqual(restaged?.publishedTargets, [], "publications of the earlier boot are forgotten")
      assert.notStrictEqual(restaged?.bootId, undefined)
      yield* volumes.publish(publishRequest(2, 1))
      const device = yield* k.deviceOf(nqnOf(2))
      assert.strictEqual(entryAt(yield* mounter.mountinfo, targetOf(2, 1))?.devT, device?.devT)
    })))
})

describe("raw block: every use goes through the device that is the volume's by identity (issue 10.2)", () => {
  it.effect("two staged block volumes swap names and numbers: publish binds each its own disk, stats reads its own size", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      const mounter = yield* Mounter
      yield* exportVolume(1)
      yield* exportVolume(3)
      yield* k.resizeNamespace(nqnOf(3), 1, 2 * GiB)
      yield* volumes.stage(stageRequest(1, block))
      yield* volumes.stage(stageRequest(3, block))
      const before1 = yield* k.deviceOf(nqnOf(1))
      // Both controllers lost, reconnected in the other order (by hand, while the plugin looked away).
      yield* k.loseControllers(nqnOf(1))
      yield* k.loseControllers(nqnOf(3))
      yield* connectByHand(nqnOf(3))
      yield* connectByHand(nqnOf(1))
      const after1 = yield* k.deviceOf(nqnOf(1))
      const after3 = yield* k.deviceOf(nqnOf(3))
      assert.strictEqual(after3?.name, before1?.name, "the scenario swaps the names")

      yield* volumes.publish(publishRequest(1, 0, block))
      yield* volumes.publish(publishRequest(3, 1, block))
      assert.strictEqual(yield* mounter.deviceNumber(targetOf(1, 0)), after1?.devT, "pod 0 got volume 1's disk")
      assert.strictEqual(yield* mounter.deviceNumber(targetOf(3, 1)), after3?.devT, "pod 1 got volume 3's disk")
      const stats = yield* volumes.stats({ volumeId: volumeIdOf(3), volumePath: targetOf(3, 1) })
      assert.deepStrictEqual(stats.usage, { _tag: "Block", totalBytes: 2 * GiB })
    })))

  it.effect("a block volume renumbered while staged and unpublished is recovered before publish (record follows the identity)", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      const store = yield* StageStore
      yield* exportVolume(1)
      yield* exportVolume(2)
      yield* volumes.stage(stageRequest(1, block))
      yield* connectByHand(nqnOf(2)) // takes the next numbers
      yield* k.loseControllers(nqnOf(1))
      yield* connectByHand(nqnOf(1))
      const now = yield* k.deviceOf(nqnOf(1))
      yield* tick
      assert.strictEqual((yield* store.get(volumeIdOf(1)))?.device.devT, now?.devT, "the monitor re-pointed the record at the volume's device")
    })))
})

describe("an interrupted unstage is never undone (issue 10.7)", () => {
  it.effect("detach fails after the unmount: the record says unstaging, the monitor does not remount, publish is refused, the retry finishes", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      const store = yield* StageStore
      const mounter = yield* Mounter
      yield* exportVolume(1)
      yield* volumes.stage(stageRequest(1))
      yield* k.failNvme("disconnect", { reason: "Failed", detail: "injected" }, 1)
      const failed = yield* drive(volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) }))
      assert.isTrue(Exit.isFailure(failed))
      assert.isTrue((yield* store.get(volumeIdOf(1)))?.unstaging)
      for (let i = 0; i < 3; i++) yield* tick
      assert.isUndefined(entryAt(yield* mounter.mountinfo, stagingOf(1)), "the monitor remounted a volume being unstaged")
      assert.strictEqual((yield* Effect.flip(volumes.publish(publishRequest(1))))._tag, "FailedPrecondition")
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      assert.deepStrictEqual(yield* liveControllers(nqnOf(1)), [])
      assert.isUndefined(yield* store.get(volumeIdOf(1)))
    })))
})

describe("volumes sharing one subsystem (issue 10.5) and failed stages (10.15)", () => {
  const sibling = (nsid: number, name: string) => ({
    ...stageRequest(1),
    volumeId: name as VolumeId,
    stagingPath: `/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/${name}/globalmount` as HostPath,
    target: target(1, { namespace: { nsid, nguid: undefined, uuid: undefined } })
  })

  it.effect("two stages at once on one subsystem, one failing (no such namespace): the other keeps its connection and mount", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      const mounter = yield* Mounter
      yield* exportVolume(1, [{ nsid: 1 }])
      const good = yield* Effect.forkChild(volumes.stage(sibling(1, "pvc-good")))
      const bad = yield* Effect.forkChild(volumes.stage(sibling(7, "pvc-bad")))
      const goodExit = yield* drive(Fiber.join(good))
      const badExit = yield* drive(Fiber.join(bad))
      assert.isTrue(Exit.isSuccess(goodExit), String(goodExit))
      assert.isTrue(Exit.isFailure(badExit))
      assert.strictEqual((yield* liveControllers(nqnOf(1))).length, 1, "the failing sibling removed the shared connection")
      const device = yield* k.deviceOf(nqnOf(1))
      assert.strictEqual(entryAt(yield* mounter.mountinfo, sibling(1, "pvc-good").stagingPath)?.devT, device?.devT)
    })))

  it.effect("unstaging one sibling keeps the subsystem connected for the other; the last one disconnects it", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* exportVolume(1, [{ nsid: 1 }, { nsid: 2 }])
      yield* volumes.stage(sibling(1, "pvc-a"))
      yield* volumes.stage(sibling(2, "pvc-b"))
      yield* volumes.unstage({ volumeId: "pvc-a" as VolumeId, stagingPath: sibling(1, "pvc-a").stagingPath })
      assert.strictEqual((yield* liveControllers(nqnOf(1))).length, 1)
      yield* volumes.unstage({ volumeId: "pvc-b" as VolumeId, stagingPath: sibling(2, "pvc-b").stagingPath })
      assert.deepStrictEqual(yield* liveControllers(nqnOf(1)), [])
    })))

  it.effect("a stage refused (the device holds another file system) leaves no connection and no record behind", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const store = yield* StageStore
      yield* exportVolume(1, [{ nsid: 1, signature: Signature.filesystem("xfs", "u-1", 0) }])
      const err = yield* Effect.flip(volumes.stage(stageRequest(1, ext4)))
      assert.strictEqual(err._tag, "FormatRefused")
      assert.deepStrictEqual(yield* liveControllers(nqnOf(1)), [])
      assert.isUndefined(yield* store.get(volumeIdOf(1)))
    })))
})

describe("re-stage compatibility (issue 10.13)", () => {
  it.effect("a second stage differing in read-only-ness, mount flags or target address is ALREADY_EXISTS; the identical one is OK", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* exportVolume(1)
      yield* volumes.stage(stageRequest(1))
      yield* volumes.stage(stageRequest(1))
      const variants = [
        { ...stageRequest(1), capability: { ...ext4, accessMode: "SINGLE_NODE_READER_ONLY" as const } },
        { ...stageRequest(1), capability: { ...ext4, accessType: { _tag: "Mount" as const, fsType: "ext4" as const, mountFlags: ["noatime"] } } },
        { ...stageRequest(1), target: target(1, { address: "10.0.0.6" as TargetAddress }) }
      ]
      for (const req of variants) {
        const err = yield* Effect.flip(volumes.stage(req))
        assert.strictEqual(err._tag, "IncompatibleRequest", JSON.stringify(req.capability))
        assert.include(err.message, "already staged with")
      }
    })))
})
