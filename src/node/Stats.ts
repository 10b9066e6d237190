/**
 * NodeGetVolumeStats and NodeExpandVolume as CSI-agnostic use cases. Stats reports usage
 * (statfs, or the device size for raw block) and the VolumeCondition: abnormal with a message
 * a person can act on when the controller is not live or the mounts are stale; a stale volume
 * is recovered on the spot when its lock is free.
 *
 * May import: domain, nvme, mount, node.
 */
import { Clock, Effect } from "effect"
import { FailedPrecondition, VolumeNotFound } from "../domain/Errors.ts"
import { Mounter } from "../mount/Mounter.ts"
import { Sysfs } from "../nvme/Sysfs.ts"
import { devicePath, entryAt } from "./MountOps.ts"
import { HealthView } from "./HealthView.ts"
import { isActive } from "./Lifecycle.ts"
import { checkStale, recoverCurrent } from "./Recovery.ts"
import { restartMessage, staleConsumers } from "./StaleConsumers.ts"
import type { ExpandRequest, StatsRequest, VolumeCondition, VolumeStats, VolumeUsage } from "./Requests.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

const isVolumePath = (record: StageRecord, path: string): boolean =>
  record.stagingPath === path || record.publishedTargets.some((t) => t.path === path)

/**
 * NOT_FOUND when nothing is at the volume path (kubelet removed it, or the pod is gone): stats
 * of a block volume would otherwise read the device's size and answer as if the path were there.
 */
const requirePath = Effect.fn("NodeVolumes.requirePath")(function*(req: StatsRequest) {
  const kind = yield* (yield* Mounter).pathKind(req.volumePath)
  if (kind === "missing") {
    return yield* new VolumeNotFound({ volumeId: req.volumeId, detail: `volume path ${req.volumePath} does not exist` })
  }
})

/** The controller side of the condition: abnormal unless a controller of the volume is live. */
const connectionCondition = Effect.fn("NodeVolumes.connectionCondition")(function*(record: StageRecord) {
  const sysfs = yield* Sysfs
  const ctrls = (yield* sysfs.snapshotOf(record.nqn)).controllers
  const address = `${record.address}:${record.port}`
  if (ctrls.some((c) => c.state === "live")) return undefined
  if (ctrls.length === 0) return `no controller connected to ${address} for ${record.nqn}`
  return ctrls.map((c) => `controller ${c.name} ${c.state} to ${address}`).join("; ")
})

/** Usage and condition of a staged or published volume path. */
export const stats = Effect.fn("NodeVolumes.stats")(function*(req: StatsRequest) {
  const store = yield* StageStore
  const mounter = yield* Mounter
  const locks = yield* VolumeLocks
  const view = yield* HealthView
  const record = yield* store.get(req.volumeId)
  if (record === undefined || !isActive(record) || !isVolumePath(record, req.volumePath)) {
    return yield* new VolumeNotFound({ volumeId: req.volumeId, detail: `${req.volumePath} is not a staged or published path of this volume on this node` })
  }
  yield* requirePath(req)
  const block = record.accessType === "Block"
  if (!block && entryAt(yield* mounter.mountsAt([req.volumePath]), req.volumePath) === undefined) {
    return yield* new VolumeNotFound({ volumeId: req.volumeId, detail: `nothing is mounted at ${req.volumePath}` })
  }

  let current = record
  let condition: VolumeCondition | undefined
  const check = yield* checkStale(record)
  const health = yield* view.get(req.volumeId)
  const now = yield* Clock.currentTimeMillis
  // The monitor's last recovery failed, its backoff has not run out and there is still no device:
  // another attempt now would hold this call for a whole recovery (attempts × connect timeout,
  // ~30 s against a gone target) and post its events again. Report what the monitor knows.
  const backingOff = check.stale && check.current === undefined && health?.lastRecovery?.ok === false && now < health.nextRecoveryAt
  if (backingOff) {
    condition = health!.condition.abnormal
      ? health!.condition
      : { abnormal: true, message: `stale mount (${check.why}); recovery failed: ${health!.lastRecovery!.message}` }
  } else if (check.stale) {
    const attempt = yield* Effect.result(locks.withLock(record.volumeId, "stats-recovery", recoverCurrent(record.volumeId)))
    if (attempt._tag === "Success") {
      if (attempt.success === undefined) {
        return yield* new VolumeNotFound({ volumeId: req.volumeId, detail: "not staged on this node now (unstaged meanwhile, or staged before the node restarted)" })
      }
      current = attempt.success
      const at = new Date(yield* Clock.currentTimeMillis).toISOString()
      // The host's paths are fine now; a container holding a private copy of the old mount is not.
      const held = yield* staleConsumers(current).pipe(Effect.orElseSucceed(() => undefined))
      condition = held !== undefined && held.pods.length > 0
        ? { abnormal: true, message: restartMessage(held, `/dev/${current.device.name} (${current.device.devT})`) }
        : { abnormal: false, message: `stale mount recovered at ${at} (${check.why})` }
    } else {
      const e = attempt.failure
      // Busy: the monitor is recovering it; its reading says where and what went wrong.
      const known = health?.condition.abnormal === true ? `${health.condition.message}; ` : ""
      condition = {
        abnormal: true,
        message: e._tag === "VolumeBusy" ? `${known}stale mount, recovery in progress: ${check.why}` : `recovery failed: ${e.message}`
      }
    }
  }
  // The health monitor's reading is the one source of the condition (SPEC §4.4); before its
  // first tick, read the controller state here.
  if (condition === undefined) condition = health?.condition
  if (condition === undefined) {
    const connection = yield* connectionCondition(current)
    condition = connection === undefined ? { abnormal: false, message: "volume is healthy" } : { abnormal: true, message: connection }
  }

  // Raw block: the size of the device that is this volume's by identity now, never of whatever
  // carries the recorded name (after a renumbering that may be another volume's disk).
  const blockDevice = current !== record ? current.device.name : check.stale ? check.current?.name : record.device.name
  const usage: VolumeUsage | undefined = block
    ? blockDevice === undefined ? undefined : yield* mounter.deviceSize(devicePath(blockDevice)).pipe(
      Effect.map((totalBytes): VolumeUsage => ({ _tag: "Block", totalBytes })),
      Effect.orElseSucceed(() => undefined)
    )
    : yield* mounter.statfs(req.volumePath).pipe(
      Effect.map((s): VolumeUsage => ({
        _tag: "Filesystem",
        totalBytes: s.totalBytes,
        usedBytes: s.usedBytes,
        availableBytes: s.availableBytes,
        totalInodes: s.totalInodes,
        usedInodes: s.usedInodes,
        freeInodes: s.freeInodes
      })),
      Effect.orElseSucceed(() => undefined)
    )
  if (usage === undefined && !condition.abnormal) {
    condition = { abnormal: true, message: `cannot read usage of ${req.volumePath}` }
  }
  return { usage, condition } satisfies VolumeStats
})

/** Grows the file system to the device's size (the controller grew the namespace first). */
export const expand = Effect.fn("NodeVolumes.expand")(function*(req: ExpandRequest) {
  const store = yield* StageStore
  const mounter = yield* Mounter
  const staged = yield* store.get(req.volumeId)
  if (staged === undefined || !isActive(staged) || !isVolumePath(staged, req.volumePath)) {
    return yield* new VolumeNotFound({ volumeId: req.volumeId, detail: `${req.volumePath} is not a staged or published path of this volume on this node` })
  }
  // Grow what is this volume's by identity now: a renumbered device is recovered first.
  const record = (yield* checkStale(staged)).stale ? yield* recoverCurrent(staged.volumeId) : staged
  if (record === undefined) {
    return yield* new VolumeNotFound({ volumeId: req.volumeId, detail: "not staged on this node now (staged before the node restarted)" })
  }
  const device = devicePath(record.device.name)
  const size = yield* mounter.deviceSize(device)
  if (req.requiredBytes !== undefined && size < req.requiredBytes) {
    return yield* new FailedPrecondition({
      volumeId: req.volumeId,
      detail: `device ${device} has ${size} bytes, ${req.requiredBytes} required: the namespace has not grown on this node yet`
    })
  }
  if (record.accessType === "Mount" && record.fsType !== undefined) {
    yield* mounter.resize(device, record.fsType, record.stagingPath)
  }
  return { capacityBytes: size }
})
