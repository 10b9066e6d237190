/**
 * OrphanReconciler (SPEC §4.5): at start-up and every `--orphan-interval`, finds NVMe-oF
 * connections inside `--managed-nqn-prefix` that no staged volume uses (or connected subsystems
 * without a namespace device), posts OrphanDetected on the Node, and — unless dry-run, and only
 * when nothing is mounted from it — disconnects it and posts OrphanCleaned. Nothing outside the
 * prefix is ever touched (the host may boot from NVMe-oF); without a prefix it is off.
 *
 * May import: domain, nvme, mount, kube (EventPoster contract), observability/Metrics, node, Settings.
 */
import { Context, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { isManaged, type Nqn } from "../domain/Ids.ts"
import { EventPoster } from "../kube/EventPoster.ts"
import { Mounter } from "../mount/Mounter.ts"
import { NvmeCli } from "../nvme/NvmeCli.ts"
import { type NvmeSnapshot, Sysfs } from "../nvme/Sysfs.ts"
import * as Metrics from "../observability/Metrics.ts"
import { Settings } from "../Settings.ts"
import { stagedThisBoot } from "./Lifecycle.ts"
import { StageStore } from "./StageStore.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

export interface Orphan {
  readonly nqn: string
  readonly address: string
  readonly controllers: ReadonlyArray<string>
  readonly why: string
}

/** Pure: the managed subsystems in `snapshot` that none of `usedNqns` accounts for. */
export const findOrphans = (snapshot: NvmeSnapshot, usedNqns: ReadonlySet<string>, prefix: string): ReadonlyArray<Orphan> => {
  const byNqn = new Map<string, Array<NvmeSnapshot["controllers"][number]>>()
  for (const c of snapshot.controllers) {
    if (c.transport !== "tcp" || !isManaged(c.subsysnqn as Nqn, prefix)) continue
    byNqn.set(c.subsysnqn, [...(byNqn.get(c.subsysnqn) ?? []), c])
  }
  const orphans: Array<Orphan> = []
  for (const [nqn, ctrls] of byNqn) {
    if (usedNqns.has(nqn)) continue
    const hasDevice = snapshot.namespaces.some((n) => n.subsysnqn === nqn)
    orphans.push({
      nqn,
      address: [...new Set(ctrls.map((c) => `${c.traddr ?? "?"}:${c.trsvcid ?? "?"}`))].join(", "),
      controllers: ctrls.map((c) => c.name),
      why: hasDevice
        ? `no volume staged on this node uses it (controllers ${ctrls.map((c) => `${c.name} ${c.state}`).join(", ")})`
        : `connected but has no namespace device and no volume staged on this node uses it (controllers ${ctrls.map((c) => `${c.name} ${c.state}`).join(", ")})`
    })
  }
  return orphans
}

/** The first orphan scan after start (or after --orphan-interval, when that is shorter). */
export const FIRST_SCAN_AFTER = Duration.seconds(30)

export class OrphanReconciler extends Context.Service<OrphanReconciler, {
  /** One scan; returns the orphans found (cleaned unless dry-run or still mounted). */
  readonly reconcile: Effect.Effect<ReadonlyArray<Orphan>>
}>()("rds-csi/node/OrphanReconciler") {
  static readonly layer = Layer.effect(
    OrphanReconciler,
    Effect.gen(function*() {
      const settings = yield* Settings
      const store = yield* StageStore
      const sysfs = yield* Sysfs
      const mounter = yield* Mounter
      const cli = yield* NvmeCli
      const events = yield* EventPoster
      const locks = yield* VolumeLocks
      const prefix = settings.managedNqnPrefix

      /** NQNs a volume of this boot uses; an earlier boot's record uses no connection (it went with the reboot). */
      const usedNqns = (snapshot: NvmeSnapshot) =>
        Effect.gen(function*() {
          const bootId = yield* sysfs.bootId
          const mounts = yield* mounter.mountinfo
          return new Set((yield* store.list).filter((r) => stagedThisBoot(r, bootId, mounts, snapshot)).map((r) => r.nqn))
        })

      const scan = Effect.gen(function*() {
        if (prefix === undefined) return []
        const snapshot = yield* sysfs.snapshot
        return findOrphans(snapshot, yield* usedNqns(snapshot), prefix)
      })

      /** Where the subsystem's namespaces are in use: mounted, bound as raw block, or held open. */
      const usesOf = Effect.fn("OrphanReconciler.usesOf")(function*(nqn: string) {
        const devices = (yield* sysfs.snapshotOf(nqn)).namespaces
        const devTs = new Set(devices.map((n) => n.devT))
        const names = new Set(devices.map((n) => `/${n.name}`))
        // A raw-block bind shows devtmpfs in mountinfo, with the device node as its root.
        const mounted = (yield* mounter.mountinfo)
          .filter((m) => devTs.has(m.devT) || (m.fsType === "devtmpfs" && names.has(m.root)))
          .map((m) => m.mountPoint)
        const open: Array<string> = []
        for (const d of devices) {
          const pids = yield* mounter.holders(`/dev/${d.name}`).pipe(Effect.orElseSucceed((): ReadonlyArray<number> => []))
          if (pids.length > 0) open.push(`/dev/${d.name} open by pid ${pids.slice(0, 5).join(", ")}`)
        }
        return [...mounted, ...open]
      })

      const clean = Effect.fn("OrphanReconciler.clean")(function*(orphan: Orphan) {
        // Decided and done under the subsystem's connection lock: a stage that connects it
        // records itself under the same lock, so it is either seen here or comes after.
        yield* locks.withConnection(orphan.nqn, Effect.gen(function*() {
          if ((yield* usedNqns(yield* sysfs.snapshot)).has(orphan.nqn)) return
          // Anything using its namespaces is somebody's data: never pull it away.
          const uses = yield* usesOf(orphan.nqn)
          if (uses.length > 0) {
            yield* Effect.logWarning(`orphan ${orphan.nqn} still in use (${uses.join("; ")}); not disconnecting`)
            return
          }
          yield* disconnectOrphan(orphan)
        }))
      })

      const disconnectOrphan = Effect.fn("OrphanReconciler.disconnect")(function*(orphan: Orphan) {
        yield* cli.disconnect(orphan.nqn as Nqn)
        yield* Metric.update(Metrics.orphansCleaned, 1)
        yield* events.postOrphanCleaned(orphan.nqn, `disconnected controller(s) ${orphan.controllers.join(", ")} from ${orphan.address}`)
        yield* Effect.logInfo(`orphan ${orphan.nqn} disconnected`)
      })

      const reconcile = Effect.gen(function*() {
        // A stage in flight connects before it records: never race it.
        if ((yield* locks.inFlight).size > 0) {
          yield* Effect.logDebug("orphan scan skipped: operations in flight")
          return []
        }
        const orphans = yield* scan
        for (const orphan of orphans) {
          yield* Metric.update(Metrics.orphansDetected, 1)
          yield* events.postOrphanDetected(orphan.nqn, orphan.address, orphan.why)
          yield* Effect.logWarning(`orphan connection ${orphan.nqn}: ${orphan.why}`)
        }
        if (settings.orphanDryRun || orphans.length === 0) return orphans
        // Look again right before acting: a volume may have been staged meanwhile.
        if ((yield* locks.inFlight).size > 0) return orphans
        const still = new Set((yield* scan).map((o) => o.nqn))
        for (const orphan of orphans) {
          if (still.has(orphan.nqn)) {
            yield* clean(orphan).pipe(Effect.catch((e) => Effect.logError(`orphan ${orphan.nqn}: cleanup failed: ${e.message}`)))
          }
        }
        return orphans
      }).pipe(
        Effect.catch((e) => Effect.as(Effect.logError(`orphan scan failed: ${e.message}`), [])),
        Effect.withSpan("OrphanReconciler.reconcile")
      )
      return OrphanReconciler.of({ reconcile })
    })
  )

  /** Scans at start-up and every `settings.orphanInterval` for the life of the scope. */
  static readonly run = Effect.gen(function*() {
    const settings = yield* Settings
    const reconciler = yield* OrphanReconciler
    if (settings.managedNqnPrefix === undefined) {
      yield* Effect.logWarning("orphan cleanup is off: no --managed-nqn-prefix set, so no NVMe connection is considered this plugin's to remove")
      return
    }
    yield* Effect.logInfo(
      `orphan reconciler every ${Duration.format(settings.orphanInterval)} for ${settings.managedNqnPrefix}*${settings.orphanDryRun ? " (dry run)" : ""}`
    )
    // The first scan a while after start, not at once: readiness never waits for it (issue 12),
    // and a restarted plugin's recoveries reconnect what is theirs before anything looks orphaned.
    const first = Duration.min(settings.orphanInterval, FIRST_SCAN_AFTER)
    yield* Effect.sleep(first).pipe(
      Effect.andThen(reconciler.reconcile.pipe(Effect.repeat(Schedule.spaced(settings.orphanInterval)))),
      Effect.forkScoped
    )
  })
}
