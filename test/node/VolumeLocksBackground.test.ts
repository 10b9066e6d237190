import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { VolumeLocks } from "../../src/node/VolumeLocks.ts"

// The plugin's own background recovery is not an operation of the CO's: an RPC that meets it
// waits (bounded) and then runs; any other holder still means ABORTED at once.
const withLocks = <A, E>(self: Effect.Effect<A, E, VolumeLocks>) => self.pipe(Effect.provide(VolumeLocks.layerWith(Duration.millis(300))))

describe("VolumeLocks and a background recovery", () => {
  it.live("a publish that meets the recovery waits for it, then runs", () =>
    withLocks(Effect.gen(function*() {
      const locks = yield* VolumeLocks
      const release = yield* Deferred.make<void>()
      const order: Array<string> = []
      const recovery = yield* Effect.forkChild(locks.withLock("v", "recovery", Effect.andThen(Deferred.await(release), Effect.sync(() => order.push("recovery done")))))
      yield* Effect.sleep("20 millis")
      const publish = yield* Effect.forkChild(locks.withLock("v", "publish", Effect.sync(() => order.push("publish ran"))))
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(order, [])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(recovery)
      yield* Fiber.join(publish)
      assert.deepStrictEqual(order, ["recovery done", "publish ran"])
    })))

  it.live("a recovery that outlasts the bound: ABORTED (VolumeBusy) naming it", () =>
    withLocks(Effect.gen(function*() {
      const locks = yield* VolumeLocks
      yield* Effect.forkChild(locks.withLock("v", "recovery", Effect.never))
      yield* Effect.sleep("20 millis")
      const started = Date.now()
      const r = yield* Effect.result(locks.withLock("v", "publish", Effect.void))
      assert.isTrue(r._tag === "Failure" && r.failure._tag === "VolumeBusy" && r.failure.heldBy === "recovery")
      assert.isAtLeast(Date.now() - started, 250)
    })))

  it.live("any other holder: ABORTED at once, as before", () =>
    withLocks(Effect.gen(function*() {
      const locks = yield* VolumeLocks
      yield* Effect.forkChild(locks.withLock("v", "stage", Effect.never))
      yield* Effect.sleep("20 millis")
      const started = Date.now()
      const r = yield* Effect.result(locks.withLock("v", "publish", Effect.void))
      assert.isTrue(r._tag === "Failure" && r.failure._tag === "VolumeBusy" && r.failure.heldBy === "stage")
      assert.isBelow(Date.now() - started, 200)
    })))
})

// The health pass re-reads a volume's record only when an operation ended after it listed them.
describe("VolumeLocks.ended", () => {
  it.live("counts every operation that ran, however it ended; a refused one never ran", () =>
    withLocks(Effect.gen(function*() {
      const locks = yield* VolumeLocks
      assert.strictEqual(yield* locks.ended, 0)
      yield* locks.withLock("a", "stage", Effect.void)
      yield* Effect.result(locks.withLock("b", "publish", Effect.fail("boom")))
      assert.strictEqual(yield* locks.ended, 2)
      const running = yield* Effect.forkChild(locks.withLock("a", "unstage", Effect.never))
      yield* Effect.sleep("20 millis")
      const refused = yield* Effect.result(locks.withLock("a", "publish", Effect.void))
      assert.isTrue(refused._tag === "Failure")
      assert.strictEqual(yield* locks.ended, 2, "in flight or refused: not ended")
      yield* Fiber.interrupt(running)
      assert.strictEqual(yield* locks.ended, 3, "an interrupted operation has ended too")
    })))
})
