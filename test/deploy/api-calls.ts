/**
 * The table of API calls our code makes: one row per KubeClient method, with the request it
 * sends, the RBAC verb and resource that request needs, and the source files that call it. The
 * node plugin makes them all: ClusterRole rds-csi-node in deploy/base must grant exactly the
 * rows' verbs (test/deploy/rbac-coverage.host.test.ts); test/integration/deploy-rbac-calls.test.ts
 * makes each call as its ServiceAccount. The controller makes the rows in CONTROLLER_METHODS
 * (below), granted by ClusterRole rds-csi-controller.
 */
import type { KubeClient } from "../../src/kube/KubeClient.ts"

/** Each KubeClient method → the request it sends (client-node CoreV1Api / AuthorizationV1Api / Watch) and who calls it. */
export const API_CALLS = [
  {
    method: "listPersistentVolumes",
    request: "GET /api/v1/persistentvolumes",
    group: "",
    resource: "persistentvolumes",
    verb: "list",
    callers: ["src/kube/PvcLookup.ts"] // the informer's list: fills the volumeHandle → PV index
  },
  {
    method: "watchPersistentVolumes",
    request: "GET /api/v1/persistentvolumes?watch=1",
    group: "",
    resource: "persistentvolumes",
    verb: "watch",
    callers: ["src/kube/PvcLookup.ts"] // the informer's watch from the list's resourceVersion
  },
  {
    method: "getPersistentVolume",
    request: "GET /api/v1/persistentvolumes/{name}",
    group: "",
    resource: "persistentvolumes",
    verb: "get",
    callers: ["src/kube/PvcLookup.ts"] // an index miss: a PV created a moment ago, before the watch delivers it
  },
  {
    method: "getPersistentVolumeClaim",
    request: "GET /api/v1/namespaces/{ns}/persistentvolumeclaims/{name}",
    group: "",
    resource: "persistentvolumeclaims",
    verb: "get",
    callers: ["src/kube/PvcLookup.ts"] // pvcForVolume: the claim's uid, and whether it still exists
  },
  {
    method: "getNode",
    request: "GET /api/v1/nodes/{name}",
    group: "",
    resource: "nodes",
    verb: "get",
    callers: ["src/kube/PvcLookup.ts"] // node: the Node exists before orphan events are posted on it
  },
  {
    method: "podsOnNode",
    request: "GET /api/v1/pods?fieldSelector=spec.nodeName={node}",
    group: "",
    resource: "pods",
    verb: "list",
    // PvcLookup.pod: the Pod a VolumeRecoveredRestartPod event goes on; PodRestarter: the pod to delete and its owner
    callers: ["src/kube/PvcLookup.ts", "src/kube/PodRestarter.ts"]
  },
  {
    method: "deletePod",
    request: "DELETE /api/v1/namespaces/{ns}/pods/{name} (preconditions.uid)",
    group: "",
    resource: "pods",
    verb: "delete",
    // only with --restart-pods-on-recovery: a controller-owned pod that still holds a recovered volume's old mount
    callers: ["src/kube/PodRestarter.ts"]
  },
  {
    method: "createEvent",
    request: "POST /api/v1/namespaces/{ns}/events",
    group: "",
    resource: "events",
    verb: "create",
    callers: ["src/kube/EventSender.ts"] // a new event
  },
  {
    method: "patchEvent",
    request: "PATCH /api/v1/namespaces/{ns}/events/{name}",
    group: "",
    resource: "events",
    verb: "patch",
    callers: ["src/kube/EventSender.ts"] // a repeat: count, lastTimestamp, message
  },
  {
    method: "canI",
    request: "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    group: "authorization.k8s.io",
    resource: "selfsubjectaccessreviews",
    verb: "create",
    callers: ["src/kube/EventPosterLive.ts", "src/doctor/ApiAccess.ts"] // the start-up access check and `rds-csi doctor`
  }
] as const

/** KubeClient's methods (its non-function members, like `server`, send no request). */
type Method = { [K in keyof KubeClient["Service"]]: KubeClient["Service"][K] extends (...args: never) => unknown ? K : never }[keyof KubeClient["Service"]]
type Row = (typeof API_CALLS)[number]["method"]
// Fails to typecheck, naming the method, when KubeClient gains a method without a row above or a
// row names no method (rbac-coverage.host.test.ts checks the same at run time, against the live client).
void ("ok" satisfies ([Exclude<Method, Row> | Exclude<Row, Method>] extends [never] ? "ok" : { readonly withoutRow: Exclude<Method, Row>; readonly noSuchMethod: Exclude<Row, Method> }))

/**
 * The calls `rds-csi controller` itself makes (its sidecars' RBAC is upstream's, in
 * deploy/base/controller/rbac-*.yaml): the rows of API_CALLS it reaches. ClusterRole
 * rds-csi-controller must grant exactly these rows' verbs (test/deploy/rbac-coverage.host.test.ts),
 * and test/integration/deploy-server.test.ts makes them as its ServiceAccount. A new call of the
 * controller is a method name here (and a rule there).
 */
export const CONTROLLER_METHODS = ["createEvent", "patchEvent"] as const satisfies ReadonlyArray<Row>

/** The controller's rows of the table. */
export const CONTROLLER_API_CALLS = API_CALLS.filter((c) => (CONTROLLER_METHODS as ReadonlyArray<string>).includes(c.method))
