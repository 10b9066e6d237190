import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Metric } from "effect"
import { TestClock } from "effect/testing"
import type { Controller } from "../../src/nvme/Sysfs.ts"
import { downFirst } from "../../src/node/Condition.ts"
import { conditionOf, HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { nodeLayer } from "../../src/node/NodeLayer.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { type StageRecord, StageStore } from "../../src/node/StageStore.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { KernelModel, MounterTest, NvmeCliTest, StageStoreTest, SysfsTest } from "../../src/testing/index.ts"
import {
  ADDRESS, drive, events, ext4, nqnOf, plugin, PORT, RecordedEvents, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf
} from "./harness.ts"

const GiB = 1024 ** 3

const staged = Effect.gen(function*() {
  const k = yield* KernelModel
  const volumes = yield* NodeVolumes
  yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(1), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
  yield* volumes.stage(stageRequest(1))
  yield* volumes.publish({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1), targetPath: targetOf(1), capability: ext4, readOnly: false })
  yield* k.writeFile(`${targetOf(1)}/before.txt`, "kept")
})

const tick = Effect.flatMap(HealthMonitor, (m) => m.tick)
const condition = Effect.flatMap(HealthView, (v) => Effect.map(v.get(volumeIdOf(1)), (h) => h?.condition))

const run = <A, E>(self: Effect.Effect<A, E, any>) =>
  self.pipe(Effect.provide(plugin({ connectAttempts: 2 })), Effect.provide(stateLayer)) as Effect.Effect<A, E>

describe("HealthMonitor", () => {
  it.effect("firstPass waits for the end of the first pass (start-up work queues behind it), then answers at once", () =>
    run(Effect.gen(function*() {
      const monitor = yield* HealthMonitor
      yield* staged
      const waiting = yield* Effect.forkChild(monitor.firstPass)
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe(), "no pass has run yet")
      yield* monitor.observe
      yield* Fiber.join(waiting)
      // Later callers are not held by later passes.
      yield* monitor.firstPass
    })))

  it.effect("link down then up: one ConnectionFailure, one ConnectionRecovery, condition follows", () =>
    run(Effect.gen(function*() {
      const k = yield* KernelModel
      yield* staged
      yield* tick
      assert.deepStrictEqual(yield* condition, { abnormal: false, message: `controller nvme0 live to ${ADDRESS}:${PORT}` })
      yield* k.linkDown(ADDRESS, PORT)
      yield* tick
      yield* TestClock.adjust("6 seconds")
      yield* tick
      const down = yield* condition
      assert.isTrue(down?.abnormal)
      assert.strictEqual(down?.message, `controller nvme0 connecting for 6 s to ${ADDRESS}:${PORT}`)
      yield* k.linkUp(ADDRESS, PORT)
      yield* tick
      assert.isFalse((yield* condition)?.abnormal)
      assert.deepStrictEqual(yield* events, [
        `ConnectionFailure: [pvc-1] on [node-1]: Connection to ${ADDRESS}:${PORT} failed: controller nvme0 is connecting`,
        `ConnectionRecovery: [pvc-1] on [node-1]: Connection to ${ADDRESS}:${PORT} recovered after 3 attempts`
      ])
      assert.strictEqual(yield* k.readFile(`${targetOf(1)}/before.txt`), "kept")
    })))

  it.effect("controller deleted by the kernel: reconnects, StaleMountDetected, recovered without any RPC", () =>
    run(Effect.gen(function*() {
      const k = yield* KernelModel
      yield* staged
      yield* tick
      yield* k.loseControllers(nqnOf(1))
      yield* tick
      const posted = yield* events
      assert.deepStrictEqual(posted, [
        `ConnectionFailure: [pvc-1] on [node-1]: Connection to ${ADDRESS}:${PORT} failed: controller removed by the kernel`,
        "StaleMountDetected: [pvc-1] on [node-1]: Stale mount detected - old device: /dev/nvme0n1 (259:1), new device: /dev/nvme0n2 (259:2)",
        `ConnectionRecovery: [pvc-1] on [node-1]: Connection to ${ADDRESS}:${PORT} recovered after 1 attempts`
      ])
      assert.match((yield* condition)?.message ?? "", /^stale mount recovered at /)
      assert.strictEqual(yield* k.readFile(`${targetOf(1)}/before.txt`), "kept")
      yield* k.writeFile(`${targetOf(1)}/after.txt`, "works")
      const ok = yield* Metric.value(Metric.withAttributes(Metrics.staleRecoveries, { status: "ok" }))
      assert.isAtLeast(ok.count, 1)
    })))

  it.effect("target never returns: RecoveryFailed, abnormal condition, backoff; unpublish and unstage still succeed", () =>
    run(Effect.gen(function*() {
      const k = yield* KernelModel
      const volumes = yield* NodeVolumes
      yield* staged
      yield* tick
      yield* k.unexportSubsystem(ADDRESS, PORT, nqnOf(1))
      yield* k.loseControllers(nqnOf(1))
      yield* drive(tick)
      const failed = (yield* events).filter((e) => e.startsWith("RecoveryFailed"))
      assert.strictEqual(failed.length, 1)
      assert.match(failed[0]!, /^RecoveryFailed: \[pvc-1\] on \[node-1\]: Recovery failed after 3 attempts: connect to nqn\.2000-02\.com\.mikrotik:pvc-1 at 10\.0\.0\.5:4420 failed/)
      const c = yield* condition
      assert.isTrue(c?.abnormal)
      assert.match(c?.message ?? "", /no controller connected to 10\.0\.0\.5:4420 .*recovery failed: /)
      // The next tick is within the backoff: no second attempt, no second event.
      yield* tick
      assert.strictEqual((yield* events).filter((e) => e.startsWith("RecoveryFailed")).length, 1)
      const stats = yield* drive(volumes.stats({ volumeId: volumeIdOf(1), volumePath: targetOf(1) }))
      assert.strictEqual(stats._tag, "Success")
      if (stats._tag === "Success") assert.isTrue(stats.value.condition.abnormal)
      assert.strictEqual((yield* drive(volumes.unpublish({ volumeId: volumeIdOf(1), targetPath: targetOf(1) })))._tag, "Success")
      assert.strictEqual((yield* drive(volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })))._tag, "Success")
      const mounts = (yield* k.view).mounts.filter((m) => m.mountPoint === stagingOf(1) || m.mountPoint === targetOf(1))
      assert.deepStrictEqual(mounts, [])
    })))

  // Seen on the real kernel (test/e2e, scenario two-volumes): a tick that fell inside a normal
  // NodeUnstageVolume logged "connection lost: controller removed by the kernel" (and posted
  // ConnectionFailure on the PVC) for the controller the unstage itself had just disconnected.
  // Worse, a tick that listed the records before an unstage and read sysfs after it "recovered"
  // the unstaged volume: reconnected it, mounted it again and wrote its record back.
  describe("a tick racing NodeUnstageVolume", () => {
    /** Gates the StageStore: the next `list` or `remove` announces itself and waits. */
    interface Gate {
      on: "list" | "remove" | undefined
      readonly reached: Deferred.Deferred<void>
      readonly release: Deferred.Deferred<void>
    }
    const gatedStore = (gate: Gate) =>
      Layer.effect(
        StageStore,
        Effect.gen(function*() {
          const inner = yield* StageStore
          const pause = (what: "list" | "remove") =>
            Effect.suspend(() => {
              if (gate.on !== what) return Effect.void
              gate.on = undefined
              return Deferred.succeed(gate.reached, undefined).pipe(Effect.andThen(Deferred.await(gate.release)))
            })
          return StageStore.of({
            ...inner,
            list: Effect.tap(inner.list, () => pause("list")),
            remove: (id) => Effect.andThen(pause("remove"), inner.remove(id))
          })
        })
      ).pipe(Layer.provide(StageStoreTest.layer))
    const gated = (gate: Gate) => {
      const settings = testSettings()
      const events = Layer.unwrap(Effect.gen(function*() {
        return EventPoster.layerRecording(settings.nodeId, yield* RecordedEvents)
      }))
      const host = Layer.mergeAll(NvmeCliTest.layer, SysfsTest.layer, MounterTest.layer, gatedStore(gate))
      return nodeLayer(host, events).pipe(Layer.provideMerge(Settings.layer(settings)))
    }
    const withGate = <A, E>(body: (gate: Gate) => Effect.Effect<A, E, any>) =>
      Effect.gen(function*() {
        const gate: Gate = { on: undefined, reached: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
        return yield* body(gate).pipe(Effect.provide(gated(gate)), Effect.provide(stateLayer))
      }) as Effect.Effect<A, E>
    const unstageAll = Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* volumes.unpublish({ volumeId: volumeIdOf(1), targetPath: targetOf(1) })
      yield* volumes.unstage({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1) })
    })
    const left = Effect.gen(function*() {
      const k = yield* KernelModel
      const view = yield* k.view
      return {
        controllers: view.controllers.filter((c) => c.state !== "removed").map((c) => c.name),
        mounts: view.mounts.filter((m) => m.mountPoint === stagingOf(1)).length,
        records: (yield* (yield* StageStore).list).length
      }
    })

    it.effect("a tick during the unstage (disconnected, record not yet removed) reports no lost connection", () =>
      withGate((gate) =>
        Effect.gen(function*() {
          yield* staged
          yield* tick
          gate.on = "remove"
          const unstaging = yield* Effect.forkChild(unstageAll)
          yield* Deferred.await(gate.reached)
          yield* tick
          yield* Deferred.succeed(gate.release, undefined)
          yield* Fiber.join(unstaging)
          yield* tick
          assert.deepStrictEqual((yield* events).filter((e) => !e.startsWith("Mount")), [])
          assert.deepStrictEqual(yield* left, { controllers: [], mounts: 0, records: 0 })
        })
      ))

    it.effect("a volume unstaged between the tick's list and its sysfs read is left unstaged", () =>
      withGate((gate) =>
        Effect.gen(function*() {
          yield* staged
          yield* tick
          gate.on = "list"
          const ticking = yield* Effect.forkChild(tick)
          yield* Deferred.await(gate.reached)
          yield* unstageAll
          yield* Deferred.succeed(gate.release, undefined)
          yield* Fiber.join(ticking)
          assert.deepStrictEqual(yield* left, { controllers: [], mounts: 0, records: 0 }, "not reconnected, remounted or recorded again")
          assert.deepStrictEqual(yield* events, [])
        })
      ))
  })
})

describe("conditionOf", () => {
  it("folds a tool's multi-line error onto one line", () => {
    const c = conditionOf({
      volumeId: "pvc-1", nqn: "nqn.x", address: "10.0.0.5:4420", controllers: [], connection: "gone", downSince: 0, stale: true,
      lastRecovery: { at: 0, ok: false, message: "nvme connect: Failed (exit 1): Failed to write to /dev/nvme-fabrics\ncould not add new controller" },
      nextRecoveryAt: 0, failedRecoveries: 1
    }, 1000)
    assert.isTrue(c.abnormal)
    assert.notInclude(c.message, "\n")
    assert.include(c.message, "Failed to write to /dev/nvme-fabrics; could not add new controller")
  })
})

describe("downFirst", () => {
  it("puts the volumes whose connection is not live first, each group in its own order", () => {
    const rec = (n: number) => ({ volumeId: `pvc-${n}`, nqn: `nqn.x:${n}` }) as StageRecord
    const ctrl = (n: number, state: Controller["state"]) => ({ name: `nvme${n}`, subsysnqn: `nqn.x:${n}`, state }) as Controller
    const records = [1, 2, 3, 4, 5].map(rec)
    // 1 live; 2 connecting; 3 no controller; 4 one path live of two; 5 live.
    const controllers = [ctrl(1, "live"), ctrl(2, "connecting"), ctrl(4, "resetting"), ctrl(4, "live"), ctrl(5, "live")]
    const snapshot = { controllers, namespaces: [] }
    assert.deepStrictEqual(downFirst(records, snapshot).map((r) => r.volumeId), ["pvc-2", "pvc-3", "pvc-1", "pvc-4", "pvc-5"])
    assert.deepStrictEqual(downFirst([], snapshot), [])
  })
})
