/**
 * The project's own RBAC on the real API server: the node plugin's ServiceAccount may do what
 * the plugin needs and nothing more, and the whole kustomize base is accepted by the server.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { describe, expect, inject, it } from "vitest"

const kube = inject("kube")
const AS = "system:serviceaccount:rds-csi:rds-csi-node"
const canI = (...args: Array<string>) =>
  spawnSync("kubectl", ["--kubeconfig", kube.adminKubeconfig, "auth", "can-i", ...args, "--as", AS], { encoding: "utf8" }).stdout.trim()

describe("deploy/base RBAC", () => {
  it("grants the node plugin exactly what it uses", () => {
    expect(canI("create", "events", "-n", "team-a")).toBe("yes")
    expect(canI("patch", "events", "-n", "default")).toBe("yes")
    for (const v of ["get", "list", "watch"]) expect(canI(v, "persistentvolumes"), `${v} persistentvolumes`).toBe("yes")
    expect(canI("get", "persistentvolumeclaims", "-n", "team-a")).toBe("yes")
    expect(canI("get", "nodes")).toBe("yes")
    expect(canI("create", "selfsubjectaccessreviews.authorization.k8s.io")).toBe("yes")
  })

  it("grants no list or watch on claims or nodes: they are read one by one", () => {
    for (const r of ["persistentvolumeclaims", "nodes"]) {
      for (const v of ["list", "watch"]) expect(canI(v, r, "-A"), `${v} ${r}`).toBe("no")
    }
  })

  it("denies what it does not use", () => {
    expect(canI("delete", "events", "-n", "default")).toBe("no")
    expect(canI("update", "events", "-n", "default")).toBe("no")
    expect(canI("list", "events", "-n", "default")).toBe("no")
    expect(canI("patch", "persistentvolumes")).toBe("no")
    expect(canI("update", "persistentvolumeclaims", "-n", "default")).toBe("no")
    expect(canI("get", "secrets", "-n", "rds-csi")).toBe("no")
    expect(canI("get", "pods", "-A")).toBe("no")
  })

  it("the whole kustomize base renders and the server accepts it", () => {
    const rendered = execFileSync("kubectl", ["kustomize", "deploy/base"], { encoding: "utf8" })
    const out = execFileSync("kubectl", ["--kubeconfig", kube.adminKubeconfig, "apply", "--dry-run=server", "-f", "-"], {
      encoding: "utf8",
      input: rendered
    })
    expect(out).toMatch(/clusterrole.rbac.authorization.k8s.io\/rds-csi-node/)
  })
})
