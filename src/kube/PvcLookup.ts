/**
 * PvcLookup: volume ID → the PVC an event about that volume belongs on, node name → the
 * Node object, and pod uid → the Pod on this node. The volume ID is a PV's spec.csi.volumeHandle (of our driver), not necessarily
 * its name (static PVs), so PVs are kept in a watch-fed index: list, then watch from the list's
 * resourceVersion, relist on 410 or failure. Claims and nodes are cached with a TTL, misses in
 * a negative cache, so a storm of events costs no extra API calls. Pods are found in one list of
 * the node's pods (fieldSelector spec.nodeName), shared by concurrent lookups and kept for
 * `podListTtl`: a recovery that names ten pods costs one request. Meant to be called off the
 * caller's path (the event recorder resolves in its own fibers).
 *
 * May import: effect, ../Settings.ts, ./KubeClient.ts.
 */
import { Clock, Context, Deferred, Duration, Effect, Exit, Layer, Result, Stream } from "effect"
import { Settings } from "../Settings.ts"
import { isRetryable, KubeClient, kubeError, type KubeError, type ObjectRef, type PersistentVolume, type PodOnNode } from "./KubeClient.ts"
import { Lru } from "./Lru.ts"

/** Found: where to post. Missing: there is nothing to post on, and why (logged once by the recorder). */
export type Lookup = Result.Result<ObjectRef, string>

export interface PvcLookupOptions {
  readonly driverName: string
  /** How long a lookup waits for the first PV list before failing (retryable). */
  readonly syncWait: Duration.Duration
  /** A found claim or node is trusted this long. */
  readonly positiveTtl: Duration.Duration
  /** A missing PV, claim or node is not asked for again this long. */
  readonly negativeTtl: Duration.Duration
  /** On an index miss, how long to wait for the watch to deliver a PV created a moment ago. */
  readonly lagGrace: Duration.Duration
  /** A list of a node's pods answers pod lookups this long (a failed list is not kept). */
  readonly podListTtl: Duration.Duration
  readonly cacheSize: number
}

export const DEFAULT_LOOKUP_OPTIONS: Omit<PvcLookupOptions, "driverName"> = {
  syncWait: Duration.seconds(30),
  positiveTtl: Duration.minutes(5),
  negativeTtl: Duration.seconds(30),
  lagGrace: Duration.seconds(2),
  podListTtl: Duration.seconds(5),
  cacheSize: 4096
}

export class PvcLookup extends Context.Service<PvcLookup, {
  /** The PVC bound to the PV whose volumeHandle is `volumeId`; fails only on a transient API error. */
  readonly pvcForVolume: (volumeId: string) => Effect.Effect<Lookup, KubeError>
  /** The Node object named `name`. */
  readonly node: (name: string) => Effect.Effect<Lookup, KubeError>
  /** The Pod whose uid is `uid` among the pods bound to `nodeName`. */
  readonly pod: (nodeName: string, uid: string) => Effect.Effect<Lookup, KubeError>
  /** True once the PV index has been filled from a list. */
  readonly synced: Effect.Effect<boolean>
}>()("rds-csi/kube/PvcLookup") {}

export const pvcRef = (namespace: string, name: string, uid: string): ObjectRef => ({
  apiVersion: "v1", kind: "PersistentVolumeClaim", namespace, name, uid
})
export const podRef = (namespace: string, name: string, uid: string): ObjectRef => ({
  apiVersion: "v1", kind: "Pod", namespace, name, uid
})
/**
 * A Node as events name it: uid = the node's NAME, as kubelet posts its own node events. kubectl
 * describe node up to 1.2x searches events by that uid only (later ones also by the real uid), so
 * an event carrying the Node's real uid is invisible to them (seen with Debian's kubectl 1.20).
 */
export const nodeRef = (name: string): ObjectRef => ({ apiVersion: "v1", kind: "Node", namespace: "", name, uid: name })

interface Cached {
  readonly value: Lookup
  readonly until: number
}

/** The live lookup: starts the PV list+watch in the layer's scope. */
export const make = (options: PvcLookupOptions) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const byHandle = new Map<string, PersistentVolume>()
    const handleOfName = new Map<string, string>()
    const synced = yield* Deferred.make<void>()
    let lastListError: KubeError | undefined
    const claims = new Lru<string, Cached>(options.cacheSize)
    const nodes = new Lru<string, Cached>(options.cacheSize)
    const pvMisses = new Lru<string, number>(options.cacheSize)
    // One cached list per node name (in practice only this node's): concurrent lookups share the request.
    const podLists = new Lru<string, Effect.Effect<ReadonlyArray<PodOnNode>, KubeError>>(16)
    const positive = Duration.toMillis(options.positiveTtl)
    const negative = Duration.toMillis(options.negativeTtl)

    const ours = (pv: PersistentVolume) => pv.csi !== undefined && pv.csi.driver === options.driverName
    const index = (pv: PersistentVolume) => {
      const old = handleOfName.get(pv.name)
      if (old !== undefined) byHandle.delete(old)
      handleOfName.delete(pv.name)
      if (ours(pv)) {
        byHandle.set(pv.csi!.volumeHandle, pv)
        handleOfName.set(pv.name, pv.csi!.volumeHandle)
      }
    }
    const unindex = (pv: PersistentVolume) => {
      const old = handleOfName.get(pv.name)
      if (old !== undefined) byHandle.delete(old)
      handleOfName.delete(pv.name)
    }

    const list = kube.listPersistentVolumes().pipe(
      Effect.tap((l) =>
        Effect.sync(() => {
          byHandle.clear()
          handleOfName.clear()
          for (const pv of l.items) index(pv)
          lastListError = undefined
        })
      ),
      Effect.tap(() => Deferred.succeed(synced, undefined)),
      Effect.map((l) => l.resourceVersion),
      Effect.tapError((e) => Effect.sync(() => { lastListError = e }))
    )

    // list → watch → (server closed: watch again from the last version) → (error: back off, relist)
    const informer = Effect.gen(function*() {
      let failures = 0
      while (true) {
        const listed = yield* Effect.result(list)
        if (Result.isFailure(listed)) {
          failures++
          if (failures === 1 || failures % 10 === 0) yield* Effect.logWarning("PV list failed; events cannot find their PVC until it works", listed.failure.message)
          yield* Effect.sleep(Duration.millis(Math.min(30_000, 500 * 2 ** Math.min(failures, 6))))
          continue
        }
        failures = 0
        let rv = listed.success
        while (true) {
          const started = yield* Clock.currentTimeMillis
          let seen = 0
          const watched = yield* Effect.result(
            kube.watchPersistentVolumes(rv).pipe(
              Stream.runForEach((e) =>
                Effect.sync(() => {
                  seen++
                  if (e.type === "BOOKMARK") rv = e.resourceVersion
                  else {
                    rv = e.object.resourceVersion || rv
                    if (e.type === "DELETED") unindex(e.object)
                    else index(e.object)
                  }
                })
              )
            )
          )
          if (Result.isFailure(watched)) {
            if (watched.failure.reason !== "Conflict") yield* Effect.logDebug("PV watch failed; relisting", watched.failure.message)
            yield* Effect.sleep(Duration.seconds(1))
            break
          }
          // A server that closes watches at once must not make this a busy loop.
          if (seen === 0 && (yield* Clock.currentTimeMillis) - started < 1000) yield* Effect.sleep(Duration.seconds(1))
        }
      }
    })
    yield* Effect.forkScoped(informer)

    // Waits for the first list, bounded; a refusal (403) is final at once: waiting will not fix RBAC.
    const awaitSync: Effect.Effect<void, KubeError> = Effect.gen(function*() {
      const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(options.syncWait)
      while (!Deferred.isDoneUnsafe(synced)) {
        if (lastListError !== undefined && !isRetryable(lastListError)) return yield* Effect.fail(lastListError)
        if ((yield* Clock.currentTimeMillis) >= deadline) {
          return yield* Effect.fail(lastListError ?? kubeError("Timeout", "listPersistentVolumes", `PV cache not synced within ${Duration.format(options.syncWait)}`))
        }
        yield* Effect.timeoutOption(Deferred.await(synced), Duration.millis(100))
      }
    })

    const cachedLookup = (cache: Lru<string, Cached>, key: string, fetch: Effect.Effect<Lookup, KubeError>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const hit = cache.get(key)
        if (hit !== undefined && hit.until > now) return hit.value
        const value = yield* fetch
        cache.set(key, { value, until: now + (Result.isSuccess(value) ? positive : negative) })
        return value
      })

    const claimOf = (pv: PersistentVolume): Effect.Effect<Lookup, KubeError> => {
      const claim = pv.claimRef
      if (claim === undefined) return Effect.succeed(Result.fail(`PV ${pv.name} is not bound to a claim`))
      const key = `${claim.namespace}/${claim.name}`
      return cachedLookup(
        claims,
        key,
        kube.getPersistentVolumeClaim(claim.namespace, claim.name).pipe(
          Effect.map((pvc): Lookup => Result.succeed(pvcRef(pvc.namespace, pvc.name, pvc.uid))),
          Effect.catchTag("KubeError", (e) =>
            e.reason === "NotFound" ? Effect.succeed(Result.fail(`PVC ${key} (claim of PV ${pv.name}) does not exist`)) : Effect.fail(e))
        )
      ).pipe(
        Effect.map((found) =>
          Result.isSuccess(found) && claim.uid !== undefined && found.success.uid !== claim.uid
            ? Result.fail(`PVC ${key} was re-created; PV ${pv.name} is bound to its predecessor ${claim.uid}`)
            : found
        )
      )
    }

    /** Informer lag: a PV created a moment ago may not be indexed yet; dynamic PVs are named like their handle. */
    const direct = (volumeId: string): Effect.Effect<PersistentVolume | undefined, KubeError> =>
      kube.getPersistentVolume(volumeId).pipe(
        Effect.map((pv): PersistentVolume | undefined => (ours(pv) && pv.csi!.volumeHandle === volumeId ? pv : undefined)),
        Effect.tap((pv) => Effect.sync(() => pv !== undefined && index(pv))),
        Effect.catchTag("KubeError", (e) => (e.reason === "NotFound" ? Effect.succeed(undefined) : Effect.fail(e)))
      )

    /** The PV of `volumeId`: the index; on a miss (not missed recently) a GET by name, then a short wait for the watch. */
    const pvOf = (volumeId: string): Effect.Effect<PersistentVolume | undefined, KubeError> =>
      Effect.gen(function*() {
        const indexed = byHandle.get(volumeId)
        if (indexed !== undefined) return indexed
        const now = yield* Clock.currentTimeMillis
        const missedUntil = pvMisses.get(volumeId)
        if (missedUntil !== undefined && missedUntil > now) return undefined
        let pv = yield* direct(volumeId)
        // A static PV created just before the event may still be on its way through the watch.
        for (let waited = 0; pv === undefined && waited < Duration.toMillis(options.lagGrace); waited += 100) {
          yield* Effect.sleep(Duration.millis(100))
          pv = byHandle.get(volumeId)
        }
        if (pv === undefined) pvMisses.set(volumeId, (yield* Clock.currentTimeMillis) + negative)
        return pv
      })

    return PvcLookup.of({
      pvcForVolume: (volumeId) =>
        Effect.gen(function*() {
          yield* awaitSync
          const pv = yield* pvOf(volumeId)
          if (pv === undefined) return Result.fail(`no PersistentVolume of driver ${options.driverName} has volumeHandle ${volumeId}`)
          return yield* claimOf(pv)
        }),
      node: (name) =>
        cachedLookup(
          nodes,
          name,
          kube.getNode(name).pipe(
            Effect.map((n): Lookup => Result.succeed(nodeRef(n.name))),
            Effect.catchTag("KubeError", (e) => (e.reason === "NotFound" ? Effect.succeed(Result.fail(`Node ${name} does not exist`)) : Effect.fail(e)))
          )
        ),
      pod: (nodeName, uid) =>
        Effect.gen(function*() {
          let list = podLists.get(nodeName)
          if (list === undefined) {
            const fresh = yield* Effect.cachedWithTTL(kube.podsOnNode(nodeName), (exit) => (Exit.isSuccess(exit) ? options.podListTtl : Duration.zero))
            list = podLists.get(nodeName) ?? fresh // another lookup may have made one meanwhile
            podLists.set(nodeName, list)
          }
          const pod = (yield* list).find((p) => p.uid === uid)
          return pod === undefined ? Result.fail(`no Pod with uid ${uid} on node ${nodeName}`) : Result.succeed(podRef(pod.namespace, pod.name, pod.uid))
        }),
      synced: Deferred.isDone(synced)
    })
  })

/** Live, from Settings (driver name); needs a KubeClient. */
export const layer: Layer.Layer<PvcLookup, never, KubeClient | Settings> = Layer.effect(
  PvcLookup,
  Effect.gen(function*() {
    const settings = yield* Settings
    return yield* make({ ...DEFAULT_LOOKUP_OPTIONS, driverName: settings.driverName })
  })
)

/** Fixed answers, for tests of code that only needs a lookup. */
export const layerStatic = (
  volumes: Record<string, ObjectRef>,
  nodes: Record<string, ObjectRef>,
  pods: Record<string, ObjectRef> = {}
): Layer.Layer<PvcLookup> =>
  Layer.succeed(PvcLookup, PvcLookup.of({
    pvcForVolume: (v) => Effect.succeed(volumes[v] === undefined ? Result.fail(`no PV for ${v}`) : Result.succeed(volumes[v]!)),
    node: (n) => Effect.succeed(nodes[n] === undefined ? Result.fail(`no Node ${n}`) : Result.succeed(nodes[n]!)),
    pod: (n, uid) => Effect.succeed(pods[uid] === undefined ? Result.fail(`no Pod with uid ${uid} on node ${n}`) : Result.succeed(pods[uid]!)),
    synced: Effect.succeed(true)
  }))
