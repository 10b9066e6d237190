/**
 * The ClusterRole in deploy/base against the API calls the plugin makes. Every call goes through
 * KubeClient (src/kube/KubeClient.ts; client-node is imported by KubeClientLive.ts alone), so the
 * table below lists each KubeClient method with the verb and resource its request needs. The
 * test fails when a method is added without a row, when the ClusterRole misses a row, or when it
 * grants anything that is neither a row nor one of the spec's declared extras.
 * test/integration/deploy-rbac-calls.test.ts makes every call as the ServiceAccount on the real
 * API server.
 */
import { KubeConfig } from "@kubernetes/client-node"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { REQUIRED_ACCESS } from "../../src/doctor/ApiAccess.ts"
import { make } from "../../src/kube/KubeClientLive.ts"
import { API_CALLS, SPEC_EXTRAS } from "./api-calls.ts"
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
        else if (p.endsWith(".ts") && /from "@kubernetes\/client-node"/.test(fs.readFileSync(p, "utf8"))) offenders.push(path.relative(ROOT, p))
      }
    }
    walk(path.join(ROOT, "src"))
    expect(offenders).toEqual(["src/kube/KubeClientLive.ts"])
  })

  it("the ClusterRole grants every call in the table", () => {
    const grants = new Set(granted(role))
    for (const c of API_CALLS) expect(grants.has(key(c)), `${c.method}: ${key(c)}`).toBe(true)
  })

  it("the ClusterRole grants nothing beyond the table and the spec's declared extras", () => {
    const allowed = new Set([...API_CALLS.map(key), ...SPEC_EXTRAS.map(key)])
    expect(granted(role).filter((g) => !allowed.has(g))).toEqual([])
    // and each declared extra is really granted (or it should leave this list)
    const grants = new Set(granted(role))
    for (const e of SPEC_EXTRAS) expect(grants.has(key(e)), key(e)).toBe(true)
  })

  it("doctor asks the server about exactly the granted core permissions", () => {
    const asked = REQUIRED_ACCESS.map((c) => key({ group: c.group ?? "", resource: c.resource, verb: c.verb })).sort()
    expect(asked).toEqual(granted(role).filter((g) => !g.includes("selfsubjectaccessreviews")).sort())
  })
})
