/**
 * A CSI client for tests: a real @grpc/grpc-js client (Identity, Node, Controller) on a plugin's unix socket, loading the
 * same proto with the same decoding options as the server (so int64 fields arrive as decimal
 * strings, enums as names). Every RPC is a promise; `csiClient` ties one to a Scope, and
 * `statusOf` turns a call into `{ code, details }` for error assertions. The e2e tests reuse it.
 *
 * May import: @grpc/grpc-js, effect, src/csi/Proto, src/csi/Messages (types).
 */
import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import type * as M from "../../src/csi/Messages.ts"
import { loadCsi } from "../../src/csi/Proto.ts"

type Call<Req, Res> = (request?: Req, options?: { readonly deadlineMs?: number }) => Promise<Res>

export interface CsiClient {
  readonly GetPluginInfo: Call<M.GetPluginInfoRequest, M.GetPluginInfoResponse>
  readonly GetPluginCapabilities: Call<M.GetPluginCapabilitiesRequest, M.GetPluginCapabilitiesResponse>
  readonly Probe: Call<M.ProbeRequest, M.ProbeResponse>
  readonly NodeStageVolume: Call<M.NodeStageVolumeRequest, M.NodeStageVolumeResponse>
  readonly NodeUnstageVolume: Call<M.NodeUnstageVolumeRequest, M.NodeUnstageVolumeResponse>
  readonly NodePublishVolume: Call<M.NodePublishVolumeRequest, M.NodePublishVolumeResponse>
  readonly NodeUnpublishVolume: Call<M.NodeUnpublishVolumeRequest, M.NodeUnpublishVolumeResponse>
  readonly NodeGetVolumeStats: Call<M.NodeGetVolumeStatsRequest, M.NodeGetVolumeStatsResponse>
  readonly NodeExpandVolume: Call<M.NodeExpandVolumeRequest, M.NodeExpandVolumeResponse>
  readonly NodeGetCapabilities: Call<M.NodeGetCapabilitiesRequest, M.NodeGetCapabilitiesResponse>
  readonly NodeGetInfo: Call<M.NodeGetInfoRequest, M.NodeGetInfoResponse>
  readonly CreateVolume: Call<M.CreateVolumeRequest, M.CreateVolumeResponse>
  readonly DeleteVolume: Call<M.DeleteVolumeRequest, M.DeleteVolumeResponse>
  readonly ControllerPublishVolume: Call<M.ControllerPublishVolumeRequest, M.ControllerPublishVolumeResponse>
  readonly ControllerUnpublishVolume: Call<M.ControllerUnpublishVolumeRequest, M.ControllerUnpublishVolumeResponse>
  readonly ValidateVolumeCapabilities: Call<M.ValidateVolumeCapabilitiesRequest, M.ValidateVolumeCapabilitiesResponse>
  readonly ListVolumes: Call<M.ListVolumesRequest, M.ListVolumesResponse>
  readonly GetCapacity: Call<M.GetCapacityRequest, M.GetCapacityResponse>
  readonly ControllerGetCapabilities: Call<M.ControllerGetCapabilitiesRequest, M.ControllerGetCapabilitiesResponse>
  readonly ControllerExpandVolume: Call<M.ControllerExpandVolumeRequest, M.ControllerExpandVolumeResponse>
  readonly ControllerGetVolume: Call<M.ControllerGetVolumeRequest, M.ControllerGetVolumeResponse>
  readonly close: () => void
}

type Unary = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void

const promisify = <Req, Res>(client: grpc.Client, method: string): Call<Req, Res> => (request, options) =>
  new Promise<Res>((resolve, reject) => {
    const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client)
    const deadline = new Date(Date.now() + (options?.deadlineMs ?? 10_000))
    fn(request ?? {}, new grpc.Metadata(), { deadline }, (error, response) => error ? reject(error) : resolve(response as Res))
  })

/** A client on `socketPath` (an absolute path, or a `unix://` endpoint). */
export const makeCsiClient = (socketPath: string): CsiClient => {
  const csi = loadCsi()
  const target = socketPath.startsWith("unix:") ? socketPath : `unix://${socketPath}`
  const identity = new csi.Identity(target, grpc.credentials.createInsecure())
  const node = new csi.Node(target, grpc.credentials.createInsecure())
  const controller = new csi.Controller(target, grpc.credentials.createInsecure())
  return {
    GetPluginInfo: promisify(identity, "GetPluginInfo"),
    GetPluginCapabilities: promisify(identity, "GetPluginCapabilities"),
    Probe: promisify(identity, "Probe"),
    NodeStageVolume: promisify(node, "NodeStageVolume"),
    NodeUnstageVolume: promisify(node, "NodeUnstageVolume"),
    NodePublishVolume: promisify(node, "NodePublishVolume"),
    NodeUnpublishVolume: promisify(node, "NodeUnpublishVolume"),
    NodeGetVolumeStats: promisify(node, "NodeGetVolumeStats"),
    NodeExpandVolume: promisify(node, "NodeExpandVolume"),
    NodeGetCapabilities: promisify(node, "NodeGetCapabilities"),
    NodeGetInfo: promisify(node, "NodeGetInfo"),
    CreateVolume: promisify(controller, "CreateVolume"),
    DeleteVolume: promisify(controller, "DeleteVolume"),
    ControllerPublishVolume: promisify(controller, "ControllerPublishVolume"),
    ControllerUnpublishVolume: promisify(controller, "ControllerUnpublishVolume"),
    ValidateVolumeCapabilities: promisify(controller, "ValidateVolumeCapabilities"),
    ListVolumes: promisify(controller, "ListVolumes"),
    GetCapacity: promisify(controller, "GetCapacity"),
    ControllerGetCapabilities: promisify(controller, "ControllerGetCapabilities"),
    ControllerExpandVolume: promisify(controller, "ControllerExpandVolume"),
    ControllerGetVolume: promisify(controller, "ControllerGetVolume"),
    close: () => {
      identity.close()
      node.close()
      controller.close()
    }
  }
}

/** A client closed when the scope closes. */
export const csiClient = (socketPath: string) =>
  Effect.acquireRelease(Effect.sync(() => makeCsiClient(socketPath)), (client) => Effect.sync(() => client.close()))

export interface CallStatus {
  /** 0 (OK) or the gRPC status code. */
  readonly code: grpc.status
  readonly details: string
}

/** How a call ended: `{ code: 0 }` on success, else the status code and message. */
export const statusOf = (call: Promise<unknown>): Effect.Effect<CallStatus> =>
  Effect.promise(() =>
    call.then(
      () => ({ code: grpc.status.OK, details: "" }),
      (error: grpc.ServiceError) => ({ code: error.code, details: error.details })
    )
  )

/** A call's response; a gRPC error fails the effect with the ServiceError. */
export const rpc = <A>(call: () => Promise<A>): Effect.Effect<A, grpc.ServiceError> =>
  Effect.tryPromise({ try: call, catch: (e) => e as grpc.ServiceError })

export { status } from "@grpc/grpc-js"
