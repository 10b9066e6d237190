/**
 * The seven events on a real kube-apiserver, posted by the plugin's own code as the node's
 * ServiceAccount (RBAC from deploy/base), read back with the machine's kubectl the way an
 * operator would: `kubectl describe pvc` / `kubectl describe node`.
 */
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { NodeId } from "../../src/domain/Ids.ts"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { EventPosterLive } from "../../src/kube/EventPosterLive.ts"
import { EventRecorder } from "../../src/kube/EventRecorder.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { describeEvents, ensureNamespace, eventsFor, kube, logSink, nodeFixture, pluginRuntime, unique, volumeFixture, writeKubeconfig } from "./support.ts"

const NS = "it-events"
const nodeName = unique("node")
const logs = logSink()
const runtime = pluginRuntime({ nodeName, logs: logs.layer })
const run = <A>(f: (poster: EventPoster["Service"], recorder: EventRecorder["Service"]) => Effect.Effect<A>) =>
  runtime.runPromise(Effect.gen(function*() {
    const out = yield* f(yield* EventPoster, yield* EventRecorder)
    yield* (yield* EventRecorder).awaitIdle
    return out
  }))

beforeAll(() => {
  ensureNamespace(NS)
  nodeFixture(nodeName)
})
afterAll(() => runtime.dispose())

describe("events on a real API server", () => {
  it("each of the seven appears in kubectl describe with the right type, reason, message and object", async () => {
    // A static PV whose name differs from the volume ID; its claimRef has no uid (pre-bound).
    const volumeId = unique("vol")
    const pvc = unique("data")
    const { uid } = volumeFixture(NS, { pvName: unique("static-pv"), pvcName: pvc, volumeId })
    await run((p) =>
      Effect.gen(function*() {
        yield* p.postMountFailure(volumeId, "mount: /staging: wrong fs type")
        yield* p.postRecoveryFailed(volumeId, 3, "device /dev/nvme0n1 gone")
        yield* p.postStaleMountDetected(volumeId, "/dev/nvme0n1", "/dev/nvme1n2")
        yield* p.postConnectionFailure(volumeId, "10.0.0.5:4420", "connection refused")
        yield* p.postConnectionRecovery(volumeId, "10.0.0.5:4420", 4)
        yield* p.postOrphanDetected("nqn.2000-02.com.mikrotik:pvc-orphan", "10.0.0.5:4420", "no staged volume uses it")
        yield* p.postOrphanCleaned("nqn.2000-02.com.mikrotik:pvc-orphan", "disconnected")
      })
    )
    const pvcEvents = describeEvents(["pvc", "-n", NS, pvc])
    const expectRow = (text: string, type: string, reason: string, message: string) =>
      expect(text).toMatch(new RegExp(`${type}\\s+${reason}\\s+.*${message.replace(/[[\]().*+?^$|\\/]/g, "\\$&")}`))
    expectRow(pvcEvents, "Warning", "MountFailure", `[${volumeId}] on [${nodeName}]: mount: /staging: wrong fs type`)
    expectRow(pvcEvents, "Warning", "RecoveryFailed", `[${volumeId}] on [${nodeName}]: Recovery failed after 3 attempts: device /dev/nvme0n1 gone`)
    expectRow(pvcEvents, "Normal", "StaleMountDetected", `[${volumeId}] on [${nodeName}]: Stale mount detected - old device: /dev/nvme0n1, new device: /dev/nvme1n2`)
    expectRow(pvcEvents, "Warning", "ConnectionFailure", `[${volumeId}] on [${nodeName}]: Connection to 10.0.0.5:4420 failed: connection refused`)
    expectRow(pvcEvents, "Normal", "ConnectionRecovery", `[${volumeId}] on [${nodeName}]: Connection to 10.0.0.5:4420 recovered after 4 attempts`)
    expect(pvcEvents).toContain("rds-csi-node")

    const nodeEvents = describeEvents(["node", nodeName])
    expectRow(nodeEvents, "Warning", "OrphanDetected", `[${nodeName}]: orphan NVMe connection nqn.2000-02.com.mikrotik:pvc-orphan to 10.0.0.5:4420: no staged volume uses it`)
    expectRow(nodeEvents, "Normal", "OrphanCleaned", `[${nodeName}]: orphan NVMe connection nqn.2000-02.com.mikrotik:pvc-orphan: disconnected`)

    const onPvc = eventsFor("PersistentVolumeClaim", pvc, NS)
    expect(onPvc).toHaveLength(5)
    for (const e of onPvc) {
      expect(e.involvedObject.uid).toBe(uid)
      expect(e.count).toBe(1)
      expect(e.source).toEqual({ component: "rds-csi-node", host: nodeName })
      expect(e.reportingComponent).toBe("rds-csi-node")
      expect(e.reportingInstance).toBe(nodeName)
    }
    const onNode = eventsFor("Node", nodeName, "default")
    expect(onNode).toHaveLength(2)
    for (const e of onNode) {
      // kubelet's convention (uid = node name): kubectl describe node 1.20 finds only such events.
      expect(e.involvedObject.uid).toBe(nodeName)
      expect(e.involvedObject.namespace ?? "").toBe("")
      expect(e.metadata.namespace).toBe("default")
    }
  })

  it("ten repeats give one event with count 10", async () => {
    const volumeId = unique("vol")
    const pvc = unique("data")
    volumeFixture(NS, { pvName: volumeId, pvcName: pvc, volumeId, withUid: true })
    await run((p) =>
      Effect.gen(function*() {
        for (let i = 0; i < 10; i++) yield* p.postConnectionFailure(volumeId, "10.0.0.5:4420", "connection refused")
      })
    )
    const evs = eventsFor("PersistentVolumeClaim", pvc, NS)
    expect(evs).toHaveLength(1)
    expect(evs[0]!.count).toBe(10)
    expect(describeEvents(["pvc", "-n", NS, pvc])).toMatch(/Warning\s+ConnectionFailure\s+\S+ \(x10 over \S+\)/)
  })

  it("a volume whose PVC does not exist, or that has no PV: nothing posted, one log line each", async () => {
    const volumeId = unique("vol")
    const missingPvc = unique("never-created")
    volumeFixture(NS, { pvName: unique("pv"), pvcName: missingPvc, volumeId, withoutPvc: true })
    const noPv = unique("vol-without-pv")
    const before = logs.lines.length
    const stats = await run((p, r) =>
      Effect.gen(function*() {
        const s0 = yield* r.stats
        for (let i = 0; i < 3; i++) {
          yield* p.postMountFailure(volumeId, "x")
          yield* p.postMountFailure(noPv, "x")
          yield* r.awaitIdle
        }
        const s1 = yield* r.stats
        return { noObject: s1.dropped.no_object - s0.dropped.no_object, creates: s1.requests.create - s0.requests.create }
      })
    )
    expect(stats).toEqual({ noObject: 6, creates: 0 })
    expect(eventsFor("PersistentVolumeClaim", missingPvc, NS)).toHaveLength(0)
    const lines = logs.lines.slice(before).filter((l) => l.includes("nothing to post it on"))
    expect(lines).toHaveLength(2)
    expect(lines.join("\n")).toContain(`PVC ${NS}/${missingPvc}`)
    expect(lines.join("\n")).toContain(`no PersistentVolume of driver rds.csi.srvlab.io has volumeHandle ${noPv}`)
  })

  it("EventPosterLive, as main.ts builds it from Settings with --kubeconfig, posts and checks its permissions quietly", async () => {
    const volumeId = unique("vol")
    const pvc = unique("data")
    volumeFixture(NS, { pvName: volumeId, pvcName: pvc, volumeId, withUid: true })
    const kubeconfig = writeKubeconfig(kube.nodeToken)
    const own = logSink()
    const settings = Settings.layer(testSettings({ nodeId: nodeName as NodeId, events: true, kubeconfig }))
    const main = ManagedRuntime.make(EventPosterLive.pipe(Layer.provide(settings), Layer.provideMerge(own.layer)))
    await main.runPromise(Effect.gen(function*() {
      const p = yield* EventPoster
      yield* p.postMountFailure(volumeId, "through the composition root's layer")
      yield* Effect.sleep(Duration.seconds(1))
    }))
    await main.dispose() // drains
    const evs = eventsFor("PersistentVolumeClaim", pvc, NS)
    expect(evs.map((e) => e.message)).toEqual([`[${volumeId}] on [${nodeName}]: through the composition root's layer`])
    expect(own.lines.filter((l) => l.startsWith("Warn"))).toEqual([])
  })

  it("without permissions (a ServiceAccount no RBAC grants anything): each missing verb logged, events dropped, nothing fails", async () => {
    const volumeId = unique("vol")
    volumeFixture(NS, { pvName: volumeId, pvcName: unique("data"), volumeId, withUid: true })
    const own = logSink()
    const settings = Settings.layer(testSettings({ nodeId: nodeName as NodeId, events: true, kubeconfig: writeKubeconfig(kube.nobodyToken) }))
    const main = ManagedRuntime.make(EventPosterLive.pipe(Layer.provide(settings), Layer.provideMerge(own.layer)))
    await main.runPromise(Effect.gen(function*() {
      const p = yield* EventPoster
      yield* p.postMountFailure(volumeId, "x")
      yield* p.postOrphanDetected("nqn.2000-02.com.mikrotik:x", "10.0.0.5:4420", "y")
      yield* Effect.sleep(Duration.seconds(1))
    }))
    await main.dispose()
    const warnings = own.lines.filter((l) => l.startsWith("Warn"))
    for (const verb of ["create events", "patch events", "list persistentvolumes", "watch persistentvolumes", "get persistentvolumeclaims", "get nodes"]) {
      expect(warnings.some((l) => l.includes(`may not ${verb}`)), verb).toBe(true)
    }
    expect(warnings.some((l) => l.includes("cannot look up its object") && l.includes("Forbidden"))).toBe(true)
  })
})
