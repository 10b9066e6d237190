/**
 * Resilience scenarios with the target going away (INSIDE the VM, against the real plugin with
 * events on the host's API server): a short outage of the subsystem (fault A) or of the whole
 * port (fault B) that the kernel rides out; an outage longer than ctrl_loss_tmo, after which the
 * kernel has deleted the controller and the device comes back renumbered (fault C); and a target
 * that never returns. Each checks the kernel (sysfs, mountinfo), the data through the published
 * path, /metrics, NodeGetVolumeStats, and — through the host — `kubectl describe pvc`.
 */
import { attachedOf, call, ctrlsOf, mountsAt, type Recorder, since, stateFileOf, waitFor } from "./harness.ts"
import { expectOnHost, type Metrics } from "./hostLink.ts"
import {
  type Attached, checkIo, type Env, gone, lit, live, LONG, metrics, metricsUntil, mountIdAt, NODE_NAME, notLive, nvmet, sleep, stageAndPublish,
  tearDown, type Vol, volume, waitCtrl, type Written, writeThrough
} from "./resilience-common.ts"
import * as fs from "node:fs"

const ADDRESS = "127.0.0.1:4420"
const OUTAGE_MS = 2500

const prefixOf = (v: Vol) => lit(`[${v.vol}] on [${NODE_NAME}]: `)

/** Stats of the published path: the VolumeCondition kubelet would read. */
export const conditionOf = async (env: Env, v: Vol) => {
  const o = await call(() => env.plugin.client.NodeGetVolumeStats({ volume_id: v.vol, volume_path: v.target }, LONG))
  return { ms: o.ms, code: o.code, details: o.details, abnormal: o.response?.volume_condition?.abnormal, message: o.response?.volume_condition?.message ?? "" }
}

/** Faults A and B: the target is away for 2.5 s; the kernel reconnects the same controller. */
const shortOutage = (fault: "A" | "B") => async (env: Env, r: Recorder): Promise<void> => {
  const v = volume(env, fault === "A" ? "res-a" : "res-b")
  const a = await stageAndPublish(env, r, v)
  const before = writeThrough(v, "before")
  const m0 = await metricsUntil((m) => m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" }) === 1, 5000)
  r.check(m0.ok, "/metrics before: controller_state{state=live} = 1, condition_abnormal = 0 for the volume",
    `live ${m0.m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" })}, abnormal ${m0.m.get("rds_csi_volume_condition_abnormal", { volume: v.vol })}, active ${m0.m.get("rds_csi_nvme_connections_active")}`)

  const t0 = performance.now()
  if (fault === "A") await nvmet("unlink", v.nqn)
  else await nvmet("port-down")
  const down = await waitCtrl(v.nqn, notLive, OUTAGE_MS)
  r.check(down !== undefined, `sysfs: ${a.ctrl.name} leaves live after ${fault === "A" ? "the subsystem is unlinked from the port" : "the port is deleted"}`,
    `${JSON.stringify(ctrlsOf(v.nqn))} after ${since(t0)} ms`)
  // The monitor (every 1 s) must see it while it lasts: gauges and the VolumeCondition move.
  const during = await metricsUntil((m) => m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" }) === 0 &&
    m.get("rds_csi_volume_condition_abnormal", { volume: v.vol }) === 1, OUTAGE_MS - since(t0) + 500)
  const state = ["connecting", "resetting"].find((s) => during.m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: s }) === 1)
  r.check(during.ok && state !== undefined, `/metrics during the outage: controller_state{state=${state ?? "?"}} = 1, live = 0, condition_abnormal = 1`,
    `active ${during.m.get("rds_csi_nvme_connections_active")} (before ${m0.m.get("rds_csi_nvme_connections_active")})`)
  const cond = await conditionOf(env, v)
  r.check(cond.code === 0 && cond.abnormal === true && new RegExp(`controller ${a.ctrl.name} (connecting|resetting) for \\d+ s to ${lit(ADDRESS)}`).test(cond.message),
    "NodeGetVolumeStats during the outage: VolumeCondition abnormal, says which controller, what state, how long, where", `"${cond.message}" (${cond.ms} ms)`)
  await sleep(OUTAGE_MS - since(t0))
  const tBack = performance.now()
  if (fault === "A") await nvmet("link", v.nqn)
  else await nvmet("port-up")
  r.time("target away (ms)", Math.round(tBack - t0))
  const back = await waitCtrl(v.nqn, live, 30_000)
  r.check(back !== undefined, `sysfs: ${a.ctrl.name} live again`, `${JSON.stringify(ctrlsOf(v.nqn))}`)
  r.time("target back → controller live (sysfs)", back ?? -1)

  await expectOnHost(r, {
    what: "ConnectionFailure then ConnectionRecovery; no StaleMountDetected, no RecoveryFailed",
    target: v.pvc,
    expect: [
      { type: "Warning", reason: "ConnectionFailure", message: `^${prefixOf(v)}Connection to ${lit(ADDRESS)} failed: controller ${a.ctrl.name} is (connecting|resetting)$` },
      { type: "Normal", reason: "ConnectionRecovery", message: `^${prefixOf(v)}Connection to ${lit(ADDRESS)} recovered after \\d+ attempts$` }
    ],
    absent: [{ reason: "StaleMountDetected" }, { reason: "RecoveryFailed" }],
    ordered: true,
    timeoutMs: 20_000
  })

  const now = attachedOf(v.nqn)
  r.check(now?.ctrl.name === a.ctrl.name && now.ns.name === a.ns.name && now.ns.devT === a.ns.devT,
    "same controller and same device after the outage (the kernel reconnected it; nothing renumbered)", `${now?.ctrl.name} /dev/${now?.ns.name} (${now?.ns.devT})`)
  r.check(mountIdAt(v.staging) === a.stagingMountId && mountIdAt(v.target) === a.targetMountId,
    "no remount: the staging and published mounts keep their mount IDs", `staging ${mountIdAt(v.staging)} target ${mountIdAt(v.target)}`)
  checkIo(r, v, [before], `after fault ${fault}`)

  const after = await metricsUntil((m) => m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" }) === 1 &&
    m.get("rds_csi_volume_condition_abnormal", { volume: v.vol }) === 0, 5000)
  const d = (name: string, labels: Record<string, string> = {}) => after.m.get(name, labels) - m0.m.get(name, labels)
  r.check(after.ok && d("rds_csi_events_posted_total", { reason: "ConnectionFailure" }) >= 1 && d("rds_csi_events_posted_total", { reason: "ConnectionRecovery" }) >= 1 &&
    d("rds_csi_stale_mounts_detected_total") === 0 && d("rds_csi_volume_operations_total", { operation: "stage" }) === 0,
    "/metrics after: live again, condition normal; events_posted ConnectionFailure +1, ConnectionRecovery +1; no stale mount; no stage",
    `ConnectionFailure +${d("rds_csi_events_posted_total", { reason: "ConnectionFailure" })}, ConnectionRecovery +${d("rds_csi_events_posted_total", { reason: "ConnectionRecovery" })}, stale +${d("rds_csi_stale_mounts_detected_total")}, stage +${d("rds_csi_volume_operations_total", { operation: "stage" })}, active ${after.m.get("rds_csi_nvme_connections_active")}`)
  await tearDown(env, r, v)
}

export const faultA = shortOutage("A")
export const faultB = shortOutage("B")

/**
 * After fault C (the kernel deleted the controller, the target is back): waits until the plugin
 * alone has reconnected and re-bound the published path to a new device, then checks the
 * renumbering, the remount, the state file, the data, the PVC's events and /metrics (counted
 * from `sinceMetrics`, a scrape of the instance doing the recovery).
 */
export const expectRecovered = async (env: Env, r: Recorder, v: Vol, old: Attached, data: ReadonlyArray<Written>, tBack: number, sinceMetrics: Metrics, label: string): Promise<void> => {
  const recovered = await waitFor(() => {
    const now = attachedOf(v.nqn)
    const t = mountsAt(v.target)[0]
    return now !== undefined && t !== undefined && t.devT === now.ns.devT && now.ns.devT !== old.ns.devT ? now : undefined
  }, 60_000, 20)
  r.check(recovered !== undefined, `${label}: the plugin reconnected and re-bound the published path to the new device, with no RPC from outside`,
    JSON.stringify({ ctrls: ctrlsOf(v.nqn), target: mountsAt(v.target).map((m) => m.devT) }))
  r.time(`${label}: target back → published path on the new device`, since(tBack))
  const oldDev = `/dev/${old.ns.name} (${old.ns.devT})`
  const newDev = `/dev/${recovered!.ns.name} (${recovered!.ns.devT})`
  r.device(`${v.vol} old device`, `${old.ctrl.name} ${oldDev}`)
  r.device(`${v.vol} new device`, `${recovered!.ctrl.name} ${newDev}`)
  r.check(recovered!.ns.name !== old.ns.name || recovered!.ctrl.name !== old.ctrl.name, `${label}: the device was renumbered`, `${oldDev} → ${newDev}`)
  const staging = mountsAt(v.staging)
  r.check(staging.length === 1 && staging[0]!.devT === recovered!.ns.devT, `${label}: staging path remounted on the new device (exactly one mount)`,
    JSON.stringify(staging.map((m) => m.devT)))
  // The record is written once the recovery has verified its work, a moment after the re-bind.
  const readRecord = () => (JSON.parse(fs.readFileSync(stateFileOf(v.vol), "utf8")) as { device: { name: string; devT: string } }).device
  const recorded = await waitFor(() => {
    const d = readRecord()
    return d.name === recovered!.ns.name && d.devT === recovered!.ns.devT ? d : undefined
  }, 10_000, 50)
  r.check(recorded !== undefined, `${label}: state file now records the new device`, JSON.stringify(readRecord()))
  checkIo(r, v, data, label)

  await expectOnHost(r, {
    what: `${label}: StaleMountDetected naming the old and the new device, ConnectionRecovery; no RecoveryFailed`,
    target: v.pvc,
    expect: [
      { type: "Normal", reason: "StaleMountDetected", message: `^${prefixOf(v)}Stale mount detected - old device: ${lit(oldDev)}, new device: ${lit(newDev)}$` },
      { type: "Normal", reason: "ConnectionRecovery", message: `^${prefixOf(v)}Connection to ${lit(ADDRESS)} recovered after \\d+ attempts$` }
    ],
    absent: [{ reason: "RecoveryFailed" }],
    ordered: true,
    timeoutMs: 20_000
  })

  const after = await metricsUntil((m) => m.get("rds_csi_volume_condition_abnormal", { volume: v.vol }) === 0 &&
    m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" }) === 1, 5000)
  const d = (n: string, l: Record<string, string> = {}) => after.m.get(n, l) - sinceMetrics.get(n, l)
  r.check(after.ok && d("rds_csi_stale_mounts_detected_total") >= 1 && d("rds_csi_stale_recoveries_total", { status: "ok" }) >= 1 &&
    d("rds_csi_nvme_connects_total", { status: "ok" }) >= 1 && d("rds_csi_events_posted_total", { reason: "StaleMountDetected" }) >= 1 &&
    d("rds_csi_volume_operations_total", { operation: "stage" }) === 0 && d("rds_csi_volume_operations_total", { operation: "publish" }) === 0,
    `${label}: /metrics: stale_mounts_detected +1, stale_recoveries{ok} +1, the plugin's own nvme connect +1, StaleMountDetected posted, no stage or publish RPC; live, condition normal`,
    `stale +${d("rds_csi_stale_mounts_detected_total")}, recoveries ok +${d("rds_csi_stale_recoveries_total", { status: "ok" })}, connects ok +${d("rds_csi_nvme_connects_total", { status: "ok" })}, posted StaleMountDetected +${d("rds_csi_events_posted_total", { reason: "StaleMountDetected" })}, stage +${d("rds_csi_volume_operations_total", { operation: "stage" })}, publish +${d("rds_csi_volume_operations_total", { operation: "publish" })}`)
  const cond = await conditionOf(env, v)
  r.check(cond.code === 0 && cond.abnormal === false && /stale mount recovered at /.test(cond.message),
    `${label}: NodeGetVolumeStats after: condition normal, says the stale mount was recovered and when`, `"${cond.message}"`)
}

/**
 * Fault C: the target is away longer than the volume's ctrlLossTmo (5 s): the kernel deletes the
 * controller; when the target is back, the plugin alone must reconnect, find the mounts stale
 * (old device ≠ new device), remount and re-bind, with the data intact.
 */
export const faultC = async (env: Env, r: Recorder): Promise<void> => {
  const v = volume(env, "res-c")
  const a = await stageAndPublish(env, r, v, { ctrlLossTmo: "5", reconnectDelay: "1" })
  const before = writeThrough(v, "before")
  const m0 = await metrics()
  const t0 = performance.now()
  await nvmet("unlink", v.nqn)
  const down = await waitCtrl(v.nqn, notLive, 5000)
  r.check(down !== undefined, `sysfs: ${a.ctrl.name} reconnecting after the subsystem is unlinked`, JSON.stringify(ctrlsOf(v.nqn)))
  const lost = await waitCtrl(v.nqn, gone, 30_000)
  r.check(lost !== undefined, `sysfs: the kernel deleted ${a.ctrl.name} (ctrl_loss_tmo 5 s)`, `${since(t0)} ms after the unlink`)
  r.time("unlink → controller deleted by the kernel", since(t0))
  const tBack = performance.now()
  await nvmet("link", v.nqn)
  await expectRecovered(env, r, v, a, [before], tBack, m0, "after fault C")
  await expectOnHost(r, {
    what: "ConnectionFailure came first",
    target: v.pvc,
    expect: [
      { type: "Warning", reason: "ConnectionFailure", message: `^${prefixOf(v)}Connection to ${lit(ADDRESS)} failed: ` },
      { type: "Normal", reason: "StaleMountDetected" }
    ],
    ordered: true,
    timeoutMs: 5000
  })
  await tearDown(env, r, v)
}

/** The target never comes back: RecoveryFailed, an abnormal condition that says why; unpublish and unstage still work. */
export const neverReturns = async (env: Env, r: Recorder): Promise<void> => {
  const v = volume(env, "res-n")
  const a = await stageAndPublish(env, r, v, { ctrlLossTmo: "5", reconnectDelay: "1" })
  writeThrough(v, "before")
  const t0 = performance.now()
  await nvmet("unlink", v.nqn)
  const lost = await waitCtrl(v.nqn, gone, 30_000)
  r.check(lost !== undefined, `sysfs: the kernel deleted ${a.ctrl.name} (ctrl_loss_tmo 5 s)`, `${since(t0)} ms after the unlink`)

  await expectOnHost(r, {
    what: "ConnectionFailure, then RecoveryFailed with the attempts and the last error",
    target: v.pvc,
    expect: [
      { type: "Warning", reason: "ConnectionFailure", message: `^${prefixOf(v)}Connection to ${lit(ADDRESS)} failed: ` },
      { type: "Warning", reason: "RecoveryFailed", message: `^${prefixOf(v)}Recovery failed after \\d+ attempts: .*${lit(ADDRESS)}` }
    ],
    absent: [{ reason: "ConnectionRecovery" }, { reason: "StaleMountDetected" }],
    ordered: true,
    timeoutMs: 90_000
  })
  r.time("unlink → RecoveryFailed on the PVC", since(t0))
  const m = await metricsUntil((x) => x.get("rds_csi_volume_condition_abnormal", { volume: v.vol }) === 1 &&
    x.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "gone" }) === 1 && x.get("rds_csi_stale_recoveries_total", { status: "failed" }) >= 1, 10_000)
  r.check(m.ok && m.m.get("rds_csi_events_posted_total", { reason: "RecoveryFailed" }) >= 1,
    "/metrics: condition_abnormal = 1, controller_state{state=gone} = 1, stale_recoveries{failed} ≥ 1, RecoveryFailed posted",
    `abnormal ${m.m.get("rds_csi_volume_condition_abnormal", { volume: v.vol })}, gone ${m.m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "gone" })}, failed ${m.m.get("rds_csi_stale_recoveries_total", { status: "failed" })}, posted ${m.m.get("rds_csi_events_posted_total", { reason: "RecoveryFailed" })}`)
  const cond = await conditionOf(env, v)
  r.time("NodeGetVolumeStats with the target gone", cond.ms)
  r.check(cond.code === 0 && cond.abnormal === true && cond.message.includes(ADDRESS) && /recovery failed|no controller/i.test(cond.message),
    "NodeGetVolumeStats: VolumeCondition abnormal with a message that says where and what failed", `"${cond.message}" (${cond.ms} ms)`)
  await tearDown(env, r, v)
  r.check(!fs.existsSync(stateFileOf(v.vol)), "stage record removed", stateFileOf(v.vol))
  await nvmet("link", v.nqn)
}
