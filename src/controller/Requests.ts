/**
 * The controller use cases' requests, replies and errors (controller/Volumes.ts), as the CSI
 * edge builds and reads them. Types only.
 *
 * May import: domain, rds (types), controller/ControllerSettings (types).
 */
import type {
  CapacityOutOfRange,
  FailedPrecondition,
  IncompatibleRequest,
  InvalidArgument,
  NodeNotFound,
  NoSpace,
  SafetyRefusal,
  VolumeBusy,
  VolumeNotFound
} from "../domain/Errors.ts"
import type { NodeIdentity } from "../domain/Ids.ts"
import type { Slot } from "../rds/Commands.ts"
import type { RdsError } from "../rds/RdsClient.ts"
import type { RosParseError } from "../rds/RouterOsParser.ts"
import type { ClassDefaults } from "./ControllerSettings.ts"

export type ControllerError =
  | InvalidArgument
  | VolumeNotFound
  | NodeNotFound
  | FailedPrecondition
  | IncompatibleRequest
  | VolumeBusy
  | SafetyRefusal
  | CapacityOutOfRange
  | NoSpace
  | RdsError
  | RosParseError

export interface CreateRequest {
  readonly name: Slot
  readonly requiredBytes: number | undefined
  readonly limitBytes: number | undefined
  /** The controller's defaults with the StorageClass's parameters applied. */
  readonly params: ClassDefaults
}

export interface VolumeInfo {
  readonly id: Slot
  readonly capacityBytes: number
  /** The node plugin's keys (SPEC §3): a provisioned volume looks like a static PV to the node. */
  readonly context: Readonly<Record<string, string>>
}

export interface PublishRequest {
  /** The volume handle as the CO sent it (static PVs may use any the node plugin accepts). */
  readonly id: string
  /** The handle as one of this controller's names; undefined when it cannot be one. */
  readonly slot: Slot | undefined
  /** volume_context.nqn of the PV, when the CO sent it. */
  readonly contextNqn: string | undefined
  readonly node: NodeIdentity
  /** A SINGLE_NODE_* access mode: fenced to the node's host NQN at the target. */
  readonly singleNode: boolean
}

export interface ExpandRequest {
  readonly id: Slot
  readonly requiredBytes: number
  readonly limitBytes: number | undefined
}

export interface VolumeState {
  readonly volume: VolumeInfo
  /** The host NQN the target admits; "" = any host. */
  readonly allowedHost: string
  readonly abnormal: boolean
  readonly message: string
}
