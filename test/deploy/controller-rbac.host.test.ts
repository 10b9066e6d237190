/**
 * The controller's RBAC in deploy/base as the machine's `kubectl kustomize` renders it (run again
 * with KUBECTL=<kubectl 1.20> too): its own ClusterRole (tied to its API calls by
 * rbac-coverage.host.test.ts), each sidecar's ClusterRole rule by rule (upstream's, trimmed to
 * these flags; deploy/base/controller/rbac-*.yaml say what was left out and why), the Leases Role,
 * the bindings, and what no role may grant. Every rule asked for on a real API server:
 * test/integration/deploy-server.test.ts.
 */
import { describe, expect, it } from "vitest"
import { one, render } from "./render.ts"

const base = render("base")
const deployment = one(base, "Deployment", "rds-csi-controller")
const SA = { kind: "ServiceAccount", name: "rds-csi-controller", namespace: "rds-csi" }

describe("deploy/base: the controller's RBAC", () => {
  const role = (name: string) => one(base, "ClusterRole", name)["rules"]

  it("the controller's own ClusterRole: events create and patch, nothing else (rbac-coverage.host.test.ts ties it to the code)", () => {
    expect(role("rds-csi-controller")).toEqual([{ apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] }])
  })

  it("external-provisioner: upstream's rules without secrets, snapshots, CSINodes, node informers or capacity", () => {
    expect(role("rds-csi-external-provisioner")).toEqual([
      { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch", "update"] },
      { apiGroups: ["storage.k8s.io"], resources: ["storageclasses"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["nodes"], verbs: ["get"] },
      { apiGroups: ["storage.k8s.io"], resources: ["volumeattachments"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] }
    ])
  })

  it("external-attacher: PVs, CSINodes and VolumeAttachments (with their status), no secrets", () => {
    expect(role("rds-csi-external-attacher")).toEqual([
      { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "patch"] },
      { apiGroups: ["storage.k8s.io"], resources: ["csinodes"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["storage.k8s.io"], resources: ["volumeattachments"], verbs: ["get", "list", "watch", "patch"] },
      { apiGroups: ["storage.k8s.io"], resources: ["volumeattachments/status"], verbs: ["patch"] }
    ])
  })

  it("external-resizer: upstream's rules without pods (no in-use handling) and without VolumeAttributesClasses", () => {
    expect(role("rds-csi-external-resizer")).toEqual([
      { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "patch"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims/status"], verbs: ["patch"] },
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] }
    ])
  })

  it("leader election: a Role on Leases in the controller's namespace (get, create, update), nothing cluster-wide", () => {
    const r = one(base, "Role", "rds-csi-controller-leader-election")
    expect(r["metadata"]["namespace"]).toBe(deployment["metadata"]["namespace"])
    expect(r["rules"]).toEqual([{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] }])
    const b = one(base, "RoleBinding", "rds-csi-controller-leader-election")
    expect(b["metadata"]["namespace"]).toBe(deployment["metadata"]["namespace"])
    expect(b["roleRef"]).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "rds-csi-controller-leader-election" })
    expect(b["subjects"]).toEqual([SA])
  })

  it("each controller ClusterRole is bound to the controller's ServiceAccount alone, and the node's to the node's alone", () => {
    for (const name of ["rds-csi-controller", "rds-csi-external-provisioner", "rds-csi-external-attacher", "rds-csi-external-resizer"]) {
      const b = one(base, "ClusterRoleBinding", name)
      expect(b["roleRef"], name).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name })
      expect(b["subjects"], name).toEqual([SA])
    }
    expect(one(base, "ClusterRoleBinding", "rds-csi-node")["subjects"]).toEqual([{ kind: "ServiceAccount", name: "rds-csi-node", namespace: "rds-csi" }])
    expect(one(base, "ServiceAccount", "rds-csi-controller")["metadata"]["namespace"]).toBe("rds-csi")
  })

  it("no role grants secrets, wildcards, resourceNames or non-resource URLs (the Secret reaches the controller as a mounted file)", () => {
    for (const r of base.filter((o) => o["kind"] === "ClusterRole" || o["kind"] === "Role")) {
      for (const rule of r["rules"]) {
        const where = `${r["kind"]}/${r["metadata"]["name"]}`
        expect(rule["resources"], where).not.toContain("secrets")
        for (const list of [rule["apiGroups"], rule["resources"], rule["verbs"]]) expect(list, where).not.toContain("*")
        expect(rule["resourceNames"], where).toBeUndefined()
        expect(rule["nonResourceURLs"], where).toBeUndefined()
      }
    }
  })
})
