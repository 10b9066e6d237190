/**
 * "What the pod sees after a recovery", on a real kube-apiserver as the node's ServiceAccount
 * (RBAC from deploy/base): the VolumeRecoveredRestartPod Warning lands on the Pod by uid and
 * shows in `kubectl describe pod`; PodRestarter deletes a controller-owned pod of this node (uid
 * precondition) and refuses a bare one. A bare API server has no scheduler, kubelet or garbage
 * collector: pods are created already bound (spec.nodeName), a ReplicaSet-like ownerReference
 * needs no ReplicaSet, and a deleted pod stays Terminating (deletionTimestamp set) for ever.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { NodeId } from "../../src/domain/Ids.ts"
import { EventPoster, podNeedsRestartText } from "../../src/kube/EventPoster.ts"
import { EventRecorder } from "../../src/kube/EventRecorder.ts"
import { KubeClient } from "../../src/kube/KubeClient.ts"
import * as KubeClientLive from "../../src/kube/KubeClientLive.ts"
import { PodRestarter } from "../../src/kube/PodRestarter.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { apply, describeEvents, ensureNamespace, eventsFor, kube, kubectl, logSink, nodeFixture, pluginRuntime, unique } from "./support.ts"

const NS = "it-pod-events"
const nodeName = unique("node")
const otherNode = unique("node-other")
const logs = logSink()
const events = pluginRuntime({ nodeName, logs: logs.layer })
const restarts = ManagedRuntime.make(
  PodRestarter.layer.pipe(
    Layer.provideMerge(KubeClientLive.layerFromConnection({ server: kube.server, caFile: kube.caFile, token: kube.nodeToken })),
    Layer.provideMerge(Settings.layer(testSettings({ nodeId: nodeName as NodeId }))),
    Layer.provideMerge(logs.layer)
  )
)

/** A pod bound to `node`; `owned` gives it a ReplicaSet as controller (which need not exist: no garbage collector runs). */
const podFixture = (name: string, node: string, owned: boolean): string => {
  const owner = owned
    ? `  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, uid: 0f0e0d0c-0b0a-4909-8807-060504030201, controller: true}]\n`
    : ""
  // No token to mount (no token controller runs), so the ServiceAccount admission needs only the SA itself.
  apply(`apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
${owner}spec:
  nodeName: ${node}
  automountServiceAccountToken: false
  containers: [{name: app, image: registry.invalid/app:1}]
`)
  return kubectl(["get", "pod", "-n", NS, name, "-o", "jsonpath={.metadata.uid}"]).trim()
}

const deletionTimestamp = (name: string): string => kubectl(["get", "pod", "-n", NS, name, "-o", "jsonpath={.metadata.deletionTimestamp}"]).trim()

beforeAll(() => {
  ensureNamespace(NS)
  apply(`apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: ${NS}}\n`)
  nodeFixture(nodeName)
})
afterAll(async () => {
  await events.dispose()
  await restarts.dispose()
})

describe("VolumeRecoveredRestartPod on a real API server", () => {
  it("appears in kubectl describe pod, on the pod with that uid; a pod of another node gets nothing, one log line", async () => {
    const pod = unique("web")
    const uid = podFixture(pod, nodeName, true)
    const elsewhere = unique("web")
    const elsewhereUid = podFixture(elsewhere, otherNode, true)
    const volumeId = unique("pvc")
    const before = logs.lines.length
    const dropped = await events.runPromise(Effect.gen(function*() {
      const poster = yield* EventPoster
      const recorder = yield* EventRecorder
      const s0 = yield* recorder.stats
      yield* poster.postPodNeedsRestart(uid, volumeId, podNeedsRestartText("/dev/nvme0n2"))
      yield* poster.postPodNeedsRestart(elsewhereUid, volumeId, podNeedsRestartText("/dev/nvme0n2"))
      yield* recorder.awaitIdle
      return (yield* recorder.stats).dropped.no_object - s0.dropped.no_object
    }))
    const message = `[${volumeId}] on [${nodeName}]: the volume was recovered (new device /dev/nvme0n2), but this pod still holds the old mount: ` +
      "restart the pod to use the recovered volume, or use mountPropagation: HostToContainer"
    const described = describeEvents(["pod", "-n", NS, pod])
    expect(described).toMatch(new RegExp(`Warning\\s+VolumeRecoveredRestartPod\\s+.*${message.replace(/[[\]().*+?^$|\\/]/g, "\\$&")}`))
    expect(described).toContain("rds-csi-node")
    const onPod = eventsFor("Pod", pod, NS)
    expect(onPod.map((e) => [e.type, e.reason, e.message, e.involvedObject.uid, e.metadata.namespace])).toEqual([["Warning", "VolumeRecoveredRestartPod", message, uid, NS]])
    expect(onPod[0]!.source).toEqual({ component: "rds-csi-node", host: nodeName })

    expect(dropped).toBe(1)
    expect(eventsFor("Pod", elsewhere, NS)).toHaveLength(0)
    const missing = logs.lines.slice(before).filter((l) => l.includes("nothing to post it on"))
    expect(missing).toHaveLength(1)
    expect(missing[0]).toContain(`no Pod with uid ${elsewhereUid} on node ${nodeName}`)
  })
})

describe("PodRestarter on a real API server", () => {
  const restart = (uid: string) => restarts.runPromise(Effect.gen(function*() {
    return yield* (yield* PodRestarter).restart(uid, "holds the old mount of a recovered volume")
  }))

  it("deletes a ReplicaSet-owned pod of this node (it turns Terminating); refuses a bare one; leaves another node's alone", async () => {
    const owned = unique("web")
    const ownedUid = podFixture(owned, nodeName, true)
    const bare = unique("debug")
    const bareUid = podFixture(bare, nodeName, false)
    const foreign = unique("web")
    const foreignUid = podFixture(foreign, otherNode, true)

    const deleted = await restart(ownedUid)
    expect(deleted).toMatchObject({ _tag: "Deleted", pod: { namespace: NS, name: owned, uid: ownedUid, controller: { kind: "ReplicaSet", name: "web-rs" } } })
    expect(deletionTimestamp(owned)).not.toBe("")

    expect(await restart(bareUid)).toMatchObject({ _tag: "Refused", reason: "Bare", pod: { name: bare, uid: bareUid } })
    expect(deletionTimestamp(bare)).toBe("")
    expect(logs.lines.some((l) => l.includes(`pod ${NS}/${bare} not restarted: it has no controller`))).toBe(true)

    expect(await restart(foreignUid)).toEqual({ _tag: "Gone", podUid: foreignUid })
    expect(deletionTimestamp(foreign)).toBe("")
  })

  it("the uid precondition: a pod re-created under the same name is not deleted", async () => {
    const name = unique("db")
    const oldUid = podFixture(name, nodeName, true)
    kubectl(["delete", "pod", "-n", NS, name, "--grace-period=0", "--force", "--wait=false"])
    const newUid = podFixture(name, nodeName, true)
    expect(newUid).not.toBe(oldUid)

    const direct = await restarts.runPromise(Effect.gen(function*() {
      return yield* (yield* KubeClient).deletePod(NS, name, oldUid).pipe(Effect.flip)
    }))
    expect([direct.reason, direct.status]).toEqual(["Conflict", 409])
    expect(await restart(oldUid)).toEqual({ _tag: "Gone", podUid: oldUid })
    expect(deletionTimestamp(name)).toBe("")
    expect(kubectl(["get", "pod", "-n", NS, name, "-o", "jsonpath={.metadata.uid}"]).trim()).toBe(newUid)
  })
})
