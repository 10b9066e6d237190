/**
 * The controller's Prometheus metrics (issue 11 §6): RouterOS commands by command and outcome
 * with their latency, SSH reconnects, CSI controller operations, and the volumes on the RDS by
 * state (read by ListVolumes and the periodic census, never derived from counters).
 *
 * May import: effect, observability/Metrics (the shared buckets).
 */
import { Cause, Effect, Metric } from "effect"
import { seconds } from "./Metrics.ts"

export const rdsCommands = Metric.counter("rds_csi_rds_commands_total", {
  description: "RouterOS commands run over SSH by command (disk.add, disk.print, ...) and outcome (ok, Timeout, Unreachable, AuthFailed, HostKeyMismatch, NotFound, NoSpace, AlreadyExists, InvalidParameter, Failed, interrupted).",
  incremental: true
})
export const rdsCommandDuration = Metric.histogram("rds_csi_rds_command_duration_seconds", {
  description: "Latency of RouterOS commands over SSH by command, retries included.",
  boundaries: seconds
})
export const rdsReconnects = Metric.counter("rds_csi_rds_ssh_reconnects_total", {
  description: "SSH connections to the RDS opened after the first one (the previous one dropped).",
  incremental: true
})
export const controllerOperations = Metric.counter("rds_csi_controller_operations_total", {
  description: "Controller RPCs by operation and status (ok or the gRPC code).",
  incremental: true
})
export const controllerOperationDuration = Metric.histogram("rds_csi_controller_operation_duration_seconds", {
  description: "Duration of controller RPCs by operation.",
  boundaries: seconds
})
export const rdsVolumes = Metric.gauge("rds_csi_rds_volumes", {
  description: "Volumes of this driver on the RDS by state (exported, published, unexported), as last listed."
})

/** Counts one controller RPC by status and records its duration. */
export const recordControllerOperation = (operation: string, status: string, secs: number): Effect.Effect<void> =>
  Effect.all([
    Metric.update(Metric.withAttributes(controllerOperations, { operation, status }), 1),
    Metric.update(Metric.withAttributes(controllerOperationDuration, { operation }), secs)
  ], { discard: true })

/** Counts the operation by outcome (ok or the error's tag) and records its duration. */
export const measured = <A, E extends { readonly _tag: string }, R>(operation: string, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const start = Date.now()
    return self.pipe(Effect.onExit((exit) => {
      const status = exit._tag === "Success" ? "ok" : Cause.findErrorOption(exit.cause).pipe((o) => o._tag === "Some" ? o.value._tag : "defect")
      return recordControllerOperation(operation, status, (Date.now() - start) / 1000)
    }))
  })
