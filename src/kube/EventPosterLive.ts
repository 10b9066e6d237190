/**
 * EventPosterLive: the seven EventPoster methods over the EventRecorder. A post renders the
 * message (EventPoster.render) and enqueues it; which PVC (volume events) or Node (orphan
 * events) it belongs on is looked up by the recorder off the caller's path, through PvcLookup.
 * A volume whose PVC does not exist gets nothing posted and one log line.
 *
 * `EventPosterLive` is what main.ts uses: it needs only Settings. With `--events=false`, or no
 * API server configuration (no --kubeconfig and not in a cluster), it logs why and posts
 * nothing; the plugin works normally either way. An unreachable or refusing API server is not
 * fatal either: the recorder retries and counts what it drops, and a background check logs any
 * permission the ServiceAccount lacks.
 *
 * May import: effect, ../Settings.ts, and this folder.
 */
import { Effect, Layer } from "effect"
import { Settings } from "../Settings.ts"
import { Target } from "./EventLanes.ts"
import { EventPoster, fromSink, type PostedEvent } from "./EventPoster.ts"
import * as EventRecorderLive from "./EventRecorder.ts"
import { EventRecorder } from "./EventRecorder.ts"
import { type AccessCheck, KubeClient } from "./KubeClient.ts"
import * as KubeClientLive from "./KubeClientLive.ts"
import { Lru } from "./Lru.ts"
import * as PvcLookupLive from "./PvcLookup.ts"
import { PvcLookup } from "./PvcLookup.ts"

/** The EventPoster over an EventRecorder and a PvcLookup you provide (tests, other programs). */
export const layerWith: Layer.Layer<EventPoster, never, Settings | EventRecorder | PvcLookup> = Layer.effect(
  EventPoster,
  Effect.gen(function*() {
    const settings = yield* Settings
    const recorder = yield* EventRecorder
    const lookup = yield* PvcLookup
    const node = settings.nodeId
    const nodeTarget = Target.lookup(`node/${node}`, lookup.node(node))
    // One Target per volume, reused: the caller's cost is one map hit and one enqueue.
    const volumeTargets = new Lru<string, Target>(4096)
    const targetOf = (volumeId: string) => {
      let t = volumeTargets.get(volumeId)
      if (t === undefined) {
        t = Target.lookup(`volume/${volumeId}`, lookup.pvcForVolume(volumeId))
        volumeTargets.set(volumeId, t)
      }
      return t
    }
    const sink = (e: PostedEvent) =>
      recorder.record({ target: e.volumeId === undefined ? nodeTarget : targetOf(e.volumeId), type: e.type, reason: e.reason, message: e.message })
    return fromSink(node, sink)
  })
)

/**
 * What the plugin does on the API server (deploy/base/rbac.yaml, less the SelfSubjectAccessReview
 * each question is); checked in the background at start, each refusal logged.
 */
export const REQUIRED_ACCESS: ReadonlyArray<AccessCheck> = [
  { verb: "create", resource: "events" },
  { verb: "patch", resource: "events" },
  { verb: "get", resource: "persistentvolumes" },
  { verb: "list", resource: "persistentvolumes" },
  { verb: "watch", resource: "persistentvolumes" },
  { verb: "get", resource: "persistentvolumeclaims" },
  { verb: "get", resource: "nodes" }
]

const accessCheck = Layer.effectDiscard(
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const check = Effect.forEach(REQUIRED_ACCESS, (c) =>
      kube.canI(c).pipe(
        Effect.flatMap((r) =>
          r.allowed ? Effect.void : Effect.logWarning(`RBAC: this ServiceAccount may not ${c.verb} ${c.resource}; events will be missing`, r.reason)
        )
      ), { discard: true }).pipe(
        Effect.catchTag("KubeError", (e) => Effect.logWarning(`API server ${kube.server} not reachable yet; events are queued and retried`, e.message))
      )
    yield* Effect.forkScoped(check)
  })
)

const noop = (why: string) =>
  Layer.unwrap(Effect.gen(function*() {
    const settings = yield* Settings
    yield* Effect.logWarning(`Kubernetes events disabled: ${why}`)
    return EventPoster.layerNoop(settings.nodeId)
  }))

/** Recorder + lookup + access check over one KubeClient from Settings; fails only on missing configuration. */
const live = layerWith.pipe(
  Layer.provide(Layer.mergeAll(EventRecorderLive.layer(), PvcLookupLive.layer, accessCheck)),
  Layer.provide(KubeClientLive.layerConfig)
)

/** The layer main.ts uses; requires only Settings, never fails. */
export const EventPosterLive: Layer.Layer<EventPoster, never, Settings> = Layer.unwrap(
  Effect.gen(function*() {
    const settings = yield* Settings
    if (!settings.events) return noop("--events=false")
    return live.pipe(Layer.catch((e) => noop(`${e.message}; the plugin works without them`)))
  })
)
