/**
 * EventPosterLive: the EventPoster methods over the EventRecorder. A post renders the message
 * (EventPoster.render) and enqueues it; which PVC (volume events), Node (orphan events) or Pod
 * (VolumeRecoveredRestartPod) it belongs on is looked up by the recorder off the caller's path,
 * through PvcLookup. A volume whose PVC does not exist, or a pod uid not on this node, gets
 * nothing posted and one log line.
 *
 * `EventPosterLive` is what main.ts uses: it needs only Settings. With `--events=false`, or no
 * API server configuration (no --kubeconfig and not in a cluster), it logs why and posts
 * nothing; the plugin works normally either way. An unreachable or refusing API server is not
 * fatal either: the recorder retries and counts what it drops, and a background check logs any
 * permission the ServiceAccount lacks. `KubeSideLive` is the same with a PodRestarter over the
 * same client (--restart-pods-on-recovery), a noop one whenever events are off.
 *
 * May import: effect, ../Settings.ts, and this folder.
 */
import { Effect, Layer } from "effect"
import { Settings } from "../Settings.ts"
import { Target } from "./EventLanes.ts"
import { EventPoster, fromSink, type PostedEvent } from "./EventPoster.ts"
import * as EventRecorderLive from "./EventRecorder.ts"
import { EventRecorder } from "./EventRecorder.ts"
import { type AccessCheck, KubeClient, REQUIRED_ACCESS } from "./KubeClient.ts"
import * as KubeClientLive from "./KubeClientLive.ts"
import { Lru } from "./Lru.ts"
import * as PvcLookupLive from "./PvcLookup.ts"
import { PvcLookup } from "./PvcLookup.ts"
import { PodRestarter } from "./PodRestarter.ts"

/** The EventPoster over an EventRecorder and a PvcLookup you provide (tests, other programs). */
export const layerWith: Layer.Layer<EventPoster, never, Settings | EventRecorder | PvcLookup> = Layer.effect(
  EventPoster,
  Effect.gen(function*() {
    const settings = yield* Settings
    const recorder = yield* EventRecorder
    const lookup = yield* PvcLookup
    const node = settings.nodeId
    const nodeTarget = Target.lookup(`node/${node}`, lookup.node(node))
    // One Target per volume or pod, reused: the caller's cost is one map hit and one enqueue.
    const targets = new Lru<string, Target>(4096)
    const cachedTarget = (key: string, resolve: () => Target) => {
      let t = targets.get(key)
      if (t === undefined) {
        t = resolve()
        targets.set(key, t)
      }
      return t
    }
    const targetOf = (e: PostedEvent): Target =>
      e.podUid !== undefined
        ? cachedTarget(`pod/${e.podUid}`, () => Target.lookup(`pod/${e.podUid}`, lookup.pod(node, e.podUid!)))
        : e.volumeId !== undefined
        ? cachedTarget(`volume/${e.volumeId}`, () => Target.lookup(`volume/${e.volumeId}`, lookup.pvcForVolume(e.volumeId!)))
        : nodeTarget
    const sink = (e: PostedEvent) => recorder.record({ target: targetOf(e), type: e.type, reason: e.reason, message: e.message })
    return fromSink(node, sink)
  })
)

/** What the plugin does on the API server; checked in the background at start, each refusal logged. */
export { REQUIRED_ACCESS } from "./KubeClient.ts"

/** What a refused permission costs, for the start-up log line. */
const withoutIt = (c: AccessCheck): string =>
  c.verb === "delete" && c.resource === "pods"
    ? "--restart-pods-on-recovery cannot restart pods"
    : c.resource === "pods"
    ? "events on pods will be missing and --restart-pods-on-recovery cannot find pods"
    : "events will be missing"

const accessCheck = Layer.effectDiscard(
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const check = Effect.forEach(REQUIRED_ACCESS, (c) =>
      kube.canI(c).pipe(
        Effect.flatMap((r) =>
          r.allowed ? Effect.void : Effect.logWarning(`RBAC: this ServiceAccount may not ${c.verb} ${c.resource}; ${withoutIt(c)}`, r.reason)
        )
      ), { discard: true }).pipe(
        Effect.catchTag("KubeError", (e) => Effect.logWarning(`API server ${kube.server} not reachable yet; events are queued and retried`, e.message))
      )
    yield* Effect.forkScoped(check)
  })
)

const disabled = <A>(noop: (nodeName: string) => Layer.Layer<A>) => (why: string) =>
  Layer.unwrap(Effect.gen(function*() {
    const settings = yield* Settings
    yield* Effect.logWarning(`Kubernetes events disabled: ${why}`)
    return noop(settings.nodeId)
  }))

/** Recorder + lookup + access check over one KubeClient; fails only on missing configuration. */
const poster = layerWith.pipe(Layer.provide(Layer.mergeAll(EventRecorderLive.layer(), PvcLookupLive.layer, accessCheck)))

/** `live` over a KubeClient from Settings, or `noop` (with one warning) when events are off or it cannot be built. */
const fromSettings = <A>(live: Layer.Layer<A, never, KubeClient | Settings>, noop: (nodeName: string) => Layer.Layer<A>): Layer.Layer<A, never, Settings> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const settings = yield* Settings
      if (!settings.events) return disabled(noop)("--events=false")
      return live.pipe(
        Layer.provide(KubeClientLive.layerConfig),
        Layer.catch((e) => disabled(noop)(`${e.message}; the plugin works without them`))
      )
    })
  )

/** The layer main.ts uses; requires only Settings, never fails. */
export const EventPosterLive: Layer.Layer<EventPoster, never, Settings> = fromSettings(poster, EventPoster.layerNoop)

/**
 * EventPosterLive and a PodRestarter over the same KubeClient (main.ts with
 * --restart-pods-on-recovery); both post and restart nothing when events are off or unconfigured.
 */
export const KubeSideLive: Layer.Layer<EventPoster | PodRestarter, never, Settings> = fromSettings(
  Layer.merge(poster, PodRestarter.layer),
  (nodeName) => Layer.merge(EventPoster.layerNoop(nodeName), PodRestarter.layerNoop)
)
