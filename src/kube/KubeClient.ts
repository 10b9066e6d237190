/**
 * KubeClient: the few Kubernetes API calls the node plugin makes (SPEC §4.6), over small
 * plain types of our own so callers and the in-memory fake never see client-node's models.
 * Every failure is one tagged error, `KubeError`, whose `reason` says what to do about it.
 *
 * May import: effect. The live layer (client-node) is in KubeClientLive.ts, the in-memory fake
 * in KubeFake.ts.
 */
import { Context, Data, Duration } from "effect"
import type { Effect, Stream } from "effect"

/** What went wrong, as far as a caller's decision goes (retry, give up, fall back). */
export type KubeErrorReason =
  | "NotFound" // 404
  | "Forbidden" // 401, 403: RBAC or credentials; retrying will not help
  | "Conflict" // 409 AlreadyExists/Conflict, 410 Gone (a watch's resourceVersion is too old)
  | "TooManyRequests" // 429, with the server's Retry-After when it sent one
  | "ServerError" // 5xx
  | "Transport" // connection refused/reset, TLS, DNS: the request may not have reached the server
  | "Timeout" // no answer within the per-request timeout
  | "Invalid" // other 4xx (400, 422, ...) and unusable configuration

export class KubeError extends Data.TaggedError("KubeError")<{
  readonly reason: KubeErrorReason
  /** The call, e.g. `createEvent default/pvc-1.17f0`. */
  readonly operation: string
  readonly status: number | undefined
  /** From the Retry-After header of a 429 or 503. */
  readonly retryAfter: Duration.Duration | undefined
  readonly detail: string
}> {
  override get message(): string {
    const status = this.status === undefined ? "" : ` (HTTP ${this.status})`
    return `${this.operation}: ${this.reason}${status}: ${this.detail}`
  }
}

export const kubeError = (
  reason: KubeErrorReason,
  operation: string,
  detail: string,
  extra: { readonly status?: number | undefined; readonly retryAfter?: Duration.Duration | undefined } = {}
): KubeError => new KubeError({ reason, operation, detail, status: extra.status, retryAfter: extra.retryAfter })

/** Worth another try later: the server was busy, broken or unreachable, not against us. */
export const isRetryable = (e: KubeError): boolean =>
  e.reason === "Transport" || e.reason === "Timeout" || e.reason === "TooManyRequests" || e.reason === "ServerError"

/** The object an event is about: core/v1 ObjectReference. `namespace` is "" for cluster-scoped objects. */
export interface ObjectRef {
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  readonly namespace: string
  readonly uid: string
}

export interface PersistentVolume {
  readonly name: string
  readonly uid: string
  readonly resourceVersion: string
  /** spec.csi, when the PV is a CSI volume. */
  readonly csi: { readonly driver: string; readonly volumeHandle: string } | undefined
  /** spec.claimRef; `uid` is absent on a pre-bound static PV until the controller binds it. */
  readonly claimRef: { readonly namespace: string; readonly name: string; readonly uid: string | undefined } | undefined
}

export interface PersistentVolumeClaim {
  readonly namespace: string
  readonly name: string
  readonly uid: string
  readonly volumeName: string | undefined
}

export interface KubeNode {
  readonly name: string
  readonly uid: string
}

/** A Pod as this node's plugin needs it: who it is, and who would re-create it if it were deleted. */
export interface PodOnNode {
  readonly namespace: string
  readonly name: string
  readonly uid: string
  /**
   * The ownerReference with `controller: true` (ReplicaSet, StatefulSet, DaemonSet, Job; Node for
   * a static pod's mirror), undefined for a bare pod, which nothing re-creates.
   */
  readonly controller: { readonly kind: string; readonly name: string } | undefined
}

/** A core/v1 Event as we write it. Times are epoch milliseconds. */
export interface KubeEvent {
  readonly name: string
  readonly namespace: string
  readonly involvedObject: ObjectRef
  readonly type: "Normal" | "Warning"
  readonly reason: string
  readonly message: string
  readonly count: number
  readonly firstTimestamp: number
  readonly lastTimestamp: number
  readonly source: { readonly component: string; readonly host: string }
  readonly reportingComponent: string
  readonly reportingInstance: string
}

/** The fields a repeat changes (client-go's eventObserve patch), sent as a strategic-merge patch. */
export interface KubeEventPatch {
  readonly count: number
  readonly lastTimestamp: number
  readonly message: string
}

export type PvWatchEvent =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly object: PersistentVolume }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }

export interface AccessCheck {
  readonly verb: string
  readonly resource: string
  readonly group?: string
  readonly namespace?: string
}

export class KubeClient extends Context.Service<KubeClient, {
  /** Where requests go (for logs and `doctor`). */
  readonly server: string
  /** All PVs and the list's resourceVersion, to start a watch from. */
  readonly listPersistentVolumes: () => Effect.Effect<{ readonly items: ReadonlyArray<PersistentVolume>; readonly resourceVersion: string }, KubeError>
  /** PV changes after `resourceVersion`; ends when the server closes the watch, fails with Conflict (410) when too old. */
  readonly watchPersistentVolumes: (resourceVersion: string) => Stream.Stream<PvWatchEvent, KubeError>
  readonly getPersistentVolume: (name: string) => Effect.Effect<PersistentVolume, KubeError>
  readonly getPersistentVolumeClaim: (namespace: string, name: string) => Effect.Effect<PersistentVolumeClaim, KubeError>
  readonly getNode: (name: string) => Effect.Effect<KubeNode, KubeError>
  /** The pods bound to `nodeName`, all namespaces (one list with fieldSelector spec.nodeName; no watch). */
  readonly podsOnNode: (nodeName: string) => Effect.Effect<ReadonlyArray<PodOnNode>, KubeError>
  /** DELETE with a uid precondition: Conflict when `name` is now another pod (re-created), NotFound when gone. */
  readonly deletePod: (namespace: string, name: string, uid: string) => Effect.Effect<void, KubeError>
  /** POST a new core/v1 Event; Conflict when the name exists. */
  readonly createEvent: (event: KubeEvent) => Effect.Effect<KubeEvent, KubeError>
  /** PATCH (strategic merge) count, lastTimestamp and message; NotFound when the event expired. */
  readonly patchEvent: (namespace: string, name: string, patch: KubeEventPatch) => Effect.Effect<KubeEvent, KubeError>
  /** "May I?" for this client's own identity (SelfSubjectAccessReview). */
  readonly canI: (check: AccessCheck) => Effect.Effect<{ readonly allowed: boolean; readonly reason: string }, KubeError>
}>()("rds-csi/kube/KubeClient") {}

/** Default per-request timeout: long enough for a loaded API server, short enough that a hang is noticed. */
export const DEFAULT_REQUEST_TIMEOUT = Duration.seconds(10)

/**
 * What the plugin does on the API server (deploy/base/rbac.yaml, less the SelfSubjectAccessReview
 * each question is); asked by the start-up check (EventPosterLive) and by `rds-csi doctor`.
 */
export const REQUIRED_ACCESS: ReadonlyArray<AccessCheck> = [
  { verb: "create", resource: "events" },
  { verb: "patch", resource: "events" },
  { verb: "get", resource: "persistentvolumes" },
  { verb: "list", resource: "persistentvolumes" },
  { verb: "watch", resource: "persistentvolumes" },
  { verb: "get", resource: "persistentvolumeclaims" },
  { verb: "get", resource: "nodes" },
  { verb: "list", resource: "pods" },
  { verb: "delete", resource: "pods" } // only with --restart-pods-on-recovery
]
