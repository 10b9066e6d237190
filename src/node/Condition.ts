/**
 * The VolumeCondition of a volume as the health monitor reads it: a controller-state summary
 * and the one-line message a person can act on. Pure functions over a HealthView entry.
 *
 * May import: nvme (types), node.
 */
import { type Controller, type NvmeSnapshot, subsystemIn } from "../nvme/Sysfs.ts"
import type { ConnectionState, VolumeHealth } from "./HealthView.ts"
import { inactiveReason } from "./Lifecycle.ts"
import type { VolumeCondition } from "./Requests.ts"
import type { StageRecord } from "./StageStore.ts"

/** The volume's connection as one state: live if any path is live, else the first path's, else gone. */
export const connectionOf = (controllers: ReadonlyArray<Controller>): ConnectionState => {
  if (controllers.length === 0) return "gone"
  if (controllers.some((c) => c.state === "live")) return "live"
  const s = controllers[0]!.state
  return s === "deleting (no IO)" ? "deleting" : s
}

/**
 * The order a health pass looks at volumes in: those whose connection is not live first (in
 * their own order), so their recoveries start before the pass has looked at every healthy one.
 */
export const downFirst = (records: ReadonlyArray<StageRecord>, snapshot: NvmeSnapshot): ReadonlyArray<StageRecord> => {
  const isDown = records.map((r) => connectionOf(subsystemIn(snapshot, r.nqn).controllers) !== "live")
  return [...records.filter((_, i) => isDown[i]), ...records.filter((_, i) => !isDown[i])]
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
  // The host's paths are fine, but a pod still reads and writes the dead file system.
  if (h.oldMountHeld !== undefined) return { abnormal: true, message: h.oldMountHeld }
  if (h.lastRecovery?.ok === true) {
    return { abnormal: false, message: `stale mount recovered at ${new Date(h.lastRecovery.at).toISOString()}` }
  }
  return { abnormal: false, message: `controller ${paths} live to ${h.address}` }
}


/** The reading of a record of an earlier boot: abnormal, waiting for kubelet; never recovered from here. */
export const earlierBootHealth = (record: StageRecord, controllers: ReadonlyArray<Controller>): VolumeHealth => ({
  volumeId: record.volumeId,
  nqn: record.nqn,
  address: `${record.address}:${record.port}`,
  controllers: controllers.map((c) => ({ name: c.name, state: c.state })),
  connection: connectionOf(controllers),
  downSince: undefined,
  stale: false,
  lastRecovery: undefined,
  nextRecoveryAt: 0,
  failedRecoveries: 0,
  condition: { abnormal: true, message: `${inactiveReason(record, false)}; the plugin does not reconnect it on its own` }
})
