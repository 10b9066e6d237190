/**
 * Doctor's API server check over the in-memory KubeFake (what is asked, what each answer
 * means) and over the live client-node layer for configuration errors (no server needed).
 * The same check against the real API server and the project's RBAC is in
 * test/integration/deploy-server.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ApiAccess from "../../src/doctor/ApiAccess.ts"
import { kubeFor } from "../../src/doctor/Doctor.ts"
import * as EventPosterLive from "../../src/kube/EventPosterLive.ts"
import { type AccessCheck, KubeClient, kubeError } from "../../src/kube/KubeClient.ts"
import { Fault, KubeFake } from "../../src/kube/KubeFake.ts"
import { options, tmp } from "./helpers.ts"

describe("API server access", () => {
  it("asks exactly the plugin's RBAC: events create/patch, PVs get/list/watch, PVCs and nodes get, pods list/delete", () => {
    assert.deepStrictEqual(ApiAccess.REQUIRED_ACCESS.map((c) => `${c.verb} ${c.resource}`), [
      "create events",
      "patch events",
      "get persistentvolumes",
      "list persistentvolumes",
      "watch persistentvolumes",
      "get persistentvolumeclaims",
      "get nodes",
      "list pods",
      "delete pods"
    ])
  })

  it("asks the same questions as the plugin's own start-up check (deploy/base/rbac.yaml grants both)", () => {
    const asked = (checks: ReadonlyArray<AccessCheck>) => checks.map((c) => `${c.group ?? ""} ${c.verb} ${c.resource}`).sort()
    assert.deepStrictEqual(asked(ApiAccess.REQUIRED_ACCESS), asked(EventPosterLive.REQUIRED_ACCESS))
  })

  it.effect("everything allowed: OK listing the server and every permission, one SelfSubjectAccessReview each", () =>
    Effect.gen(function*() {
      const kube = new KubeFake()
      const r = yield* ApiAccess.check(kube.layer)
      assert.strictEqual(r.status, "ok")
      assert.include(r.detail, "fake://kube: may create events, patch events, get persistentvolumes")
      assert.strictEqual(kube.count("canI"), ApiAccess.REQUIRED_ACCESS.length)
    }))

  it.effect("a permission missing: FAIL naming exactly the denied ones, fix applies deploy/base", () =>
    Effect.gen(function*() {
      const kube = new KubeFake()
      kube.allowed = (verb, resource) =>
        resource !== "nodes" && !(verb === "patch" && resource === "events") && !(verb === "watch" && resource === "persistentvolumes")
      const r = yield* ApiAccess.check(kube.layer)
      assert.strictEqual(r.status, "fail")
      assert.strictEqual(r.detail, "fake://kube: may not patch events, watch persistentvolumes, get nodes")
      assert.match(r.fix ?? "", /kubectl apply -k deploy\/base/)
    }))

  it.effect("server unreachable: FAIL after one request (not one timeout per permission), fix says make it reachable", () =>
    Effect.gen(function*() {
      const kube = new KubeFake()
      kube.fault = () => Fault.fail("Transport")
      const r = yield* ApiAccess.check(kube.layer)
      assert.strictEqual(r.status, "fail")
      assert.match(r.fix ?? "", /reachable/)
      assert.strictEqual(kube.count("canI"), 1)
    }))

  it.effect("credentials refused (401/403 on the review itself): FAIL that says check the token", () =>
    Effect.gen(function*() {
      const kube = new KubeFake()
      kube.fault = () => Fault.fail("Forbidden", 401)
      const r = yield* ApiAccess.check(kube.layer)
      assert.strictEqual(r.status, "fail")
      assert.match(r.fix ?? "", /check the token/)
    }))

  it.effect("no configuration: WARN, not checked (the plugin runs without events)", () =>
    Effect.gen(function*() {
      const r = yield* ApiAccess.check({ none: "no --kubeconfig" })
      assert.strictEqual(r.status, "warn")
      assert.match(r.detail, /not checked/)
    }))

  it.effect("a client layer that cannot be built: FAIL 'configuration unusable'", () =>
    Effect.gen(function*() {
      const r = yield* ApiAccess.check(Layer.effect(KubeClient, Effect.fail(kubeError("Invalid", "loadKubeConfig", "bad file"))))
      assert.strictEqual(r.status, "fail")
      assert.match(r.detail, /configuration unusable: loadKubeConfig: Invalid: bad file/)
    }))
})

describe("which client doctor asks through (kubeFor)", () => {
  it("no --kubeconfig and no in-cluster env: none, with the reason", () => {
    const k = kubeFor(options(tmp()), {})
    assert.deepStrictEqual(k, { none: "no --kubeconfig / KUBECONFIG and not in a cluster" })
  })

  it.effect("--kubeconfig to a file that is not a kubeconfig: the live layer fails and the check says why", () =>
    Effect.gen(function*() {
      const file = path.join(tmp(), "kubeconfig")
      fs.writeFileSync(file, "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
      const k = kubeFor(options(tmp(), { kubeconfig: file }), {})
      assert.isFalse("none" in k)
      const r = yield* ApiAccess.check(k)
      assert.strictEqual(r.status, "fail")
      assert.match(r.detail, /configuration unusable/)
    }))
})
