/**
 * The table of API calls the node plugin makes (one row per KubeClient method) and the RBAC
 * extras the spec grants on top; shared by the RBAC coverage test and its integration twin.
 */
/** Each KubeClient method → the request it sends (client-node CoreV1Api / AuthorizationV1Api / Watch). */
export const API_CALLS = [
  { method: "listPersistentVolumes", request: "GET /api/v1/persistentvolumes", group: "", resource: "persistentvolumes", verb: "list" },
  { method: "watchPersistentVolumes", request: "GET /api/v1/persistentvolumes?watch=1", group: "", resource: "persistentvolumes", verb: "watch" },
  { method: "getPersistentVolume", request: "GET /api/v1/persistentvolumes/{name}", group: "", resource: "persistentvolumes", verb: "get" },
  { method: "getPersistentVolumeClaim", request: "GET /api/v1/namespaces/{ns}/persistentvolumeclaims/{name}", group: "", resource: "persistentvolumeclaims", verb: "get" },
  { method: "getNode", request: "GET /api/v1/nodes/{name}", group: "", resource: "nodes", verb: "get" },
  { method: "createEvent", request: "POST /api/v1/namespaces/{ns}/events", group: "", resource: "events", verb: "create" },
  { method: "patchEvent", request: "PATCH /api/v1/namespaces/{ns}/events/{name}", group: "", resource: "events", verb: "patch" },
  { method: "canI", request: "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews", group: "authorization.k8s.io", resource: "selfsubjectaccessreviews", verb: "create" }
] as const

/**
 * Granted although no call above needs it: SPEC §6 and the issue list PVCs and Nodes with
 * get/list/watch (room for watch caches of claims and nodes); doctor asks for them so a missing
 * one shows. Declared here so widening the role beyond the spec fails this test.
 */
export const SPEC_EXTRAS = [
  { group: "", resource: "persistentvolumeclaims", verb: "list" },
  { group: "", resource: "persistentvolumeclaims", verb: "watch" },
  { group: "", resource: "nodes", verb: "list" },
  { group: "", resource: "nodes", verb: "watch" }
] as const
