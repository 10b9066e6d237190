import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Metric, Option } from "effect"
import { TestClock } from "effect/testing"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { NvmeCli } from "../../src/nvme/NvmeCli.ts"
import { StageStore } from "../../src/node/StageStore.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import { BlkidFault, KernelModel, Signature } from "../../src/testing/index.ts"
import {
  ADDRESS, block, drive, events, ext4, nqnOf, plugin, PORT, publishRequest, runPlugin, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf, xfs
} from "./harness.ts"

const GiB = 1024 ** 3

const exportVolume = (n: number, extra: { readonly signature?: Signature; readonly files?: Record<string, string> } = {}) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(n), namespaces: [{ nsid: 1, sizeBytes: GiB, ...extra }] })
  })


const run = runPlugin

const controllers = Effect.gen(function*() {
  const k = yield* KernelModel
  return (yield* k.view).controllers.filter((c) => c.state !== "removed").map((c) => `${c.name} ${c.nqn} ${c.state}`)
})

describe("NodeVolumes on the in-memory kernel", () => {
  it.effect("firstReadiness waits for the first answered readiness (the first Probe), then answers at once", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const waiting = yield* Effect.forkChild(volumes.firstReadiness)
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe(), "no Probe yet")
      assert.isTrue((yield* volumes.readiness).ready)
      yield* Fiber.join(waiting)
      yield* volumes.firstReadiness
    })))

  it.effect("the first Probe finds nvme on PATH without running it; the next ones run `nvme version` until it answers once", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* k.failNvme("version", { reason: "Failed", detail: "nvme: error while loading shared libraries" }, 1)
      assert.deepStrictEqual(yield* volumes.readiness, { ready: true, problems: [] }, "installed is enough for the first Probe")
      const second = yield* volumes.readiness
      assert.isFalse(second.ready, "the version check runs from the second Probe on")
      assert.match(second.problems.join("; "), /^nvme-cli: .*shared libraries/)
      assert.isTrue((yield* volumes.readiness).ready, "it answers now")
      yield* k.failNvme("version", { reason: "Failed", detail: "not asked again" }, 1)
      assert.isTrue((yield* volumes.readiness).ready, "answered once: not run again")
    })))

  it.effect("nvme not installed: the first Probe already says so", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* k.setHost({ nvmeInstalled: false })
      assert.deepStrictEqual(yield* volumes.readiness, { ready: false, problems: ["nvme-cli: nvme is not on PATH"] })
    })))

  it.effect("stage formats an empty device once, publish binds it, data survives unstage and restage", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      yield* volumes.stage(stageRequest(1))
      yield* volumes.publish(publishRequest(1))
      yield* k.writeFile(`${targetOf(1)}/db.sqlite`, "rows")
      yield* volumes.unpublish({ volumeId: volumeIdOf(1), targetPath: targetOf(1) })
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      assert.deepStrictEqual(yield* controllers, [], "unstage disconnects")
      yield* volumes.stage(stageRequest(1))
      yield* volumes.publish(publishRequest(1))
      assert.strictEqual(yield* k.readFile(`${targetOf(1)}/db.sqlite`), "rows")
      const mkfs = yield* k.mkfsLog
      assert.deepStrictEqual(mkfs.map((m) => `${m.device} ${m.fsType} ${m.outcome}`), ["/dev/nvme0n1 ext4 formatted"])
      // The metrics saw it (counters are process-wide, hence "at least").
      const formats = yield* Metric.value(Metric.withAttributes(Metrics.mountOperations, { operation: "format", status: "ok" }))
      const connects = yield* Metric.value(Metric.withAttributes(Metrics.nvmeConnects, { status: "ok" }))
      const binds = yield* Metric.value(Metric.withAttributes(Metrics.mountOperations, { operation: "bind", status: "ok" }))
      assert.isAtLeast(formats.count, 1)
      assert.isAtLeast(connects.count, 2)
      assert.isAtLeast(binds.count, 2)
    })))

  it.effect("every operation twice gives the same result and no second format", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      for (let i = 0; i < 2; i++) yield* volumes.stage(stageRequest(1))
      for (let i = 0; i < 2; i++) yield* volumes.publish(publishRequest(1))
      const mounts = (yield* k.view).mounts.filter((m) => m.mountPoint === targetOf(1))
      assert.strictEqual(mounts.length, 1, "one bind mount, not two")
      for (let i = 0; i < 2; i++) yield* volumes.unpublish({ volumeId: volumeIdOf(1), targetPath: targetOf(1) })
      for (let i = 0; i < 2; i++) yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      assert.strictEqual((yield* k.mkfsLog).length, 1)
      // CSI: unstage of a volume that was never staged is OK.
      yield* volumes.unstage({ volumeId: volumeIdOf(9), stagingPath: stagingOf(9) })
    })))

  it.effect("a device holding another file system is refused with MountFailure, never formatted", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1, { signature: Signature.filesystem("xfs", "u-1", 0), files: { "/keep.txt": "precious" } })
      const err = yield* Effect.flip(volumes.stage(stageRequest(1, ext4)))
      assert.strictEqual(err._tag, "FormatRefused")
      assert.include(err.message, "already holds a xfs file system")
      assert.strictEqual((yield* k.mkfsLog).length, 0)
      assert.strictEqual((yield* k.namespace(nqnOf(1))).files["/keep.txt"], "precious")
      const posted = yield* events
      assert.strictEqual(posted.length, 1)
      assert.match(posted[0]!, /^MountFailure: \[pvc-1\] on \[node-1\]: refusing to format \/dev\/nvme0n1/)
      // The matching fs type mounts the data as it is.
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      yield* volumes.stage(stageRequest(1, xfs))
      yield* volumes.publish(publishRequest(1, 0, xfs))
      assert.strictEqual(yield* k.readFile(`${targetOf(1)}/keep.txt`), "precious")
    })))

  it.effect("whatever blkid does short of a clean exit 2, nothing is formatted", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      for (const fault of [BlkidFault.exit(1), BlkidFault.exit(4), BlkidFault.exit(8), BlkidFault.timeout, BlkidFault.garbage, BlkidFault.exit(2, "", "blkid: error: /dev/nvme0n1: No such file or directory")]) {
        yield* k.injectBlkid(fault, 1)
        const err = yield* Effect.flip(volumes.stage(stageRequest(1)))
        assert.oneOf(err._tag, ["FormatRefused", "MountError"], String(fault._tag))
      }
      assert.strictEqual((yield* k.mkfsLog).length, 0)
      // With an honest blkid the retry formats the (really empty) device.
      yield* volumes.stage(stageRequest(1))
      assert.strictEqual((yield* k.mkfsLog).length, 1)
    })))

  it.effect("publish before stage is FailedPrecondition; concurrent operations on one volume: exactly one ABORTED", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      const early = yield* Effect.flip(volumes.publish(publishRequest(1)))
      assert.strictEqual(early._tag, "FailedPrecondition")
      // The first stage waits on its connect backoff (link down); the second arrives meanwhile.
      yield* k.linkDown(ADDRESS, PORT)
      const first = yield* Effect.forkChild(volumes.stage(stageRequest(1)))
      yield* Effect.yieldNow
      const second = yield* Effect.flip(volumes.stage(stageRequest(1)))
      assert.strictEqual(second._tag, "VolumeBusy")
      assert.include(second.message, "an operation is already in progress (stage)")
      yield* k.linkUp(ADDRESS, PORT)
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(first)
    })))

  it.effect("two volumes on one target: unstaging one leaves the other connected", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* exportVolume(1)
      yield* exportVolume(2)
      yield* volumes.stage(stageRequest(1))
      yield* volumes.stage(stageRequest(2, block))
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      assert.deepStrictEqual(yield* controllers, [`nvme1 ${nqnOf(2)} live`])
    })))

  it.effect("an NQN outside the managed prefix is refused, and its existing connection is never touched", () =>
    Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      const foreign = "nqn.2014-08.org.example:boot-disk"
      yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: foreign, namespaces: [{ nsid: 1, sizeBytes: GiB }] })
      const req = { ...stageRequest(1), target: { ...stageRequest(1).target, nqn: foreign as never } }
      const err = yield* Effect.flip(volumes.stage(req))
      assert.strictEqual(err._tag, "SafetyRefusal")
      assert.include(err.message, "outside the managed prefix")
      assert.deepStrictEqual(yield* controllers, [])
    }).pipe(Effect.provide(plugin()), Effect.provide(stateLayer)))

  it.effect("no managed prefix: a subsystem connected before its stage (by hand) stays connected after the unstage; one the plugin connected goes", () =>
    Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const cli = yield* NvmeCli
      yield* exportVolume(1)
      yield* exportVolume(2)
      yield* cli.connect({ nqn: nqnOf(1), address: ADDRESS, port: PORT, ctrlLossTmo: -1, reconnectDelay: 2, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
      yield* volumes.stage(stageRequest(1))
      yield* volumes.stage(stageRequest(2))
      const store = yield* StageStore
      assert.deepStrictEqual((yield* store.list).map((r) => [r.volumeId, r.connectedByPlugin]), [["pvc-1", false], ["pvc-2", true]])
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
      yield* volumes.unstage({ volumeId: volumeIdOf(2), stagingPath: stagingOf(2) })
      assert.deepStrictEqual(yield* controllers, [`nvme0 ${nqnOf(1)} live`])
      assert.deepStrictEqual(yield* store.list, [])
    }).pipe(Effect.provide(plugin({ managedNqnPrefix: undefined })), Effect.provide(stateLayer)))

  it.live("failed connect attempts post ConnectionFailure each, then ConnectionRecovery", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      yield* k.failNvme("connect", { reason: "Unreachable", detail: "could not connect: Connection timed out" }, 2)
      yield* volumes.stage(stageRequest(1))
      const posted = yield* events
      assert.strictEqual(posted.filter((e) => e.startsWith("ConnectionFailure: [pvc-1] on [node-1]: Connection to 10.0.0.5:4420 failed:")).length, 2)
      assert.include(posted, "ConnectionRecovery: [pvc-1] on [node-1]: Connection to 10.0.0.5:4420 recovered after 3 attempts")
    })))

  it.live("an unreachable target fails within the attempt budget and leaves no connection", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* exportVolume(1)
      const req = { ...stageRequest(1), target: { ...stageRequest(1).target, address: "10.9.9.9" as never } }
      const err = yield* Effect.flip(volumes.stage(req))
      assert.strictEqual(err._tag, "ConnectFailed")
      assert.include(err.message, "after 3 attempt(s)")
      assert.deepStrictEqual(yield* controllers, [])
      const store = yield* StageStore
      assert.deepStrictEqual(yield* store.list, [])
    })))

  // Seen on the real kernel (test/e2e, scenario bad-context): with the production backoff the
  // connect timeout ends the attempts, and the error said only "no live connection within 8s" —
  // for a refused port, an NQN the target does not export and a namespace it does not have alike.
  it.effect("when the connect timeout cuts the attempts short, the error still says what went wrong", () =>
    Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* exportVolume(1)
      const refused = { ...stageRequest(1), target: { ...stageRequest(1).target, port: 4999 as never } }
      const e1 = yield* drive(volumes.stage(refused))
      assert.isTrue(Exit.isFailure(e1))
      const err1 = Cause.findErrorOption((e1 as Exit.Failure<unknown, { message: string }>).cause)
      assert.isTrue(Option.isSome(err1))
      assert.match((err1 as Option.Some<{ message: string }>).value.message, /within 2s.*Connection refused/)

      const wrongNsid = { ...stageRequest(1), target: { ...stageRequest(1).target, namespace: { nsid: 7, nguid: undefined, uuid: undefined } } }
      const e2 = yield* drive(volumes.stage(wrongNsid))
      const err2 = Cause.findErrorOption((e2 as Exit.Failure<unknown, { _tag: string; message: string }>).cause)
      assert.isTrue(Option.isSome(err2))
      const failure = (err2 as Option.Some<{ _tag: string; message: string }>).value
      assert.strictEqual(failure._tag, "ConnectFailed")
      assert.match(failure.message, /within 2s.*nsid 1.*do not match.*"nsid":7/)
      assert.deepStrictEqual(yield* controllers, [], "the controller made for the wrong namespace is disconnected")
    }).pipe(
      Effect.provide(plugin({ connectTimeout: Duration.seconds(2), connectAttempts: 5, connectBackoff: Duration.millis(500) })),
      Effect.provide(stateLayer)
    ))

  it.effect("a lost controller is recovered at publish: StaleMountDetected, new device, data intact, every target re-bound", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      yield* volumes.stage(stageRequest(1))
      yield* volumes.publish(publishRequest(1, 0))
      yield* k.writeFile(`${targetOf(1, 0)}/before.txt`, "written before the outage")
      yield* k.loseControllers(nqnOf(1))
      yield* volumes.publish(publishRequest(1, 1))
      const dev = yield* k.deviceOf(nqnOf(1))
      assert.strictEqual(dev?.name, "nvme0n2", "the kernel renumbered the namespace head")
      assert.strictEqual(yield* k.readFile(`${targetOf(1, 0)}/before.txt`), "written before the outage")
      assert.strictEqual(yield* k.readFile(`${targetOf(1, 1)}/before.txt`), "written before the outage")
      yield* k.writeFile(`${targetOf(1, 0)}/after.txt`, "new writes work")
      assert.include(yield* events, "StaleMountDetected: [pvc-1] on [node-1]: Stale mount detected - old device: /dev/nvme0n1 (259:1), new device: /dev/nvme0n2 (259:2)")
      assert.strictEqual((yield* k.mkfsLog).length, 1, "recovery never formats")
    })))

  it.effect("a restarted plugin knows its volumes from the stage records and unstages them", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const volumes = yield* NodeVolumes
        yield* exportVolume(1)
        yield* volumes.stage(stageRequest(1, block))
        yield* volumes.publish(publishRequest(1, 0, block))
      }).pipe(Effect.provide(plugin()))
      yield* Effect.gen(function*() {
        const volumes = yield* NodeVolumes
        yield* volumes.stage(stageRequest(1, block))
        yield* volumes.unpublish({ volumeId: volumeIdOf(1), targetPath: targetOf(1) })
        yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
        assert.deepStrictEqual(yield* controllers, [])
      }).pipe(Effect.provide(plugin()))
    }).pipe(Effect.provide(stateLayer)))

  it.effect("stats: usage and a healthy condition; unknown volume is VolumeNotFound", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* exportVolume(1)
      yield* volumes.stage(stageRequest(1))
      yield* volumes.publish(publishRequest(1))
      const stats = yield* volumes.stats({ volumeId: volumeIdOf(1), volumePath: targetOf(1) })
      assert.strictEqual(stats.usage?._tag, "Filesystem")
      assert.isFalse(stats.condition.abnormal)
      const missing = yield* Effect.flip(volumes.stats({ volumeId: volumeIdOf(7), volumePath: targetOf(7) }))
      assert.strictEqual(missing._tag, "VolumeNotFound")
    })))

  it.effect("expand grows the file system to the namespace's new size", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      const k = yield* KernelModel
      yield* exportVolume(1)
      yield* volumes.stage(stageRequest(1))
      yield* k.resizeNamespace(nqnOf(1), 1, 2 * GiB)
      const r = yield* volumes.expand({ volumeId: volumeIdOf(1), volumePath: stagingOf(1), requiredBytes: 2 * GiB })
      assert.strictEqual(r.capacityBytes, 2 * GiB)
      const tooBig = yield* Effect.flip(volumes.expand({ volumeId: volumeIdOf(1), volumePath: stagingOf(1), requiredBytes: 3 * GiB }))
      assert.strictEqual(tooBig._tag, "FailedPrecondition")
    })))
})
