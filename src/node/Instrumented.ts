/**
 * Metrics at the seams: a Mounter that counts every format, mount, bind, unmount and resize by
 * status, so `rds_csi_mount_operations_total` sees each call whichever use case made it.
 *
 * May import: mount (contract), observability/Metrics.
 */
import { Effect, Layer, Metric } from "effect"
import { Mounter } from "../mount/Mounter.ts"
import * as Metrics from "../observability/Metrics.ts"

const counted = <A, E extends { readonly reason: string }, R>(operation: string, self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.tap(() => Metric.update(Metric.withAttributes(Metrics.mountOperations, { operation, status: "ok" }), 1)),
    Effect.tapError((e) => Metric.update(Metric.withAttributes(Metrics.mountOperations, { operation, status: e.reason }), 1))
  )

/** `mounter` with its changing operations counted. */
export const instrumentMounter = (mounter: Mounter["Service"]): Mounter["Service"] => ({
  ...mounter,
  mkfs: (device, fsType) => counted("format", mounter.mkfs(device, fsType)),
  mount: (source, target, options) => counted(options.bind ? "bind" : "mount", mounter.mount(source, target, options)),
  unmount: (target, lazy) => counted(lazy ? "unmount_lazy" : "unmount", mounter.unmount(target, lazy)),
  resize: (device, fsType, mountPoint) => counted("resize", mounter.resize(device, fsType, mountPoint))
})

/** Replaces the Mounter in context with the counting one. */
export const instrumentedMounter: Layer.Layer<Mounter, never, Mounter> = Layer.effect(Mounter, Effect.map(Mounter, instrumentMounter))
