/**
 * KubeClient over @kubernetes/client-node 2's KubeConfig: in-cluster config or a kubeconfig file
 * (never the library's silent fallback to http://localhost:8080), each call one JSON request
 * through KubeHttp (KubeConfig's TLS and credentials, one keep-alive agent), a per-request
 * timeout that aborts the request, PATCH always as strategic merge, every failure mapped to one
 * KubeError. Only client-node's config module is loaded (see KubeHttp.ts); its model types
 * describe the JSON (their field names are the wire names for every field read here; times
 * arrive as strings and are read through `new Date`).
 *
 * May import: effect, @kubernetes/client-node (KubeConfig; model types), ../Settings.ts,
 * ./KubeClient.ts, ./KubeHttp.ts, ./KubeWire.ts.
 */
import type {
  CoreV1Event,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1PersistentVolumeList,
  V1PodList,
  V1SelfSubjectAccessReview,
  V1Status
} from "@kubernetes/client-node"
import { KubeConfig } from "@kubernetes/client-node/dist/config.js"
import { Cause, Duration, Effect, Layer, Queue, Stream } from "effect"
import { Settings } from "../Settings.ts"
import {
  DEFAULT_REQUEST_TIMEOUT,
  KubeClient,
  kubeError,
  type KubeError,
  type PvWatchEvent
} from "./KubeClient.ts"
import { make as makeHttp, type Request } from "./KubeHttp.ts"
import { fromEvent, fromPod, fromPv, reasonOf, rfc3339, toKubeError } from "./KubeWire.ts"

// Part of rds-csi/kube's KubeClientLive namespace before the mapping moved to KubeWire.ts.
export { parseRetryAfter, toKubeError } from "./KubeWire.ts"

export interface LiveOptions {
  /** Path of a kubeconfig file; undefined = in-cluster (service account), and an error outside a cluster. */
  readonly kubeconfig: string | undefined
  readonly requestTimeout?: Duration.Duration
}

/** A direct connection: server URL, CA file and bearer token (tests, tools). */
export interface ConnectionOptions {
  readonly server: string
  readonly caFile: string
  readonly token: string
  readonly requestTimeout?: Duration.Duration
}

/** Loads the configuration; fails rather than talking to localhost:8080 when there is none. */
export const loadKubeConfig = (kubeconfig: string | undefined): Effect.Effect<KubeConfig, KubeError> =>
  Effect.try({
    try: () => {
      const kc = new KubeConfig()
      if (kubeconfig !== undefined) {
        kc.loadFromFile(kubeconfig)
      } else {
        if (!process.env["KUBERNETES_SERVICE_HOST"] || !process.env["KUBERNETES_SERVICE_PORT"]) {
          throw new Error("no --kubeconfig given and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset); not falling back to localhost:8080")
        }
        kc.loadFromCluster()
      }
      if (kc.getCurrentCluster() === null) throw new Error(`no current cluster in ${kubeconfig ?? "the in-cluster config"}`)
      return kc
    },
    catch: (e) => kubeError("Invalid", "loadKubeConfig", e instanceof Error ? e.message : String(e))
  })

/** client-go's watch timeout is random in [5, 10) min; ours is the server's, plus a silence bound. */
const WATCH_SERVER_TIMEOUT_S = 300
/** A watch silent this long (no event, no bookmark) is ended and resumed, as client-node's Watch did. */
const WATCH_IDLE = Duration.seconds(30)

const enc = encodeURIComponent

/** The service over a loaded KubeConfig. */
export const make = (kc: KubeConfig, requestTimeout: Duration.Duration = DEFAULT_REQUEST_TIMEOUT): KubeClient["Service"] => {
  const api = makeHttp(kc)

  const call = <A>(operation: string, req: Omit<Request, "signal">) =>
    Effect.tryPromise({ try: (signal) => api.json<A>({ ...req, signal }), catch: (e) => toKubeError(operation, e) }).pipe(
      Effect.timeoutOrElse({
        duration: requestTimeout,
        orElse: () => Effect.fail(kubeError("Timeout", operation, `no answer within ${Duration.format(requestTimeout)}`))
      })
    )

  // Unbounded buffer: a full one would drop watch events silently (offerUnsafe), leaving the index stale.
  const watchPersistentVolumes = (resourceVersion: string): Stream.Stream<PvWatchEvent, KubeError> =>
    Stream.callback<PvWatchEvent, KubeError>((queue) =>
      // Not awaited: the answer's headers may never come from a hung server, and the (uninterruptible)
      // acquire, and so shutdown, would wait for them; the release aborts the request instead.
      Effect.acquireRelease(
        Effect.sync(() => {
          const controller = new AbortController()
          const query = `watch=true&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SERVER_TIMEOUT_S}&resourceVersion=${enc(resourceVersion)}`
          api.lines(`/api/v1/persistentvolumes?${query}`, controller.signal, Duration.toMillis(WATCH_IDLE), (text) => {
            let ev: { type?: string; object?: V1PersistentVolume & V1Status }
            try {
              ev = JSON.parse(text)
            } catch {
              return // not a watch event; client-node skipped such lines too
            }
            const obj = ev.object
            if (ev.type === "BOOKMARK") {
              Queue.offerUnsafe(queue, { type: "BOOKMARK", resourceVersion: obj?.metadata?.resourceVersion ?? resourceVersion })
            } else if (ev.type === "ERROR") {
              const status = typeof obj?.code === "number" ? obj.code : 500
              Queue.failCauseUnsafe(queue, Cause.fail(kubeError(reasonOf(status), "watchPersistentVolumes", obj?.message ?? "watch error", { status })))
            } else if (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED") {
              Queue.offerUnsafe(queue, { type: ev.type, object: fromPv(obj ?? {}) })
            }
          }, (err) => {
            // The server's timeoutSeconds, our silence bound, our own abort: a normal end, resume from the last version.
            const name = (err as { name?: string } | undefined)?.name
            if (err === undefined || name === "TimeoutError" || name === "AbortError") Queue.endUnsafe(queue)
            else Queue.failCauseUnsafe(queue, Cause.fail(toKubeError("watchPersistentVolumes", err)))
          })
          return controller
        }),
        (controller) => Effect.sync(() => controller.abort())
      ))

  return {
    server: api.server,
    listPersistentVolumes: () =>
      call<V1PersistentVolumeList>("listPersistentVolumes", { method: "GET", path: "/api/v1/persistentvolumes" }).pipe(
        Effect.map((list) => ({ items: list.items.map(fromPv), resourceVersion: list.metadata?.resourceVersion ?? "" }))
      ),
    watchPersistentVolumes,
    getPersistentVolume: (name) =>
      call<V1PersistentVolume>(`getPersistentVolume ${name}`, { method: "GET", path: `/api/v1/persistentvolumes/${enc(name)}` }).pipe(Effect.map(fromPv)),
    getPersistentVolumeClaim: (namespace, name) =>
      call<V1PersistentVolumeClaim>(`getPersistentVolumeClaim ${namespace}/${name}`, {
        method: "GET",
        path: `/api/v1/namespaces/${enc(namespace)}/persistentvolumeclaims/${enc(name)}`
      }).pipe(
        Effect.map((pvc) => ({
          namespace: pvc.metadata?.namespace ?? namespace,
          name: pvc.metadata?.name ?? name,
          uid: pvc.metadata?.uid ?? "",
          volumeName: pvc.spec?.volumeName
        }))
      ),
    getNode: (name) =>
      call<V1Node>(`getNode ${name}`, { method: "GET", path: `/api/v1/nodes/${enc(name)}` }).pipe(Effect.map((n) => ({ name, uid: n.metadata?.uid ?? "" }))),
    // A consistent list (not resourceVersion=0 from the watch cache): it runs only after a recovery
    // and its callers cache it, and a pod must not be missed for a cache that lags.
    podsOnNode: (nodeName) =>
      call<V1PodList>(`podsOnNode ${nodeName}`, { method: "GET", path: `/api/v1/pods?fieldSelector=${enc(`spec.nodeName=${nodeName}`)}` }).pipe(
        Effect.map((list) => list.items.map(fromPod))
      ),
    deletePod: (namespace, name, uid) =>
      call(`deletePod ${namespace}/${name}`, {
        method: "DELETE",
        path: `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`,
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid } }
      }).pipe(Effect.asVoid),
    createEvent: (e) =>
      call<CoreV1Event>(`createEvent ${e.namespace}/${e.name}`, {
        method: "POST",
        path: `/api/v1/namespaces/${enc(e.namespace)}/events`,
        body: {
          apiVersion: "v1",
          kind: "Event",
          metadata: { name: e.name, namespace: e.namespace },
          involvedObject: { ...e.involvedObject },
          type: e.type,
          reason: e.reason,
          message: e.message,
          count: e.count,
          firstTimestamp: rfc3339(e.firstTimestamp),
          lastTimestamp: rfc3339(e.lastTimestamp),
          source: { ...e.source },
          reportingComponent: e.reportingComponent,
          reportingInstance: e.reportingInstance
        }
      }).pipe(Effect.map(fromEvent)),
    patchEvent: (namespace, name, p) =>
      call<CoreV1Event>(`patchEvent ${namespace}/${name}`, {
        method: "PATCH",
        path: `/api/v1/namespaces/${enc(namespace)}/events/${enc(name)}`,
        contentType: "application/strategic-merge-patch+json",
        body: { count: p.count, lastTimestamp: rfc3339(p.lastTimestamp), message: p.message }
      }).pipe(Effect.map(fromEvent)),
    canI: (check) =>
      call<V1SelfSubjectAccessReview>(`canI ${check.verb} ${check.resource}`, {
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectAccessReview",
          spec: {
            resourceAttributes: {
              verb: check.verb,
              resource: check.resource,
              ...(check.group === undefined ? {} : { group: check.group }),
              ...(check.namespace === undefined ? {} : { namespace: check.namespace })
            }
          }
        }
      }).pipe(Effect.map((r) => ({ allowed: r.status?.allowed === true, reason: r.status?.reason ?? "" })))
  }
}

/** From a kubeconfig file, or in-cluster when `kubeconfig` is undefined. */
export const layer = (options: LiveOptions): Layer.Layer<KubeClient, KubeError> =>
  Layer.effect(KubeClient, Effect.map(loadKubeConfig(options.kubeconfig), (kc) => make(kc, options.requestTimeout)))

/** From Settings: `--kubeconfig` when given, else in-cluster. */
export const layerConfig: Layer.Layer<KubeClient, KubeError, Settings> = Layer.effect(
  KubeClient,
  Effect.gen(function*() {
    const settings = yield* Settings
    return make(yield* loadKubeConfig(settings.kubeconfig))
  })
)

/** A direct connection with a bearer token (integration tests, the bench). */
export const layerFromConnection = (options: ConnectionOptions): Layer.Layer<KubeClient> =>
  Layer.sync(KubeClient, () => {
    const kc = new KubeConfig()
    kc.loadFromClusterAndUser({ name: "c", server: options.server, caFile: options.caFile, skipTLSVerify: false }, { name: "u", token: options.token })
    return make(kc, options.requestTimeout)
  })
