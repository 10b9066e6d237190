/**
 * VolumeLocks: one operation per volume at a time. A second caller does not wait: it gets
 * VolumeBusy at once (CSI: ABORTED, and the CO retries), as the CSI spec asks of a plugin that
 * "SHOULD return ABORTED" for an operation already in progress on that volume.
 *
 * May import: domain.
 */
import { Context, Effect, Layer } from "effect"
import { VolumeBusy } from "../domain/Errors.ts"

export class VolumeLocks extends Context.Service<VolumeLocks, {
  /** Runs `self` holding the volume's lock; fails with VolumeBusy if another operation holds it. */
  readonly withLock: <A, E, R>(volumeId: string, operation: string, self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | VolumeBusy, R>
  /** The operations in flight now, by volume (for logs and the shutdown drain). */
  readonly inFlight: Effect.Effect<ReadonlyMap<string, string>>
}>()("rds-csi/node/VolumeLocks") {
  static readonly layer = Layer.sync(VolumeLocks, () => {
    const held = new Map<string, string>()
    return VolumeLocks.of({
      withLock: (volumeId, operation, self) =>
        Effect.acquireUseRelease(
          Effect.suspend(() => {
            const holder = held.get(volumeId)
            if (holder !== undefined) return Effect.fail(new VolumeBusy({ volumeId, heldBy: holder }))
            held.set(volumeId, operation)
            return Effect.void
          }),
          () => self,
          () => Effect.sync(() => held.delete(volumeId))
        ),
      inFlight: Effect.sync(() => new Map(held))
    })
  })
}
