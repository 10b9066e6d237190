import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { EventPoster, type PostedEvent } from "../../src/kube/EventPoster.ts"
import { deferred, KubeSide } from "../../src/kube/KubeSideDeferred.ts"
import { PodRestarter } from "../../src/kube/PodRestarter.ts"
import type { NodeId } from "../../src/domain/Ids.ts"
import { Settings, testSettings } from "../../src/Settings.ts"

const NODE = "node-a"
const settings = Settings.layer(testSettings({ nodeId: NODE as NodeId }))

/** A "real" side that records what reaches it, and counts its loads. */
const realSide = (sink: Ref.Ref<ReadonlyArray<PostedEvent>>, loads: { n: number }) =>
  Effect.sync(() => {
    loads.n++
    return Layer.merge(
      EventPoster.layerRecording(NODE, sink),
      Layer.succeed(PodRestarter, PodRestarter.of({ restart: (podUid) => Effect.succeed({ _tag: "Gone", podUid } as const) }))
    )
  })
const fallback = (node: string) => Layer.merge(EventPoster.layerNoop(node), PodRestarter.layerNoop)

const run = <A, E>(layer: Layer.Layer<EventPoster | PodRestarter | KubeSide, never, Settings>, body: Effect.Effect<A, E, EventPoster | PodRestarter | KubeSide>) =>
  body.pipe(Effect.provide(layer), Effect.provide(settings), Effect.scoped)

describe("the Kubernetes side, loaded after ready", () => {
  it.live("nothing loads before start; events posted before are replayed in order, later ones go straight through", () =>
    Effect.gen(function*() {
      const sink = yield* Ref.make<ReadonlyArray<PostedEvent>>([])
      const loads = { n: 0 }
      yield* run(deferred(realSide(sink, loads), fallback, NODE), Effect.gen(function*() {
        const events = yield* EventPoster
        yield* events.postConnectionFailure("v1", "10.0.0.1:4420", "gone")
        yield* events.postConnectionRecovery("v1", "10.0.0.1:4420", 2)
        assert.strictEqual(loads.n, 0)
        assert.deepStrictEqual(yield* Ref.get(sink), [])
        yield* (yield* KubeSide).start
        yield* (yield* KubeSide).start
        yield* Effect.sleep("50 millis")
        yield* events.postMountFailure("v2", "boom")
        assert.strictEqual(loads.n, 1)
        assert.deepStrictEqual((yield* Ref.get(sink)).map((e) => `${e.reason} ${e.volumeId}`), [
          "ConnectionFailure v1", "ConnectionRecovery v1", "MountFailure v2"
        ])
      }))
    }))

  it.live("keeps only the newest events while waiting, and says how many it dropped", () =>
    Effect.gen(function*() {
      const sink = yield* Ref.make<ReadonlyArray<PostedEvent>>([])
      yield* run(deferred(realSide(sink, { n: 0 }), fallback, NODE, 2), Effect.gen(function*() {
        const events = yield* EventPoster
        for (const v of ["a", "b", "c"]) yield* events.postMountFailure(v, "x")
        yield* (yield* KubeSide).start
        yield* Effect.sleep("50 millis")
        assert.deepStrictEqual((yield* Ref.get(sink)).map((e) => e.volumeId), ["b", "c"])
      }))
    }))

  it.live("a pod restart starts the load itself and waits for it", () =>
    Effect.gen(function*() {
      const loads = { n: 0 }
      const outcome = yield* run(deferred(realSide(yield* Ref.make<ReadonlyArray<PostedEvent>>([]), loads), fallback, NODE),
        Effect.flatMap(PodRestarter, (r) => r.restart("uid-1", "recovered")))
      assert.deepStrictEqual(outcome, { _tag: "Gone", podUid: "uid-1" })
      assert.strictEqual(loads.n, 1)
    }))

  it.live("a client that does not load leaves the no-op side: posting and restarting still answer", () =>
    Effect.gen(function*() {
      const outcome = yield* run(deferred(Effect.fail(new Error("chunk missing")), fallback, NODE), Effect.gen(function*() {
        const events = yield* EventPoster
        yield* events.postMountFailure("v", "x")
        yield* (yield* KubeSide).start
        yield* events.postMountFailure("v", "y")
        return yield* (yield* PodRestarter).restart("uid-2", "recovered")
      }))
      assert.deepStrictEqual(outcome, { _tag: "Disabled" })
    }))
})
