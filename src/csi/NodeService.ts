/**
 * The CSI Node service. Each handler validates the request (Validate.ts), calls the use case in
 * NodeVolumes, which takes the volume's lock and decides idempotency itself, and shapes the
 * reply. No decisions about volumes are made here.
 *
 * May import: node/NodeVolumes, node/Requests (types), Settings, csi/Validate, csi/Messages (types).
 */
import { Effect } from "effect"
import { formatNodeId, type Nqn } from "../domain/Ids.ts"
import { NodeVolumes } from "../node/NodeVolumes.ts"
import type { VolumeStats } from "../node/Requests.ts"
import { Settings } from "../Settings.ts"
import type {
  NodeExpandVolumeRequest,
  NodeExpandVolumeResponse,
  NodeGetCapabilitiesRequest,
  NodeGetCapabilitiesResponse,
  NodeGetInfoRequest,
  NodeGetInfoResponse,
  NodeGetVolumeStatsRequest,
  NodeGetVolumeStatsResponse,
  NodePublishVolumeRequest,
  NodePublishVolumeResponse,
  NodeStageVolumeRequest,
  NodeStageVolumeResponse,
  NodeUnpublishVolumeRequest,
  NodeUnpublishVolumeResponse,
  NodeUnstageVolumeRequest,
  NodeUnstageVolumeResponse,
  VolumeUsageMessage
} from "./Messages.ts"
import * as Validate from "./Validate.ts"

const roots = Settings.useSync((s) => s.allowedPathRoots)

// "The value of this field MUST NOT be negative."
const count = (n: number): number => Math.max(0, Math.trunc(n))

const usageOf = (stats: VolumeStats): ReadonlyArray<VolumeUsageMessage> => {
  const u = stats.usage
  // A file system that cannot be read (stale mount, recovery failed): no usage, the condition says why.
  if (u === undefined) return []
  if (u._tag === "Block") {
    // "If the volume is being used in `BlockVolume` mode then `used` and `available` MAY be omitted".
    return [{ unit: "BYTES", total: count(u.totalBytes), used: 0, available: 0 }]
  }
  return [
    { unit: "BYTES", total: count(u.totalBytes), used: count(u.usedBytes), available: count(u.availableBytes) },
    { unit: "INODES", total: count(u.totalInodes), used: count(u.usedInodes), available: count(u.freeInodes) }
  ]
}

export const NodeService = {
  /**
   * "If the volume corresponding to the `volume_id` is already staged to the
   * `staging_target_path`, and is identical to the specified `volume_capability` the Plugin MUST
   * reply `0 OK`." (NodeVolumes.stage decides; incompatible → ALREADY_EXISTS.)
   */
  NodeStageVolume: Effect.fn("Node.NodeStageVolume")(function*(req: NodeStageVolumeRequest) {
    const request = yield* Effect.fromResult(Validate.stage(req, yield* roots))
    yield* (yield* NodeVolumes).stage(request)
    return {} satisfies NodeStageVolumeResponse
  }),

  /**
   * "If the volume corresponding to the `volume_id` is not staged to the `staging_target_path`,
   * the Plugin MUST reply `0 OK`." A never-staged volume is therefore OK, not NOT_FOUND.
   */
  NodeUnstageVolume: Effect.fn("Node.NodeUnstageVolume")(function*(req: NodeUnstageVolumeRequest) {
    const request = yield* Effect.fromResult(Validate.unstage(req, yield* roots))
    yield* (yield* NodeVolumes).unstage(request)
    return {} satisfies NodeUnstageVolumeResponse
  }),

  /**
   * "If the volume corresponding to the `volume_id` has already been published at the specified
   * `target_path`, and is compatible with the specified `volume_capability` and `readonly` flag,
   * the Plugin MUST reply `0 OK`." Publish before stage is FAILED_PRECONDITION.
   */
  NodePublishVolume: Effect.fn("Node.NodePublishVolume")(function*(req: NodePublishVolumeRequest) {
    const request = yield* Effect.fromResult(Validate.publish(req, yield* roots))
    yield* (yield* NodeVolumes).publish(request)
    return {} satisfies NodePublishVolumeResponse
  }),

  /**
   * "This operation MUST be idempotent." A target path that is not (or no longer) published is
   * OK: the CO calls again when it does not know whether the first call worked.
   */
  NodeUnpublishVolume: Effect.fn("Node.NodeUnpublishVolume")(function*(req: NodeUnpublishVolumeRequest) {
    const request = yield* Effect.fromResult(Validate.unpublish(req, yield* roots))
    yield* (yield* NodeVolumes).unpublish(request)
    return {} satisfies NodeUnpublishVolumeResponse
  }),

  /**
   * Usage plus the volume condition ("This field MUST be specified if the VOLUME_CONDITION node
   * capability is supported"). An unknown volume is NOT_FOUND.
   */
  NodeGetVolumeStats: Effect.fn("Node.NodeGetVolumeStats")(function*(req: NodeGetVolumeStatsRequest) {
    const request = yield* Effect.fromResult(Validate.stats(req, yield* roots))
    const stats = yield* (yield* NodeVolumes).stats(request)
    return {
      usage: usageOf(stats),
      volume_condition: { abnormal: stats.condition.abnormal, message: stats.condition.message }
    } satisfies NodeGetVolumeStatsResponse
  }),

  /**
   * "If a volume corresponding to the specified volume ID is already larger than or equal to the
   * target capacity of the expansion request, the plugin SHOULD reply 0 OK."
   */
  NodeExpandVolume: Effect.fn("Node.NodeExpandVolume")(function*(req: NodeExpandVolumeRequest) {
    const request = yield* Effect.fromResult(Validate.expand(req, yield* roots))
    const result = yield* (yield* NodeVolumes).expand(request)
    return { capacity_bytes: count(result.capacityBytes) } satisfies NodeExpandVolumeResponse
  }),

  /** Stage/unstage, stats, volume condition and node-side expansion. */
  NodeGetCapabilities: Effect.fn("Node.NodeGetCapabilities")(function*(_req: NodeGetCapabilitiesRequest) {
    return {
      capabilities: [
        { rpc: { type: "STAGE_UNSTAGE_VOLUME" } },
        { rpc: { type: "GET_VOLUME_STATS" } },
        { rpc: { type: "VOLUME_CONDITION" } },
        { rpc: { type: "EXPAND_VOLUME" } }
      ]
    } satisfies NodeGetCapabilitiesResponse
  }),

  /**
   * The node ID is the node name and the host NQN it connects with (`name,hostnqn`, see
   * domain/Ids.ts): the controller fences a volume to that host at the target. The configured
   * volume limit (0 = the CO decides), no topology.
   */
  NodeGetInfo: Effect.fn("Node.NodeGetInfo")(function*(_req: NodeGetInfoRequest) {
    const settings = yield* Settings
    return {
      node_id: formatNodeId({ name: settings.nodeId, hostNqn: settings.reportedHostNqn as Nqn | undefined }),
      max_volumes_per_node: count(settings.maxVolumesPerNode),
      accessible_topology: null
    } satisfies NodeGetInfoResponse
  })
}
