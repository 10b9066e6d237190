/**
 * PodRestarter over the in-memory API: it deletes only a controller-owned pod of this node, with
 * the uid precondition (a pod re-created under the same name survives), refuses bare and static
 * pods with one log line, and turns every API failure into an outcome instead of an error.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { NodeId } from "../../src/domain/Ids.ts"
import { KubeFake, Fault } from "../../src/kube/KubeFake.ts"
import { make, PodRestarter } from "../../src/kube/PodRestarter.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { collectLogs } from "./helpers.ts"

const restarterOn = (fake: KubeFake, nodeName = "node-1") => make(nodeName).pipe(Effect.provide(fake.layer))
const rs = { kind: "ReplicaSet", name: "web-5d8" }

describe("PodRestarter", () => {
  it.effect("deletes a controller-owned pod of this node, by name with its uid as precondition", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const web = fake.putPod({ namespace: "team-a", name: "web-5d8-x2k", nodeName: "node-1", controller: rs })
      const other = fake.putPod({ namespace: "team-a", name: "db-0", nodeName: "node-1", controller: { kind: "StatefulSet", name: "db" } })
      const restarter = yield* restarterOn(fake)
      const outcome = yield* restarter.restart(web.uid, "holds the old mount of pvc-1")
      assert.deepStrictEqual(outcome, { _tag: "Deleted", pod: { namespace: "team-a", name: "web-5d8-x2k", uid: web.uid, controller: rs } })
      assert.deepStrictEqual(fake.requests.map((r) => `${r.op} ${r.target}`), ["podsOnNode node-1", "deletePod team-a/web-5d8-x2k"])
      assert.deepStrictEqual([...fake.pods.values()].map((p) => p.uid), [other.uid])
    }))

  it.effect("a pod re-created under the same name between the list and the delete is not deleted (uid precondition)", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const old = fake.putPod({ namespace: "team-a", name: "db-0", nodeName: "node-1", controller: { kind: "StatefulSet", name: "db" } })
      let successor: string | undefined
      fake.fault = (req) => {
        if (req.op === "deletePod") successor = fake.putPod({ namespace: "team-a", name: "db-0", nodeName: "node-1", controller: { kind: "StatefulSet", name: "db" } }).uid
        return undefined
      }
      const outcome = yield* (yield* restarterOn(fake)).restart(old.uid, "stale")
      assert.deepStrictEqual(outcome, { _tag: "Gone", podUid: old.uid })
      assert.strictEqual(fake.pods.get("team-a/db-0")?.uid, successor)
      // The fake enforces the precondition as the server does: 409 for another uid.
      const e = yield* Effect.flip(fake.service.deletePod("team-a", "db-0", old.uid))
      assert.deepStrictEqual([e.reason, e.status], ["Conflict", 409])
    }))

  it.effect("refuses a bare pod (nothing would re-create it): not deleted, one warning however often asked", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const bare = fake.putPod({ namespace: "team-a", name: "debug", nodeName: "node-1" })
      const logs = collectLogs()
      const outcomes = yield* Effect.gen(function*() {
        const restarter = yield* restarterOn(fake)
        return [yield* restarter.restart(bare.uid, "stale"), yield* restarter.restart(bare.uid, "stale")]
      }).pipe(Effect.provide(logs.layer))
      for (const o of outcomes) assert.deepStrictEqual(o, { _tag: "Refused", reason: "Bare", pod: { namespace: "team-a", name: "debug", uid: bare.uid, controller: undefined } })
      assert.strictEqual(fake.count("deletePod"), 0)
      assert.isTrue(fake.pods.has("team-a/debug"))
      const warnings = logs.lines.filter((l) => l.startsWith("Warn"))
      assert.strictEqual(warnings.length, 1, logs.lines.join("\n"))
      assert.match(warnings[0]!, /pod team-a\/debug not restarted: it has no controller to re-create it \(a bare pod\)/)
    }))

  it.effect("refuses a static pod's mirror (controller: the Node): deleting the API object restarts nothing", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const mirror = fake.putPod({ namespace: "kube-system", name: "etcd-node-1", nodeName: "node-1", controller: { kind: "Node", name: "node-1" } })
      const outcome = yield* (yield* restarterOn(fake)).restart(mirror.uid, "stale")
      assert.strictEqual(outcome._tag === "Refused" ? outcome.reason : outcome._tag, "Static")
      assert.strictEqual(fake.count("deletePod"), 0)
    }))

  it.effect("a uid not among this node's pods (another node's, or gone): Gone, nothing deleted", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const elsewhere = fake.putPod({ namespace: "team-a", name: "web-1", nodeName: "node-2", controller: rs })
      const restarter = yield* restarterOn(fake)
      assert.deepStrictEqual(yield* restarter.restart(elsewhere.uid, "stale"), { _tag: "Gone", podUid: elsewhere.uid })
      assert.deepStrictEqual(yield* restarter.restart("no-such-uid", "stale"), { _tag: "Gone", podUid: "no-such-uid" })
      assert.strictEqual(fake.count("deletePod"), 0)
      assert.isTrue(fake.pods.has("team-a/web-1"))
    }))

  it.effect("API failures are outcomes, never errors: a refused list, a failing delete; a deleted-meanwhile pod is Gone", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const web = fake.putPod({ namespace: "team-a", name: "web-1", nodeName: "node-1", controller: rs })
      const restarter = yield* restarterOn(fake)
      fake.fault = (r) => (r.op === "podsOnNode" ? Fault.fail("Forbidden", 403) : undefined)
      const listRefused = yield* restarter.restart(web.uid, "stale")
      assert.strictEqual(listRefused._tag === "Failed" ? listRefused.error.reason : listRefused._tag, "Forbidden")
      fake.fault = (r) => (r.op === "deletePod" ? Fault.fail("ServerError", 503) : undefined)
      const deleteFailed = yield* restarter.restart(web.uid, "stale")
      assert.strictEqual(deleteFailed._tag === "Failed" ? deleteFailed.error.reason : deleteFailed._tag, "ServerError")
      fake.fault = (r) => (r.op === "deletePod" ? Fault.fail("NotFound", 404) : undefined)
      assert.deepStrictEqual(yield* restarter.restart(web.uid, "stale"), { _tag: "Gone", podUid: web.uid })
      assert.isTrue(fake.pods.has("team-a/web-1"))
    }))

  it.effect("PodRestarter.layer acts for Settings.nodeId", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const web = fake.putPod({ namespace: "team-a", name: "web-1", nodeName: "node-7", controller: rs })
      const outcome = yield* Effect.gen(function*() {
        return yield* (yield* PodRestarter).restart(web.uid, "stale")
      }).pipe(Effect.provide(PodRestarter.layer.pipe(Layer.provide(Layer.merge(fake.layer, Settings.layer(testSettings({ nodeId: "node-7" as NodeId })))))))
      assert.strictEqual(outcome._tag, "Deleted")
      assert.deepStrictEqual(fake.requests.map((r) => `${r.op} ${r.target}`), ["podsOnNode node-7", "deletePod team-a/web-1"])
    }))
})
