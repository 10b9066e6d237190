/**
 * Resilience scenarios about the plugin process and connections nobody staged (INSIDE the VM):
 * a plugin SIGKILLed under a staged, published volume comes back and carries on from its state
 * files, mountinfo and sysfs (also in the middle of fault C: scenarios-outage.ts longOutage);
 * orphan connections inside the managed prefix are reported on the Node (dry run: only that) and
 * cleaned, connections outside it are never touched.
 */
import { attachedOf, ctrlsOf, FOREIGN, must, ORPHAN_INTERVAL_MS, PREFIX, type Recorder, run, since, waitFor } from "./harness.ts"
import { expectOnHost, Metrics } from "./hostLink.ts"
import { conditionOf, expectRecovered } from "./scenarios-outage.ts"
import {
  checkIo, type Env, gone, lit, live, metricsUntil, mountIdAt, NODE_NAME, notLive, nvmet, sleep, stageAndPublish, tearDown, volume, waitCtrl, writeThrough
} from "./resilience-common.ts"

const ADDRESS = "127.0.0.1:4420"

/**
 * SIGKILL with two volumes staged and published, one of them (ctrlLossTmo 5 s) in fault C: its
 * target is unlinked, the plugin is killed while the kernel is still reconnecting, the kernel
 * deletes the controller and the target comes back while no plugin runs. The new instance must
 * rebuild its view from the state files, mountinfo and sysfs: leave the healthy volume alone
 * (same mounts, normal condition), recover the other (renumbered) on its own, and carry on
 * watching (a short outage afterwards is reported by it).
 */
export const restart = async (env: Env, r: Recorder): Promise<void> => {
  const v = volume(env, "res-r")
  const w = volume(env, "res-rc")
  const a = await stageAndPublish(env, r, v)
  const b = await stageAndPublish(env, r, w, { ctrlLossTmo: "5", reconnectDelay: "1" })
  const beforeV = writeThrough(v, "before")
  const beforeW = writeThrough(w, "before")

  const t0 = performance.now()
  await nvmet("unlink", w.nqn)
  r.check((await waitCtrl(w.nqn, notLive, 5000)) !== undefined, `sysfs: ${b.ctrl.name} (${w.vol}) reconnecting after its subsystem is unlinked`, JSON.stringify(ctrlsOf(w.nqn)))
  const how = await env.plugin.stop("SIGKILL")
  r.check(how === "signal SIGKILL", "plugin SIGKILLed with two volumes staged and published, one of them in an outage", how)
  const starting = env.start()
  const lost = await waitCtrl(w.nqn, gone, 30_000)
  r.check(lost !== undefined, `sysfs: the kernel deleted ${b.ctrl.name} (ctrl_loss_tmo 5 s) while the plugin was down`, `${since(t0)} ms after the unlink`)
  const tBack = performance.now()
  await nvmet("link", w.nqn)
  env.plugin = await starting
  r.time("restart: spawn → Probe ready", env.plugin.readyMs)

  // The healthy volume: known to the new instance, judged live, left alone.
  const m = await metricsUntil((x) => x.get("rds_csi_staged_volumes") === 2 && x.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" }) === 1 &&
    x.get("rds_csi_nvme_connections_active") >= 1, 20_000)
  r.check(m.ok && m.m.get("rds_csi_volume_operations_total", { operation: "stage" }) === 0,
    "new instance's /metrics: staged_volumes = 2, controller_state{res-r, live} = 1, connections_active ≥ 1 — read from its state files and sysfs; nothing restaged",
    `staged ${m.m.get("rds_csi_staged_volumes")}, active ${m.m.get("rds_csi_nvme_connections_active")}, res-r live ${m.m.get("rds_csi_nvme_controller_state", { volume: v.vol, state: "live" })}`)
  const cond = await conditionOf(env, v)
  r.check(cond.code === 0 && cond.abnormal === false && cond.message === `controller ${a.ctrl.name} live to ${ADDRESS}`,
    "NodeGetVolumeStats (res-r) on the new instance: condition normal, from the monitor's view", `"${cond.message}"`)
  r.check(mountIdAt(v.staging) === a.stagingMountId && mountIdAt(v.target) === a.targetMountId, "res-r: the restart remounted nothing (same mount IDs)",
    `staging ${mountIdAt(v.staging)} target ${mountIdAt(v.target)}`)
  checkIo(r, v, [beforeV], "res-r after the restart")

  // The volume whose controller the kernel deleted while no plugin ran: recovered by the new instance.
  await expectRecovered(env, r, w, b, [beforeW], tBack, new Metrics([]), "res-rc after a restart during fault C")

  // It carries on: a short outage of res-r now is seen and reported by the new instance.
  const t1 = performance.now()
  await nvmet("unlink", v.nqn)
  r.check((await waitCtrl(v.nqn, notLive, 2500)) !== undefined, `sysfs: ${a.ctrl.name} reconnecting (target unlinked)`, JSON.stringify(ctrlsOf(v.nqn)))
  const seen = await metricsUntil((x) => x.get("rds_csi_volume_condition_abnormal", { volume: v.vol }) === 1, 2500)
  await sleep(2500 - since(t1))
  await nvmet("link", v.nqn)
  r.check(seen.ok, "the new instance's monitor saw the outage (condition_abnormal{res-r} = 1 during it)")
  r.check((await waitCtrl(v.nqn, live, 30_000)) !== undefined, `sysfs: ${a.ctrl.name} live again`, JSON.stringify(ctrlsOf(v.nqn)))
  await expectOnHost(r, {
    what: "the restarted plugin posts ConnectionFailure then ConnectionRecovery",
    target: v.pvc,
    expect: [
      { type: "Warning", reason: "ConnectionFailure", message: `^${lit(`[${v.vol}] on [${NODE_NAME}]: Connection to ${ADDRESS} failed: `)}` },
      { type: "Normal", reason: "ConnectionRecovery", message: `^${lit(`[${v.vol}] on [${NODE_NAME}]: Connection to ${ADDRESS} recovered after `)}` }
    ],
    absent: [{ reason: "StaleMountDetected" }, { reason: "RecoveryFailed" }],
    ordered: true,
    timeoutMs: 20_000
  })
  checkIo(r, v, [beforeV], "res-r after the outage")
  await tearDown(env, r, v)
  await tearDown(env, r, w)
}

/** Orphans: managed connection → OrphanDetected (dry run: nothing else), then OrphanCleaned; foreign untouched. */
export const orphans = async (env: Env, r: Recorder): Promise<void> => {
  const orphanNqn = `${PREFIX}res-orphan`
  const foreignNqn = `${FOREIGN}res`
  const node = { kind: "node" as const, name: NODE_NAME }
  // Runs first, before any plugin (an instance scans every 2 s and would clean the orphan before
  // the dry run saw it); the dry-run instance is the run's first start, the normal one stays.
  if (env.plugin !== undefined) await env.plugin.stop("SIGTERM")
  for (const nqn of [orphanNqn, foreignNqn]) {
    await must("nvme", ["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", nqn])
    const up = await waitFor(() => attachedOf(nqn), 15_000, 20)
    r.check(up !== undefined, `connected ${nqn} by hand (no volume staged): ${up?.ctrl.name} /dev/${up?.ns.name}`, JSON.stringify(ctrlsOf(nqn)))
  }
  const orphanCtrl = attachedOf(orphanNqn)!.ctrl.name
  const foreignCtrl = attachedOf(foreignNqn)!.ctrl.name
  r.device("orphan (managed prefix)", orphanCtrl)
  r.device("foreign", foreignCtrl)

  // Dry run: report, touch nothing.
  env.plugin = await env.start({ orphanDryRun: true })
  await expectOnHost(r, {
    what: "dry run: OrphanDetected for the managed connection, nothing about the foreign one, no OrphanCleaned",
    target: node,
    expect: [{ type: "Warning", reason: "OrphanDetected", message: `^${lit(`[${NODE_NAME}]: orphan NVMe connection ${orphanNqn} to ${ADDRESS}: `)}.*no volume staged` }],
    absent: [{ reason: "OrphanCleaned" }, { reason: "OrphanDetected", message: lit(foreignNqn) }],
    timeoutMs: 20_000
  })
  await sleep(2 * ORPHAN_INTERVAL_MS + 500)
  r.check(attachedOf(orphanNqn)?.ctrl.name === orphanCtrl, `dry run: ${orphanCtrl} still connected after ${2 * ORPHAN_INTERVAL_MS + 500} ms (two more scans)`, JSON.stringify(ctrlsOf(orphanNqn)))
  const dry = await metricsUntil((x) => x.get("rds_csi_orphans_detected_total") >= 1, 5000)
  r.check(dry.ok && dry.m.get("rds_csi_orphans_cleaned_total") === 0, "dry run /metrics: orphans_detected ≥ 1, orphans_cleaned = 0",
    `detected ${dry.m.get("rds_csi_orphans_detected_total")}, cleaned ${dry.m.get("rds_csi_orphans_cleaned_total")}`)

  // For real: cleaned and reported; the foreign connection stays.
  await env.plugin.stop("SIGTERM")
  env.plugin = await env.start()
  await expectOnHost(r, {
    what: "OrphanDetected and OrphanCleaned for the managed connection; nothing about the foreign one",
    target: node,
    expect: [
      { type: "Warning", reason: "OrphanDetected", message: lit(orphanNqn) },
      { type: "Normal", reason: "OrphanCleaned", message: `^${lit(`[${NODE_NAME}]: orphan NVMe connection ${orphanNqn}: disconnected controller(s) ${orphanCtrl} from ${ADDRESS}`)}$` }
    ],
    absent: [{ reason: "OrphanDetected", message: lit(foreignNqn) }, { reason: "OrphanCleaned", message: lit(foreignNqn) }],
    ordered: true,
    timeoutMs: 20_000
  })
  r.check(ctrlsOf(orphanNqn).length === 0, `sysfs: ${orphanCtrl} (${orphanNqn}) disconnected`, JSON.stringify(ctrlsOf(orphanNqn)))
  const foreign = attachedOf(foreignNqn)
  r.check(foreign?.ctrl.name === foreignCtrl, `sysfs: the foreign connection ${foreignCtrl} is untouched and live`, JSON.stringify(ctrlsOf(foreignNqn)))
  const m = await metricsUntil((x) => x.get("rds_csi_orphans_cleaned_total") === 1, 5000)
  r.check(m.ok && m.m.get("rds_csi_events_posted_total", { reason: "OrphanCleaned" }) >= 1, "/metrics: orphans_cleaned = 1, OrphanCleaned posted",
    `cleaned ${m.m.get("rds_csi_orphans_cleaned_total")}, detected ${m.m.get("rds_csi_orphans_detected_total")}, posted ${m.m.get("rds_csi_events_posted_total", { reason: "OrphanCleaned" })}`)
  await run("nvme", ["disconnect", "-n", foreignNqn])
}
