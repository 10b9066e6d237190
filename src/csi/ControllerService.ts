/**
 * The CSI Controller service (and the controller's Identity). Each handler validates the
 * request (ControllerValidate.ts), calls the use case in controller/Volumes, which takes the
 * volume's lock and decides idempotency, and shapes the reply. No decisions about volumes here.
 *
 * May import: controller/*, rds/Commands, csi/ControllerValidate, csi/Messages (types).
 */
import { Effect } from "effect"
import { ControllerConfig } from "../controller/ControllerSettings.ts"
import { type VolumeInfo, Volumes, type VolumeState } from "../controller/Volumes.ts"
import { printSystem } from "../rds/Commands.ts"
import { RdsClient } from "../rds/RdsClient.ts"
import * as V from "./ControllerValidate.ts"
import { pluginInfo, PLUGIN_CAPABILITIES } from "./IdentityService.ts"
import type {
  ControllerExpandVolumeRequest,
  ControllerExpandVolumeResponse,
  ControllerGetCapabilitiesRequest,
  ControllerGetCapabilitiesResponse,
  ControllerGetVolumeRequest,
  ControllerGetVolumeResponse,
  ControllerPublishVolumeRequest,
  ControllerPublishVolumeResponse,
  ControllerUnpublishVolumeRequest,
  ControllerUnpublishVolumeResponse,
  CreateVolumeRequest,
  CreateVolumeResponse,
  DeleteVolumeRequest,
  DeleteVolumeResponse,
  GetCapacityRequest,
  GetCapacityResponse,
  GetPluginCapabilitiesRequest,
  GetPluginInfoRequest,
  ListVolumesRequest,
  ListVolumesResponse,
  ProbeRequest,
  ProbeResponse,
  ValidateVolumeCapabilitiesRequest,
  ValidateVolumeCapabilitiesResponse,
  VolumeMessage,
  VolumeStatusMessage
} from "./Messages.ts"

const volumeMessage = (v: VolumeInfo): VolumeMessage => ({ volume_id: v.id, capacity_bytes: v.capacityBytes, volume_context: v.context })

const statusMessage = (s: VolumeState): VolumeStatusMessage => ({
  // LIST_VOLUMES_PUBLISHED_NODES is not advertised: the RDS records the admitted host NQN, not the node.
  published_node_ids: [],
  volume_condition: { abnormal: s.abnormal, message: s.message }
})

export const ControllerIdentityService = {
  GetPluginInfo: Effect.fn("Identity.GetPluginInfo")(function*(_req: GetPluginInfoRequest) {
    const settings = yield* ControllerConfig
    return pluginInfo(settings.driverName, settings.version)
  }),

  /** The same as the node's: one driver. */
  GetPluginCapabilities: Effect.fn("Identity.GetPluginCapabilities")(function*(_req: GetPluginCapabilitiesRequest) {
    return PLUGIN_CAPABILITIES
  }),

  /**
   * Ready when the RDS answers a harmless print over SSH. Not ready is a successful reply with
   * `ready: false`, so an unreachable RDS shows as NotReady, never as a failing call.
   */
  Probe: Effect.fn("Identity.Probe")(function*(_req: ProbeRequest) {
    const rds = yield* RdsClient
    const ready = yield* rds.run(printSystem()).pipe(
      Effect.as(true),
      Effect.catch((e) => Effect.logWarning(`not ready: ${e.message}`).pipe(Effect.as(false)))
    )
    return { ready: { value: ready } } satisfies ProbeResponse
  })
}

export const ControllerService = {
  CreateVolume: Effect.fn("Controller.CreateVolume")(function*(req: CreateVolumeRequest) {
    const settings = yield* ControllerConfig
    const request = yield* Effect.fromResult(V.create(req, settings.defaults))
    const volume = yield* (yield* Volumes).create(request)
    return { volume: volumeMessage(volume) } satisfies CreateVolumeResponse
  }),

  DeleteVolume: Effect.fn("Controller.DeleteVolume")(function*(req: DeleteVolumeRequest) {
    const id = yield* Effect.fromResult(V.volumeIdOf(req.volume_id))
    yield* (yield* Volumes).remove(id)
    return {} satisfies DeleteVolumeResponse
  }),

  ControllerPublishVolume: Effect.fn("Controller.ControllerPublishVolume")(function*(req: ControllerPublishVolumeRequest) {
    const request = yield* Effect.fromResult(V.publish(req))
    const publishContext = yield* (yield* Volumes).publish(request)
    return { publish_context: publishContext } satisfies ControllerPublishVolumeResponse
  }),

  ControllerUnpublishVolume: Effect.fn("Controller.ControllerUnpublishVolume")(function*(req: ControllerUnpublishVolumeRequest) {
    const request = yield* Effect.fromResult(V.unpublish(req))
    yield* (yield* Volumes).unpublish(request.id, request.node)
    return {} satisfies ControllerUnpublishVolumeResponse
  }),

  /**
   * "If a volume corresponding to the specified volume ID does not exist, the Plugin MUST reply
   * 5 NOT_FOUND." Every valid capability is confirmed: the access type is chosen at stage time.
   */
  ValidateVolumeCapabilities: Effect.fn("Controller.ValidateVolumeCapabilities")(function*(req: ValidateVolumeCapabilitiesRequest) {
    const request = yield* Effect.fromResult(V.validateCapabilities(req))
    yield* (yield* Volumes).get(request.id)
    return {
      confirmed: {
        volume_context: req.volume_context ?? {},
        volume_capabilities: req.volume_capabilities ?? [],
        parameters: req.parameters ?? {}
      },
      message: ""
    } satisfies ValidateVolumeCapabilitiesResponse
  }),

  /** Pages by name: a token is the last name returned, so deleting it between pages loses nothing. */
  ListVolumes: Effect.fn("Controller.ListVolumes")(function*(req: ListVolumesRequest) {
    const page = yield* Effect.fromResult(V.listVolumes(req))
    const all = yield* (yield* Volumes).list
    const rest = page.after === undefined ? all : all.filter((s) => s.volume.id > page.after!)
    const entries = page.max === undefined ? rest : rest.slice(0, page.max)
    const more = entries.length < rest.length
    return {
      entries: entries.map((s) => ({ volume: volumeMessage(s.volume), status: statusMessage(s) })),
      next_token: more ? V.pageToken(entries[entries.length - 1]!.volume.id) : ""
    } satisfies ListVolumesResponse
  }),

  ControllerGetVolume: Effect.fn("Controller.ControllerGetVolume")(function*(req: ControllerGetVolumeRequest) {
    const id = yield* Effect.fromResult(V.volumeIdOf(req.volume_id))
    const state = yield* (yield* Volumes).get(id)
    return { volume: volumeMessage(state.volume), status: statusMessage(state) } satisfies ControllerGetVolumeResponse
  }),

  /** The free bytes of the pool the class's volume path lies on. */
  GetCapacity: Effect.fn("Controller.GetCapacity")(function*(req: GetCapacityRequest) {
    const settings = yield* ControllerConfig
    const params = yield* Effect.fromResult(V.getCapacity(req, settings.defaults))
    const space = yield* (yield* Volumes).capacity(params.volumePath)
    return { available_capacity: space.freeBytes, maximum_volume_size: null, minimum_volume_size: null } satisfies GetCapacityResponse
  }),

  ControllerGetCapabilities: Effect.fn("Controller.ControllerGetCapabilities")(function*(_req: ControllerGetCapabilitiesRequest) {
    return {
      capabilities: (["CREATE_DELETE_VOLUME", "PUBLISH_UNPUBLISH_VOLUME", "LIST_VOLUMES", "GET_CAPACITY", "EXPAND_VOLUME", "GET_VOLUME", "VOLUME_CONDITION"] as const)
        .map((type) => ({ rpc: { type } }))
    } satisfies ControllerGetCapabilitiesResponse
  }),

  /**
   * Grows the disk on the RDS; a file system still has to grow on the node
   * (node_expansion_required), a raw block volume does not.
   */
  ControllerExpandVolume: Effect.fn("Controller.ControllerExpandVolume")(function*(req: ControllerExpandVolumeRequest) {
    const request = yield* Effect.fromResult(V.expand(req))
    const capacity = yield* (yield* Volumes).expand(request)
    return { capacity_bytes: capacity, node_expansion_required: !request.block } satisfies ControllerExpandVolumeResponse
  })
}
