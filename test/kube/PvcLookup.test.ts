/**
 * PvcLookup against the in-memory API on TestClock: volume handle → PV (static PVs too) →
 * claimRef → PVC, the watch keeping the index fresh, the caches keeping the API quiet.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Result } from "effect"
import { KubeFake, Fault } from "../../src/kube/KubeFake.ts"
import { DEFAULT_LOOKUP_OPTIONS, make, podRef, pvcRef } from "../../src/kube/PvcLookup.ts"
import { advance, advanceBy, settle } from "./helpers.ts"

const DRIVER = "rds.csi.srvlab.io"
const lookupOn = (fake: KubeFake, lagGrace = Duration.zero) =>
  make({ ...DEFAULT_LOOKUP_OPTIONS, driverName: DRIVER, lagGrace }).pipe(Effect.provide(fake.layer))

const csiPv = (fake: KubeFake, name: string, handle: string, claim?: { namespace: string; name: string; uid?: string }, driver = DRIVER) =>
  fake.putPv({
    name,
    csi: { driver, volumeHandle: handle },
    claimRef: claim === undefined ? undefined : { namespace: claim.namespace, name: claim.name, uid: claim.uid }
  })

describe("PvcLookup", () => {
  it.effect("finds the PVC of a dynamically provisioned volume (PV named like its handle)", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const pvc = fake.putPvc("team-a", "data")
      csiPv(fake, "pvc-123", "pvc-123", { namespace: "team-a", name: "data", uid: pvc.uid })
      const lookup = yield* lookupOn(fake)
      const r = yield* lookup.pvcForVolume("pvc-123")
      assert.deepStrictEqual(r, Result.succeed(pvcRef("team-a", "data", pvc.uid)))
    }))

  it.effect("a static PV whose name differs from the volume ID, and a claimRef without uid", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const pvc = fake.putPvc("db", "pg-data")
      csiPv(fake, "my-static-pv", "nqn-volume-7", { namespace: "db", name: "pg-data" })
      const lookup = yield* lookupOn(fake)
      assert.deepStrictEqual(yield* lookup.pvcForVolume("nqn-volume-7"), Result.succeed(pvcRef("db", "pg-data", pvc.uid)))
    }))

  it.effect("ignores another driver's PV with the same handle", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.putPvc("team-a", "data")
      csiPv(fake, "other", "vol-1", { namespace: "team-a", name: "data" }, "other.csi.example.com")
      const lookup = yield* lookupOn(fake)
      const r = yield* lookup.pvcForVolume("vol-1")
      assert.isTrue(Result.isFailure(r))
    }))

  it.effect("a PVC that does not exist: Missing, and not asked for again within the negative TTL", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      csiPv(fake, "pv-1", "vol-1", { namespace: "team-a", name: "gone" })
      const lookup = yield* lookupOn(fake)
      const r = yield* lookup.pvcForVolume("vol-1")
      assert.deepStrictEqual(r, Result.fail("PVC team-a/gone (claim of PV pv-1) does not exist"))
      yield* lookup.pvcForVolume("vol-1")
      yield* lookup.pvcForVolume("vol-1")
      assert.strictEqual(fake.count("getPersistentVolumeClaim"), 1)
      yield* advance(Duration.toMillis(DEFAULT_LOOKUP_OPTIONS.negativeTtl) + 1)
      const pvc = fake.putPvc("team-a", "gone")
      assert.deepStrictEqual(yield* lookup.pvcForVolume("vol-1"), Result.succeed(pvcRef("team-a", "gone", pvc.uid)))
      assert.strictEqual(fake.count("getPersistentVolumeClaim"), 2)
    }))

  it.effect("a re-created PVC (uid differs from the claimRef) is not the PV's claim", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.putPvc("team-a", "data", "new-uid")
      csiPv(fake, "pv-1", "vol-1", { namespace: "team-a", name: "data", uid: "old-uid" })
      const lookup = yield* lookupOn(fake)
      assert.isTrue(Result.isFailure(yield* lookup.pvcForVolume("vol-1")))
    }))

  it.effect("a storm of lookups costs one list and one PVC get", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const pvc = fake.putPvc("team-a", "data")
      csiPv(fake, "pv-1", "vol-1", { namespace: "team-a", name: "data", uid: pvc.uid })
      const lookup = yield* lookupOn(fake)
      for (let i = 0; i < 100; i++) yield* lookup.pvcForVolume("vol-1")
      assert.strictEqual(fake.count("listPersistentVolumes"), 1)
      assert.strictEqual(fake.count("getPersistentVolumeClaim"), 1)
      assert.strictEqual(fake.count("getPersistentVolume"), 0)
    }))

  it.effect("the watch brings in PVs created later, and forgets deleted ones", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const lookup = yield* lookupOn(fake)
      yield* settle
      assert.isTrue(yield* lookup.synced)
      const pvc = fake.putPvc("team-a", "data")
      csiPv(fake, "static-a", "vol-9", { namespace: "team-a", name: "data", uid: pvc.uid })
      yield* settle
      assert.deepStrictEqual(yield* lookup.pvcForVolume("vol-9"), Result.succeed(pvcRef("team-a", "data", pvc.uid)))
      assert.strictEqual(fake.count("getPersistentVolume"), 0)
      fake.deletePv("static-a")
      yield* settle
      assert.isTrue(Result.isFailure(yield* lookup.pvcForVolume("vol-9")))
    }))

  it.effect("a watch the server closes is resumed from its resourceVersion, without a relist", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const lookup = yield* lookupOn(fake)
      yield* settle
      fake.closeWatches()
      yield* advanceBy(2_000, 500)
      const pvc = fake.putPvc("team-a", "data")
      csiPv(fake, "pv-2", "vol-2", { namespace: "team-a", name: "data", uid: pvc.uid })
      yield* settle
      assert.isTrue(Result.isSuccess(yield* lookup.pvcForVolume("vol-2")))
      assert.strictEqual(fake.count("listPersistentVolumes"), 1)
      assert.isAtLeast(fake.count("watchPersistentVolumes"), 2)
    }))

  it.effect("a failing list is retried; lookups wait for the first list (bounded) and fail with its error", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      let failing = true
      fake.fault = (r) => (r.op === "listPersistentVolumes" && failing ? Fault.fail("ServerError", 503) : undefined)
      const pvc = fake.putPvc("team-a", "data")
      csiPv(fake, "pv-1", "vol-1", { namespace: "team-a", name: "data", uid: pvc.uid })
      const lookup = yield* lookupOn(fake)
      const waiting = yield* Effect.forkChild(Effect.result(lookup.pvcForVolume("vol-1")))
      yield* advanceBy(Duration.toMillis(DEFAULT_LOOKUP_OPTIONS.syncWait) + 1_000, 1_000)
      const r = waiting.pollUnsafe()
      assert.isTrue(r !== undefined && r._tag === "Success" && Result.isFailure(r.value) && r.value.failure.reason === "ServerError")
      failing = false
      yield* advanceBy(31_000, 1_000)
      assert.isTrue(Result.isSuccess(yield* lookup.pvcForVolume("vol-1")))
    }))

  it.effect("a refused list (403) fails lookups at once instead of after the sync wait", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = (r) => (r.op === "listPersistentVolumes" ? Fault.fail("Forbidden", 403) : undefined)
      const lookup = yield* lookupOn(fake)
      yield* settle
      const e = yield* Effect.flip(lookup.pvcForVolume("vol-1"))
      assert.strictEqual(e.reason, "Forbidden")
    }))

  it.effect("informer lag: a PV not yet in the index is fetched by name once", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = (r) => (r.op === "watchPersistentVolumes" ? Fault.hang : undefined)
      const lookup = yield* lookupOn(fake)
      yield* settle
      const pvc = fake.putPvc("team-a", "data")
      csiPv(fake, "vol-3", "vol-3", { namespace: "team-a", name: "data", uid: pvc.uid })
      assert.isTrue(Result.isSuccess(yield* lookup.pvcForVolume("vol-3")))
      assert.isTrue(Result.isFailure(yield* lookup.pvcForVolume("vol-404")))
      assert.isTrue(Result.isFailure(yield* lookup.pvcForVolume("vol-404")))
      assert.strictEqual(fake.count("getPersistentVolume"), 2) // vol-3 once, vol-404 once (negative cache)
    }))

  it.effect("a miss waits (bounded) for a static PV the watch has not delivered yet", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const lookup = yield* lookupOn(fake, Duration.seconds(2))
      yield* settle
      const waiting = yield* Effect.forkChild(lookup.pvcForVolume("vol-late"))
      yield* advance(500)
      const pvc = fake.putPvc("team-a", "late")
      csiPv(fake, "static-late", "vol-late", { namespace: "team-a", name: "late", uid: pvc.uid })
      yield* advance(200)
      assert.deepStrictEqual(waiting.pollUnsafe(), Exit.succeed(Result.succeed(pvcRef("team-a", "late", pvc.uid))))
      const never = yield* Effect.forkChild(lookup.pvcForVolume("vol-never"))
      yield* advanceBy(2_100, 100)
      const r = never.pollUnsafe()
      assert.isTrue(r !== undefined && Exit.isSuccess(r) && Result.isFailure(r.value))
    }))

  it.effect("node name → the Node, referenced as kubelet does (uid = name: what every kubectl describe node finds), cached; a missing node is Missing", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.putNode("node-1")
      const lookup = yield* lookupOn(fake)
      const r = yield* lookup.node("node-1")
      assert.deepStrictEqual(r, Result.succeed({ apiVersion: "v1", kind: "Node", namespace: "", name: "node-1", uid: "node-1" }))
      yield* lookup.node("node-1")
      assert.strictEqual(fake.count("getNode"), 1)
      assert.isTrue(Result.isFailure(yield* lookup.node("node-x")))
    }))

  it.effect("pod uid → the Pod among the node's pods: concurrent lookups share one list, kept podListTtl; a failed list is not kept", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const a = fake.putPod({ namespace: "team-a", name: "a", nodeName: "node-1", controller: { kind: "ReplicaSet", name: "rs" } })
      const b = fake.putPod({ namespace: "team-b", name: "b", nodeName: "node-1" })
      const other = fake.putPod({ namespace: "team-a", name: "c", nodeName: "node-2" })
      const lookup = yield* lookupOn(fake)
      fake.fault = (r) => (r.op === "podsOnNode" ? Fault.delay("100 millis") : undefined)
      const both = yield* Effect.forkChild(Effect.all([lookup.pod("node-1", a.uid), lookup.pod("node-1", b.uid), lookup.pod("node-1", other.uid)], { concurrency: "unbounded" }))
      yield* advance(100)
      const found = both.pollUnsafe()
      assert.isTrue(found !== undefined && Exit.isSuccess(found))
      const [ra, rb, rc] = Exit.isSuccess(found!) ? found.value : []
      assert.deepStrictEqual(ra, Result.succeed(podRef("team-a", "a", a.uid)))
      assert.deepStrictEqual(rb, Result.succeed(podRef("team-b", "b", b.uid)))
      assert.deepStrictEqual(rc, Result.fail(`no Pod with uid ${other.uid} on node node-1`))
      assert.strictEqual(fake.count("podsOnNode"), 1)
      fake.fault = (r) => (r.op === "podsOnNode" ? Fault.fail("ServerError", 500) : undefined)
      yield* advance(Duration.toMillis(DEFAULT_LOOKUP_OPTIONS.podListTtl))
      const failed = yield* Effect.flip(lookup.pod("node-1", a.uid))
      assert.strictEqual(failed.reason, "ServerError")
      fake.fault = () => undefined
      assert.deepStrictEqual(yield* lookup.pod("node-1", a.uid), Result.succeed(podRef("team-a", "a", a.uid)))
      assert.strictEqual(fake.count("podsOnNode"), 3)
    }))
})
