/**
 * VolumeLocks: one operation per volume at a time. A second caller does not wait: it gets
 * VolumeBusy at once (CSI: ABORTED, and the CO retries), as the CSI spec asks of a plugin that
 * "SHOULD return ABORTED" for an operation already in progress on that volume. The exception is
 * the plugin's own background recovery: that is no operation of the CO's, and a publish or stage
 * that meets it (a restart's first health pass finds a renumbered volume just as kubelet
 * publishes it) waits for it, up to BACKGROUND_WAIT, and then runs on the recovered volume.
 *
 * And one connection change per NVMe subsystem at a time: volumes pinned to namespaces of one
 * subsystem share its controllers, so whoever decides whether to connect, record, or disconnect
 * a subsystem holds its NQN's lock for the decision and the act (callers wait; these sections
 * are short). No operation then removes a connection another volume uses or is about to use.
 *
 * May import: domain.
 */
import { Context, Deferred, Duration, Effect, Layer, Semaphore } from "effect"
import { VolumeBusy } from "../domain/Errors.ts"

export class VolumeLocks extends Context.Service<VolumeLocks, {
  /** Runs `self` holding the volume's lock; fails with VolumeBusy if another operation holds it. */
  readonly withLock: <A, E, R>(volumeId: string, operation: string, self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | VolumeBusy, R>
  /** Runs `self` holding the subsystem's connection lock, waiting for it if another holds it. */
  readonly withConnection: <A, E, R>(nqn: string, self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** The operations in flight now, by volume (for logs and the shutdown drain). */
  readonly inFlight: Effect.Effect<ReadonlyMap<string, string>>
  /**
   * How many volume operations have ended so far: while it stays the same, no operation changed
   * a volume's record (they all run under the volume's lock), e.g. since the health pass listed them.
   */
  readonly ended: Effect.Effect<number>
}>()("rds-csi/node/VolumeLocks") {
  static readonly layer = Layer.sync(VolumeLocks, () => make(BACKGROUND_WAIT))
  /** As `layer`, with another bound on waiting for a background recovery (tests). */
  static readonly layerWith = (backgroundWait: Duration.Duration) => Layer.sync(VolumeLocks, () => make(backgroundWait))
}

/** The operations the plugin runs on its own (the health monitor's recoveries): callers wait for these. */
const BACKGROUND = new Set(["recovery"])
/** How long an RPC waits for a background recovery of its volume before answering ABORTED. */
export const BACKGROUND_WAIT = Duration.seconds(5)

const make = (backgroundWait: Duration.Duration) => {
  const held = new Map<string, { readonly operation: string; readonly released: Deferred.Deferred<void> }>()
  let ended = 0
  const connections = new Map<string, Semaphore.Semaphore>()
  const connectionLock = (nqn: string) => {
    let lock = connections.get(nqn)
    if (lock === undefined) {
      lock = Semaphore.makeUnsafe(1)
      connections.set(nqn, lock)
    }
    return lock
  }
  const tryAcquire = (volumeId: string, operation: string) =>
    Effect.suspend(() => {
      const holder = held.get(volumeId)
      if (holder !== undefined) return Effect.succeed(holder)
      held.set(volumeId, { operation, released: Deferred.makeUnsafe<void>() })
      return Effect.succeed(undefined)
    })
  const acquire = (volumeId: string, operation: string) =>
    Effect.gen(function*() {
      const holder = yield* tryAcquire(volumeId, operation)
      if (holder === undefined) return
      if (!BACKGROUND.has(holder.operation)) return yield* new VolumeBusy({ volumeId, heldBy: holder.operation })
      yield* Deferred.await(holder.released).pipe(Effect.timeoutOrElse({ duration: backgroundWait, orElse: () => Effect.void }))
      const again = yield* tryAcquire(volumeId, operation)
      if (again !== undefined) return yield* new VolumeBusy({ volumeId, heldBy: again.operation })
    })
  const release = (volumeId: string) =>
    Effect.suspend(() => {
      const holder = held.get(volumeId)
      held.delete(volumeId)
      ended++
      return holder === undefined ? Effect.void : Deferred.succeed(holder.released, undefined)
    })
  return VolumeLocks.of({
    withLock: (volumeId, operation, self) => Effect.acquireUseRelease(acquire(volumeId, operation), () => self, () => release(volumeId)),
    withConnection: (nqn, self) => Effect.suspend(() => Semaphore.withPermit(connectionLock(nqn), self)),
    inFlight: Effect.sync(() => new Map([...held].map(([id, h]) => [id, h.operation]))),
    ended: Effect.sync(() => ended)
  })
}
