/**
 * The node plugin's services over a host: given the four host services (NvmeCli, Sysfs,
 * Mounter, StageStore — live in main.ts, in-memory in tests) and an EventPoster, builds
 * NvmeTransport, VolumeLocks, HealthView, NodeVolumes, HealthMonitor and
 * OrphanReconciler. Tests run exactly this composition on the in-memory kernel. Settings stays
 * required, like the host's own needs.
 *
 * May import: nvme, kube (EventPoster contract), node, Settings.
 */
import { Layer } from "effect"
import type { EventPoster } from "../kube/EventPoster.ts"
import type { Mounter } from "../mount/Mounter.ts"
import type { NvmeCli } from "../nvme/NvmeCli.ts"
import { NvmeTransport } from "../nvme/NvmeTransport.ts"
import type { Sysfs } from "../nvme/Sysfs.ts"
import { HealthMonitor } from "./HealthMonitor.ts"
import { HealthView } from "./HealthView.ts"
import { instrumentedMounter } from "./Instrumented.ts"
import { NodeVolumesLive } from "./NodeVolumesLive.ts"
import { OrphanReconciler } from "./OrphanReconciler.ts"
import type { StageStore } from "./StageStore.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

export type HostServices = NvmeCli | Sysfs | Mounter | StageStore

/** Every node service over `host` and `events`; Settings (and the host's own needs) stay required. */
export const nodeLayer = <E, R, RE>(host: Layer.Layer<HostServices, E, R>, events: Layer.Layer<EventPoster, never, RE>) => {
  // The host's Mounter is replaced by one that counts every operation for the metrics.
  const measuredHost = Layer.provideMerge(instrumentedMounter, host)
  const base = Layer.mergeAll(measuredHost, VolumeLocks.layer, HealthView.layer, events)
  const nvme = Layer.provideMerge(NvmeTransport.layer, base)
  const volumes = Layer.provideMerge(NodeVolumesLive, nvme)
  return Layer.provideMerge(Layer.mergeAll(HealthMonitor.layer, OrphanReconciler.layer), volumes)
}
