/**
 * deploy/ against the real kube-apiserver 1.20.2 of the integration project: the rendered base
 * and example overlay pass `kubectl apply --dry-run=server` (admission, defaulting, schema
 * validation of 1.20: a field newer than 1.20 fails here); the monitoring kustomization is
 * applied only where the Prometheus Operator's CRDs exist (this server has none, and the test
 * proves that is the only reason). Then `rds-csi doctor`'s API check, as the plugin's
 * ServiceAccount, against this server.
 */
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, inject, it } from "vitest"
import * as ApiAccess from "../../src/doctor/ApiAccess.ts"
import * as KubeClientLive from "../../src/kube/KubeClientLive.ts"
import { KUBECTL, render, renderText, ROOT } from "../deploy/render.ts"

const kube = inject("kube")

const dryRun = (yaml: string) =>
  spawnSync(KUBECTL, ["--kubeconfig", kube.adminKubeconfig, "apply", "--dry-run=server", "-f", "-"], { input: yaml, encoding: "utf8" })

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
      for (const kind of ["csidriver.storage.k8s.io/rds.csi.srvlab.io", "daemonset.apps/rds-csi-node", "service/rds-csi-node-metrics", "clusterrole.rbac.authorization.k8s.io/rds-csi-node"]) {
        expect(r.stdout).toContain(kind)
      }
    })
  }

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
