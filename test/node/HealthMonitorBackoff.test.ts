/**
 * The health monitor's backoff between failed recoveries, and NodeGetVolumeStats during it, when
 * a recovery lasts longer than the backoff — as on the real kernel (test/e2e/resilience, scenario
 * "never"): against a target that is gone, a recovery is 3 attempts × the connect timeout ≈ 30 s,
 * the first backoff 10 s. The backoff used to run from the tick's start, so the next tick started
 * another recovery at once: the volume lock was held almost all the time (unpublish, unstage and
 * stats got ABORTED or "recovery in progress"), RecoveryFailed repeated every 30 s, and a stats
 * call in a free moment ran a whole recovery itself. Also: the stale-mount counter agrees with
 * the StaleMountDetected events.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Metric } from "effect"
import * as Metrics from "../../src/observability/Metrics.ts"
import { HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { ADDRESS, drive, events, ext4, nqnOf, plugin, PORT, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf } from "./harness.ts"

const GiB = 1024 ** 3
const tick = Effect.flatMap(HealthMonitor, (m) => m.tick)
const health = Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(1)))
const failures = Effect.map(events, (all) => all.filter((e) => e.startsWith("RecoveryFailed")).length)

// Each connect attempt is followed by a 4 s backoff, so an attach uses its whole 10 s budget and a
// recovery (3 attempts) takes over 30 s of test time: longer than the first 10 s backoff.
const run = <A, E>(self: Effect.Effect<A, E, any>) =>
  self.pipe(
    Effect.provide(plugin({ connectAttempts: 4, connectBackoff: Duration.seconds(4), connectTimeout: Duration.seconds(10) })),
    Effect.provide(stateLayer)
  ) as Effect.Effect<A, E>

/** Staged and published, then the target is gone and the kernel deleted the controller. */
const lostForGood = Effect.gen(function*() {
  const k = yield* KernelModel
  const volumes = yield* NodeVolumes
  yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(1), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
  yield* volumes.stage(stageRequest(1))
  yield* volumes.publish({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1), targetPath: targetOf(1), capability: ext4, readOnly: false })
  yield* tick
  yield* k.unexportSubsystem(ADDRESS, PORT, nqnOf(1))
  yield* k.loseControllers(nqnOf(1))
})

describe("HealthMonitor backoff when a recovery outlasts it", () => {
  it.effect("the backoff runs from the end of the failed recovery: the next tick does not start another", () =>
    run(Effect.gen(function*() {
      yield* lostForGood
      const t0 = yield* Clock.currentTimeMillis
      yield* drive(tick)
      assert.strictEqual(yield* failures, 1)
      const ended = yield* Clock.currentTimeMillis
      assert.isAtLeast(ended - t0, 30_000, "the recovery took more test time than the 10 s backoff")
      // The next tick is within the backoff: it only reads, no second recovery, no second event.
      yield* drive(tick)
      assert.strictEqual((yield* Clock.currentTimeMillis) - ended, 0, "the second tick waited on nothing")
      assert.strictEqual(yield* failures, 1)
      const h = yield* health
      // Measured when the recovery ended (drive() advances the clock in 50 ms steps).
      assert.isAtLeast(h!.lastRecovery!.at, ended - 50)
      assert.strictEqual(h!.nextRecoveryAt, h!.lastRecovery!.at + 10_000)
      assert.match(h?.condition.message ?? "", /^no controller connected to 10\.0\.0\.5:4420 .*; recovery failed: connect to .*; next attempt in 10 s$/s)
    })))

  it.effect("NodeGetVolumeStats within the backoff answers at once with the monitor's reading and posts nothing", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* lostForGood
      yield* drive(tick)
      const before = yield* events
      const t0 = yield* Clock.currentTimeMillis
      const exit = yield* drive(volumes.stats({ volumeId: volumeIdOf(1), volumePath: targetOf(1) }))
      assert.strictEqual((yield* Clock.currentTimeMillis) - t0, 0, "stats waited on no recovery")
      assert.strictEqual(exit._tag, "Success")
      if (exit._tag === "Success") {
        assert.isTrue(exit.value.condition.abnormal)
        assert.match(exit.value.condition.message, /no controller connected to 10\.0\.0\.5:4420 .*recovery failed: /)
      }
      assert.deepStrictEqual(yield* events, before)
    })))

  it.effect("NodeGetVolumeStats while the monitor is recovering says so, with the monitor's reading", () =>
    run(Effect.gen(function*() {
      const volumes = yield* NodeVolumes
      yield* lostForGood
      const recovering = yield* Effect.forkChild(drive(tick))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      const stats = yield* volumes.stats({ volumeId: volumeIdOf(1), volumePath: targetOf(1) })
      assert.isTrue(stats.condition.abnormal)
      assert.match(stats.condition.message, /stale mount, recovery in progress: no device for nqn\.2000-02\.com\.mikrotik:pvc-1/)
      yield* Fiber.join(recovering)
    })))

  // Seen on the real kernel (fault C): StaleMountDetected was posted but
  // rds_csi_stale_mounts_detected_total stayed 0, because the monitor counted only a stale mount it
  // saw while the controller was live, not one behind a controller the kernel had deleted.
  it.effect("stale_mounts_detected_total counts every StaleMountDetected, also after the kernel deleted the controller", () =>
    run(Effect.gen(function*() {
      const k = yield* KernelModel
      const volumes = yield* NodeVolumes
      yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(1), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
      yield* volumes.stage(stageRequest(1))
      yield* volumes.publish({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1), targetPath: targetOf(1), capability: ext4, readOnly: false })
      yield* tick
      const before = (yield* Metric.value(Metrics.staleMountsDetected)).count
      yield* k.loseControllers(nqnOf(1))
      yield* drive(tick)
      const stale = (yield* events).filter((e) => e.startsWith("StaleMountDetected"))
      assert.strictEqual(stale.length, 1)
      assert.strictEqual((yield* Metric.value(Metrics.staleMountsDetected)).count - before, 1)
    })))
})
