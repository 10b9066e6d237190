/**
 * HealthMonitor (SPEC §4.4): a background fiber that every `--health-interval` reads each staged
 * volume's controller state, device identity and mount source — one sysfs snapshot and one
 * mountinfo read per pass, no process — and acts on the transitions: live → not live posts
 * ConnectionFailure, back to live posts ConnectionRecovery, a stale mount (or a controller the
 * kernel deleted) starts a recovery, with backoff after failures. Its reading is the HealthView.
 * Between passes a watch of the staged volumes' controller state files (StateWatch, every
 * `--state-watch-interval`) starts the next pass at once when one changes: one pass at a time.
 *
 * Observing is cheap and never waits on a recovery; a recovery is slow (attempts × the connect
 * timeout against a target that is gone), so each runs in its own fiber, at most
 * `--recovery-concurrency` at once and one per volume: in a target-wide outage the volumes recover
 * side by side, and every other volume's condition, events and metrics keep being updated.
 *
 * May import: domain, nvme, mount, kube (EventPoster contract), observability/Metrics, node, Settings.
 */
import { Clock, Context, Deferred, Effect, Layer, Metric, Option, Result, Semaphore } from "effect"
import { EventPoster } from "../kube/EventPoster.ts"
import { PodRestarter } from "../kube/PodRestarter.ts"
import { type MountEntry, Mounter } from "../mount/Mounter.ts"
import type { NvmeTransport } from "../nvme/NvmeTransport.ts"
import { type Controller, type NvmeSnapshot, subsystemIn, Sysfs } from "../nvme/Sysfs.ts"
import * as Metrics from "../observability/Metrics.ts"
import { Settings } from "../Settings.ts"
import { type ConnectionState, HealthView, type VolumeHealth } from "./HealthView.ts"
import { conditionOf, connectionOf, downFirst, earlierBootHealth } from "./Condition.ts"
import { isActive, stagedThisBoot } from "./Lifecycle.ts"
import { recoverCurrent, staleIn } from "./Recovery.ts"
import { oldMountTeller } from "./StaleConsumers.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"
import * as StateWatch from "./StateWatch.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

export { conditionOf, connectionOf } from "./Condition.ts"

const STATES: ReadonlyArray<ConnectionState> = ["live", "connecting", "resetting", "deleting", "gone"]
/** The node RPCs a periodic pass lets finish first (StateWatch.loop). */
const RPC_OPERATIONS = new Set(["stage", "unstage", "publish", "unpublish", "expand"])
const FIRST_RETRY_MS = 10_000
const MAX_RETRY_MS = 300_000

export class HealthMonitor extends Context.Service<HealthMonitor, {
  /** One pass, then waits for every recovery in flight: a caller sees its outcome (tests, the model). */
  readonly tick: Effect.Effect<void>
  /** One pass over every staged volume: observes each and starts the recoveries due, without waiting for them (the loop). */
  readonly observe: Effect.Effect<void>
  /**
   * Observes for ever, one pass at a time: every --health-interval (after the node RPCs in flight,
   * one more interval at most: StateWatch.loop), and at once when a watched controller's state changes.
   */
  readonly loop: Effect.Effect<never>
  /** Waits until the first pass has ended (whoever ran it), so start-up work can queue behind it. */
  readonly firstPass: Effect.Effect<void>
}>()("rds-csi/node/HealthMonitor") {
  static readonly layer = Layer.effect(
    HealthMonitor,
    Effect.gen(function*() {
      const ctx = yield* Effect.context<Settings | StageStore | Sysfs | Mounter | EventPoster | VolumeLocks | HealthView | NvmeTransport>()
      // Recoveries outlive the pass that starts them: they belong to the monitor, and end with it.
      const scope = yield* Effect.scope
      const settings = yield* Settings
      const store = yield* StageStore
      const sysfs = yield* Sysfs
      const mounter = yield* Mounter
      const events = yield* EventPoster
      // Present where the program wired the Kubernetes API (main.ts); pods are restarted only
      // with --restart-pods-on-recovery.
      const restarter = yield* Effect.serviceOption(PodRestarter)
      const locks = yield* VolumeLocks
      const view = yield* HealthView
      const permits = yield* Semaphore.make(settings.recoveryConcurrency)
      // Passes never overlap, whoever starts them (the loop, a test's tick).
      const onePass = yield* Semaphore.make(1)
      const firstDone = yield* Deferred.make<void>()
      const watch = yield* StateWatch.make
      // One recovery per volume, running or waiting for a permit; it says when it ends whether it
      // brought the connection back. A pass leaves such a volume to it.
      const recovering = new Map<string, Deferred.Deferred<boolean>>()
      // A pass re-reads the whole of sysfs only when something there may have changed.
      const currentSnapshot = yield* StateWatch.snapshotSource(watch)

      /** Writes the volume's reading to the view and its metrics. */
      // Untraced, as `one`: they run for every volume every pass (a tracer span and a captured
      // call site each, for nothing: no tracer reads them, and they are not RPCs).
      const publish = Effect.fnUntraced(function*(health: Omit<VolumeHealth, "condition">) {
        const condition = conditionOf(health, yield* Clock.currentTimeMillis)
        const before = yield* view.get(health.volumeId)
        yield* view.set({ ...health, condition })
        // The gauges change only with the connection or the condition: most passes leave them.
        if (before !== undefined && before.connection === health.connection && before.condition.abnormal === condition.abnormal) return
        for (const state of STATES) {
          yield* Metric.update(Metric.withAttributes(Metrics.nvmeControllerState, { volume: health.volumeId, state }), state === health.connection ? 1 : 0)
        }
        yield* Metric.update(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: health.volumeId }), condition.abnormal ? 1 : 0)
      })

      /** Observes one volume (no process): transitions, staleness, the view; starts its recovery when due. Live? */
      const one = Effect.fnUntraced(function*(record: StageRecord, snapshot: NvmeSnapshot, mounts: ReadonlyArray<MountEntry>, bootId: string, listedAfter: number) {
        const controllers = subsystemIn(snapshot, record.nqn).controllers
        if (!stagedThisBoot(record, bootId, mounts, snapshot)) return yield* earlierBoot(record, controllers)
        // Its recovery reports on it when it ends. Or an operation owns the volume now (an unstage
        // disconnects it on purpose, a publish may be recovering it): its controllers and mounts
        // are in flux, judge them next pass.
        if (recovering.has(record.volumeId) || (yield* locks.inFlight).has(record.volumeId)) return connectionOf(controllers) === "live"
        // The list may predate an unstage that has finished since: only a volume still staged is
        // watched. Read it again only if an operation has ended since the list was taken.
        const latest = (yield* locks.ended) === listedAfter ? record : yield* store.get(record.volumeId)
        if (latest === undefined || !isActive(latest)) return false
        const now = yield* Clock.currentTimeMillis
        const prev = yield* view.get(record.volumeId)
        const address = `${record.address}:${record.port}`
        const connection = connectionOf(controllers)
        const wasLive = prev === undefined || prev.connection === "live"
        let downSince = prev?.downSince
        if (connection !== "live" && wasLive) {
          downSince = now
          const what = connection === "gone"
            ? "controller removed by the kernel"
            : `controller ${controllers.map((c) => c.name).join(", ")} is ${connection}`
          yield* events.postConnectionFailure(record.volumeId, address, what)
          yield* Effect.logWarning(`connection lost: ${what}`)
        }
        if (connection === "live" && prev !== undefined && prev.connection !== "live") {
          const downMs = now - (prev.downSince ?? now)
          const attempts = Math.max(1, Math.round(downMs / (record.reconnectDelay * 1000)))
          yield* events.postConnectionRecovery(record.volumeId, address, attempts)
          yield* Effect.logInfo(`connection recovered after ${(downMs / 1000).toFixed(1)} s`)
          downSince = undefined
        }

        const check = yield* staleIn(record, snapshot, mounts)
        // Connecting/resetting: the kernel is still retrying within ctrl_loss_tmo; leave it alone.
        const needsRecovery = (connection === "live" && check.stale) || connection === "gone"
        const nextRecoveryAt = prev?.nextRecoveryAt ?? 0
        const oldMountHeld = needsRecovery ? undefined : yield* oldMountConsumers(latest)
        yield* publish({
          volumeId: record.volumeId,
          nqn: record.nqn,
          address,
          controllers: controllers.map((c) => ({ name: c.name, state: c.state })),
          connection,
          downSince: connection === "live" ? undefined : downSince,
          stale: check.stale,
          lastRecovery: prev?.lastRecovery,
          nextRecoveryAt,
          failedRecoveries: prev?.failedRecoveries ?? 0,
          oldMountHeld
        })
        if (needsRecovery && now >= nextRecoveryAt) yield* start(record, now)
        return connection === "live"
      }, (self, record) => Effect.annotateLogs(self, { volume: record.volumeId, nqn: record.nqn }))

      /** After a recovery: the pods still holding the old mount, each told once (StaleConsumers). */
      const oldMountConsumers = oldMountTeller(events, settings.restartPodsOnRecovery ? Option.getOrUndefined(restarter) : undefined)

      /** Starts the volume's recovery in the monitor's scope, where it waits for a permit. */
      const start = Effect.fn("HealthMonitor.start")(function*(record: StageRecord, observedAt: number) {
        const done = yield* Deferred.make<boolean>()
        recovering.set(record.volumeId, done)
        // startImmediately: it takes the volume's lock now, not after this pass (an RPC arriving
        // meanwhile sees the recovery in progress).
        yield* recovery(record, observedAt).pipe(
          Semaphore.withPermit(permits),
          Effect.catchCause((cause) => Effect.as(Effect.logError("recovery failed unexpectedly", cause), false)),
          Effect.onExit((exit) =>
            Effect.andThen(Effect.sync(() => recovering.delete(record.volumeId)), Deferred.succeed(done, exit._tag === "Success" && exit.value))
          ),
          Effect.provideContext(ctx),
          Effect.forkIn(scope, { startImmediately: true })
        )
      })

      /** Recovers the volume under its lock and records the outcome; true if it brought the connection back. */
      const recovery = Effect.fn("HealthMonitor.recovery")(function*(record: StageRecord, observedAt: number) {
        return yield* locks.withLock(
          record.volumeId,
          "recovery",
          // Recorded under the lock: no unstage runs in between, so the view never gets back a volume it let go.
          Effect.flatMap(Effect.result(recoverCurrent(record.volumeId, { connectionEvents: false })), (result) => settle(record, observedAt, result))
        ).pipe(
          // An RPC took the volume between the pass and this fiber: the next pass looks again.
          Effect.catchTag("VolumeBusy", () => Effect.succeed(false))
        )
      })

      /** A recovery's outcome into the view: backoff, counters, and the connection if it is back. */
      const settle = Effect.fn("HealthMonitor.settle")(function*(
        record: StageRecord,
        observedAt: number,
        result: Result.Result<StageRecord | undefined, { readonly _tag: string; readonly message: string }>
      ) {
        const prev = yield* view.get(record.volumeId)
        // Unstaged meanwhile (recoverCurrent found no active record), or no longer watched.
        if (prev === undefined || (Result.isSuccess(result) && result.success === undefined)) return false
        // A recovery can outlast the backoff (attempts × connect timeout: ~30 s against a target
        // that is gone): the backoff runs from its end, or the next pass would start another at once.
        const ended = yield* Clock.currentTimeMillis
        let { failedRecoveries, lastRecovery, nextRecoveryAt, stale } = prev
        if (Result.isSuccess(result)) {
          lastRecovery = { at: ended, ok: true, message: "recovered" }
          failedRecoveries = 0
          nextRecoveryAt = 0
          stale = false
          yield* Metric.update(Metric.withAttributes(Metrics.staleRecoveries, { status: "ok" }), 1)
        } else if (result.failure._tag !== "VolumeBusy") {
          failedRecoveries++
          lastRecovery = { at: ended, ok: false, message: result.failure.message }
          nextRecoveryAt = ended + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (failedRecoveries - 1))
          yield* Metric.update(Metric.withAttributes(Metrics.staleRecoveries, { status: "failed" }), 1)
        }
        // Re-read: a recovery changes the controller set. Only a connection that is back is
        // recorded here; any other change is the next pass's transition to report.
        const after = (yield* sysfs.snapshotOf(record.nqn)).controllers
        const live = connectionOf(after) === "live"
        const back = live && prev.connection !== "live"
        if (back) {
          const downMs = observedAt - (prev.downSince ?? observedAt)
          yield* events.postConnectionRecovery(record.volumeId, prev.address, Math.max(1, Math.round(downMs / (record.reconnectDelay * 1000))))
        }
        // Containers holding the old mount are known at once, not a pass later.
        const oldMountHeld = Result.isSuccess(result) && result.success !== undefined ? yield* oldMountConsumers(result.success) : prev.oldMountHeld
        yield* publish({
          ...prev,
          ...(live ? { connection: "live", controllers: after.map((c) => ({ name: c.name, state: c.state })), downSince: undefined } : {}),
          stale,
          lastRecovery,
          nextRecoveryAt,
          failedRecoveries,
          oldMountHeld
        })
        return back
      }, (self, record) => Effect.annotateLogs(self, { volume: record.volumeId, nqn: record.nqn }))

      /**
       * A record of an earlier boot: its connection and mounts went with the reboot. Never
       * reconnected, remounted or re-bound from here (the volume may be attached to another node
       * by now, the pods gone); reported, until kubelet stages it again or unstages it.
       */
      const earlierBoot = Effect.fn("HealthMonitor.earlierBoot")(function*(record: StageRecord, controllers: ReadonlyArray<Controller>) {
        yield* view.set(earlierBootHealth(record, controllers))
        yield* Metric.update(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: record.volumeId }), 1)
        return false
      })

      /** Observes every staged volume; the number whose connection is live (undefined if the pass failed). */
      const pass = Effect.gen(function*() {
        const listedAfter = yield* locks.ended
        const records = yield* store.list
        const snapshot = yield* currentSnapshot
        const mounts = yield* mounter.mountinfo
        const bootId = yield* sysfs.bootId
        let live = 0
        const staged = records.filter(isActive)
        // Volumes not live first (a pass over a hundred volumes takes seconds under emulation).
        for (const [i, r] of downFirst(staged, snapshot).entries()) {
          // A pass over 100 volumes is long under emulation: let RPCs (Probe) in between volumes.
          if (i % 8 === 7) yield* Effect.yieldNow
          if (yield* one(r, snapshot, mounts, bootId, listedAfter)) live++
        }
        const ids = new Set(staged.map((r) => r.volumeId))
        for (const [id] of yield* view.all) {
          if (ids.has(id)) continue
          for (const state of STATES) yield* Metric.update(Metric.withAttributes(Metrics.nvmeControllerState, { volume: id, state }), 0)
          yield* Metric.update(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: id }), 0)
        }
        yield* view.retain(ids)
        yield* watch.publish(StateWatch.controllersToWatch(staged, snapshot, mounts, bootId))
        yield* Metric.update(Metrics.nvmeConnectionsActive, live)
        yield* Metric.update(Metrics.stagedVolumes, staged.length)
        return live
      }).pipe(
        Effect.catchCause((cause) => Effect.as(Effect.logError("health monitor tick failed", cause), undefined)),
        Effect.provideContext(ctx),
        Effect.ensuring(Deferred.succeed(firstDone, undefined)),
        Semaphore.withPermit(onePass)
      )

      const observe = pass.pipe(Effect.asVoid, Effect.withSpan("HealthMonitor.observe"))

      const tick = Effect.gen(function*() {
        const live = yield* pass
        const back = yield* Effect.forEach([...recovering.values()], Deferred.await)
        const recovered = back.filter(Boolean).length
        if (live !== undefined && recovered > 0) yield* Metric.update(Metrics.nvmeConnectionsActive, live + recovered)
      }).pipe(Effect.withSpan("HealthMonitor.tick"))

      // The CO's operations that run the host's tools; a stats call or a recovery is no reason to wait.
      const busy = Effect.map(locks.inFlight, (ops) => [...ops.values()].some((op) => RPC_OPERATIONS.has(op)))
      return HealthMonitor.of({ tick, observe, loop: StateWatch.loop(watch, observe, settings, busy), firstPass: Deferred.await(firstDone) })
    })
  )

  /** Runs the loop for the life of the scope; recoveries run beside it. */
  static readonly run = Effect.gen(function*() {
    const monitor = yield* HealthMonitor
    const settings = yield* Settings
    yield* Effect.logInfo(`health monitor every ${StateWatch.describe(settings)}, up to ${settings.recoveryConcurrency} recoveries at once`)
    yield* monitor.loop.pipe(Effect.forkScoped)
  })
}
