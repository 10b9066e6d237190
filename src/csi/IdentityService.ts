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

/**
 * The plugin's capabilities, as one driver (both sockets say the same): CONTROLLER_SERVICE ("the
 * Controller service of the plugin is available": `rds-csi controller` serves it on its own
 * socket, and attachRequired is true) and ONLINE volume expansion. No
 * VOLUME_ACCESSIBILITY_CONSTRAINTS: NodeGetInfo reports no topology ("A plugin that returns
 * [accessible_topology] MUST also set the VOLUME_ACCESSIBILITY_CONSTRAINTS plugin capability").
 */
export const PLUGIN_CAPABILITIES: GetPluginCapabilitiesResponse = {
  capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }, { volume_expansion: { type: "ONLINE" } }]
}

/** GetPluginInfo's reply: the name the driver registers under and its version. */
export const pluginInfo = (name: string, version: string): GetPluginInfoResponse => ({ name, vendor_version: version, manifest: {} })

export const IdentityService = {
  /** Name and version from Settings (the name kubelet registers the driver under). */
  GetPluginInfo: Effect.fn("Identity.GetPluginInfo")(function*(_req: GetPluginInfoRequest) {
    const settings = yield* Settings
    return pluginInfo(settings.driverName, settings.version)
  }),

  GetPluginCapabilities: Effect.fn("Identity.GetPluginCapabilities")(function*(_req: GetPluginCapabilitiesRequest) {
    return PLUGIN_CAPABILITIES
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
