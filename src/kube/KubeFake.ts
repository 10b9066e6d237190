/**
 * KubeFake: an in-memory Kubernetes API behind the KubeClient contract, for tests on
 * TestClock. It stores PVs, PVCs, Nodes, Pods and Events, streams PV watches, logs every request
 * with its clock time, and lets a test inject a fault (an error, a delay, a hang) per request.
 * Like the live client, a request that gets no answer fails with Timeout after `requestTimeout`.
 *
 * May import: effect, ./KubeClient.ts.
 */
import { Cause, Clock, Duration, Effect, Layer, Queue, Stream } from "effect"
import {
  DEFAULT_REQUEST_TIMEOUT,
  KubeClient,
  kubeError,
  type KubeError,
  type KubeEvent,
  type KubeNode,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type PodOnNode,
  type PvWatchEvent
} from "./KubeClient.ts"

export type FakeOp =
  | "listPersistentVolumes"
  | "watchPersistentVolumes"
  | "getPersistentVolume"
  | "getPersistentVolumeClaim"
  | "getNode"
  | "podsOnNode"
  | "deletePod"
  | "createEvent"
  | "patchEvent"
  | "canI"

export interface FakeRequest {
  readonly op: FakeOp
  /** name or namespace/name of the object the request is about. */
  readonly target: string
  /** Clock time the request reached the fake. */
  readonly at: number
}

/** A pod as the fake stores it: the node it is bound to (spec.nodeName) besides what podsOnNode returns. */
export interface FakePod extends PodOnNode {
  readonly nodeName: string
}

/** What the fake does with a request instead of answering it normally. */
export type FakeFault =
  | { readonly _tag: "Fail"; readonly error: KubeError }
  | { readonly _tag: "Delay"; readonly delay: Duration.Duration }
  | { readonly _tag: "Hang" }

export const Fault = {
  fail: (reason: KubeError["reason"], status?: number, retryAfter?: Duration.Duration): FakeFault => ({
    _tag: "Fail",
    error: kubeError(reason, "fake", `injected ${reason}`, { status, retryAfter })
  }),
  delay: (delay: Duration.Input): FakeFault => ({ _tag: "Delay", delay: Duration.fromInputUnsafe(delay) }),
  hang: { _tag: "Hang" } as FakeFault
}

export class KubeFake {
  readonly pvs = new Map<string, PersistentVolume>()
  readonly pvcs = new Map<string, PersistentVolumeClaim>()
  readonly nodes = new Map<string, KubeNode>()
  /** Pods by namespace/name; deletePod removes them at once (no kubelet, no grace period). */
  readonly pods = new Map<string, FakePod>()
  /** Events by namespace/name, as the server holds them. */
  readonly events = new Map<string, KubeEvent>()
  readonly requests: Array<FakeRequest> = []
  /** Decides a fault per request; undefined = answer normally. */
  fault: (req: FakeRequest) => FakeFault | undefined = () => undefined
  allowed: (verb: string, resource: string) => boolean = () => true
  private rv = 1
  private readonly pvLog: Array<{ readonly rv: number; readonly event: PvWatchEvent }> = []
  private readonly watchers = new Set<Queue.Queue<PvWatchEvent, KubeError | Cause.Done>>()
  private uidSeq = 0

  readonly requestTimeout: Duration.Duration

  constructor(requestTimeout: Duration.Duration = DEFAULT_REQUEST_TIMEOUT) {
    this.requestTimeout = requestTimeout
  }

  uid(prefix: string): string {
    return `${prefix}-uid-${++this.uidSeq}`
  }

  putPv(pv: Omit<PersistentVolume, "resourceVersion" | "uid"> & { readonly uid?: string }): PersistentVolume {
    const type = this.pvs.has(pv.name) ? "MODIFIED" : "ADDED"
    const stored: PersistentVolume = { ...pv, uid: pv.uid ?? this.pvs.get(pv.name)?.uid ?? this.uid("pv"), resourceVersion: String(++this.rv) }
    this.pvs.set(pv.name, stored)
    this.publish({ type, object: stored })
    return stored
  }

  deletePv(name: string): void {
    const pv = this.pvs.get(name)
    if (pv === undefined) return
    this.pvs.delete(name)
    this.publish({ type: "DELETED", object: { ...pv, resourceVersion: String(++this.rv) } })
  }

  putPvc(namespace: string, name: string, uid = this.uid("pvc"), volumeName?: string): PersistentVolumeClaim {
    const pvc = { namespace, name, uid, volumeName }
    this.pvcs.set(`${namespace}/${name}`, pvc)
    return pvc
  }

  putNode(name: string, uid = this.uid("node")): KubeNode {
    const node = { name, uid }
    this.nodes.set(name, node)
    return node
  }

  /** Puts a pod (replacing one of the same namespace/name, as a re-created pod does); `controller` undefined = bare. */
  putPod(pod: Omit<FakePod, "uid" | "controller"> & { readonly uid?: string; readonly controller?: FakePod["controller"] }): FakePod {
    const stored: FakePod = { namespace: pod.namespace, name: pod.name, nodeName: pod.nodeName, uid: pod.uid ?? this.uid("pod"), controller: pod.controller }
    this.pods.set(`${pod.namespace}/${pod.name}`, stored)
    return stored
  }

  /** Ends every open watch normally, as a server does when its timeout passes. */
  closeWatches(): void {
    for (const q of this.watchers) Queue.endUnsafe(q)
  }

  eventList(): Array<KubeEvent> {
    return [...this.events.values()]
  }

  count(op: FakeOp): number {
    return this.requests.filter((r) => r.op === op).length
  }

  private publish(event: PvWatchEvent): void {
    this.pvLog.push({ rv: this.rv, event })
    for (const q of this.watchers) Queue.offerUnsafe(q, event)
  }

  private request<A>(op: FakeOp, target: string, answer: () => Effect.Effect<A, KubeError>): Effect.Effect<A, KubeError> {
    return Effect.gen({ self: this }, function*() {
      const req = { op, target, at: yield* Clock.currentTimeMillis }
      this.requests.push(req)
      const f = this.fault(req)
      if (f?._tag === "Fail") return yield* Effect.fail(kubeError(f.error.reason, `${op} ${target}`, f.error.detail, f.error))
      if (f?._tag === "Hang") yield* Effect.never
      if (f?._tag === "Delay") yield* Effect.sleep(f.delay)
      return yield* Effect.suspend(answer)
    }).pipe(
      Effect.timeoutOrElse({
        duration: this.requestTimeout,
        orElse: () => Effect.fail(kubeError("Timeout", `${op} ${target}`, "no answer"))
      })
    )
  }

  private notFound(op: string, what: string) {
    return Effect.fail(kubeError("NotFound", op, `${what} not found`, { status: 404 }))
  }

  readonly service: KubeClient["Service"] = {
    server: "fake://kube",
    listPersistentVolumes: () =>
      this.request("listPersistentVolumes", "", () => Effect.succeed({ items: [...this.pvs.values()], resourceVersion: String(this.rv) })),
    watchPersistentVolumes: (resourceVersion) =>
      Stream.unwrap(this.request("watchPersistentVolumes", resourceVersion, () =>
        Effect.succeed(Stream.callback<PvWatchEvent, KubeError>((queue) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              const from = Number(resourceVersion)
              if (this.pvLog.length > 0 && this.pvLog[0]!.rv > from + 1 && from < this.rv) {
                Queue.failCauseUnsafe(queue, Cause.fail(kubeError("Conflict", "watchPersistentVolumes", "too old resource version", { status: 410 })))
                return
              }
              for (const e of this.pvLog) if (e.rv > from) Queue.offerUnsafe(queue, e.event)
              this.watchers.add(queue)
            }),
            () => Effect.sync(() => this.watchers.delete(queue))
          )
        ))
      )),
    getPersistentVolume: (name) =>
      this.request("getPersistentVolume", name, () => {
        const pv = this.pvs.get(name)
        return pv === undefined ? this.notFound("getPersistentVolume", name) : Effect.succeed(pv)
      }),
    getPersistentVolumeClaim: (namespace, name) =>
      this.request("getPersistentVolumeClaim", `${namespace}/${name}`, () => {
        const pvc = this.pvcs.get(`${namespace}/${name}`)
        return pvc === undefined ? this.notFound("getPersistentVolumeClaim", name) : Effect.succeed(pvc)
      }),
    getNode: (name) =>
      this.request("getNode", name, () => {
        const node = this.nodes.get(name)
        return node === undefined ? this.notFound("getNode", name) : Effect.succeed(node)
      }),
    podsOnNode: (nodeName) =>
      this.request("podsOnNode", nodeName, () =>
        Effect.succeed([...this.pods.values()].filter((p) => p.nodeName === nodeName).map(({ nodeName: _, ...pod }) => pod))),
    deletePod: (namespace, name, uid) =>
      this.request("deletePod", `${namespace}/${name}`, () => {
        const key = `${namespace}/${name}`
        const pod = this.pods.get(key)
        if (pod === undefined) return this.notFound("deletePod", key)
        if (pod.uid !== uid) {
          return Effect.fail(kubeError("Conflict", "deletePod", `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.uid}`, { status: 409 }))
        }
        this.pods.delete(key)
        return Effect.void
      }),
    createEvent: (event) =>
      this.request("createEvent", `${event.namespace}/${event.name}`, () => {
        const key = `${event.namespace}/${event.name}`
        if (this.events.has(key)) return Effect.fail(kubeError("Conflict", "createEvent", "already exists", { status: 409 }))
        if (event.namespace !== (event.involvedObject.namespace || "default")) {
          return Effect.fail(kubeError("Invalid", "createEvent", "involvedObject.namespace does not match event.namespace", { status: 422 }))
        }
        const stored = { ...event, firstTimestamp: sec(event.firstTimestamp), lastTimestamp: sec(event.lastTimestamp) }
        this.events.set(key, stored)
        return Effect.succeed(stored)
      }),
    patchEvent: (namespace, name, patch) =>
      this.request("patchEvent", `${namespace}/${name}`, () => {
        const key = `${namespace}/${name}`
        const old = this.events.get(key)
        if (old === undefined) return this.notFound("patchEvent", key)
        const stored = { ...old, count: patch.count, lastTimestamp: sec(patch.lastTimestamp), message: patch.message }
        this.events.set(key, stored)
        return Effect.succeed(stored)
      }),
    canI: (check) =>
      this.request("canI", `${check.verb} ${check.resource}`, () =>
        Effect.succeed({ allowed: this.allowed(check.verb, check.resource), reason: "fake" }))
  }

  readonly layer: Layer.Layer<KubeClient> = Layer.succeed(KubeClient, this.service)
}

/** The server keeps metav1.Time at second precision. */
const sec = (ms: number) => Math.floor(ms / 1000) * 1000
