/**
 * npm run demo, inside the VM (real kernel): the whole driver. The project's RDS emulator runs
 * on the kernel's NVMe/TCP target behind sshd; `rds-csi controller` creates the volume over SSH
 * and fences it to this node; the node plugin (events on, as its ServiceAccount, to the host's
 * API server through qemu's forward) stages and publishes it, data is written, the target goes
 * away for longer than the volume's ctrlLossTmo (the kernel deletes the controller; the device
 * comes back renumbered), the plugin recovers it by itself, and the volume is unpublished and
 * deleted again. Every step is printed as a `[demo] ` line for the host to show; `[demo]
 * describe-pvc` asks the host to print `kubectl describe pvc`.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { CFG, startController, startEmulator, stopAll, STORAGE_ROOT } from "../../test/e2e/guest/controllerHarness.ts"
import {
  attachedOf, ctrlsOf, mountCap, mountsAt, pattern, PREFIX, readAt, sha, stagingPath, startPlugin, targetPath, waitFor, writeSynced
} from "../../test/e2e/guest/harness.ts"
import { scrape } from "../../test/e2e/guest/hostLink.ts"
import { METRICS_ADDRESS, resilienceFlags } from "../../test/e2e/guest/resilience-common.ts"

const [outDir, VOL] = process.argv.slice(2) as [string, string]
const NQN = `${PREFIX}${VOL}`
const CTRL_LOSS_TMO = 5
const OUTAGE_S = 12
const say = (line: string) => console.log(`[demo] ${line}`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let failures = 0
const check = (ok: boolean, what: string) => {
  say(`${ok ? "OK  " : "FAIL"} ${what}`)
  if (!ok) failures++
}

const HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:de300000-0000-4000-8000-000000000001"
/** The emulator's NVMe/TCP port in configfs (it names ports by TCP port). */
const PORT_LINK = `${CFG}/ports/4420/subsystems/${NQN}`

const main = async () => {
  say(`guest: kernel ${fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}; starting the RDS emulator on the kernel's NVMe/TCP target (nvmet) behind sshd`)
  const flags = await startEmulator(outDir)
  say(`rds-csi emulator: RouterOS over ssh on 127.0.0.1:2222, disks become nvmet subsystems on 127.0.0.1:4420; controller flags: ${flags.join(" ")}`)
  const controller = await startController(outDir, flags)
  say("rds-csi controller: Probe ready (it reached the emulator over SSH, host key pinned)")
  const plugin = await startPlugin(outDir, { editFlags: (f) => [...resilienceFlags(path.join(outDir, "guest-node.kubeconfig"), false)(f), "--host-nqn", HOST_NQN] })
  say(`rds-csi node started (pid ${plugin.pid}): Probe ready after ${plugin.readyMs} ms; events go to the API server as system:serviceaccount:rds-csi:rds-csi-node`)
  const c = plugin.client
  const nodeId = (await c.NodeGetInfo({})).node_id
  const staging = stagingPath(VOL)
  const target = targetPath(VOL)

  let t = performance.now()
  const created = await controller.CreateVolume({
    name: VOL,
    capacity_range: { required_bytes: 128 * 1024 * 1024 },
    volume_capabilities: [mountCap("ext4")],
    parameters: { ctrlLossTmo: String(CTRL_LOSS_TMO), reconnectDelay: "1" }
  }, { deadlineMs: 300_000 })
  const context = created.volume.volume_context
  say(`CreateVolume over SSH in ${Math.round(performance.now() - t)} ms: /disk add … slot=${VOL} → ${Number(created.volume.capacity_bytes) / 2 ** 20} MiB, sparse file ${STORAGE_ROOT}/storage-pool/k8s/${VOL}.img, subsystem ${NQN}; volume_context ${JSON.stringify(context)}`)
  t = performance.now()
  await controller.ControllerPublishVolume({ volume_id: VOL, node_id: nodeId, volume_capability: mountCap("ext4"), volume_context: context }, { deadlineMs: 300_000 })
  const allowed = fs.readdirSync(`${CFG}/subsystems/${NQN}/allowed_hosts`)
  say(`ControllerPublishVolume to node_id ${nodeId} in ${Math.round(performance.now() - t)} ms: the target now admits only ${allowed.join(", ")} (attr_allow_any_host=${fs.readFileSync(`${CFG}/subsystems/${NQN}/attr_allow_any_host`, "utf8").trim()})`)
  check(allowed.length === 1 && allowed[0] === HOST_NQN, "fenced at the target to this node's host NQN")

  t = performance.now()
  await c.NodeStageVolume({ volume_id: VOL, staging_target_path: staging, volume_capability: mountCap("ext4"), volume_context: context } as never, { deadlineMs: 120_000 })
  const before = attachedOf(NQN)!
  say(`NodeStageVolume: connected ${before.ctrl.name} (${before.ctrl.state}), device /dev/${before.ns.name} (${before.ns.devT}), ext4 made and mounted in ${Math.round(performance.now() - t)} ms; ctrlLossTmo=${CTRL_LOSS_TMO}s`)
  t = performance.now()
  await c.NodePublishVolume({ volume_id: VOL, staging_target_path: staging, target_path: target, volume_capability: mountCap("ext4"), readonly: false } as never)
  say(`NodePublishVolume: bound at ${target} in ${Math.round(performance.now() - t)} ms`)

  const data = pattern("demo-database", 256 * 1024)
  writeSynced(path.join(target, "db.bin"), data)
  say(`wrote 256 KiB through the pod's path (sha256 ${sha(data)})`)

  say(`cutting the storage network: the target stops exporting the volume for ${OUTAGE_S} s (longer than ctrlLossTmo=${CTRL_LOSS_TMO}s)`)
  fs.unlinkSync(PORT_LINK)
  const seen: Array<string> = []
  const cutAt = performance.now()
  while (performance.now() - cutAt < OUTAGE_S * 1000) {
    const now = ctrlsOf(NQN).map((x) => `${x.name} ${x.state}`).join(", ") || "no controller (deleted by the kernel)"
    if (seen.at(-1) !== now) {
      seen.push(now)
      say(`  kernel (sysfs) +${((performance.now() - cutAt) / 1000).toFixed(1)}s: ${now}`)
    }
    await sleep(200)
  }
  fs.symlinkSync(`${CFG}/subsystems/${NQN}`, PORT_LINK)
  say("the target exports the volume again; nothing is called from outside: the plugin's health monitor takes it from here")
  const back = await waitFor(() => {
    const a = attachedOf(NQN)
    const m = mountsAt(staging)[0]
    return a !== undefined && a.ctrl.state === "live" && m !== undefined && m.devT === a.ns.devT ? a : undefined
  }, 120_000, 250)
  check(back !== undefined, back === undefined
    ? "the volume did not come back within 120 s"
    : `recovered ${((performance.now() - cutAt) / 1000 - OUTAGE_S).toFixed(1)} s after the target returned: controller ${before.ctrl.name} → ${back.ctrl.name}, device /dev/${before.ns.name} (${before.ns.devT}) → /dev/${back.ns.name} (${back.ns.devT}), staging and pod path re-mounted`)

  await sleep(3000)
  say("describe-pvc")

  type Stats = { volume_condition: { abnormal: boolean; message: string } }
  const readStats = () => c.NodeGetVolumeStats({ volume_id: VOL, volume_path: target } as never) as Promise<Stats>
  let stats = await readStats()
  const firstRead = performance.now()
  if (stats.volume_condition.abnormal) {
    // The condition follows the health monitor's reading of the connection, which can trail the
    // recovery by a few ticks after an outage that closed the target's port: show it settle.
    say(`NodeGetVolumeStats right after: VolumeCondition { abnormal: true, message: "${stats.volume_condition.message}" }`)
    const settled = await waitFor(async () => {
      const s = await readStats()
      return s.volume_condition.abnormal ? undefined : s
    }, 30_000, 500)
    if (settled !== undefined) stats = settled
    say(`  … normal again ${((performance.now() - firstRead) / 1000).toFixed(1)} s later`)
  }
  say(`NodeGetVolumeStats: VolumeCondition { abnormal: ${stats.volume_condition.abnormal}, message: "${stats.volume_condition.message}" }`)
  check(!stats.volume_condition.abnormal, "VolumeCondition normal after the recovery")
  const m = await scrape(METRICS_ADDRESS)
  say("metrics (/metrics):")
  for (const [name, labels] of [
    ["rds_csi_nvme_connections_active", {}],
    ["rds_csi_nvme_controller_state", { volume: VOL, state: "live" }],
    ["rds_csi_stale_mounts_detected_total", {}],
    ["rds_csi_stale_recoveries_total", { status: "ok" }],
    ["rds_csi_events_posted_total", { reason: "ConnectionFailure" }],
    ["rds_csi_events_posted_total", { reason: "StaleMountDetected" }],
    ["rds_csi_events_posted_total", { reason: "ConnectionRecovery" }],
    ["rds_csi_volume_condition_abnormal", { volume: VOL }]
  ] as const) {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",")
    say(`  ${name}${l === "" ? "" : `{${l}}`} ${m.get(name, labels)}`)
  }

  const readBack = readAt(path.join(target, "db.bin"), data.length)
  check(sha(readBack) === sha(data), `data written before the outage reads back through the pod's path: sha256 ${sha(readBack)}`)
  const more = pattern("after-recovery", 64 * 1024)
  writeSynced(path.join(target, "after.bin"), more)
  check(sha(readAt(path.join(target, "after.bin"), more.length)) === sha(more), "new writes succeed")

  await c.NodeUnpublishVolume({ volume_id: VOL, target_path: target } as never)
  await c.NodeUnstageVolume({ volume_id: VOL, staging_target_path: staging } as never)
  check(ctrlsOf(NQN).length === 0, "NodeUnpublishVolume + NodeUnstageVolume: unmounted and disconnected")
  await controller.ControllerUnpublishVolume({ volume_id: VOL, node_id: nodeId }, { deadlineMs: 300_000 })
  await controller.DeleteVolume({ volume_id: VOL }, { deadlineMs: 300_000 })
  check(!fs.existsSync(`${CFG}/subsystems/${NQN}`) && !fs.existsSync(`${STORAGE_ROOT}/storage-pool/k8s/${VOL}.img`), "ControllerUnpublishVolume + DeleteVolume: the subsystem and its backing file are gone from the RDS emulator")
  await plugin.stop("SIGTERM")
  await stopAll()
  return failures
}

main().then((n) => process.exit(n === 0 ? 0 : 1), (e: unknown) => {
  say(`FAIL ${e instanceof Error ? e.message : String(e)}`)
  process.exit(1)
})
