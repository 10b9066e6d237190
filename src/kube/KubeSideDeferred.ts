/**
 * The Kubernetes side (EventPoster + PodRestarter) loaded after the plugin is ready, not before:
 * the client's chunk is megabytes of code to compile and evaluate (seconds under emulation),
 * and readiness must never wait for it (issue 12). Until `start` has loaded it, events are kept
 * in order (the newest `capacity`; older ones are dropped, counted and logged once loaded) and
 * replayed into the real poster; a pod restart waits for the load. A load that fails falls back
 * to the no-op side, as KubeSideLive itself does for a bad configuration: nothing here fails or
 * slows a storage operation.
 *
 * May import: effect, ../Settings.ts, ./EventPoster.ts, ./PodRestarter.ts.
 */
import { Context, Deferred, Effect, Layer } from "effect"
import type { Settings } from "../Settings.ts"
import { EventPoster } from "./EventPoster.ts"
import { PodRestarter } from "./PodRestarter.ts"

type Poster = EventPoster["Service"]
type Restarter = PodRestarter["Service"]

/** Starts loading the Kubernetes side (once; later calls do nothing). */
export class KubeSide extends Context.Service<KubeSide, {
  readonly start: Effect.Effect<void>
}>()("rds-csi/kube/KubeSide") {}

/**
 * EventPoster, PodRestarter and KubeSide over `load` (the real side, e.g. a dynamic import of
 * KubeSideLive), built in this layer's scope when KubeSide.start runs.
 */
export const deferred = (
  load: Effect.Effect<Layer.Layer<EventPoster | PodRestarter, never, Settings>, unknown>,
  fallback: (nodeName: string) => Layer.Layer<EventPoster | PodRestarter>,
  nodeName: string,
  capacity = 1024
): Layer.Layer<EventPoster | PodRestarter | KubeSide, never, Settings> =>
  Layer.effectContext(Effect.gen(function*() {
    const scope = yield* Effect.scope
    const context = yield* Effect.context<Settings>()
    const loaded = yield* Deferred.make<{ readonly poster: Poster; readonly restarter: Restarter }>()
    let real: Poster | undefined
    let pending: Array<(p: Poster) => Effect.Effect<void>> = []
    let dropped = 0
    let started = false

    const post = (f: (p: Poster) => Effect.Effect<void>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (real !== undefined) return f(real)
        pending.push(f)
        if (pending.length > capacity) {
          pending.shift()
          dropped++
        }
        return Effect.void
      })

    const build = (layer: Layer.Layer<EventPoster | PodRestarter, never, Settings>) =>
      Layer.buildWithScope(layer, scope).pipe(Effect.provideContext(context))
    const start = Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      return Effect.gen(function*() {
        const side = yield* load.pipe(
          Effect.flatMap(build),
          Effect.catchCause((cause) =>
            Effect.logWarning("Kubernetes events disabled: the client did not load", cause).pipe(Effect.andThen(build(fallback(nodeName))))
          )
        )
        const poster = Context.get(side, EventPoster)
        const restarter = Context.get(side, PodRestarter)
        // Replay in order; what is posted meanwhile queues behind, until the queue is empty.
        while (pending.length > 0) {
          const batch = pending
          pending = []
          for (const f of batch) yield* f(poster)
        }
        real = poster
        if (dropped > 0) yield* Effect.logWarning(`${dropped} event(s) posted before the Kubernetes client loaded were dropped (only the newest ${capacity} are kept)`)
        yield* Deferred.succeed(loaded, { poster, restarter })
      }).pipe(Effect.forkIn(scope), Effect.asVoid)
    })

    const poster: Poster = {
      postMountFailure: (v, e) => post((p) => p.postMountFailure(v, e)),
      postRecoveryFailed: (v, n, e) => post((p) => p.postRecoveryFailed(v, n, e)),
      postStaleMountDetected: (v, o, n) => post((p) => p.postStaleMountDetected(v, o, n)),
      postConnectionFailure: (v, a, e) => post((p) => p.postConnectionFailure(v, a, e)),
      postConnectionRecovery: (v, a, n) => post((p) => p.postConnectionRecovery(v, a, n)),
      postOrphanDetected: (q, a, w) => post((p) => p.postOrphanDetected(q, a, w)),
      postOrphanCleaned: (q, w) => post((p) => p.postOrphanCleaned(q, w)),
      postPodNeedsRestart: (u, v, t) => post((p) => p.postPodNeedsRestart(u, v, t))
    }
    const restarter: Restarter = {
      // A restart comes after a recovery, never inside an RPC: it may wait for the client.
      restart: (podUid, why) => Effect.andThen(start, Effect.flatMap(Deferred.await(loaded), (side) => side.restarter.restart(podUid, why)))
    }
    return Context.make(EventPoster, poster).pipe(
      Context.add(PodRestarter, restarter),
      Context.add(KubeSide, KubeSide.of({ start }))
    )
  }))
