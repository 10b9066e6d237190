/**
 * bench/detection: how fast the real plugin tells the API server what the kernel did, and how
 * fast a renumbered device is back under the pod. One VM (TCG, 1 vCPU) runs the real
 * `rds-csi node` (shipped defaults: full health pass every 2 s, state files every 100 ms) against the kernel nvmet-tcp target; it posts its
 * events to the real kube-apiserver on this host's loopback, reached only through qemu's forward.
 * A guest watcher polls sysfs every millisecond; a host-side watch on the API server's events
 * timestamps each arrival; the guest converts with the clock offset it measures over the
 * forward before each trial (error ≤ half the round trip, printed).
 *
 *   detection   controller leaves live (sysfs) → ConnectionFailure in the API server
 *               controller live again (sysfs)  → ConnectionRecovery in the API server
 *   renumbering new namespace device (sysfs)   → published path on it, write+fsync+read works
 *               controller deleted (sysfs)     → StaleMountDetected in the API server
 *
 *   npx node bench/detection/run.ts [TRIALS]     (default 5; ~4 min; writes bench/out/detection.json)
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { runGuest, startApiServerForGuest } from "../../test/e2e/apiServerVm.ts"
import { REPO } from "../../test/e2e/vm/runInVm.ts"

const TRIALS = Number(process.argv[2] ?? "5")
const NAMESPACE = "bench-detect"

interface Results {
  readonly trials: number
  readonly pluginReadyMs: number
  readonly detection: ReadonlyArray<{
    trial: number
    offsetRttMs: number
    failureMs?: number
    recoveryMs?: number
    failureSeenMs?: number
    recoverySeenMs?: number
  }>
  readonly renumber: ReadonlyArray<{
    trial: number
    oldDevice: string
    newDevice: string
    intact: boolean
    renumberToWorkingMs?: number
    backToWorkingMs?: number
    deletedToStaleEventMs?: number
    deletedToWorkingMs?: number
    renumberToDetectedMs?: number
    detectedToWorkingMs?: number
  }>
  readonly errors: ReadonlyArray<string>
}

const median = (xs: ReadonlyArray<number | undefined>): string => {
  const s = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b)
  if (s.length === 0) return "n/a"
  const m = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  return `${Math.round(m)} ms (n=${s.length}, ${s[0]}–${s[s.length - 1]})`
}

const setup = await startApiServerForGuest({ nodeName: "e2e-guest", namespace: NAMESPACE, volumeIds: ["res-bench-a", "res-bench-c"], watchEvents: true })
let status = 1
try {
  const vm = await runGuest(setup, [
    "env", `GUEST_MAIN=${path.join(REPO, "bench/detection/guest.ts")}`,
    "bash", "test/e2e/guest/resilience.sh", setup.outDir, NAMESPACE, String(TRIALS)
  ], 600)
  const file = path.join(setup.outDir, "detection.json")
  if (!fs.existsSync(file)) {
    console.error(`the guest wrote no results (VM exit ${vm.exitCode}); console tail:\n${vm.console.split("\n").slice(-40).join("\n")}`)
  } else {
    const r = JSON.parse(fs.readFileSync(file, "utf8")) as Results
    const lines = [
      `bench/detection: ${r.trials} trials each, the plugin's shipped defaults (health monitor and state watch), TCG guest (1 vCPU), kube-apiserver 1.20.2 on the host's loopback`,
      `clock offset round trip (median): ${median(r.detection.map((d) => d.offsetRttMs))} — the offset error is at most half of it`,
      `plugin start → Probe ready: ${r.pluginReadyMs} ms`,
      "",
      "| from (guest sysfs) | to | median (n, min–max) |",
      "| --- | --- | --- |",
      `| controller leaves live | ConnectionFailure in the API server | ${median(r.detection.map((d) => d.failureMs))} |`,
      `| ⤷ of which: controller leaves live | the monitor notices (logs and posts) | ${median(r.detection.map((d) => d.failureSeenMs))} |`,
      `| controller live again | ConnectionRecovery in the API server | ${median(r.detection.map((d) => d.recoveryMs))} |`,
      `| ⤷ of which: controller live again | the monitor notices | ${median(r.detection.map((d) => d.recoverySeenMs))} |`,
      `| controller deleted (ctrl_loss_tmo 5 s), target back at once | StaleMountDetected in the API server | ${median(r.renumber.map((d) => d.deletedToStaleEventMs))} |`,
      `| new namespace device (renumbered) | published path on it, write+fsync+read OK | ${median(r.renumber.map((d) => d.renumberToWorkingMs))} |`,
      `| ⤷ new namespace device | the plugin's nvme connect has returned, "stale mount detected" | ${median(r.renumber.map((d) => d.renumberToDetectedMs))} |`,
      `| ⤷ "stale mount detected" | published path works (umount, mount, bind) | ${median(r.renumber.map((d) => d.detectedToWorkingMs))} |`,
      `| target back | published path works again | ${median(r.renumber.map((d) => d.backToWorkingMs))} |`,
      "",
      ...r.renumber.map((n) => `renumber trial ${n.trial}: ${n.oldDevice} → ${n.newDevice}, data ${n.intact ? "intact" : "NOT INTACT"}`),
      ...r.errors.map((e) => `error: ${e}`)
    ]
    console.log(lines.join("\n"))
    fs.mkdirSync(path.join(REPO, "bench/out"), { recursive: true })
    fs.writeFileSync(path.join(REPO, "bench/out/detection.json"), JSON.stringify(r, null, 2) + "\n")
    status = r.errors.length === 0 && vm.exitCode === 0 ? 0 : 1
  }
} finally {
  await setup.stop()
}
process.exit(status)
