/**
 * PodRestarter: after a stale-mount recovery, a container started with private mount
 * propagation keeps its copy of the dead mount until it restarts. With
 * `--restart-pods-on-recovery` the node plugin asks this service to delete such a pod so that its
 * controller re-creates it with the recovered mount. It deletes only what will come back: a pod
 * with a controller ownerReference (ReplicaSet, StatefulSet, DaemonSet, Job). A bare pod would be
 * gone for good, and deleting a static pod's mirror restarts nothing: both are refused and
 * logged. The delete carries a uid precondition, so a pod re-created under the same name is never
 * deleted. Nothing is posted: the VolumeRecoveredRestartPod event is the caller's.
 *
 * May import: effect, ../Settings.ts, ./KubeClient.ts, ./Lru.ts.
 */
import { Context, Effect, Layer, Result } from "effect"
import { Settings } from "../Settings.ts"
import { KubeClient, type KubeError, type PodOnNode } from "./KubeClient.ts"
import { Lru } from "./Lru.ts"

/** What `restart` did; it never fails. */
export type RestartOutcome =
  /** Deleted (uid precondition held); its controller re-creates it. */
  | { readonly _tag: "Deleted"; readonly pod: PodOnNode }
  /** Not deleted: nothing would re-create it (`Bare`), or it is a static pod's mirror (`Static`). */
  | { readonly _tag: "Refused"; readonly reason: "Bare" | "Static"; readonly pod: PodOnNode }
  /** Not among this node's pods, or deleted or replaced by another pod of its name meanwhile. */
  | { readonly _tag: "Gone"; readonly podUid: string }
  /** The list or the delete failed (API unreachable, forbidden, ...); a later call may succeed. */
  | { readonly _tag: "Failed"; readonly podUid: string; readonly error: KubeError }
  /** No API server access (events disabled or not configured): nothing was tried. */
  | { readonly _tag: "Disabled" }

export class PodRestarter extends Context.Service<PodRestarter, {
  /** Deletes this node's pod `podUid` if its controller will re-create it; `why` goes to the log. Never fails. */
  readonly restart: (podUid: string, why: string) => Effect.Effect<RestartOutcome>
}>()("rds-csi/kube/PodRestarter") {
  /** Restarts nothing (`--events=false`, no API server configuration): logs once per pod and returns Disabled. */
  static readonly layerNoop: Layer.Layer<PodRestarter> = Layer.sync(PodRestarter, () => {
    const once = onceEach()
    return PodRestarter.of({
      restart: (podUid, why) =>
        once(podUid, Effect.logWarning(`pod ${podUid} not restarted: no Kubernetes API access (events disabled)`, why)).pipe(
          Effect.as({ _tag: "Disabled" } as const)
        )
    })
  })

  /** Live, for this node (Settings.nodeId), over a KubeClient. */
  static readonly layer: Layer.Layer<PodRestarter, never, KubeClient | Settings> = Layer.effect(
    PodRestarter,
    Effect.gen(function*() {
      const settings = yield* Settings
      return yield* make(settings.nodeId)
    })
  )
}

/** Runs `log` the first time a key is seen (a caller may ask about the same pod every health tick). */
const onceEach = () => {
  const seen = new Lru<string, true>(1024)
  return (key: string, log: Effect.Effect<void>): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (seen.get(key) !== undefined) return Effect.void
      seen.set(key, true)
      return log
    })
}

const nameOf = (p: PodOnNode) => `${p.namespace}/${p.name}`

/** The service for `nodeName`: a fresh list of the node's pods per call (a delete must not act on a stale cache). */
export const make = (nodeName: string) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const refusedOnce = onceEach()

    const restart = Effect.fn("PodRestarter.restart")(function*(podUid: string, why: string): Effect.fn.Return<RestartOutcome> {
      const pods = yield* Effect.result(kube.podsOnNode(nodeName))
      if (Result.isFailure(pods)) {
        yield* Effect.logWarning(`pod ${podUid} not restarted: cannot list the pods on node ${nodeName}`, pods.failure.message)
        return { _tag: "Failed", podUid, error: pods.failure } as const
      }
      const pod = pods.success.find((p) => p.uid === podUid)
      if (pod === undefined) {
        yield* Effect.logInfo(`pod ${podUid} not restarted: it is no longer on node ${nodeName}`)
        return { _tag: "Gone", podUid } as const
      }
      const owner = pod.controller
      if (owner === undefined || owner.kind === "Node") {
        const reason = owner === undefined ? "Bare" : "Static"
        yield* refusedOnce(
          podUid,
          Effect.logWarning(
            reason === "Bare"
              ? `pod ${nameOf(pod)} not restarted: it has no controller to re-create it (a bare pod); restart it by hand`
              : `pod ${nameOf(pod)} not restarted: it is a static pod's mirror, which kubelet runs from its manifest; restart it on the node`,
            why
          )
        )
        return { _tag: "Refused", reason, pod } as const
      }
      const deleted = yield* Effect.result(kube.deletePod(pod.namespace, pod.name, pod.uid))
      if (Result.isFailure(deleted)) {
        const e = deleted.failure
        // NotFound: deleted meanwhile. Conflict: the uid precondition failed, the name is another pod's now.
        if (e.reason === "NotFound" || e.reason === "Conflict") {
          yield* Effect.logInfo(`pod ${nameOf(pod)} (${podUid}) not restarted: deleted or replaced meanwhile`, e.message)
          return { _tag: "Gone", podUid } as const
        }
        yield* Effect.logWarning(`pod ${nameOf(pod)} not restarted: delete failed`, e.message)
        return { _tag: "Failed", podUid, error: e } as const
      }
      yield* Effect.logInfo(`pod ${nameOf(pod)} deleted so that its ${owner.kind} ${owner.name} re-creates it with the recovered volume`, why)
      return { _tag: "Deleted", pod } as const
    })

    return PodRestarter.of({ restart })
  })
