/**
 * HealthView: the health monitor's latest reading of every staged volume — connection state
 * from sysfs, staleness, the last recovery — and the VolumeCondition derived from it. The
 * monitor writes it; NodeGetVolumeStats and the metrics read it (SPEC §4.4: one source).
 *
 * May import: node/Requests.
 */
import { Context, Effect, Layer } from "effect"
import type { VolumeCondition } from "./Requests.ts"

export type ConnectionState = "live" | "connecting" | "resetting" | "deleting" | "new" | "dead" | "gone"

export interface VolumeHealth {
  readonly volumeId: string
  readonly nqn: string
  readonly address: string
  /** The controllers of the volume's subsystem, `nvme1 live`. */
  readonly controllers: ReadonlyArray<{ readonly name: string; readonly state: string }>
  readonly connection: ConnectionState
  /** Epoch ms the connection was first seen not live; undefined while live. */
  readonly downSince: number | undefined
  readonly stale: boolean
  readonly lastRecovery: { readonly at: number; readonly ok: boolean; readonly message: string } | undefined
  /** Epoch ms before which the monitor will not try another recovery (backoff after failures). */
  readonly nextRecoveryAt: number
  readonly failedRecoveries: number
  /**
   * After a recovery: the containers that still hold the old mount (private propagation), as a
   * sentence for the condition; undefined when none does.
   */
  readonly oldMountHeld?: string | undefined
  readonly condition: VolumeCondition
}

export class HealthView extends Context.Service<HealthView, {
  readonly all: Effect.Effect<ReadonlyMap<string, VolumeHealth>>
  readonly get: (volumeId: string) => Effect.Effect<VolumeHealth | undefined>
  readonly set: (health: VolumeHealth) => Effect.Effect<void>
  /** Keeps only the given volumes (the others were unstaged). */
  readonly retain: (volumeIds: ReadonlySet<string>) => Effect.Effect<void>
}>()("rds-csi/node/HealthView") {
  static readonly layer = Layer.effect(
    HealthView,
    Effect.sync(() => {
      // Written once per volume per pass: in place (a copy per write made a pass over N volumes
      // cost N² under emulation); readers of `all` get their own copy.
      const view = new Map<string, VolumeHealth>()
      return HealthView.of({
        all: Effect.sync(() => new Map(view)),
        get: (id) => Effect.sync(() => view.get(id)),
        set: (h) => Effect.sync(() => void view.set(h.volumeId, h)),
        retain: (ids) =>
          Effect.sync(() => {
            for (const id of [...view.keys()]) if (!ids.has(id)) view.delete(id)
          })
      })
    })
  )
}
