/**
 * The ClusterRoles in deploy/base against the API calls our code makes (the node plugin's
 * rds-csi-node, then the controller's own rds-csi-controller; the sidecars' roles are upstream's,
 * checked rule by rule in controller.host.test.ts). Every call goes through
 * KubeClient (src/kube/KubeClient.ts; client-node is imported by KubeClientLive.ts alone), so the
 * table in ./api-calls.ts lists each KubeClient method with the verb and resource its request
 * needs and the files that call it. Both directions: the test fails when a method is added
 * without a row, when a row's callers no longer call it, when the ClusterRole misses a row, and
 * when it grants anything no row needs. The start-up access check and doctor must ask about
 * exactly the grants. test/integration/deploy-rbac-calls.test.ts makes every call as the
 * ServiceAccount on the real API server.
 */
import { KubeConfig } from "@kubernetes/client-node"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as ApiAccess from "../../src/doctor/ApiAccess.ts"
import * as EventPosterLive from "../../src/kube/EventPosterLive.ts"
import type { AccessCheck } from "../../src/kube/KubeClient.ts"
import { make } from "../../src/kube/KubeClientLive.ts"
import { API_CALLS, CONTROLLER_API_CALLS, CONTROLLER_METHODS } from "./api-calls.ts"
import { type K8sObject, one, render, ROOT } from "./render.ts"

const key = (g: { readonly group: string; readonly resource: string; readonly verb: string }) => `${g.verb} ${g.group === "" ? "" : g.group + "/"}${g.resource}`

const granted = (role: K8sObject): Array<string> =>
  role["rules"].flatMap((r: K8sObject) => {
    expect(r["resourceNames"], "no resourceNames restrictions expected").toBeUndefined()
    expect(r["nonResourceURLs"], "no non-resource URLs").toBeUndefined()
    return r["apiGroups"].flatMap((group: string) =>
      r["resources"].flatMap((resource: string) => r["verbs"].map((verb: string) => key({ group, resource, verb }))))
  })

describe("RBAC covers every API call the plugin makes, and nothing more", () => {
  const role = one(render("base"), "ClusterRole", "rds-csi-node")

  it("the table has one row per KubeClient method (a new method needs a row, and maybe a rule)", () => {
    const kc = new KubeConfig()
    kc.loadFromClusterAndUser({ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }, { name: "u", token: "t" })
    const methods = Object.entries(make(kc)).filter(([, v]) => typeof v === "function").map(([k]) => k).sort()
    expect(methods).toEqual(API_CALLS.map((c) => c.method).sort())
  })

  it("client-node is used only behind KubeClient (so the table sees every request)", () => {
    const offenders: Array<string> = []
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name)
        if (entry.isDirectory()) walk(p)
        else if (p.endsWith(".ts") && /from "@kubernetes\/client-node(\/[^"]*)?"/.test(fs.readFileSync(p, "utf8"))) offenders.push(path.relative(ROOT, p))
      }
    }
    walk(path.join(ROOT, "src"))
    // KubeHttp.ts is KubeClientLive's request path (KubeConfig's TLS and auth, one agent): called from there alone.
    // KubeWire.ts maps client-node's model types (type imports only) to KubeClient's records: no request.
    expect(offenders).toEqual(["src/kube/KubeClientLive.ts", "src/kube/KubeHttp.ts", "src/kube/KubeWire.ts"])
    expect(fs.readFileSync(path.join(ROOT, "src/kube/KubeWire.ts"), "utf8")).not.toMatch(/^import\s+(?!type\s)[^"]*?from\s+"@kubernetes\/client-node/m)
  })

  it("each row's callers really call it (a grant no code path uses would otherwise stay)", () => {
    for (const c of API_CALLS) {
      for (const file of c.callers) {
        expect(fs.readFileSync(path.join(ROOT, file), "utf8"), `${file} calls ${c.method}`).toMatch(new RegExp(`\\.${c.method}\\(`))
      }
    }
  })

  it("the ClusterRole grants every call in the table", () => {
    const grants = new Set(granted(role))
    for (const c of API_CALLS) expect(grants.has(key(c)), `${c.method}: ${key(c)}`).toBe(true)
  })

  it("the ClusterRole grants nothing the table does not need (no extra verb, resource or group)", () => {
    const needed = new Set(API_CALLS.map(key))
    expect(granted(role).filter((g) => !needed.has(g))).toEqual([])
  })

  // SelfSubjectAccessReview create is not asked about: every question is one, so a refusal shows as the question failing.
  const asked = (checks: ReadonlyArray<AccessCheck>) => checks.map((c) => key({ group: c.group ?? "", resource: c.resource, verb: c.verb })).sort()
  const grantedButReviews = () => granted(role).filter((g) => !g.endsWith("selfsubjectaccessreviews")).sort()

  it("doctor asks the server about exactly the granted permissions, each once", () => {
    expect(asked(ApiAccess.REQUIRED_ACCESS)).toEqual(grantedButReviews())
  })

  it("the start-up access check asks about exactly the granted permissions, each once", () => {
    expect(asked(EventPosterLive.REQUIRED_ACCESS)).toEqual(grantedButReviews())
  })
})

describe("the controller's own ClusterRole covers every API call `rds-csi controller` makes, and nothing more", () => {
  const role = one(render("base"), "ClusterRole", "rds-csi-controller")
  const binding = one(render("base"), "ClusterRoleBinding", "rds-csi-controller")

  it("every method the controller calls is a row of the table (same KubeClient, same request, same verb)", () => {
    expect(CONTROLLER_API_CALLS.map((c) => c.method).sort()).toEqual([...CONTROLLER_METHODS].sort())
  })

  it("the ClusterRole grants every call of the controller", () => {
    const grants = new Set(granted(role))
    for (const c of CONTROLLER_API_CALLS) expect(grants.has(key(c)), `${c.method}: ${key(c)}`).toBe(true)
  })

  it("the ClusterRole grants nothing the controller's calls do not need", () => {
    const needed = new Set(CONTROLLER_API_CALLS.map(key))
    expect(granted(role).filter((g) => !needed.has(g))).toEqual([])
  })

  it("it is bound to the controller's ServiceAccount, which the Deployment runs as", () => {
    expect(binding["subjects"]).toEqual([{ kind: "ServiceAccount", name: "rds-csi-controller", namespace: "rds-csi" }])
    expect(one(render("base"), "Deployment", "rds-csi-controller")["spec"]["template"]["spec"]["serviceAccountName"]).toBe("rds-csi-controller")
  })

  it("src/controller/ calls no KubeClient method outside CONTROLLER_METHODS (no files there yet: nothing to find)", () => {
    const dir = path.join(ROOT, "src/controller")
    const others = API_CALLS.map((c) => c.method).filter((m) => !(CONTROLLER_METHODS as ReadonlyArray<string>).includes(m))
    const found: Array<string> = []
    const walk = (d: string): void => {
      for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, entry.name)
        if (entry.isDirectory()) walk(p)
        else if (p.endsWith(".ts")) {
          const text = fs.readFileSync(p, "utf8")
          for (const m of others) if (new RegExp(`\\.${m}\\(`).test(text)) found.push(`${path.relative(ROOT, p)}: ${m}`)
        }
      }
    }
    if (fs.existsSync(dir)) walk(dir)
    expect(found).toEqual([])
  })
})
