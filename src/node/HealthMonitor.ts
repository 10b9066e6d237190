/**
 * HealthMonitor (SPEC §4.4): a background fiber that every `--health-interval` reads each staged
 * volume's controller state, device identity and mount source — one sysfs snapshot and one
 * mountinfo read per tick, no process — and acts on the transitions: live → not live posts
 * ConnectionFailure, back to live posts ConnectionRecovery, a stale mount (or a controller the
 * kernel deleted) starts a recovery, with backoff after failures. Its reading is the HealthView.
 *
 * May import: domain, nvme, mount, kube (EventPoster contract), observability/Metrics, node, Settings.
 */
import { Clock, Context, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { EventPoster } from "../kube/EventPoster.ts"
import { type MountEntry, Mounter } from "../mount/Mounter.ts"
import type { NvmeTransport } from "../nvme/NvmeTransport.ts"
import { type Controller, type NvmeSnapshot, Sysfs } from "../nvme/Sysfs.ts"
import * as Metrics from "../observability/Metrics.ts"
import { Settings } from "../Settings.ts"
import { type ConnectionState, HealthView, type VolumeHealth } from "./HealthView.ts"
import { inactiveReason, isActive, stagedThisBoot } from "./Lifecycle.ts"
import { recoverCurrent, staleIn } from "./Recovery.ts"
import type { VolumeCondition } from "./Requests.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

const STATES: ReadonlyArray<ConnectionState> = ["live", "connecting", "resetting", "deleting", "gone"]
const FIRST_RETRY_MS = 10_000
const MAX_RETRY_MS = 300_000

/** The volume's connection as one state: live if any path is live, else the first path's, else gone. */
export const connectionOf = (controllers: ReadonlyArray<Controller>): ConnectionState => {
  if (controllers.length === 0) return "gone"
  if (controllers.some((c) => c.state === "live")) return "live"
  const s = controllers[0]!.state
  return s === "deleting (no IO)" ? "deleting" : s
}

const secondsSince = (now: number, since: number | undefined) => since === undefined ? 0 : Math.round((now - since) / 1000)

/** A message a person can act on, on one line (tools' multi-line errors are folded). */
export const conditionOf = (h: Omit<VolumeHealth, "condition">, now: number): VolumeCondition => {
  const c = describeCondition(h, now)
  return { abnormal: c.abnormal, message: c.message.replace(/\s*\n\s*/g, "; ").trim() }
}

const describeCondition = (h: Omit<VolumeHealth, "condition">, now: number): VolumeCondition => {
  const paths = h.controllers.map((c) => c.name).join(", ")
  if (h.connection !== "live") {
    const detail = h.connection === "gone"
      ? `no controller connected to ${h.address} (the kernel gave up reconnecting); the node is reconnecting`
      : `controller ${paths} ${h.connection} for ${secondsSince(now, h.downSince)} s to ${h.address}`
    const retry = h.nextRecoveryAt > now ? `; next attempt in ${Math.ceil((h.nextRecoveryAt - now) / 1000)} s` : ""
    const last = h.lastRecovery !== undefined && !h.lastRecovery.ok ? `; recovery failed: ${h.lastRecovery.message}${retry}` : ""
    return { abnormal: true, message: `${detail}${last}` }
  }
  if (h.stale) {
    return {
      abnormal: true,
      message: h.lastRecovery !== undefined && !h.lastRecovery.ok
        ? `stale mount; recovery failed: ${h.lastRecovery.message}`
        : "stale mount; recovering"
    }
  }
  if (h.lastRecovery?.ok === true) {
    return { abnormal: false, message: `stale mount recovered at ${new Date(h.lastRecovery.at).toISOString()}` }
  }
  return { abnormal: false, message: `controller ${paths} live to ${h.address}` }
}

export class HealthMonitor extends Context.Service<HealthMonitor, {
  /** One pass over every staged volume (the loop calls it; tests call it directly). */
  readonly tick: Effect.Effect<void>
}>()("rds-csi/node/HealthMonitor") {
  static readonly layer = Layer.effect(
    HealthMonitor,
    Effect.gen(function*() {
      const ctx = yield* Effect.context<Settings | StageStore | Sysfs | Mounter | EventPoster | VolumeLocks | HealthView | NvmeTransport>()
      const store = yield* StageStore
      const sysfs = yield* Sysfs
      const mounter = yield* Mounter
      const events = yield* EventPoster
      const locks = yield* VolumeLocks
      const view = yield* HealthView

      const one = Effect.fn("HealthMonitor.volume")(function*(record: StageRecord, snapshot: NvmeSnapshot, mounts: ReadonlyArray<MountEntry>, bootId: string) {
        const controllers = snapshot.controllers.filter((c) => c.subsysnqn === record.nqn)
        if (!stagedThisBoot(record, bootId, mounts, snapshot)) return yield* earlierBoot(record, controllers)
        // An operation owns the volume now (an unstage disconnects it on purpose, a publish may
        // be recovering it): its controllers and mounts are in flux, judge them next tick.
        if ((yield* locks.inFlight).has(record.volumeId)) return connectionOf(controllers) === "live"
        // The list may predate an unstage that has finished since: only a volume still staged is watched.
        const latest = yield* store.get(record.volumeId)
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
        let lastRecovery = prev?.lastRecovery
        let nextRecoveryAt = prev?.nextRecoveryAt ?? 0
        let failedRecoveries = prev?.failedRecoveries ?? 0
        let stale = check.stale
        let recoveredNow = false
        if (needsRecovery && now >= nextRecoveryAt) {
          const result = yield* Effect.result(locks.withLock(record.volumeId, "recovery", recoverCurrent(record.volumeId, { connectionEvents: false })))
          if (result._tag === "Success" && result.success === undefined) return false // unstaged meanwhile
          // A recovery can outlast the backoff (attempts × connect timeout: ~30 s against a target
          // that is gone): the backoff runs from its end, or the next tick would start another at once.
          const ended = yield* Clock.currentTimeMillis
          if (result._tag === "Success") {
            lastRecovery = { at: ended, ok: true, message: "recovered" }
            failedRecoveries = 0
            nextRecoveryAt = 0
            stale = false
            recoveredNow = true
            yield* Metric.update(Metric.withAttributes(Metrics.staleRecoveries, { status: "ok" }), 1)
          } else if (result.failure._tag !== "VolumeBusy") {
            failedRecoveries++
            lastRecovery = { at: ended, ok: false, message: result.failure.message }
            nextRecoveryAt = ended + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (failedRecoveries - 1))
            yield* Metric.update(Metric.withAttributes(Metrics.staleRecoveries, { status: "failed" }), 1)
          }
        }
        // Re-read after a recovery: the controller set changed.
        const after = recoveredNow
          ? (yield* sysfs.snapshot).controllers.filter((c) => c.subsysnqn === record.nqn)
          : controllers
        const finalConnection = connectionOf(after)
        if (finalConnection === "live" && connection !== "live") {
          const downMs = now - (downSince ?? now)
          yield* events.postConnectionRecovery(record.volumeId, address, Math.max(1, Math.round(downMs / (record.reconnectDelay * 1000))))
          downSince = undefined
        }
        const health: Omit<VolumeHealth, "condition"> = {
          volumeId: record.volumeId,
          nqn: record.nqn,
          address,
          controllers: after.map((c) => ({ name: c.name, state: c.state })),
          connection: finalConnection,
          downSince: finalConnection === "live" ? undefined : downSince,
          stale,
          lastRecovery,
          nextRecoveryAt,
          failedRecoveries
        }
        const condition = conditionOf(health, yield* Clock.currentTimeMillis)
        yield* view.set({ ...health, condition })
        for (const state of STATES) {
          yield* Metric.update(Metric.withAttributes(Metrics.nvmeControllerState, { volume: record.volumeId, state }), state === finalConnection ? 1 : 0)
        }
        yield* Metric.update(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: record.volumeId }), condition.abnormal ? 1 : 0)
        return finalConnection === "live"
      }, (self, record) => Effect.annotateLogs(self, { volume: record.volumeId, nqn: record.nqn }))

      /**
       * A record of an earlier boot: its connection and mounts went with the reboot. Never
       * reconnected, remounted or re-bound from here (the volume may be attached to another node
       * by now, the pods gone); reported, until kubelet stages it again or unstages it.
       */
      const earlierBoot = Effect.fn("HealthMonitor.earlierBoot")(function*(record: StageRecord, controllers: ReadonlyArray<Controller>) {
        const health: Omit<VolumeHealth, "condition"> = {
          volumeId: record.volumeId,
          nqn: record.nqn,
          address: `${record.address}:${record.port}`,
          controllers: controllers.map((c) => ({ name: c.name, state: c.state })),
          connection: connectionOf(controllers),
          downSince: undefined,
          stale: false,
          lastRecovery: undefined,
          nextRecoveryAt: 0,
          failedRecoveries: 0
        }
        const condition: VolumeCondition = { abnormal: true, message: `${inactiveReason(record, false)}; the plugin does not reconnect it on its own` }
        yield* view.set({ ...health, condition })
        yield* Metric.update(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: record.volumeId }), 1)
        return false
      })

      const tick = Effect.gen(function*() {
        const records = yield* store.list
        const snapshot = yield* sysfs.snapshot
        const mounts = yield* mounter.mountinfo
        const bootId = yield* sysfs.bootId
        let live = 0
        const staged = records.filter(isActive)
        for (const r of staged) if (yield* one(r, snapshot, mounts, bootId)) live++
        const ids = new Set(staged.map((r) => r.volumeId))
        for (const [id] of yield* view.all) {
          if (ids.has(id)) continue
          for (const state of STATES) yield* Metric.update(Metric.withAttributes(Metrics.nvmeControllerState, { volume: id, state }), 0)
          yield* Metric.update(Metric.withAttributes(Metrics.volumeConditionAbnormal, { volume: id }), 0)
        }
        yield* view.retain(ids)
        yield* Metric.update(Metrics.nvmeConnectionsActive, live)
        yield* Metric.update(Metrics.stagedVolumes, staged.length)
      }).pipe(
        Effect.catchCause((cause) => Effect.logError("health monitor tick failed", cause)),
        Effect.provideContext(ctx),
        Effect.withSpan("HealthMonitor.tick")
      )
      return HealthMonitor.of({ tick })
    })
  )

  /** Runs the monitor every `settings.healthInterval` for the life of the scope. */
  static readonly run = Effect.gen(function*() {
    const monitor = yield* HealthMonitor
    const settings = yield* Settings
    yield* Effect.logInfo(`health monitor every ${Duration.format(settings.healthInterval)}`)
    yield* monitor.tick.pipe(Effect.repeat(Schedule.spaced(settings.healthInterval)), Effect.forkScoped)
  })
}
