/**
 * rds-csi/kube: the Kubernetes side of rds-csi for reuse by other Effect programs.
 *
 * - KubeClient (contract, KubeError, plain object types) with the client-node layers in
 *   KubeClientLive and an in-memory fake (KubeFake) for tests.
 * - PvcLookup: volume ID → PVC, node name → Node, pod uid → Pod on a node; watch-fed and cached.
 * - EventRecorder: client-go tools/record semantics on Effect's Clock, never blocking the caller.
 * - EventPoster: the rds-csi event reasons; EventPosterLive wires them to the above.
 * - PodRestarter: deletes a controller-owned pod on this node (uid precondition) so it is
 *   re-created with a recovered volume's new mount (--restart-pods-on-recovery).
 *
 * See README.md in this folder.
 */
export { EventCorrelator, COMBINED_PREFIX, MAX_MESSAGE_BYTES, truncateMessage, type Slot } from "./EventCorrelator.ts"
export { EventPoster, fromSink, podNeedsRestartText, render, REASONS, type PostedEvent, type Reason, volumeMessage } from "./EventPoster.ts"
export { EventPosterLive, KubeSideLive, layerWith as eventPosterLayerWith, REQUIRED_ACCESS } from "./EventPosterLive.ts"
export * as EventRecorderLive from "./EventRecorder.ts"
export {
  DEFAULT_RECORDER_OPTIONS,
  type DropReason,
  EventApiRequests,
  EventRecorder,
  EventsDropped,
  EventsPosted,
  type RecorderOptions,
  type RecorderStats,
  type RecordInput
} from "./EventRecorder.ts"
export { type LaneDropReason, Target } from "./EventLanes.ts"
export {
  type AccessCheck,
  DEFAULT_REQUEST_TIMEOUT,
  isRetryable,
  KubeClient,
  KubeError,
  kubeError,
  type KubeErrorReason,
  type KubeEvent,
  type KubeEventPatch,
  type KubeNode,
  type ObjectRef,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type PodOnNode,
  type PvWatchEvent
} from "./KubeClient.ts"
export * as KubeClientLive from "./KubeClientLive.ts"
export { Fault, type FakeFault, type FakeOp, type FakePod, type FakeRequest, KubeFake } from "./KubeFake.ts"
export { Lru } from "./Lru.ts"
export { make as makePodRestarter, PodRestarter, type RestartOutcome } from "./PodRestarter.ts"
export { DEFAULT_LOOKUP_OPTIONS, type Lookup, nodeRef, podRef, PvcLookup, type PvcLookupOptions, pvcRef } from "./PvcLookup.ts"
export * as PvcLookupLive from "./PvcLookup.ts"
export { TokenBucket } from "./TokenBucket.ts"
