/**
 * The node plugin on the in-memory kernel, composed exactly as main.ts composes it (nodeLayer),
 * with a recording EventPoster. `stateLayer` (kernel, stage store, recorded events) outlives a
 * plugin restart; `plugin(...)` is rebuilt on each restart.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { TestClock } from "effect/testing"
import type { Nqn, VolumeId } from "../../src/domain/Ids.ts"
import type { HostPath } from "../../src/domain/Paths.ts"
import type { Port, TargetAddress } from "../../src/domain/Target.ts"
import type { VolumeCapability, VolumeTarget } from "../../src/domain/Volume.ts"
import { EventPoster, type PostedEvent } from "../../src/kube/EventPoster.ts"
import { nodeLayer } from "../../src/node/NodeLayer.ts"
import type { StageRequest } from "../../src/node/Requests.ts"
import { type NodeSettings, Settings, testSettings } from "../../src/Settings.ts"
import { serviceLayers, stateLayers } from "../../src/testing/index.ts"

export class RecordedEvents extends Context.Service<RecordedEvents, Ref.Ref<ReadonlyArray<PostedEvent>>>()("test/RecordedEvents") {
  static readonly layer = Layer.effect(RecordedEvents, Ref.make<ReadonlyArray<PostedEvent>>([]))
}

/** Kernel model, stage store and event log: what survives a plugin restart. */
export const stateLayer = Layer.merge(stateLayers, RecordedEvents.layer)

/** The plugin's services over the in-memory kernel, with the given settings. */
export const plugin = (overrides: Partial<NodeSettings> = {}) => {
  const settings = testSettings(overrides)
  const events = Layer.unwrap(Effect.gen(function*() {
    return EventPoster.layerRecording(settings.nodeId, yield* RecordedEvents)
  }))
  return nodeLayer(serviceLayers, events).pipe(Layer.provideMerge(Settings.layer(settings)))
}

export const ADDRESS = "10.0.0.5"
export const PORT = 4420
export const nqnOf = (n: number) => `nqn.2000-02.com.mikrotik:pvc-${n}` as Nqn
export const volumeIdOf = (n: number) => `pvc-${n}` as VolumeId
export const stagingOf = (n: number) => `/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/${n}/globalmount` as HostPath
export const targetOf = (n: number, pod = 0) => `/var/lib/kubelet/pods/pod-${pod}/volumes/kubernetes.io~csi/pvc-${n}/mount` as HostPath

export const target = (n: number, extra: Partial<VolumeTarget> = {}): VolumeTarget => ({
  nqn: nqnOf(n),
  address: ADDRESS as TargetAddress,
  port: PORT as Port,
  ctrlLossTmo: -1,
  reconnectDelay: 2,
  keepAliveTmo: undefined,
  namespace: { nsid: undefined, nguid: undefined, uuid: undefined },
  ...extra
})

export const ext4: VolumeCapability = { accessType: { _tag: "Mount", fsType: "ext4", mountFlags: [] }, accessMode: "SINGLE_NODE_WRITER" }
export const xfs: VolumeCapability = { accessType: { _tag: "Mount", fsType: "xfs", mountFlags: [] }, accessMode: "SINGLE_NODE_WRITER" }
export const block: VolumeCapability = { accessType: { _tag: "Block" }, accessMode: "SINGLE_NODE_WRITER" }

export const stageRequest = (n: number, capability: VolumeCapability = ext4): StageRequest => ({
  volumeId: volumeIdOf(n),
  stagingPath: stagingOf(n),
  capability,
  target: target(n)
})

/** NodePublishVolume of volume `n` at pod `pod`'s target. */
export const publishRequest = (n: number, pod = 0, capability: VolumeCapability = ext4) => ({
  volumeId: volumeIdOf(n),
  stagingPath: stagingOf(n),
  targetPath: targetOf(n, pod),
  capability,
  readOnly: false
})

/** Runs `body` with the plugin (default settings) on a fresh kernel. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const runPlugin = <A, E>(body: Effect.Effect<A, E, any>) =>
  body.pipe(Effect.provide(plugin()), Effect.provide(stateLayer)) as Effect.Effect<A, E>

/** Events recorded so far, as `Reason: message`. */
export const events = Effect.gen(function*() {
  return (yield* Ref.get(yield* RecordedEvents)).map((e) => `${e.reason}: ${e.message}`)
})
export const clearEvents = Effect.gen(function*() {
  yield* Ref.set(yield* RecordedEvents, [])
})

/** Runs `self` while advancing the TestClock in 50 ms steps, so backoffs and bounded waits finish; returns its Exit. */
export const drive = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(self)
    for (let i = 0; i < 4000; i++) {
      yield* Effect.yieldNow
      const exit = fiber.pollUnsafe()
      if (exit !== undefined) return exit
      yield* TestClock.adjust("50 millis")
    }
    return yield* Effect.die(new Error("did not finish within 200 s of test time"))
  })
