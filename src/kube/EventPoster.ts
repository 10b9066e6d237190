/**
 * EventPoster: the seven event reasons of the seed plan, and VolumeRecoveredRestartPod, one
 * method each (SPEC §4.6). Every method is best effort: it returns at once, never fails and never
 * waits on the API server. Volume events go to the volume's PVC, orphan events to this Node, and
 * "this pod still holds the old mount" to the Pod itself (found by uid among this node's pods).
 *
 * May import: domain. The live layer (PvcLookup + EventRecorder) is in EventPosterLive.ts.
 */
import { Context, Effect, Layer, Ref } from "effect"

export const REASONS = {
  MountFailure: "MountFailure",
  RecoveryFailed: "RecoveryFailed",
  StaleMountDetected: "StaleMountDetected",
  ConnectionFailure: "ConnectionFailure",
  ConnectionRecovery: "ConnectionRecovery",
  OrphanDetected: "OrphanDetected",
  OrphanCleaned: "OrphanCleaned",
  VolumeRecoveredRestartPod: "VolumeRecoveredRestartPod"
} as const
export type Reason = keyof typeof REASONS

export interface PostedEvent {
  readonly reason: Reason
  readonly type: "Normal" | "Warning"
  /** The volume for PVC and Pod events; undefined for Node events. */
  readonly volumeId: string | undefined
  /** Set for Pod events: the uid of the pod on this node the event is about (not the volume's PVC). */
  readonly podUid?: string
  /** The full message as it will appear in `kubectl describe`. */
  readonly message: string
}

/**
 * One line: `kubectl describe` prints messages in a table, and an error's text can carry a tool's
 * multi-line stderr (nvme-cli's "Failed to write to /dev/nvme-fabrics: …\ncould not add new
 * controller: …" broke the RecoveryFailed line on the real kernel).
 */
export const oneLine = (text: string): string => text.trim().replace(/\s*[\r\n]+\s*/g, "; ")

/** `[<volumeID>] on [<nodeName>]: <text>` (SPEC §4.6), on one line. */
export const volumeMessage = (volumeId: string, nodeName: string, text: string): string => `[${volumeId}] on [${nodeName}]: ${oneLine(text)}`

/** The event each method posts; shared by the live and recording layers so they cannot drift. */
export const render = {
  mountFailure: (volumeId: string, node: string, error: string): PostedEvent => ({
    reason: "MountFailure", type: "Warning", volumeId, message: volumeMessage(volumeId, node, error)
  }),
  recoveryFailed: (volumeId: string, node: string, attempts: number, error: string): PostedEvent => ({
    reason: "RecoveryFailed", type: "Warning", volumeId, message: volumeMessage(volumeId, node, `Recovery failed after ${attempts} attempts: ${error}`)
  }),
  staleMountDetected: (volumeId: string, node: string, oldDevice: string, newDevice: string): PostedEvent => ({
    reason: "StaleMountDetected", type: "Normal", volumeId,
    message: volumeMessage(volumeId, node, `Stale mount detected - old device: ${oldDevice}, new device: ${newDevice}`)
  }),
  connectionFailure: (volumeId: string, node: string, address: string, error: string): PostedEvent => ({
    reason: "ConnectionFailure", type: "Warning", volumeId, message: volumeMessage(volumeId, node, `Connection to ${address} failed: ${error}`)
  }),
  connectionRecovery: (volumeId: string, node: string, address: string, attempts: number): PostedEvent => ({
    reason: "ConnectionRecovery", type: "Normal", volumeId,
    message: volumeMessage(volumeId, node, `Connection to ${address} recovered after ${attempts} attempts`)
  }),
  orphanDetected: (node: string, nqn: string, address: string, why: string): PostedEvent => ({
    reason: "OrphanDetected", type: "Warning", volumeId: undefined,
    message: `[${node}]: orphan NVMe connection ${nqn} to ${address}: ${oneLine(why)}`
  }),
  orphanCleaned: (node: string, nqn: string, what: string): PostedEvent => ({
    reason: "OrphanCleaned", type: "Normal", volumeId: undefined, message: `[${node}]: orphan NVMe connection ${nqn}: ${oneLine(what)}`
  }),
  podNeedsRestart: (podUid: string, volumeId: string, node: string, text: string): PostedEvent => ({
    reason: "VolumeRecoveredRestartPod", type: "Warning", volumeId, podUid, message: volumeMessage(volumeId, node, text)
  })
}

/** The usual text of postPodNeedsRestart, for a volume recovered onto `newDevice`. */
export const podNeedsRestartText = (newDevice: string): string =>
  `the volume was recovered (new device ${newDevice}), but this pod still holds the old mount: ` +
  "restart the pod to use the recovered volume, or use mountPropagation: HostToContainer"

export class EventPoster extends Context.Service<EventPoster, {
  readonly postMountFailure: (volumeId: string, error: string) => Effect.Effect<void>
  readonly postRecoveryFailed: (volumeId: string, attempts: number, error: string) => Effect.Effect<void>
  readonly postStaleMountDetected: (volumeId: string, oldDevice: string, newDevice: string) => Effect.Effect<void>
  readonly postConnectionFailure: (volumeId: string, address: string, error: string) => Effect.Effect<void>
  readonly postConnectionRecovery: (volumeId: string, address: string, attempts: number) => Effect.Effect<void>
  readonly postOrphanDetected: (nqn: string, address: string, why: string) => Effect.Effect<void>
  readonly postOrphanCleaned: (nqn: string, what: string) => Effect.Effect<void>
  /**
   * A Warning on the Pod whose uid is `podUid` (one of this node's): `[volumeId] on [node]: message`.
   * A pod that is not on this node gets nothing posted and one log line.
   */
  readonly postPodNeedsRestart: (podUid: string, volumeId: string, message: string) => Effect.Effect<void>
}>()("rds-csi/kube/EventPoster") {
  /** Posts to nothing (`--events=false`); the events are still logged at debug level. */
  static readonly layerNoop = (nodeName: string): Layer.Layer<EventPoster> =>
    Layer.succeed(EventPoster, fromSink(nodeName, (e) => Effect.logDebug("event (events disabled)", e.reason, e.message)))

  /** Records every event in a Ref, for tests to assert on. */
  static readonly layerRecording = (nodeName: string, sink: Ref.Ref<ReadonlyArray<PostedEvent>>): Layer.Layer<EventPoster> =>
    Layer.succeed(EventPoster, fromSink(nodeName, (e) => Ref.update(sink, (all) => [...all, e])))
}

/** Builds the eight methods over one sink; the live layer's sink enqueues to the recorder. */
export const fromSink = (node: string, sink: (e: PostedEvent) => Effect.Effect<void>): EventPoster["Service"] => ({
  postMountFailure: (v, err) => sink(render.mountFailure(v, node, err)),
  postRecoveryFailed: (v, n, err) => sink(render.recoveryFailed(v, node, n, err)),
  postStaleMountDetected: (v, o, n) => sink(render.staleMountDetected(v, node, o, n)),
  postConnectionFailure: (v, a, err) => sink(render.connectionFailure(v, node, a, err)),
  postConnectionRecovery: (v, a, n) => sink(render.connectionRecovery(v, node, a, n)),
  postOrphanDetected: (nqn, a, why) => sink(render.orphanDetected(node, nqn, a, why)),
  postOrphanCleaned: (nqn, what) => sink(render.orphanCleaned(node, nqn, what)),
  postPodNeedsRestart: (pod, v, text) => sink(render.podNeedsRestart(pod, v, node, text))
})
