/**
 * The health monitor recovers in parallel and keeps observing while it recovers (issue item 8).
 * Recovery used to be serial inside the tick: in an outage of a whole target the last of N volumes
 * waited N × (attempts × connect timeout), and no other volume's condition, events or metrics
 * were updated meanwhile. Against a target that is gone a recovery here lasts over 30 s of test
 * time (3 attempts, each using its whole 10 s connect budget), as on the real kernel.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import type { TargetAddress } from "../../src/domain/Target.ts"
import { HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { VolumeLocks } from "../../src/node/VolumeLocks.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import { KernelModel } from "../../src/testing/index.ts"
import {
  ADDRESS, drive, events, ext4, nqnOf, plugin, PORT, stageRequest, stagingOf, stateLayer, target, targetOf, volumeIdOf
} from "./harness.ts"

const GiB = 1024 ** 3
const OTHER = "10.0.0.6"
const tick = Effect.flatMap(HealthMonitor, (m) => m.tick)
const observe = Effect.flatMap(HealthMonitor, (m) => m.observe)
const health = (n: number) => Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(n)))
const failedRecoveries = Effect.map(events, (all) => all.filter((e) => e.startsWith("RecoveryFailed")))
const failedMetric = Effect.map(Metric.value(Metric.withAttributes(Metrics.staleRecoveries, { status: "failed" })), (v) => v.count)
/** The volumes whose lock a recovery holds now. */
const recovering = Effect.map(Effect.flatMap(VolumeLocks, (l) => l.inFlight), (m) => [...m].filter(([, op]) => op === "recovery").map(([id]) => id).sort())

const run = (recoveryConcurrency: number) => <A, E>(self: Effect.Effect<A, E, any>) =>
  self.pipe(
    Effect.provide(plugin({ connectAttempts: 4, connectBackoff: Duration.seconds(4), connectTimeout: Duration.seconds(10), recoveryConcurrency })),
    Effect.provide(stateLayer)
  ) as Effect.Effect<A, E>

/** Volume n staged and published on its own subsystem at `address`. */
const stageOn = (n: number, address = ADDRESS) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    const volumes = yield* NodeVolumes
    yield* k.exportSubsystem({ address, port: PORT, nqn: nqnOf(n), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
    yield* volumes.stage({ ...stageRequest(n), target: target(n, { address: address as TargetAddress }) })
    yield* volumes.publish({ volumeId: volumeIdOf(n), stagingPath: stagingOf(n), targetPath: targetOf(n), capability: ext4, readOnly: false })
  })

/** The target stops exporting volume n and the kernel deletes its controller: only a reconnect helps, and it fails. */
const lose = (n: number) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    yield* k.unexportSubsystem(ADDRESS, PORT, nqnOf(n))
    yield* k.loseControllers(nqnOf(n))
  })

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

/**
 * n volumes of one target staged, then the target is gone; one tick (it waits for the recoveries
 * it starts) driven in 50 ms steps of test time. The test time it took, and the most recoveries
 * seen holding their volume's lock at once.
 */
const outage = (n: number, concurrency: number) =>
  run(concurrency)(Effect.gen(function*() {
    for (const i of range(n)) yield* stageOn(i)
    yield* tick
    for (const i of range(n)) yield* lose(i)
    const t0 = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.forkChild(tick)
    let most = 0
    for (let step = 0; fiber.pollUnsafe() === undefined; step++) {
      if (step > 8000) return yield* Effect.die(new Error("the recoveries did not end within 400 s of test time"))
      most = Math.max(most, (yield* recovering).length)
      yield* TestClock.adjust("50 millis")
      yield* Effect.yieldNow
    }
    yield* Fiber.join(fiber)
    return { elapsed: (yield* Clock.currentTimeMillis) - t0, most, failed: (yield* failedRecoveries).length }
  }))

describe("HealthMonitor recovers with bounded concurrency", () => {
  it.effect("an outage of four volumes recovers them side by side: about one recovery's time, not four", () =>
    Effect.gen(function*() {
      const one = yield* outage(1, 4)
      assert.strictEqual(one.failed, 1)
      assert.isAtLeast(one.elapsed, 30_000, "a recovery against a gone target takes attempts × the connect timeout")
      const four = yield* outage(4, 4)
      assert.strictEqual(four.failed, 4)
      assert.strictEqual(four.most, 4, "all four at once")
      assert.isBelow(four.elapsed, one.elapsed * 1.5, `four recoveries took ${four.elapsed} ms, one took ${one.elapsed} ms`)
    }))

  it.effect("never more than --recovery-concurrency at once: two by two, then one by one", () =>
    Effect.gen(function*() {
      const one = yield* outage(1, 4)
      const pairs = yield* outage(4, 2)
      assert.strictEqual(pairs.failed, 4)
      assert.strictEqual(pairs.most, 2)
      assert.isAtLeast(pairs.elapsed, one.elapsed * 1.5)
      assert.isBelow(pairs.elapsed, one.elapsed * 2.5)
      const serial = yield* outage(4, 1)
      assert.strictEqual(serial.failed, 4)
      assert.strictEqual(serial.most, 1)
      assert.isAtLeast(serial.elapsed, one.elapsed * 3)
    }))

  it.effect("while four recoveries run, another target's link loss and return are reported at once", () =>
    run(4)(Effect.gen(function*() {
      const k = yield* KernelModel
      for (const i of range(4)) yield* stageOn(i)
      yield* stageOn(5, OTHER)
      yield* tick
      assert.deepStrictEqual(yield* events, [])
      for (const i of range(4)) yield* lose(i)
      yield* observe
      assert.deepStrictEqual(yield* recovering, range(4).map(volumeIdOf), "observe started the four recoveries and did not wait for them")
      yield* TestClock.adjust("6 seconds")
      yield* k.linkDown(OTHER, PORT)
      yield* observe
      // The recoveries still run (none has ended: no RecoveryFailed yet), volume 5 is already reported.
      assert.deepStrictEqual(yield* recovering, range(4).map(volumeIdOf))
      assert.deepStrictEqual(yield* failedRecoveries, [])
      const controller = (yield* health(5))!.controllers[0]!.name
      assert.include(yield* events, `ConnectionFailure: [pvc-5] on [node-1]: Connection to ${OTHER}:${PORT} failed: controller ${controller} is connecting`)
      const down = yield* health(5)
      assert.strictEqual(down?.connection, "connecting")
      assert.deepStrictEqual(down?.condition, { abnormal: true, message: `controller ${controller} connecting for 0 s to ${OTHER}:${PORT}` })
      const state = yield* Metric.value(Metric.withAttributes(Metrics.nvmeControllerState, { volume: volumeIdOf(5), state: "connecting" }))
      assert.strictEqual(state.value, 1)
      assert.strictEqual((yield* Metric.value(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: volumeIdOf(5) }))).value, 1)

      yield* TestClock.adjust("4 seconds")
      yield* k.linkUp(OTHER, PORT)
      yield* observe
      assert.deepStrictEqual(yield* recovering, range(4).map(volumeIdOf))
      assert.include(yield* events, `ConnectionRecovery: [pvc-5] on [node-1]: Connection to ${OTHER}:${PORT} recovered after 2 attempts`)
      assert.deepStrictEqual((yield* health(5))?.condition, { abnormal: false, message: `controller ${controller} live to ${OTHER}:${PORT}` })
      assert.deepStrictEqual(yield* failedRecoveries, [])

      // tick waits for the recoveries in flight: they end as before, one RecoveryFailed each.
      yield* drive(tick)
      assert.deepStrictEqual(yield* recovering, [])
      assert.strictEqual((yield* failedRecoveries).length, 4)
      for (const i of range(4)) {
        const h = yield* health(i)
        assert.strictEqual(h?.failedRecoveries, 1)
        assert.strictEqual(h?.nextRecoveryAt, h!.lastRecovery!.at + 10_000)
        assert.match(h?.condition.message ?? "", /^no controller connected to 10\.0\.0\.5:4420 .*; recovery failed: connect to /)
      }
    })))

  it.effect("consecutive observes start no second recovery of a volume being recovered or waiting for a permit", () =>
    run(1)(Effect.gen(function*() {
      for (const i of range(2)) yield* stageOn(i)
      yield* tick
      const before = yield* failedMetric
      for (const i of range(2)) yield* lose(i)
      const t0 = yield* Clock.currentTimeMillis
      // The production loop: an observe every 2 s, for 20 s (less than one recovery).
      yield* observe
      for (let i = 0; i < 10; i++) {
        yield* TestClock.adjust("2 seconds")
        yield* observe
        assert.deepStrictEqual(yield* recovering, [volumeIdOf(1)], "volume 1 recovers, volume 2 waits for the one permit")
      }
      yield* drive(tick)
      const elapsed = (yield* Clock.currentTimeMillis) - t0
      const failed = yield* failedRecoveries
      assert.deepStrictEqual(failed.map((e) => e.slice(0, "RecoveryFailed: [pvc-1]".length)), ["RecoveryFailed: [pvc-1]", "RecoveryFailed: [pvc-2]"])
      assert.strictEqual((yield* failedMetric) - before, 2)
      assert.isAtLeast(elapsed, 60_000, "volume 2 recovered after volume 1, not beside it")
      for (const i of range(2)) assert.strictEqual((yield* health(i))?.failedRecoveries, 1)
      // Backoff runs from each recovery's end: volume 2's (10 s) has just begun, volume 1's ran out
      // while volume 2 was recovering, so the next observe retries volume 1 only.
      yield* observe
      assert.deepStrictEqual(yield* recovering, [volumeIdOf(1)])
    })))
})
