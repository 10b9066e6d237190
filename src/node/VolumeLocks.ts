/**
 * VolumeLocks: one operation per volume at a time. A second caller does not wait: it gets
 * VolumeBusy at once (CSI: ABORTED, and the CO retries), as the CSI spec asks of a plugin that
 * "SHOULD return ABORTED" for an operation already in progress on that volume.
 *
 * And one connection change per NVMe subsystem at a time: volumes pinned to namespaces of one
 * subsystem share its controllers, so whoever decides whether to connect, record, or disconnect
 * a subsystem holds its NQN's lock for the decision and the act (callers wait; these sections
 * are short). No operation then removes a connection another volume uses or is about to use.
 *
 * May import: domain.
 */
import { Context, Effect, Layer, Semaphore } from "effect"
import { VolumeBusy } from "../domain/Errors.ts"

export class VolumeLocks extends Context.Service<VolumeLocks, {
  /** Runs `self` holding the volume's lock; fails with VolumeBusy if another operation holds it. */
  readonly withLock: <A, E, R>(volumeId: string, operation: string, self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | VolumeBusy, R>
  /** Runs `self` holding the subsystem's connection lock, waiting for it if another holds it. */
  readonly withConnection: <A, E, R>(nqn: string, self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** The operations in flight now, by volume (for logs and the shutdown drain). */
  readonly inFlight: Effect.Effect<ReadonlyMap<string, string>>
}>()("rds-csi/node/VolumeLocks") {
  static readonly layer = Layer.sync(VolumeLocks, () => {
    const held = new Map<string, string>()
    const connections = new Map<string, Semaphore.Semaphore>()
    const connectionLock = (nqn: string) => {
      let lock = connections.get(nqn)
      if (lock === undefined) {
        lock = Semaphore.makeUnsafe(1)
        connections.set(nqn, lock)
      }
      return lock
    }
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
      withConnection: (nqn, self) => Effect.suspend(() => Semaphore.withPermit(connectionLock(nqn), self)),
      inFlight: Effect.sync(() => new Map(held))
    })
  })
}
