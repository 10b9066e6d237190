/**
 * The plugin's Prometheus metrics (SPEC §4.7), defined once with effect's Metric. Counters and
 * histograms are updated where things happen; gauges are set only by the health monitor from
 * its reading of sysfs, never derived from counters. Names carry the `rds_csi_` prefix
 * themselves so dashboards and alerts can be checked against this file.
 *
 * May import: nothing but effect.
 */
import { Effect, Metric } from "effect"

/** Latency buckets of every rds_csi_*_seconds histogram, node and controller. */
export const seconds = Metric.exponentialBoundaries({ start: 0.005, factor: 2, count: 14 }) // 5 ms .. 41 s

export const volumeOperations = Metric.counter("rds_csi_volume_operations_total", {
  description: "Node operations by operation (stage, unstage, publish, unpublish, stats, expand) and status (ok or the gRPC code).",
  incremental: true
})
export const volumeOperationDuration = Metric.histogram("rds_csi_volume_operation_duration_seconds", {
  description: "Duration of node operations by operation.",
  boundaries: seconds
})
export const nvmeConnects = Metric.counter("rds_csi_nvme_connects_total", {
  description: "nvme connect attempts by status (ok, failed).",
  incremental: true
})
export const nvmeConnectDuration = Metric.histogram("rds_csi_nvme_connect_duration_seconds", {
  description: "Time from the first nvme connect attempt to a usable namespace device.",
  boundaries: seconds
})
export const nvmeConnectionsActive = Metric.gauge("rds_csi_nvme_connections_active", {
  description: "NVMe/TCP controllers of staged volumes that sysfs shows live, read by the health monitor."
})
export const nvmeControllerState = Metric.gauge("rds_csi_nvme_controller_state", {
  description: "1 for the state (live, connecting, resetting, deleting, gone) each staged volume's controller is in, 0 for the others."
})
export const mountOperations = Metric.counter("rds_csi_mount_operations_total", {
  description: "Mount operations by operation (format, mount, bind, unmount) and status.",
  incremental: true
})
export const staleMountsDetected = Metric.counter("rds_csi_stale_mounts_detected_total", {
  description: "Stale mounts detected (the device a volume's mount reaches is no longer its device).",
  incremental: true
})
export const staleRecoveries = Metric.counter("rds_csi_stale_recoveries_total", {
  description: "Stale-mount recoveries by status (ok, failed).",
  incremental: true
})
export const orphansDetected = Metric.counter("rds_csi_orphans_detected_total", {
  description: "Managed NVMe connections found that no staged volume uses.",
  incremental: true
})
export const orphansCleaned = Metric.counter("rds_csi_orphans_cleaned_total", {
  description: "Orphan connections disconnected.",
  incremental: true
})
export const volumeConditionAbnormal = Metric.gauge("rds_csi_volume_condition_abnormal", {
  description: "1 when a staged volume's VolumeCondition is abnormal, else 0, by volume."
})
export const stagedVolumes = Metric.gauge("rds_csi_staged_volumes", {
  description: "Volumes staged on this node (stage records), read by the health monitor."
})

/** Counts one operation by status and records its duration. */
export const recordOperation = (operation: string, status: string, seconds: number): Effect.Effect<void> =>
  Effect.all([
    Metric.update(Metric.withAttributes(volumeOperations, { operation, status }), 1),
    Metric.update(Metric.withAttributes(volumeOperationDuration, { operation }), seconds)
  ], { discard: true })
