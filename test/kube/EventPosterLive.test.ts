/**
 * EventPosterLive over the in-memory API: each of the seven reasons reaches the right object
 * with the right type and message, and the layer main.ts uses degrades to "log and post
 * nothing" when events are off or there is no API server configuration.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import type { NodeId } from "../../src/domain/Ids.ts"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { EventPosterLive, KubeSideLive, layerWith } from "../../src/kube/EventPosterLive.ts"
import { EventRecorder } from "../../src/kube/EventRecorder.ts"
import { KubeFake } from "../../src/kube/KubeFake.ts"
import { PodRestarter } from "../../src/kube/PodRestarter.ts"
import { DEFAULT_LOOKUP_OPTIONS, make as makeLookup, PvcLookup } from "../../src/kube/PvcLookup.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { advance, collectLogs, recorderOn, settle } from "./helpers.ts"

const settings = testSettings({ nodeId: "node-1" as NodeId, events: true })

const posterOn = (fake: KubeFake) =>
  Effect.gen(function*() {
    const recorder = yield* recorderOn(fake)
    const lookup = yield* makeLookup({ ...DEFAULT_LOOKUP_OPTIONS, driverName: settings.driverName, lagGrace: Duration.zero }).pipe(Effect.provide(fake.layer))
    const ctx = yield* Layer.build(layerWith.pipe(
      Layer.provide(Layer.mergeAll(Settings.layer(settings), Layer.succeed(EventRecorder, recorder), Layer.succeed(PvcLookup, lookup)))
    ))
    return { poster: Context.get(ctx, EventPoster), recorder }
  })

describe("EventPosterLive", () => {
  it.effect("posts the seven reasons on the PVC or the Node, as kubectl describe will show them", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const pvc = fake.putPvc("team-a", "data")
      fake.putPv({ name: "pv-static", csi: { driver: settings.driverName, volumeHandle: "vol-1" }, claimRef: { namespace: "team-a", name: "data", uid: pvc.uid } })
      fake.putNode("node-1") // posted with uid = name, as kubelet does (kubectl 1.20 describe node finds only those)
      const { poster } = yield* posterOn(fake)
      yield* poster.postMountFailure("vol-1", "mount: wrong fs type")
      yield* poster.postRecoveryFailed("vol-1", 3, "device gone")
      yield* poster.postStaleMountDetected("vol-1", "/dev/nvme0n1", "/dev/nvme0n2")
      yield* poster.postConnectionFailure("vol-1", "10.0.0.5:4420", "connection refused")
      yield* poster.postConnectionRecovery("vol-1", "10.0.0.5:4420", 4)
      yield* poster.postOrphanDetected("nqn.2000-02.com.mikrotik:pvc-x", "10.0.0.5:4420", "no staged volume uses it")
      yield* poster.postOrphanCleaned("nqn.2000-02.com.mikrotik:pvc-x", "disconnected")
      yield* advance(0)
      const got = fake.eventList().map((e) => [e.involvedObject.kind, e.involvedObject.uid, e.type, e.reason, e.message])
      assert.deepStrictEqual(got, [
        ["PersistentVolumeClaim", pvc.uid, "Warning", "MountFailure", "[vol-1] on [node-1]: mount: wrong fs type"],
        ["PersistentVolumeClaim", pvc.uid, "Warning", "RecoveryFailed", "[vol-1] on [node-1]: Recovery failed after 3 attempts: device gone"],
        ["PersistentVolumeClaim", pvc.uid, "Normal", "StaleMountDetected", "[vol-1] on [node-1]: Stale mount detected - old device: /dev/nvme0n1, new device: /dev/nvme0n2"],
        ["PersistentVolumeClaim", pvc.uid, "Warning", "ConnectionFailure", "[vol-1] on [node-1]: Connection to 10.0.0.5:4420 failed: connection refused"],
        ["PersistentVolumeClaim", pvc.uid, "Normal", "ConnectionRecovery", "[vol-1] on [node-1]: Connection to 10.0.0.5:4420 recovered after 4 attempts"],
        ["Node", "node-1", "Warning", "OrphanDetected", "[node-1]: orphan NVMe connection nqn.2000-02.com.mikrotik:pvc-x to 10.0.0.5:4420: no staged volume uses it"],
        ["Node", "node-1", "Normal", "OrphanCleaned", "[node-1]: orphan NVMe connection nqn.2000-02.com.mikrotik:pvc-x: disconnected"]
      ])
    }))

  it.effect("a volume without a PVC: nothing posted", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const { poster, recorder } = yield* posterOn(fake)
      yield* poster.postMountFailure("vol-unknown", "x")
      yield* settle
      assert.strictEqual(fake.count("createEvent"), 0)
      assert.strictEqual((yield* recorder.stats).dropped.no_object, 1)
    }))

  it.effect("events off, or no API server configured: logs why and posts nothing", () =>
    Effect.gen(function*() {
      const saved = process.env["KUBERNETES_SERVICE_HOST"]
      delete process.env["KUBERNETES_SERVICE_HOST"]
      for (const s of [testSettings({ events: false }), testSettings({ events: true, kubeconfig: undefined })]) {
        const logs = collectLogs()
        yield* Effect.gen(function*() {
          const poster = yield* EventPoster
          yield* poster.postMountFailure("vol-1", "x")
        }).pipe(Effect.provide(EventPosterLive.pipe(Layer.provide(Settings.layer(s)))), Effect.provide(logs.layer))
        assert.isTrue(logs.lines.some((l) => l.startsWith("Warn: Kubernetes events disabled")), logs.lines.join("\n"))
      }
      if (saved !== undefined) process.env["KUBERNETES_SERVICE_HOST"] = saved
    }))

  it.effect("VolumeRecoveredRestartPod goes on the pod with that uid, in its namespace (not on the PVC, not on a namesake)", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const pvc = fake.putPvc("team-a", "data")
      fake.putPv({ name: "pvc-1", csi: { driver: settings.driverName, volumeHandle: "pvc-1" }, claimRef: { namespace: "team-a", name: "data", uid: pvc.uid } })
      const app = fake.putPod({ namespace: "team-a", name: "app-0", nodeName: "node-1", controller: { kind: "StatefulSet", name: "app" } })
      fake.putPod({ namespace: "team-b", name: "app-0", nodeName: "node-1" })
      fake.putPod({ namespace: "team-a", name: "other", nodeName: "node-2" })
      const { poster } = yield* posterOn(fake)
      yield* poster.postPodNeedsRestart(app.uid, "pvc-1", "the volume was recovered (new device /dev/nvme0n2), but this pod still holds the old mount")
      yield* advance(0)
      const got = fake.eventList().map((e) => ({ namespace: e.namespace, on: e.involvedObject, type: e.type, reason: e.reason, message: e.message }))
      assert.deepStrictEqual(got, [{
        namespace: "team-a",
        on: { apiVersion: "v1", kind: "Pod", namespace: "team-a", name: "app-0", uid: app.uid },
        type: "Warning",
        reason: "VolumeRecoveredRestartPod",
        message: "[pvc-1] on [node-1]: the volume was recovered (new device /dev/nvme0n2), but this pod still holds the old mount"
      }])
      assert.deepStrictEqual(fake.requests.filter((r) => r.op === "podsOnNode").map((r) => r.target), ["node-1"])
    }))

  it.effect("a pod uid not on this node (another node's, or gone): dropped with one log line, however often posted", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const elsewhere = fake.putPod({ namespace: "team-a", name: "web", nodeName: "node-2", controller: { kind: "ReplicaSet", name: "web-5d8" } })
      const logs = collectLogs()
      yield* Effect.gen(function*() {
        const { poster, recorder } = yield* posterOn(fake)
        for (let i = 0; i < 3; i++) {
          yield* poster.postPodNeedsRestart(elsewhere.uid, "pvc-1", "x")
          yield* poster.postPodNeedsRestart("uid-gone", "pvc-1", "x")
          yield* advance(0)
        }
        assert.strictEqual(fake.count("createEvent"), 0)
        assert.strictEqual((yield* recorder.stats).dropped.no_object, 6)
      }).pipe(Effect.provide(logs.layer))
      const missing = logs.lines.filter((l) => l.includes("nothing to post it on"))
      assert.strictEqual(missing.length, 2, logs.lines.join("\n"))
      assert.isTrue(missing.some((l) => l.includes(`no Pod with uid ${elsewhere.uid} on node node-1`)))
      assert.isTrue(missing.some((l) => l.includes("no Pod with uid uid-gone on node node-1")))
    }))

  it.effect("pods named after one recovery cost one list of the node's pods; after podListTtl the list is fresh again", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const pods = [1, 2, 3, 4, 5].map((i) => fake.putPod({ namespace: "team-a", name: `app-${i}`, nodeName: "node-1", controller: { kind: "ReplicaSet", name: "app" } }))
      const { poster } = yield* posterOn(fake)
      for (const p of pods) yield* poster.postPodNeedsRestart(p.uid, "pvc-1", "x")
      yield* advance(0)
      assert.strictEqual(fake.count("createEvent"), 5)
      assert.strictEqual(fake.count("podsOnNode"), 1)
      // A pod created after the list is found once the list has expired.
      const late = fake.putPod({ namespace: "team-a", name: "late", nodeName: "node-1" })
      yield* advance(Duration.toMillis(DEFAULT_LOOKUP_OPTIONS.podListTtl) + 1)
      yield* poster.postPodNeedsRestart(late.uid, "pvc-1", "x")
      yield* advance(0)
      assert.strictEqual(fake.count("podsOnNode"), 2)
      assert.isTrue(fake.eventList().some((e) => e.involvedObject.uid === late.uid))
    }))

  it.effect("KubeSideLive with events off: a noop EventPoster and a PodRestarter that restarts nothing", () =>
    Effect.gen(function*() {
      const logs = collectLogs()
      const outcome = yield* Effect.gen(function*() {
        yield* (yield* EventPoster).postPodNeedsRestart("uid-1", "pvc-1", "x")
        const restarter = yield* PodRestarter
        yield* restarter.restart("uid-1", "stale mount")
        return yield* restarter.restart("uid-1", "stale mount")
      }).pipe(Effect.provide(KubeSideLive.pipe(Layer.provide(Settings.layer(testSettings({ events: false }))))), Effect.provide(logs.layer))
      assert.deepStrictEqual(outcome, { _tag: "Disabled" })
      assert.isTrue(logs.lines.some((l) => l.startsWith("Warn: Kubernetes events disabled: --events=false")))
      assert.strictEqual(logs.lines.filter((l) => l.includes("pod uid-1 not restarted")).length, 1, logs.lines.join("\n"))
    }))
})
