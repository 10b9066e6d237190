/**
 * deploy/ against the real kube-apiserver 1.20.2 of the integration project: the rendered base
 * (node plugin and controller) and example overlay, and the StorageClass / claim / pod examples,
 * pass `kubectl apply --dry-run=server` (admission, defaulting, schema validation of 1.20: a
 * field newer than 1.20 fails here); the CSIDriver's attachRequired cannot be changed in place
 * (the README's upgrade step); the monitoring kustomization is applied only where the Prometheus
 * Operator's CRDs exist (this server has none, and the test proves that is the only reason).
 * Then the controller's RBAC, applied for real: every rule granted to its ServiceAccount, nothing
 * around it, and its own calls (events) made as that account. Then `rds-csi doctor`'s API check,
 * as the plugin's ServiceAccount, against this server.
 */
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import * as ApiAccess from "../../src/doctor/ApiAccess.ts"
import * as KubeClientLive from "../../src/kube/KubeClientLive.ts"
import { CONTROLLER_API_CALLS } from "../deploy/api-calls.ts"
import { type K8sObject, KUBECTL, render, renderText, ROOT } from "../deploy/render.ts"

const kube = inject("kube")

const dryRun = (yaml: string) =>
  spawnSync(KUBECTL, ["--kubeconfig", kube.adminKubeconfig, "apply", "--dry-run=server", "-f", "-"], { input: yaml, encoding: "utf8" })
const admin = (args: ReadonlyArray<string>, input?: string) =>
  spawnSync(KUBECTL, ["--kubeconfig", kube.adminKubeconfig, ...args], { input, encoding: "utf8" })

describe("kubectl apply --dry-run=server on kube-apiserver 1.20", () => {
  for (const dir of ["base", "overlays/example"]) {
    it(`deploy/${dir}: every object accepted, no warnings`, () => {
      const objects = render(dir)
      const r = dryRun(renderText(dir))
      expect(r.stderr).toBe("")
      expect(r.status).toBe(0)
      const accepted = r.stdout.trim().split("\n")
      expect(accepted).toHaveLength(objects.length)
      for (const line of accepted) expect(line).toMatch(/ \(server dry run\)$/)
      for (const kind of [
        "csidriver.storage.k8s.io/rds.csi.srvlab.io",
        "daemonset.apps/rds-csi-node",
        "service/rds-csi-node-metrics",
        "clusterrole.rbac.authorization.k8s.io/rds-csi-node",
        "deployment.apps/rds-csi-controller",
        "service/rds-csi-controller-metrics",
        "clusterrole.rbac.authorization.k8s.io/rds-csi-external-provisioner",
        "role.rbac.authorization.k8s.io/rds-csi-controller-leader-election"
      ]) {
        expect(r.stdout).toContain(kind)
      }
    })
  }

  it("deploy/examples: the StorageClass, the claim and the pod accepted in a namespace of one's own, no warnings", () => {
    // A namespace as a real cluster has it: with its `default` ServiceAccount (no controller
    // manager here makes one, and admission looks the pod's up).
    const ns = "rds-csi-examples"
    const fixture = admin(["apply", "-f", "-"], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: ${ns}}\n`)
    expect(fixture.status, fixture.stderr).toBe(0)
    const yaml = ["storageclass.yaml", "dynamic-volume.yaml"].map((f) => fs.readFileSync(path.join(ROOT, "deploy/examples", f), "utf8")).join("\n---\n")
    const r = admin(["apply", "--dry-run=server", "-n", ns, "-f", "-"], yaml)
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    expect(r.stdout.trim().split("\n").sort()).toEqual([
      "persistentvolumeclaim/rds-demo created (server dry run)",
      "pod/rds-demo created (server dry run)",
      "storageclass.storage.k8s.io/rds-nvme created (server dry run)"
    ])
  })

  it("the CSIDriver's attachRequired cannot be changed in place: a cluster with the old object deletes it first (deploy/README.md)", () => {
    const driver = render("base").find((o) => o["kind"] === "CSIDriver")!
    const name = "upgrade-check.rds.csi.srvlab.io"
    const old = { ...driver, metadata: { name }, spec: { ...driver["spec"], attachRequired: false } }
    const created = admin(["create", "--save-config", "-f", "-"], JSON.stringify(old))
    expect(created.status, created.stderr).toBe(0)
    try {
      const r = dryRun(JSON.stringify({ ...driver, metadata: { name } }))
      expect(r.status).not.toBe(0)
      // 1.20 says it of the whole spec (later servers name the field).
      expect(r.stderr).toMatch(/is invalid: spec(\.attachRequired)?: Invalid value: .*field is immutable/)
      expect(r.stderr).toMatch(/AttachRequired|attachRequired/)
    } finally {
      admin(["delete", "csidriver", name])
    }
  })

  it("control: a field newer than 1.20 (pod hostUsers, 1.25) is refused, so a pass above means 1.20-valid", () => {
    const ds = render("base").find((o) => o["kind"] === "DaemonSet")!
    ds["spec"]["template"]["spec"]["hostUsers"] = false
    const r = dryRun(JSON.stringify(ds))
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/unknown field "hostUsers"|hostUsers/)
  })

  it("the server keeps every CSIDriver field (fsGroupPolicy is beta in 1.20: a disabled gate would drop it)", () => {
    const driver = render("base").find((o) => o["kind"] === "CSIDriver")!
    const r = spawnSync(KUBECTL, ["--kubeconfig", kube.adminKubeconfig, "apply", "--dry-run=server", "-o", "json", "-f", "-"], { input: JSON.stringify(driver), encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)["spec"]).toMatchObject(driver["spec"])
  })

  it("deploy/monitoring: applied when the monitoring.coreos.com CRDs exist; here they do not, and that is the only objection", () => {
    const crd = spawnSync(KUBECTL, ["--kubeconfig", kube.adminKubeconfig, "get", "crd", "servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"], { encoding: "utf8" })
    const r = dryRun(renderText("monitoring"))
    if (crd.status === 0) {
      expect(r.stderr).toBe("")
      expect(r.status).toBe(0)
      return
    }
    process.stderr.write("[deploy-server] deploy/monitoring not applied: this API server has no monitoring.coreos.com CRDs (no Prometheus Operator)\n")
    expect(r.status).not.toBe(0)
    const complaints = r.stderr.trim().split("\n").filter((l) => l !== "")
    expect(complaints.length).toBeGreaterThan(0)
    for (const line of complaints) expect(line).toMatch(/no matches for kind "(ServiceMonitor|PrometheusRule)" in version "monitoring.coreos.com\/v1"|ensure CRDs are installed first/)
    expect(r.stdout).toContain("configmap/rds-csi-grafana-dashboard") // the rest is accepted
  })
})

describe("the controller's RBAC on this server, applied as deploy/base/controller has it", () => {
  const AS = "system:serviceaccount:rds-csi:rds-csi-controller"
  const FILES = ["serviceaccount.yaml", "rbac.yaml", "rbac-provisioner.yaml", "rbac-attacher.yaml", "rbac-resizer.yaml", "rbac-leader-election.yaml"]
    .map((f) => path.join(ROOT, "deploy/base/controller", f))
  const canI = (verb: string, resource: string, ...more: Array<string>) =>
    admin(["auth", "can-i", verb, resource, "--as", AS, ...more]).stdout.trim()

  beforeAll(async () => {
    const r = admin(["apply", ...FILES.flatMap((f) => ["-f", f])])
    expect(r.status, r.stderr).toBe(0)
    // The RBAC authorizer learns about new bindings through its informer: wait until it has.
    for (let i = 0; canI("get", "leases.coordination.k8s.io", "-n", "rds-csi") !== "yes"; i++) {
      if (i > 100) throw new Error(`RBAC not effective for ${AS}`)
      await new Promise((ok) => setTimeout(ok, 100))
    }
  })
  afterAll(() => {
    admin(["delete", "--ignore-not-found", ...FILES.flatMap((f) => ["-f", f])])
  })

  it("every rule of every controller ClusterRole and of the leader-election Role is granted to the ServiceAccount", () => {
    const base = render("base")
    const roles = base.filter((o) =>
      (o["kind"] === "ClusterRole" && o["metadata"]["name"] !== "rds-csi-node") || o["kind"] === "Role")
    expect(roles.map((r) => r["metadata"]["name"]).sort()).toEqual([
      "rds-csi-controller",
      "rds-csi-controller-leader-election",
      "rds-csi-external-attacher",
      "rds-csi-external-provisioner",
      "rds-csi-external-resizer"
    ])
    let asked = 0
    for (const role of roles) {
      const ns = role["kind"] === "Role" ? ["-n", role["metadata"]["namespace"]] : ["-n", "team-a"]
      for (const rule of role["rules"] as Array<K8sObject>) {
        for (const group of rule["apiGroups"]) {
          for (const res of rule["resources"]) {
            const [resource, subresource] = res.split("/")
            const qualified = group === "" ? resource : `${resource}.${group}`
            for (const verb of rule["verbs"]) {
              const args = [...ns, ...(subresource === undefined ? [] : ["--subresource", subresource])]
              expect(canI(verb, qualified, ...args), `${role["metadata"]["name"]}: ${verb} ${res}`).toBe("yes")
              asked++
            }
          }
        }
      }
    }
    expect(asked).toBeGreaterThan(30)
  })

  it("nothing around it: no secrets, no pods, no writes the sidecars do not make, Leases only in rds-csi", () => {
    for (const [verb, resource, ...more] of [
      ["get", "secrets", "-n", "rds-csi"],
      ["list", "secrets", "-n", "rds-csi"],
      ["list", "pods", "-A"],
      ["delete", "pods", "-n", "team-a"],
      ["update", "persistentvolumes"],
      ["delete", "persistentvolumeclaims", "-n", "team-a"],
      ["list", "nodes"],
      ["update", "csinodes.storage.k8s.io"],
      ["create", "volumeattachments.storage.k8s.io"],
      ["delete", "volumeattachments.storage.k8s.io"],
      ["create", "storageclasses.storage.k8s.io"],
      ["list", "events", "-n", "team-a"],
      ["delete", "events", "-n", "team-a"],
      ["get", "leases.coordination.k8s.io", "-n", "default"],
      ["delete", "leases.coordination.k8s.io", "-n", "rds-csi"],
      ["list", "volumesnapshots.snapshot.storage.k8s.io", "-A"]
    ] as const) {
      expect(canI(verb, resource, ...more), `${verb} ${resource} ${more.join(" ")}`).toBe("no")
    }
  })

  /** One request to the API server as the controller's ServiceAccount (the admin impersonating it); the HTTP status. */
  const asController = (method: string, urlPath: string, contentType?: string, body?: unknown): Promise<number> =>
    new Promise((ok, fail) => {
      const url = new URL(urlPath, kube.server)
      const req = https.request(url, {
        method,
        ca: fs.readFileSync(kube.caFile),
        headers: {
          Authorization: `Bearer ${kube.adminToken}`,
          "Impersonate-User": AS,
          ...(contentType === undefined ? {} : { "Content-Type": contentType })
        }
      }, (res) => {
        res.resume()
        res.on("end", () => ok(res.statusCode ?? 0))
      })
      req.on("error", fail)
      req.end(body === undefined ? undefined : JSON.stringify(body))
    })

  it("the controller's own calls (CONTROLLER_API_CALLS: create and patch an event) made as its ServiceAccount succeed", async () => {
    expect(CONTROLLER_API_CALLS.map((c) => `${c.verb} ${c.resource}`).sort()).toEqual(["create events", "patch events"])
    const name = `rds-csi-controller-rbac-${Date.now()}`
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z")
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: "default" },
      involvedObject: { apiVersion: "v1", kind: "PersistentVolumeClaim", name: "rbac-check", namespace: "default", uid: "uid-rbac-check" },
      type: "Normal",
      reason: "RbacCheck",
      message: "rds-csi controller RBAC check",
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: "rds-csi-controller" }
    }
    // The two requests KubeClient sends (POST, and PATCH as strategic merge), as the account.
    const events = "/api/v1/namespaces/default/events"
    expect(await asController("POST", events, "application/json", event)).toBe(201)
    expect(await asController("PATCH", `${events}/${name}`, "application/strategic-merge-patch+json", { count: 2 })).toBe(200)
    // Control: the same impersonation is refused what the account lacks.
    expect(await asController("GET", `${events}/${name}`)).toBe(403)
  })
})

describe("rds-csi doctor against this server", () => {
  const client = (token: string) => KubeClientLive.layerFromConnection({ server: kube.server, caFile: kube.caFile, token })

  it("as the plugin's ServiceAccount: OK, every permission granted by deploy/base's RBAC", async () => {
    const r = await Effect.runPromise(ApiAccess.check(client(kube.nodeToken)))
    expect(r.status, r.detail).toBe("ok")
    expect(r.detail).toContain(kube.server)
  })

  it("with a token the server does not know: FAIL that says check the token", async () => {
    const r = await Effect.runPromise(ApiAccess.check(client("no-such-token")))
    expect(r.status).toBe("fail")
    expect(r.fix).toMatch(/check the token/)
  })

  it("the real command with --kubeconfig for the ServiceAccount prints 'OK  API server access'", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-doctor-kube-"))
    const kubeconfig = path.join(dir, "kubeconfig")
    fs.writeFileSync(kubeconfig, [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: test, cluster: {server: "${kube.server}", certificate-authority: "${kube.caFile}"}}]`,
      "users: [{name: node, user: {token: csi-node-token}}]",
      "contexts: [{name: node, context: {cluster: test, user: node}}]",
      "current-context: node",
      ""
    ].join("\n"))
    expect(kube.nodeToken).toBe("csi-node-token")
    const r = spawnSync(path.join(ROOT, "node_modules/node/bin/node"), [path.join(ROOT, "bin/rds-csi.js"), "doctor", "--kubeconfig", kubeconfig], {
      encoding: "utf8",
      env: { ...process.env, KUBERNETES_SERVICE_HOST: "" }
    })
    // Exit 1 is expected on a machine without nvme-tcp; only the API line matters here.
    expect(r.stderr).toBe("")
    expect([0, 1]).toContain(r.status)
    expect(r.stdout).toMatch(/^OK +API server access +https:\/\/127\.0\.0\.1:\d+: may create events, patch events/m)
  })
})
