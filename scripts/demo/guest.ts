/**
 * npm run demo, inside the VM (real kernel): the plugin (events on, as its ServiceAccount, to
 * the host's API server through qemu's forward) stages and publishes a volume, data is written,
 * the target goes away for longer than the volume's ctrlLossTmo (the kernel deletes the
 * controller; the device comes back renumbered), and the plugin recovers it by itself. Every
 * step is printed as a `[demo] ` line for the host to show; `[demo] describe-pvc` asks the host
 * to print `kubectl describe pvc`.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import {
  attachedOf, ctrlsOf, ctx, mountCap, mountsAt, pattern, PREFIX, readAt, sha, stagingPath, startPlugin, targetPath, waitFor, writeSynced
} from "../../test/e2e/guest/harness.ts"
import { scrape } from "../../test/e2e/guest/hostLink.ts"
import { METRICS_ADDRESS, nvmet, resilienceFlags } from "../../test/e2e/guest/resilience-common.ts"

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

const main = async () => {
  say(`guest: kernel ${fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}, nvmet-tcp target on 127.0.0.1:4420 exporting ${NQN}`)
  const plugin = await startPlugin(outDir, { editFlags: resilienceFlags(path.join(outDir, "guest-node.kubeconfig"), false) })
  say(`rds-csi node started (pid ${plugin.pid}): Probe ready after ${plugin.readyMs} ms; events go to the API server as system:serviceaccount:rds-csi:rds-csi-node`)
  const c = plugin.client
  const context = ctx(NQN, { ctrlLossTmo: String(CTRL_LOSS_TMO), reconnectDelay: "1" })
  const staging = stagingPath(VOL)
  const target = targetPath(VOL)

  let t = performance.now()
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
  await nvmet("unlink", NQN)
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
  await nvmet("link", NQN)
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

  const stats = await c.NodeGetVolumeStats({ volume_id: VOL, volume_path: target } as never) as {
    usage: ReadonlyArray<{ unit: string; total: string | number; used: string | number }>
    volume_condition: { abnormal: boolean; message: string }
  }
  say(`NodeGetVolumeStats: VolumeCondition { abnormal: ${stats.volume_condition.abnormal}, message: "${stats.volume_condition.message}" }`)
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
  await plugin.stop("SIGTERM")
  return failures
}

main().then((n) => process.exit(n === 0 ? 0 : 1), (e: unknown) => {
  say(`FAIL ${e instanceof Error ? e.message : String(e)}`)
  process.exit(1)
})
