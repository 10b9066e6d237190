/**
 * Shared fixtures for the kube unit tests: a recorder over the in-memory API on TestClock, a
 * way to let forked fibers run after moving the clock, and a log collector.
 */
import { Duration, Effect, Exit, Fiber, Layer, Logger, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Target } from "../../src/kube/EventLanes.ts"
import { DEFAULT_RECORDER_OPTIONS, make, type RecorderOptions } from "../../src/kube/EventRecorder.ts"
import type { ObjectRef } from "../../src/kube/KubeClient.ts"
import type { KubeFake } from "../../src/kube/KubeFake.ts"

export const pvc = (name: string, uid = `${name}-uid`, namespace = "team-a"): ObjectRef => ({
  apiVersion: "v1", kind: "PersistentVolumeClaim", namespace, name, uid
})
export const node = (name = "node-1", uid = "node-1-uid"): ObjectRef => ({ apiVersion: "v1", kind: "Node", namespace: "", name, uid })

/** Lets every runnable fiber run (several scheduler turns). */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Moves TestClock by `ms` and lets what woke up run. */
export const advance = (ms: number) =>
  Effect.gen(function*() {
    yield* settle
    yield* TestClock.adjust(ms)
    yield* settle
  })

/** Moves TestClock in `step` increments up to `ms`, so chains of sleeps all get their turn. */
export const advanceBy = (ms: number, step = 100) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += step) yield* advance(Math.min(step, ms - t))
  })

/** A recorder over `fake` in `scope`, which the test closes itself. */
export const recorderIn = (fake: KubeFake, scope: Scope.Scope, overrides: Partial<RecorderOptions> = {}) =>
  make({ ...DEFAULT_RECORDER_OPTIONS, host: "node-1", reportingInstance: "node-1", ...overrides }).pipe(
    Scope.provide(scope),
    Effect.provide(fake.layer)
  )

/**
 * A recorder over `fake` in its own scope. At the end of the test that scope is closed while
 * TestClock is moved past the drain timeout, so work left pending (a hung fake) cannot hang the test.
 */
export const recorderOn = (fake: KubeFake, overrides: Partial<RecorderOptions> = {}) =>
  Effect.gen(function*() {
    const options = { ...DEFAULT_RECORDER_OPTIONS, host: "node-1", reportingInstance: "node-1", ...overrides }
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* settle
        yield* TestClock.adjust(Duration.sum(options.drainTimeout, Duration.seconds(1)))
        yield* Fiber.join(closing)
      })
    )
    return yield* make(options).pipe(Scope.provide(scope), Effect.provide(fake.layer))
  })

export const on = (ref: ObjectRef) => Target.object(ref)

/** Collects log lines (level + joined message) for assertions. */
export const collectLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make((o) => {
    const parts = Array.isArray(o.message) ? o.message : [o.message]
    lines.push(`${o.logLevel}: ${parts.map(String).join(" ")}`)
  })
  return { lines, layer: Logger.layer([logger]) as Layer.Layer<never> }
}
