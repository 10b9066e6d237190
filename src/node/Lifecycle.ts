/**
 * Where a stage record stands, as pure predicates shared by stage, publish, recovery and the
 * health monitor: is it a volume this boot of the node staged and still keeps staged?
 *
 * May import: effect, mount, nvme, node.
 */
import { Effect } from "effect"
import { type MountEntry, Mounter } from "../mount/Mounter.ts"
import { type NvmeSnapshot, Sysfs } from "../nvme/Sysfs.ts"
import { entryAt } from "./MountOps.ts"
import type { StageRecord } from "./StageStore.ts"

/** Where the volume is mounted by its record (the staging path, each published target), and `more`. */
export const mountPointsOf = (record: StageRecord, ...more: ReadonlyArray<string>): ReadonlyArray<string> => [
  record.stagingPath,
  ...record.publishedTargets.map((t) => t.path),
  ...more
]

/**
 * True when the record was written in this boot of the kernel. A record without a boot id
 * (written by an older plugin) counts as this boot's only while something of it is still
 * there: its staging mount, a published target, or a controller of its NQN — none of which
 * survives a reboot.
 */
export const stagedThisBoot = (record: StageRecord, bootId: string, mounts: ReadonlyArray<MountEntry>, snapshot: NvmeSnapshot): boolean => {
  if (record.bootId !== undefined) return record.bootId === bootId
  if (entryAt(mounts, record.stagingPath) !== undefined) return true
  if (record.publishedTargets.some((t) => entryAt(mounts, t.path) !== undefined)) return true
  return snapshot.controllers.some((c) => c.subsysnqn === record.nqn)
}

/**
 * stagedThisBoot for one record, reading only what it needs: the boot id, and the mount table
 * and sysfs only for a record written before boot ids were recorded (publish and stage are hot
 * paths; they read those again themselves when they need them).
 */
export const isThisBoot = Effect.fn("Lifecycle.isThisBoot")(function*(record: StageRecord) {
  const sysfs = yield* Sysfs
  const bootId = yield* sysfs.bootId
  if (record.bootId !== undefined) return record.bootId === bootId
  return stagedThisBoot(record, bootId, yield* (yield* Mounter).mountsAt(mountPointsOf(record)), yield* sysfs.snapshot)
})

/** Staged, finished, and not being unstaged: the only records publish, stats and recovery act on. */
export const isActive = (record: StageRecord): boolean => record.complete && record.unstaging !== true

/** Why a record is not one to recover or publish, for messages; undefined when it is. */
export const inactiveReason = (record: StageRecord, thisBoot: boolean): string | undefined => {
  if (!thisBoot) return "staged before the node restarted; only a new NodeStageVolume from kubelet reconnects it"
  if (record.unstaging === true) return "NodeUnstageVolume started and has not finished; it must be retried"
  if (!record.complete) return "NodeStageVolume has not finished; it must succeed first"
  return undefined
}
