/**
 * NodeVolumes: the node's use cases — stage, unstage, publish, unpublish, stats, expand — on
 * the services of SPEC §2, CSI-agnostic (the gRPC edge translates). Each takes the volume's
 * lock, returns at once when the work is already done (CSI idempotency), else does it. It
 * never formats a device that is not proven empty, never touches a connection outside the
 * managed prefix, and posts events best-effort (they cannot fail or slow an operation).
 *
 * May import: domain, nvme, mount, kube (EventPoster contract only), node, Settings.
 */
import { Context, type Effect } from "effect"
import type { FailedPrecondition, IncompatibleRequest, InvalidArgument, SafetyRefusal, VolumeBusy, VolumeNotFound } from "../domain/Errors.ts"
import type { FormatRefused } from "../mount/Format.ts"
import type { MountError } from "../mount/Mounter.ts"
import type { DeviceNotFound } from "../nvme/DeviceResolver.ts"
import type { NvmeCliError } from "../nvme/NvmeCli.ts"
import type { ConnectFailed } from "../nvme/NvmeTransport.ts"
import type { SysfsError } from "../nvme/Sysfs.ts"
import type {
  ExpandRequest,
  PublishRequest,
  StageRequest,
  StatsRequest,
  UnpublishRequest,
  UnstageRequest,
  VolumeStats
} from "./Requests.ts"
import type { StageStoreError } from "./StageStore.ts"

/** Every way a node operation can fail; csi/GrpcStatus.ts maps each tag to one gRPC code. */
export type NodeError =
  | InvalidArgument
  | VolumeNotFound
  | FailedPrecondition
  | IncompatibleRequest
  | VolumeBusy
  | SafetyRefusal
  | ConnectFailed
  | DeviceNotFound
  | SysfsError
  | NvmeCliError
  | MountError
  | FormatRefused
  | StageStoreError

export interface Readiness {
  readonly ready: boolean
  /** What is missing when not ready (nvme-cli, sysfs fabrics, mount tools). */
  readonly problems: ReadonlyArray<string>
}

export class NodeVolumes extends Context.Service<NodeVolumes, {
  readonly stage: (req: StageRequest) => Effect.Effect<void, NodeError>
  readonly unstage: (req: UnstageRequest) => Effect.Effect<void, NodeError>
  readonly publish: (req: PublishRequest) => Effect.Effect<void, NodeError>
  readonly unpublish: (req: UnpublishRequest) => Effect.Effect<void, NodeError>
  readonly stats: (req: StatsRequest) => Effect.Effect<VolumeStats, NodeError>
  /** Grows the file system (or checks the block device) to the device's current size; returns it. */
  readonly expand: (req: ExpandRequest) => Effect.Effect<{ readonly capacityBytes: number }, NodeError>
  /** Whether nvme-cli, sysfs and the mount tools answer (Identity.Probe). */
  readonly readiness: Effect.Effect<Readiness>
  /** Waits until readiness has been answered once (the first Probe), whatever the answer. */
  readonly firstReadiness: Effect.Effect<void>
}>()("rds-csi/node/NodeVolumes") {}
