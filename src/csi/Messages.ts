/**
 * The CSI messages we serve, as TypeScript sees them after @grpc/proto-loader decodes them with
 * Proto.ts's options (snake_case names, enums as their names, int64 as decimal strings, unset
 * fields defaulted, oneofs named). Requests are typed loosely (every field optional, nullable)
 * because a CO may leave anything out; responses are what handlers build and protobufjs encodes
 * (int64 may be given as a number).
 *
 * May import: nothing. Only src/csi and its tests use these types.
 */

type StringMap = Readonly<Record<string, string>>

// ---- shared ----

export interface VolumeCapabilityMessage {
  readonly block?: Readonly<Record<string, never>> | null | undefined
  readonly mount?: {
    readonly fs_type?: string | undefined
    readonly mount_flags?: ReadonlyArray<string> | undefined
    readonly volume_mount_group?: string | undefined
  } | null | undefined
  readonly access_mode?: { readonly mode?: string | undefined } | null | undefined
  /** The oneof's virtual field: which of `block`/`mount` is set. */
  readonly access_type?: "block" | "mount" | undefined
}

export interface CapacityRangeMessage {
  readonly required_bytes?: string | number | undefined
  readonly limit_bytes?: string | number | undefined
}

// ---- Identity ----

export type GetPluginInfoRequest = Readonly<Record<string, never>>
export interface GetPluginInfoResponse {
  readonly name: string
  readonly vendor_version: string
  readonly manifest: StringMap
}

export type GetPluginCapabilitiesRequest = Readonly<Record<string, never>>
export interface PluginCapabilityMessage {
  readonly service?: { readonly type: "CONTROLLER_SERVICE" | "VOLUME_ACCESSIBILITY_CONSTRAINTS" | "GROUP_CONTROLLER_SERVICE" }
  readonly volume_expansion?: { readonly type: "ONLINE" | "OFFLINE" }
}
export interface GetPluginCapabilitiesResponse {
  readonly capabilities: ReadonlyArray<PluginCapabilityMessage>
}

export type ProbeRequest = Readonly<Record<string, never>>
export interface ProbeResponse {
  /** google.protobuf.BoolValue */
  readonly ready: { readonly value: boolean } | null
}

// ---- Node ----

export interface NodeStageVolumeRequest {
  readonly volume_id?: string | undefined
  readonly publish_context?: StringMap | undefined
  readonly staging_target_path?: string | undefined
  readonly volume_capability?: VolumeCapabilityMessage | null | undefined
  readonly secrets?: StringMap | undefined
  readonly volume_context?: StringMap | undefined
}
export type NodeStageVolumeResponse = Readonly<Record<string, never>>

export interface NodeUnstageVolumeRequest {
  readonly volume_id?: string | undefined
  readonly staging_target_path?: string | undefined
}
export type NodeUnstageVolumeResponse = Readonly<Record<string, never>>

export interface NodePublishVolumeRequest {
  readonly volume_id?: string | undefined
  readonly publish_context?: StringMap | undefined
  readonly staging_target_path?: string | undefined
  readonly target_path?: string | undefined
  readonly volume_capability?: VolumeCapabilityMessage | null | undefined
  readonly readonly?: boolean | undefined
  readonly secrets?: StringMap | undefined
  readonly volume_context?: StringMap | undefined
}
export type NodePublishVolumeResponse = Readonly<Record<string, never>>

export interface NodeUnpublishVolumeRequest {
  readonly volume_id?: string | undefined
  readonly target_path?: string | undefined
}
export type NodeUnpublishVolumeResponse = Readonly<Record<string, never>>

export interface NodeGetVolumeStatsRequest {
  readonly volume_id?: string | undefined
  readonly volume_path?: string | undefined
  readonly staging_target_path?: string | undefined
}
export interface VolumeUsageMessage {
  readonly available: number | string
  readonly total: number | string
  readonly used: number | string
  readonly unit: "UNKNOWN" | "BYTES" | "INODES"
}
export interface VolumeConditionMessage {
  readonly abnormal: boolean
  readonly message: string
}
export interface NodeGetVolumeStatsResponse {
  readonly usage: ReadonlyArray<VolumeUsageMessage>
  readonly volume_condition: VolumeConditionMessage | null
}

export interface NodeExpandVolumeRequest {
  readonly volume_id?: string | undefined
  readonly volume_path?: string | undefined
  readonly capacity_range?: CapacityRangeMessage | null | undefined
  readonly staging_target_path?: string | undefined
  readonly volume_capability?: VolumeCapabilityMessage | null | undefined
  readonly secrets?: StringMap | undefined
}
export interface NodeExpandVolumeResponse {
  readonly capacity_bytes: number | string
}

export type NodeGetCapabilitiesRequest = Readonly<Record<string, never>>
export type NodeRpcType =
  | "STAGE_UNSTAGE_VOLUME"
  | "GET_VOLUME_STATS"
  | "EXPAND_VOLUME"
  | "VOLUME_CONDITION"
  | "SINGLE_NODE_MULTI_WRITER"
  | "VOLUME_MOUNT_GROUP"
export interface NodeGetCapabilitiesResponse {
  readonly capabilities: ReadonlyArray<{ readonly rpc: { readonly type: NodeRpcType } }>
}

export type NodeGetInfoRequest = Readonly<Record<string, never>>
export interface NodeGetInfoResponse {
  readonly node_id: string
  readonly max_volumes_per_node: number | string
  readonly accessible_topology: { readonly segments: StringMap } | null
}

// ---- Controller ----

export interface VolumeMessage {
  readonly capacity_bytes: number | string
  readonly volume_id: string
  readonly volume_context: StringMap
}

export interface CreateVolumeRequest {
  readonly name?: string | undefined
  readonly capacity_range?: CapacityRangeMessage | null | undefined
  readonly volume_capabilities?: ReadonlyArray<VolumeCapabilityMessage> | undefined
  readonly parameters?: StringMap | undefined
  readonly secrets?: StringMap | undefined
  readonly volume_content_source?: Readonly<Record<string, unknown>> | null | undefined
  readonly accessibility_requirements?: Readonly<Record<string, unknown>> | null | undefined
  readonly mutable_parameters?: StringMap | undefined
}
export interface CreateVolumeResponse {
  readonly volume: VolumeMessage
}

export interface DeleteVolumeRequest {
  readonly volume_id?: string | undefined
  readonly secrets?: StringMap | undefined
}
export type DeleteVolumeResponse = Readonly<Record<string, never>>

export interface ControllerPublishVolumeRequest {
  readonly volume_id?: string | undefined
  readonly node_id?: string | undefined
  readonly volume_capability?: VolumeCapabilityMessage | null | undefined
  readonly readonly?: boolean | undefined
  readonly secrets?: StringMap | undefined
  readonly volume_context?: StringMap | undefined
}
export interface ControllerPublishVolumeResponse {
  readonly publish_context: StringMap
}

export interface ControllerUnpublishVolumeRequest {
  readonly volume_id?: string | undefined
  readonly node_id?: string | undefined
  readonly secrets?: StringMap | undefined
}
export type ControllerUnpublishVolumeResponse = Readonly<Record<string, never>>

export interface ValidateVolumeCapabilitiesRequest {
  readonly volume_id?: string | undefined
  readonly volume_context?: StringMap | undefined
  readonly volume_capabilities?: ReadonlyArray<VolumeCapabilityMessage> | undefined
  readonly parameters?: StringMap | undefined
  readonly secrets?: StringMap | undefined
  readonly mutable_parameters?: StringMap | undefined
}
export interface ValidateVolumeCapabilitiesResponse {
  readonly confirmed: {
    readonly volume_context: StringMap
    readonly volume_capabilities: ReadonlyArray<VolumeCapabilityMessage>
    readonly parameters: StringMap
  } | null
  readonly message: string
}

export interface ListVolumesRequest {
  readonly max_entries?: number | undefined
  readonly starting_token?: string | undefined
}
export interface VolumeStatusMessage {
  readonly published_node_ids: ReadonlyArray<string>
  readonly volume_condition: VolumeConditionMessage | null
}
export interface ListVolumesResponse {
  readonly entries: ReadonlyArray<{ readonly volume: VolumeMessage; readonly status: VolumeStatusMessage }>
  readonly next_token: string
}

export interface ControllerGetVolumeRequest {
  readonly volume_id?: string | undefined
}
export interface ControllerGetVolumeResponse {
  readonly volume: VolumeMessage
  readonly status: VolumeStatusMessage
}

export interface GetCapacityRequest {
  readonly volume_capabilities?: ReadonlyArray<VolumeCapabilityMessage> | undefined
  readonly parameters?: StringMap | undefined
  readonly accessible_topology?: Readonly<Record<string, unknown>> | null | undefined
}
export interface GetCapacityResponse {
  readonly available_capacity: number | string
  /** google.protobuf.Int64Value */
  readonly maximum_volume_size: { readonly value: number | string } | null
  readonly minimum_volume_size: { readonly value: number | string } | null
}

export type ControllerGetCapabilitiesRequest = Readonly<Record<string, never>>
export type ControllerRpcType =
  | "CREATE_DELETE_VOLUME"
  | "PUBLISH_UNPUBLISH_VOLUME"
  | "LIST_VOLUMES"
  | "GET_CAPACITY"
  | "EXPAND_VOLUME"
  | "GET_VOLUME"
  | "VOLUME_CONDITION"
export interface ControllerGetCapabilitiesResponse {
  readonly capabilities: ReadonlyArray<{ readonly rpc: { readonly type: ControllerRpcType } }>
}

export interface ControllerExpandVolumeRequest {
  readonly volume_id?: string | undefined
  readonly capacity_range?: CapacityRangeMessage | null | undefined
  readonly secrets?: StringMap | undefined
  readonly volume_capability?: VolumeCapabilityMessage | null | undefined
}
export interface ControllerExpandVolumeResponse {
  readonly capacity_bytes: number | string
  readonly node_expansion_required: boolean
}
