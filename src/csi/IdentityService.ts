/**
 * The CSI Identity service: who this plugin is, what it offers, whether it is ready. Thin: each
 * handler reads Settings or asks NodeVolumes and shapes the reply.
 *
 * May import: node/NodeVolumes, Settings, csi/Messages (types).
 */
import { Effect } from "effect"
import { NodeVolumes } from "../node/NodeVolumes.ts"
import { Settings } from "../Settings.ts"
import type {
  GetPluginCapabilitiesRequest,
  GetPluginCapabilitiesResponse,
  GetPluginInfoRequest,
  GetPluginInfoResponse,
  ProbeRequest,
  ProbeResponse
} from "./Messages.ts"

export const IdentityService = {
  /** Name and version from Settings (the name kubelet registers the driver under). */
  GetPluginInfo: Effect.fn("Identity.GetPluginInfo")(function*(_req: GetPluginInfoRequest) {
    const settings = yield* Settings
    return { name: settings.driverName, vendor_version: settings.version, manifest: {} } satisfies GetPluginInfoResponse
  }),

  /**
   * The plugin's, as one driver: CONTROLLER_SERVICE ("the Controller service of the plugin is
   * available": `rds-csi controller` serves it on its own socket, and attachRequired is true) and
   * ONLINE volume expansion. No VOLUME_ACCESSIBILITY_CONSTRAINTS: NodeGetInfo reports no topology
   * ("A plugin that returns [accessible_topology] MUST also set the
   * VOLUME_ACCESSIBILITY_CONSTRAINTS plugin capability", and only then).
   */
  GetPluginCapabilities: Effect.fn("Identity.GetPluginCapabilities")(function*(_req: GetPluginCapabilitiesRequest) {
    return {
      capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }, { volume_expansion: { type: "ONLINE" } }]
    } satisfies GetPluginCapabilitiesResponse
  }),

  /**
   * Ready when nvme-cli, sysfs and the mount tools answer. Not ready is a successful reply with
   * `ready: false` ("The plugin is still initializing, but is otherwise perfectly healthy. In this
   * case a successful response SHALL be returned with a readiness value of `false`").
   */
  Probe: Effect.fn("Identity.Probe")(function*(_req: ProbeRequest) {
    const readiness = yield* (yield* NodeVolumes).readiness
    if (!readiness.ready) yield* Effect.logWarning("not ready").pipe(Effect.annotateLogs({ problems: readiness.problems.join("; ") }))
    return { ready: { value: readiness.ready } } satisfies ProbeResponse
  })
}
