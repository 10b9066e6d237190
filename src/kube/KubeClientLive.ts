/**
 * KubeClient over @kubernetes/client-node 2: in-cluster config or a kubeconfig file (never the
 * library's silent fallback to http://localhost:8080), a per-request timeout that aborts the
 * request, PATCH always as strategic merge, every failure mapped to one KubeError.
 *
 * May import: effect, @kubernetes/client-node, ../Settings.ts, ./KubeClient.ts.
 */
import {
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  PatchStrategy,
  Watch
} from "@kubernetes/client-node"
import type { ConfigurationOptions, CoreV1Event, ObservableMiddleware, V1PersistentVolume, V1Pod } from "@kubernetes/client-node"
import { Cause, Duration, Effect, Layer, Queue, Stream } from "effect"
import { Settings } from "../Settings.ts"
import {
  DEFAULT_REQUEST_TIMEOUT,
  KubeClient,
  kubeError,
  type KubeError,
  type KubeEvent,
  type KubeErrorReason,
  type PersistentVolume,
  type PodOnNode,
  type PvWatchEvent
} from "./KubeClient.ts"

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

const reasonOf = (status: number): KubeErrorReason =>
  status === 404 ? "NotFound"
  : status === 401 || status === 403 ? "Forbidden"
  : status === 409 || status === 410 ? "Conflict"
  : status === 429 ? "TooManyRequests"
  : status >= 500 ? "ServerError"
  : "Invalid"

/** Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: string | undefined, nowMs: number): Duration.Duration | undefined => {
  if (value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Duration.seconds(seconds)
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Duration.millis(Math.max(0, at - nowMs))
}

const statusMessage = (body: unknown): string => {
  const parsed = typeof body === "string" ? (() => { try { return JSON.parse(body) as unknown } catch { return body } })() : body
  if (typeof parsed === "object" && parsed !== null && "message" in parsed && typeof parsed.message === "string") return parsed.message
  return typeof parsed === "string" ? parsed.slice(0, 300) : ""
}

/** Maps whatever client-node or undici threw to a KubeError. */
export const toKubeError = (operation: string, e: unknown): KubeError => {
  if (e instanceof ApiException) {
    const status = e.code
    const headers = (e.headers ?? {}) as Record<string, string>
    return kubeError(reasonOf(status), operation, statusMessage(e.body) || `HTTP ${status}`, {
      status,
      retryAfter: parseRetryAfter(headers["retry-after"], Date.now())
    })
  }
  const err = e as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } }
  if (err?.name === "TimeoutError") return kubeError("Timeout", operation, err.message ?? "timed out")
  const cause = err?.cause?.code ?? err?.code
  const detail = [err?.message, err?.cause?.message].filter((s) => s !== undefined && s !== "").join(": ")
  return kubeError("Transport", operation, cause === undefined ? detail : `${cause}: ${detail}`)
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

const fromPv = (pv: V1PersistentVolume): PersistentVolume => {
  const csi = pv.spec?.csi
  const claim = pv.spec?.claimRef
  return {
    name: pv.metadata?.name ?? "",
    uid: pv.metadata?.uid ?? "",
    resourceVersion: pv.metadata?.resourceVersion ?? "",
    csi: csi === undefined ? undefined : { driver: csi.driver, volumeHandle: csi.volumeHandle },
    claimRef: claim?.name === undefined ? undefined : { namespace: claim.namespace ?? "", name: claim.name, uid: claim.uid || undefined }
  }
}

const fromPod = (p: V1Pod): PodOnNode => {
  const owner = p.metadata?.ownerReferences?.find((o) => o.controller === true)
  return {
    namespace: p.metadata?.namespace ?? "",
    name: p.metadata?.name ?? "",
    uid: p.metadata?.uid ?? "",
    controller: owner === undefined ? undefined : { kind: owner.kind, name: owner.name }
  }
}

const fromEvent = (e: CoreV1Event): KubeEvent => ({
  name: e.metadata.name ?? "",
  namespace: e.metadata.namespace ?? "",
  involvedObject: {
    apiVersion: e.involvedObject.apiVersion ?? "",
    kind: e.involvedObject.kind ?? "",
    name: e.involvedObject.name ?? "",
    namespace: e.involvedObject.namespace ?? "",
    uid: e.involvedObject.uid ?? ""
  },
  type: e.type === "Warning" ? "Warning" : "Normal",
  reason: e.reason ?? "",
  message: e.message ?? "",
  count: e.count ?? 1,
  firstTimestamp: e.firstTimestamp === undefined ? 0 : new Date(e.firstTimestamp).getTime(),
  lastTimestamp: e.lastTimestamp === undefined ? 0 : new Date(e.lastTimestamp).getTime(),
  source: { component: e.source?.component ?? "", host: e.source?.host ?? "" },
  reportingComponent: e.reportingComponent ?? "",
  reportingInstance: e.reportingInstance ?? ""
})

/** metav1.Time is RFC 3339 with second precision. */
const rfc3339 = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z")

/** A middleware that aborts the request with `signal` and, for PATCH, forces strategic merge. */
const requestOptions = (signal: AbortSignal, patch: boolean): ConfigurationOptions<ObservableMiddleware> => ({
  middleware: [{
    pre: (ctx) => {
      ctx.setSignal(signal)
      if (patch) ctx.setHeaderParam("Content-Type", PatchStrategy.StrategicMergePatch)
      return new Observable(Promise.resolve(ctx))
    },
    post: (rsp) => new Observable(Promise.resolve(rsp))
  }],
  middlewareMergeStrategy: "append"
})

/** The service over a loaded KubeConfig. */
export const make = (kc: KubeConfig, requestTimeout: Duration.Duration = DEFAULT_REQUEST_TIMEOUT): KubeClient["Service"] => {
  const core = kc.makeApiClient(CoreV1Api)
  const authz = kc.makeApiClient(AuthorizationV1Api)
  const server = kc.getCurrentCluster()?.server ?? ""

  const call = <A>(operation: string, f: (options: ConfigurationOptions<ObservableMiddleware>) => Promise<A>, patch = false) =>
    Effect.tryPromise({ try: (signal) => f(requestOptions(signal, patch)), catch: (e) => toKubeError(operation, e) }).pipe(
      Effect.timeoutOrElse({
        duration: requestTimeout,
        orElse: () => Effect.fail(kubeError("Timeout", operation, `no answer within ${Duration.format(requestTimeout)}`))
      })
    )

  // Unbounded buffer: a full one would drop watch events silently (offerUnsafe), leaving the index stale.
  const watchPersistentVolumes = (resourceVersion: string): Stream.Stream<PvWatchEvent, KubeError> =>
    Stream.callback<PvWatchEvent, KubeError>((queue) =>
      // Not awaited: Watch.watch resolves only when the response headers arrive, and a hung server
      // would make the (uninterruptible) acquire, and so shutdown, wait for its 30 s timeout.
      Effect.acquireRelease(
        Effect.sync(() => {
          const started = new Watch(kc).watch(
            "/api/v1/persistentvolumes",
            { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
            (phase, obj) => {
              if (phase === "BOOKMARK") {
                Queue.offerUnsafe(queue, { type: "BOOKMARK", resourceVersion: obj?.metadata?.resourceVersion ?? resourceVersion })
              } else if (phase === "ERROR") {
                const status = typeof obj?.code === "number" ? obj.code : 500
                Queue.failCauseUnsafe(queue, Cause.fail(kubeError(reasonOf(status), "watchPersistentVolumes", obj?.message ?? "watch error", { status })))
              } else if (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED") {
                Queue.offerUnsafe(queue, { type: phase, object: fromPv(obj as V1PersistentVolume) })
              }
            },
            (err) => {
              // client-node ends a silent watch after 30 s with a TimeoutError: a normal end, resume from the last version.
              if (err === null || err === undefined || err?.name === "TimeoutError" || err?.name === "AbortError") Queue.endUnsafe(queue)
              else {
                const e = typeof err?.statusCode === "number"
                  ? kubeError(reasonOf(err.statusCode), "watchPersistentVolumes", err.message ?? "", { status: err.statusCode })
                  : toKubeError("watchPersistentVolumes", err)
                Queue.failCauseUnsafe(queue, Cause.fail(e))
              }
            }
          )
          started.catch((e) => Queue.failCauseUnsafe(queue, Cause.fail(toKubeError("watchPersistentVolumes", e))))
          return started
        }),
        (started) => Effect.sync(() => void started.then((controller) => controller.abort(), () => undefined))
      ))

  return {
    server,
    listPersistentVolumes: () =>
      call("listPersistentVolumes", (o) => core.listPersistentVolume({}, o)).pipe(
        Effect.map((list) => ({ items: list.items.map(fromPv), resourceVersion: list.metadata?.resourceVersion ?? "" }))
      ),
    watchPersistentVolumes,
    getPersistentVolume: (name) => call(`getPersistentVolume ${name}`, (o) => core.readPersistentVolume({ name }, o)).pipe(Effect.map(fromPv)),
    getPersistentVolumeClaim: (namespace, name) =>
      call(`getPersistentVolumeClaim ${namespace}/${name}`, (o) => core.readNamespacedPersistentVolumeClaim({ namespace, name }, o)).pipe(
        Effect.map((pvc) => ({
          namespace: pvc.metadata?.namespace ?? namespace,
          name: pvc.metadata?.name ?? name,
          uid: pvc.metadata?.uid ?? "",
          volumeName: pvc.spec?.volumeName
        }))
      ),
    getNode: (name) => call(`getNode ${name}`, (o) => core.readNode({ name }, o)).pipe(Effect.map((n) => ({ name, uid: n.metadata?.uid ?? "" }))),
    // A consistent list (not resourceVersion=0 from the watch cache): it runs only after a recovery
    // and its callers cache it, and a pod must not be missed for a cache that lags.
    podsOnNode: (nodeName) =>
      call(`podsOnNode ${nodeName}`, (o) => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` }, o)).pipe(
        Effect.map((list) => list.items.map(fromPod))
      ),
    deletePod: (namespace, name, uid) =>
      call(`deletePod ${namespace}/${name}`, (o) => core.deleteNamespacedPod({ namespace, name, body: { preconditions: { uid } } }, o)).pipe(
        Effect.asVoid
      ),
    createEvent: (e) =>
      call(`createEvent ${e.namespace}/${e.name}`, (o) =>
        core.createNamespacedEvent({
          namespace: e.namespace,
          body: {
            metadata: { name: e.name, namespace: e.namespace },
            involvedObject: { ...e.involvedObject },
            type: e.type,
            reason: e.reason,
            message: e.message,
            count: e.count,
            firstTimestamp: new Date(Math.floor(e.firstTimestamp / 1000) * 1000),
            lastTimestamp: new Date(Math.floor(e.lastTimestamp / 1000) * 1000),
            source: { ...e.source },
            reportingComponent: e.reportingComponent,
            reportingInstance: e.reportingInstance
          }
        }, o)).pipe(Effect.map(fromEvent)),
    patchEvent: (namespace, name, p) =>
      call(
        `patchEvent ${namespace}/${name}`,
        (o) => core.patchNamespacedEvent({ namespace, name, body: { count: p.count, lastTimestamp: rfc3339(p.lastTimestamp), message: p.message } }, o),
        true
      ).pipe(Effect.map(fromEvent)),
    canI: (check) =>
      call(`canI ${check.verb} ${check.resource}`, (o) =>
        authz.createSelfSubjectAccessReview({
          body: {
            spec: {
              resourceAttributes: {
                verb: check.verb,
                resource: check.resource,
                ...(check.group === undefined ? {} : { group: check.group }),
                ...(check.namespace === undefined ? {} : { namespace: check.namespace })
              }
            }
          }
        }, o)).pipe(Effect.map((r) => ({ allowed: r.status?.allowed === true, reason: r.status?.reason ?? "" })))
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
