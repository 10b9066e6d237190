/**
 * The node use cases' inputs and outputs, CSI-agnostic: the gRPC edge translates CSI messages
 * into these after validation, so every field here is already checked.
 *
 * May import: domain.
 */
import type { VolumeId } from "../domain/Ids.ts"
import type { HostPath } from "../domain/Paths.ts"
import type { VolumeCapability, VolumeTarget } from "../domain/Volume.ts"

export interface StageRequest {
  readonly volumeId: VolumeId
  readonly stagingPath: HostPath
  readonly capability: VolumeCapability
  readonly target: VolumeTarget
}

export interface UnstageRequest {
  readonly volumeId: VolumeId
  readonly stagingPath: HostPath
}

export interface PublishRequest {
  readonly volumeId: VolumeId
  readonly stagingPath: HostPath
  readonly targetPath: HostPath
  readonly capability: VolumeCapability
  readonly readOnly: boolean
}

export interface UnpublishRequest {
  readonly volumeId: VolumeId
  readonly targetPath: HostPath
}

export interface StatsRequest {
  readonly volumeId: VolumeId
  readonly volumePath: HostPath
}

export interface ExpandRequest {
  readonly volumeId: VolumeId
  readonly volumePath: HostPath
  readonly requiredBytes: number | undefined
}

export interface VolumeCondition {
  readonly abnormal: boolean
  readonly message: string
}

export type VolumeUsage =
  | {
    readonly _tag: "Filesystem"
    readonly totalBytes: number
    readonly usedBytes: number
    readonly availableBytes: number
    readonly totalInodes: number
    readonly usedInodes: number
    readonly freeInodes: number
  }
  | { readonly _tag: "Block"; readonly totalBytes: number }

export interface VolumeStats {
  /** Undefined when the file system cannot be read (a stale mount whose recovery failed). */
  readonly usage: VolumeUsage | undefined
  readonly condition: VolumeCondition
}
