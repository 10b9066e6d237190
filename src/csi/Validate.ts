/**
 * CSI request messages → the node use cases' requests (node/Requests.ts), through the domain
 * validators. Every failure names the CSI field as the spec writes it (`volume_id`,
 * `staging_target_path`, `volume_capability.access_mode`, `volume_context.nqn`, ...). Pure.
 *
 * May import: domain, node/Requests (types), csi/Messages (types).
 */
import { Result } from "effect"
import { CapacityOutOfRange, FailedPrecondition, InvalidArgument, VolumeNotFound } from "../domain/Errors.ts"
import { type VolumeId, volumeId } from "../domain/Ids.ts"
import { type HostPath, hostPath } from "../domain/Paths.ts"
import {
  ACCESS_MODES,
  type AccessMode,
  type AccessType,
  checkCapability,
  fsType,
  mountFlags,
  type VolumeCapability,
  volumeTarget
} from "../domain/Volume.ts"
import type {
  ExpandRequest,
  PublishRequest,
  StageRequest,
  StatsRequest,
  UnpublishRequest,
  UnstageRequest
} from "../node/Requests.ts"
import type {
  CapacityRangeMessage,
  NodeExpandVolumeRequest,
  NodeGetVolumeStatsRequest,
  NodePublishVolumeRequest,
  NodeStageVolumeRequest,
  NodeUnpublishVolumeRequest,
  NodeUnstageVolumeRequest,
  VolumeCapabilityMessage
} from "./Messages.ts"

/** NodeExpandVolume's capacity_range cannot be honoured (CSI: OUT_OF_RANGE); defined in domain, shared with the controller. */
export { CapacityOutOfRange }

type Roots = ReadonlyArray<string>

const invalid = (field: string, rule: string) => Result.fail(new InvalidArgument({ field, rule }))

const path = (value: string | undefined, field: string, roots: Roots) => hostPath(value ?? "", field, roots)

/** An optional path: empty means not given; anything else must pass the same rules. */
const optionalPath = (value: string | undefined, field: string, roots: Roots): Result.Result<HostPath | undefined, InvalidArgument> =>
  value === undefined || value === "" ? Result.succeed(undefined) : hostPath(value, field, roots)

const accessMode = (msg: VolumeCapabilityMessage, field: string): Result.Result<AccessMode, InvalidArgument> => {
  if (msg.access_mode === null || msg.access_mode === undefined) return invalid(`${field}.access_mode`, "is required")
  const mode = msg.access_mode.mode
  if (mode === undefined || mode === "" || mode === "UNKNOWN") return invalid(`${field}.access_mode.mode`, "is required")
  if (!(ACCESS_MODES as ReadonlyArray<string>).includes(String(mode))) {
    return invalid(`${field}.access_mode.mode`, `'${String(mode)}' is not a known access mode`)
  }
  return Result.succeed(mode as AccessMode)
}

const accessType = (msg: VolumeCapabilityMessage, field: string): Result.Result<AccessType, InvalidArgument> =>
  Result.gen(function*() {
    const which = msg.access_type ?? (msg.mount ? "mount" : msg.block ? "block" : undefined)
    if (which === "block") return { _tag: "Block" } as const
    if (which !== "mount" || !msg.mount) {
      return yield* invalid(`${field}.access_type`, "exactly one of 'mount' or 'block' is required")
    }
    const mount = msg.mount
    // We do not advertise VOLUME_MOUNT_GROUP, so a group we would silently ignore is refused.
    if (mount.volume_mount_group !== undefined && mount.volume_mount_group !== "") {
      return yield* invalid(`${field}.mount.volume_mount_group`, "is not supported by this plugin")
    }
    const fs = yield* fsType(mount.fs_type ?? "", `${field}.mount.fs_type`)
    const flags = yield* mountFlags(mount.mount_flags ?? [], `${field}.mount.mount_flags`)
    return { _tag: "Mount", fsType: fs, mountFlags: flags } as const
  })

/** A volume capability: exactly one access type, a known access mode, and a combination the domain allows. */
export const capability = (
  msg: VolumeCapabilityMessage | null | undefined,
  field = "volume_capability"
): Result.Result<VolumeCapability, InvalidArgument> =>
  Result.gen(function*() {
    if (msg === null || msg === undefined) return yield* invalid(field, "is required")
    const type = yield* accessType(msg, field)
    const mode = yield* accessMode(msg, field)
    return yield* checkCapability({ accessType: type, accessMode: mode }, field)
  })

const id = (value: string | undefined): Result.Result<VolumeId, InvalidArgument> => volumeId(value ?? "", "volume_id")

/** NodeStageVolume: volume_id, staging_target_path, volume_capability and the volume context are required. */
export const stage = (req: NodeStageVolumeRequest, roots: Roots): Result.Result<StageRequest, InvalidArgument> =>
  Result.gen(function*() {
    const volumeId = yield* id(req.volume_id)
    const stagingPath = yield* path(req.staging_target_path, "staging_target_path", roots)
    const cap = yield* capability(req.volume_capability)
    const target = yield* volumeTarget(req.volume_context ?? {})
    return { volumeId, stagingPath, capability: cap, target }
  })

/** NodeUnstageVolume: volume_id and staging_target_path. */
export const unstage = (req: NodeUnstageVolumeRequest, roots: Roots): Result.Result<UnstageRequest, InvalidArgument> =>
  Result.gen(function*() {
    const volumeId = yield* id(req.volume_id)
    const stagingPath = yield* path(req.staging_target_path, "staging_target_path", roots)
    return { volumeId, stagingPath }
  })

/**
 * NodePublishVolume. A missing staging_target_path is FAILED_PRECONDITION, not INVALID_ARGUMENT:
 * the spec's error table says "Staging target path not set | 9 FAILED_PRECONDITION | Indicates
 * that STAGE_UNSTAGE_VOLUME capability is set but no staging_target_path was set."
 */
export const publish = (
  req: NodePublishVolumeRequest,
  roots: Roots
): Result.Result<PublishRequest, InvalidArgument | FailedPrecondition> =>
  Result.gen(function*() {
    const volumeId = yield* id(req.volume_id)
    // The request's own fields first (INVALID_ARGUMENT): only a request that is whole but has no
    // staging path is the "NodeStageVolume must succeed first" case.
    const targetPath = yield* path(req.target_path, "target_path", roots)
    const cap = yield* capability(req.volume_capability)
    if (req.staging_target_path === undefined || req.staging_target_path === "") {
      return yield* Result.fail(new FailedPrecondition({
        volumeId,
        detail: "staging_target_path is required (this plugin has STAGE_UNSTAGE_VOLUME; NodeStageVolume must succeed first)"
      }))
    }
    const stagingPath = yield* path(req.staging_target_path, "staging_target_path", roots)
    return { volumeId, stagingPath, targetPath, capability: cap, readOnly: req.readonly === true }
  })

/** NodeUnpublishVolume: volume_id and target_path. */
export const unpublish = (req: NodeUnpublishVolumeRequest, roots: Roots): Result.Result<UnpublishRequest, InvalidArgument> =>
  Result.gen(function*() {
    const volumeId = yield* id(req.volume_id)
    const targetPath = yield* path(req.target_path, "target_path", roots)
    return { volumeId, targetPath }
  })

/**
 * The volume_path of stats and expand: required, but a path that cannot be one of this plugin's
 * (relative, outside the allowed roots) is where no volume of ours is — "Volume does not exist |
 * 5 NOT_FOUND | … does not exist on specified volume_path" — not a malformed request. Nothing
 * is ever done at such a path.
 */
const volumePathOf = (volumeId: VolumeId, value: string | undefined, roots: Roots): Result.Result<HostPath, InvalidArgument | VolumeNotFound> => {
  if (value === undefined || value === "") return invalid("volume_path", "is required")
  const checked = hostPath(value, "volume_path", roots)
  return Result.isSuccess(checked)
    ? checked
    : Result.fail(new VolumeNotFound({ volumeId, detail: `no volume of this plugin is at volume_path ${value.slice(0, 200)} (${checked.failure.rule})` }))
}

/** NodeGetVolumeStats: volume_id and volume_path; staging_target_path is optional but checked when given. */
export const stats = (req: NodeGetVolumeStatsRequest, roots: Roots): Result.Result<StatsRequest, InvalidArgument | VolumeNotFound> =>
  Result.gen(function*() {
    const volumeId = yield* id(req.volume_id)
    const volumePath = yield* volumePathOf(volumeId, req.volume_path, roots)
    yield* optionalPath(req.staging_target_path, "staging_target_path", roots)
    return { volumeId, volumePath }
  })

const MAX_BYTES = BigInt(Number.MAX_SAFE_INTEGER)

/** An int64 byte count: "A value of 0 is equal to an unspecified field value. The value of this field MUST NOT be negative." */
export const bytes = (
  raw: string | number | undefined,
  field: string
): Result.Result<number | undefined, InvalidArgument | CapacityOutOfRange> => {
  const text = String(raw ?? "0")
  if (!/^-?\d{1,20}$/.test(text)) return invalid(field, "must be an integer")
  const n = BigInt(text)
  if (n < 0n) return invalid(field, "must not be negative")
  if (n === 0n) return Result.succeed(undefined)
  if (n > MAX_BYTES) return Result.fail(new CapacityOutOfRange({ field, rule: `must be at most ${MAX_BYTES} bytes` }))
  return Result.succeed(Number(n))
}

const capacityRange = (
  range: CapacityRangeMessage | null | undefined
): Result.Result<number | undefined, InvalidArgument | CapacityOutOfRange> =>
  Result.gen(function*() {
    if (range === null || range === undefined) return undefined
    const required = yield* bytes(range.required_bytes, "capacity_range.required_bytes")
    const limit = yield* bytes(range.limit_bytes, "capacity_range.limit_bytes")
    if (required !== undefined && limit !== undefined && limit < required) {
      return yield* Result.fail(new CapacityOutOfRange({ field: "capacity_range.limit_bytes", rule: "must not be smaller than required_bytes" }))
    }
    return required
  })

/** NodeExpandVolume: volume_id and volume_path; capacity_range, staging_target_path and volume_capability are checked when given. */
export const expand = (
  req: NodeExpandVolumeRequest,
  roots: Roots
): Result.Result<ExpandRequest, InvalidArgument | CapacityOutOfRange | VolumeNotFound> =>
  Result.gen(function*() {
    const volumeId = yield* id(req.volume_id)
    const volumePath = yield* volumePathOf(volumeId, req.volume_path, roots)
    yield* optionalPath(req.staging_target_path, "staging_target_path", roots)
    if (req.volume_capability !== null && req.volume_capability !== undefined) yield* capability(req.volume_capability)
    const requiredBytes = yield* capacityRange(req.capacity_range)
    return { volumeId, volumePath, requiredBytes }
  })
