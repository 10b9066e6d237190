/**
 * DeviceResolver: NQN (+ optional namespace identity) → the block device to use now. Pure
 * resolution over a Sysfs snapshot, so it is correct with native multipath on (the subsystem
 * head `nvmeXnY`, whose namespace number can change after a reconnect) and off (`nvmeXnY` of
 * the controller). No cache: a snapshot is a handful of sysfs reads.
 *
 * May import: domain, nvme/Sysfs.
 */
import { Context, Data, Effect, Layer } from "effect"
import type { Nqn } from "../domain/Ids.ts"
import type { NamespaceSelector } from "../domain/Volume.ts"
import { type NamespaceDevice, type NvmeSnapshot, Sysfs, type SysfsError } from "./Sysfs.ts"

export class DeviceNotFound extends Data.TaggedError("DeviceNotFound")<{
  readonly nqn: string
  readonly reason: "NoController" | "NoNamespace" | "Ambiguous" | "IdentityMismatch"
  readonly detail: string
}> {
  override get message(): string {
    return `no block device for ${this.nqn}: ${this.detail}`
  }
}

/** The identity a staged volume's device must keep; anything else is not our volume. */
export interface DeviceIdentity {
  readonly nsid: number
  readonly nguid?: string | undefined
  readonly uuid?: string | undefined
  readonly wwid?: string | undefined
}

/** The identity of a device, with absent identifiers left out (so it serialises cleanly). */
export const identityOf = (d: NamespaceDevice): { readonly nsid: number; readonly nguid?: string; readonly uuid?: string; readonly wwid?: string } => ({
  nsid: d.nsid,
  ...(d.nguid === undefined ? {} : { nguid: d.nguid }),
  ...(d.uuid === undefined ? {} : { uuid: d.uuid }),
  ...(d.wwid === undefined ? {} : { wwid: d.wwid })
})

/** True when both name the same namespace: every identifier present on both sides agrees. */
export const sameIdentity = (a: DeviceIdentity, b: DeviceIdentity): boolean => {
  const nonZero = (v: string | undefined) => v !== undefined && !/^[0-]*$/.test(v) ? v : undefined
  const pairs: ReadonlyArray<readonly [string | undefined, string | undefined]> = [
    [nonZero(a.nguid), nonZero(b.nguid)],
    [nonZero(a.uuid), nonZero(b.uuid)],
    [a.wwid, b.wwid]
  ]
  let compared = false
  for (const [x, y] of pairs) {
    if (x !== undefined && y !== undefined) {
      if (x !== y) return false
      compared = true
    }
  }
  return compared || a.nsid === b.nsid
}

/** Pure: picks the namespace device for `nqn` from a snapshot. */
export const resolveIn = (
  snapshot: NvmeSnapshot,
  nqn: Nqn,
  selector: NamespaceSelector
): Effect.Effect<NamespaceDevice, DeviceNotFound> => {
  const candidates = snapshot.namespaces.filter((n) => n.subsysnqn === nqn)
  if (candidates.length === 0) {
    const ctrls = snapshot.controllers.filter((c) => c.subsysnqn === nqn)
    return Effect.fail(
      ctrls.length === 0
        ? new DeviceNotFound({ nqn, reason: "NoController", detail: "no controller is connected to this subsystem" })
        : new DeviceNotFound({
          nqn,
          reason: "NoNamespace",
          detail: `controller(s) ${ctrls.map((c) => `${c.name} (${c.state})`).join(", ")} have no namespace block device`
        })
    )
  }
  const matching = candidates.filter((n) =>
    (selector.nsid === undefined || n.nsid === selector.nsid) &&
    (selector.nguid === undefined || n.nguid === selector.nguid) &&
    (selector.uuid === undefined || n.uuid === selector.uuid)
  )
  if (matching.length === 1) return Effect.succeed(matching[0]!)
  if (matching.length === 0) {
    return Effect.fail(new DeviceNotFound({
      nqn,
      reason: "IdentityMismatch",
      detail: `namespaces ${candidates.map((n) => `${n.name} (nsid ${n.nsid})`).join(", ")} do not match ${JSON.stringify(selector)}`
    }))
  }
  return Effect.fail(new DeviceNotFound({
    nqn,
    reason: "Ambiguous",
    detail: `${matching.length} namespaces (${matching.map((n) => n.name).join(", ")}); set nsid, nguid or uuid in the volume context`
  }))
}

export class DeviceResolver extends Context.Service<DeviceResolver, {
  /** The device for `nqn` now, read fresh from sysfs. */
  readonly resolve: (nqn: Nqn, selector: NamespaceSelector) => Effect.Effect<NamespaceDevice, DeviceNotFound | SysfsError>
}>()("rds-csi/nvme/DeviceResolver") {
  static readonly layer = Layer.effect(
    DeviceResolver,
    Effect.gen(function*() {
      const sysfs = yield* Sysfs
      return DeviceResolver.of({
        resolve: Effect.fn("DeviceResolver.resolve")(function*(nqn: Nqn, selector: NamespaceSelector) {
          return yield* resolveIn(yield* sysfs.snapshotOf(nqn), nqn, selector)
        })
      })
    })
  )
}
