/**
 * bench/footprint (one command: `npm run bench -- footprint`, or `node bench/footprint/run.ts
 * [TRIALS] [VOLUMES] [DETECTION_TRIALS]`, defaults 5, 100, 3): every row of issue 12's table in
 * the real-kernel VM (qemu TCG, 1 vCPU), the plugin started as the image starts it, beside the
 * bare kernel commands timed in the same VM, cold and warm, as medians with min–max. Two VM
 * boots against one real kube-apiserver on this host's loopback (events on, as shipped):
 * guest.ts (start-up, RSS, the node RPCs, 100 volumes, restart in fault C and twice more), then
 * bench/detection's guest at the shipped defaults (kernel state change → Event in the API
 * server). Prints the table and writes bench/out/footprint.json. ~17 min.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { runGuest, startApiServerForGuest } from "../../test/e2e/apiServerVm.ts"
import { REPO } from "../../test/e2e/vm/runInVm.ts"
import { DAEMONSET_NODE_OPTIONS } from "../../test/e2e/guest/harness.ts"

const TRIALS = Number(process.argv[2] ?? "5")
const VOLUMES = Number(process.argv[3] ?? "100")
/**
 * FOOTPRINT_NODE_OPTIONS: the plugin's NODE_OPTIONS instead of the DaemonSet's (which the image's
 * own ENV are too), e.g. "--max-semi-space-size=1 --use-openssl-ca" (the image's before round 9),
 * which name no blob: bin/rds-csi.js then starts itself again from it.
 */
const PLUGIN_NODE_OPTIONS = process.env["FOOTPRINT_NODE_OPTIONS"] ?? ""
const DETECTION_TRIALS = Number(process.argv[4] ?? "3")
const NAMESPACE = "bench-footprint"

interface Trial {
  readonly trial: number
  readonly plugin: Record<string, number>
  /** The plugin's own duration_ms for each RPC (its log): without the client and the transport. */
  readonly logged?: Record<string, number>
  /** The plugin's logged duration minus the commands it ran (commands_ms): its own time and the device wait. */
  readonly outside?: Record<string, number>
  /** The same sequence on a twin volume through the bare HTTP/2 client (lean.ts). */
  readonly lean?: Record<string, number>
  readonly bare: Record<string, Record<string, number>>
}
interface Footprint {
  readonly startupNoCacheMs: ReadonlyArray<number>
  readonly startupColdMs: ReadonlyArray<number>
  readonly startupWarmMs: ReadonlyArray<number>
  readonly rssIdleEventsOffMiB: number
  readonly rssIdleEventsOnMiB: number
  readonly rpcTrials: ReadonlyArray<Trial>
  readonly stageManyMs: number
  readonly rssWithVolumesMiB: number
  /** The plugin's CPU at rest with the volumes staged (health passes, state watch), ms per second. */
  readonly idleCpuWithVolumesMsPerS?: number
  readonly restartReadyMs: number
  readonly restartRecoveredAfterReadyMs: number | null
  /** Two more restarts, every volume live, and the floor timed right before each. */
  readonly restartAgainReadyMs?: ReadonlyArray<number>
  readonly restartAgainFloorMs?: ReadonlyArray<number>
  /** Node loading http2 + child_process and exiting: in the quiet VM, and with the volumes connected (before the restart). */
  readonly nodeFloorQuietMs: ReadonlyArray<number>
  readonly nodeFloorLoadedMs: ReadonlyArray<number>
  /** `rds-csi --version` (Node, the bundle's import, the CLI), warm code cache: quiet, and with the volumes connected. */
  readonly importQuietMs: ReadonlyArray<number>
  readonly importLoadedMs: ReadonlyArray<number>
  readonly probeRoundTripMs: ReadonlyArray<number>
  readonly leanProbeRoundTripMs?: ReadonlyArray<number>
  readonly memAvailableQuietMiB: number
  readonly memAvailableLoadedMiB: number
}
interface Detection {
  readonly detection: ReadonlyArray<{ readonly failureMs?: number; readonly recoveryMs?: number; readonly failureSeenMs?: number }>
  readonly errors: ReadonlyArray<string>
}

const sorted = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)
const median = (xs: ReadonlyArray<number>): number => {
  const s = sorted(xs)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const stat = (xs: ReadonlyArray<number>, unit = "ms"): string =>
  xs.length === 0 ? "n/a" : xs.length === 1 ? `${Math.round(xs[0]!)} ${unit}` : `${Math.round(median(xs))} ${unit} (${Math.round(sorted(xs)[0]!)}–${Math.round(sorted(xs).at(-1)!)})`

execFileSync("bash", [path.join(REPO, "test/e2e/vm/setup-host.sh")], { stdio: ["ignore", "ignore", "inherit"] })
execFileSync("npm", ["run", "-s", "build"], { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] })
const volumeIds = [
  ...Array.from({ length: TRIALS }, (_, i) => `stage-${i + 1}`),
  ...Array.from({ length: VOLUMES }, (_, i) => `many-${i + 1}`),
  "res-bench-a", "res-bench-c"
]
const setup = await startApiServerForGuest({ nodeName: "e2e-guest", namespace: NAMESPACE, volumeIds, watchEvents: true })
let status = 1
try {
  console.log(`footprint: VM 1 of 2 (${TRIALS} trials, ${VOLUMES} volumes; ~10 min under TCG)...`)
  const vm = await runGuest(setup, ["bash", path.join(REPO, "bench/footprint/guest.sh"), setup.outDir, String(TRIALS), String(VOLUMES), PLUGIN_NODE_OPTIONS], 2400)
  const file = path.join(setup.outDir, "footprint.json")
  if (vm.exitCode !== 0 || !fs.existsSync(file)) {
    console.error(vm.console.split("\n").filter((l) => l.includes("[guest") || l.includes("Error") || l.includes("failed")).slice(-60).join("\n"))
    throw new Error(`footprint: the guest failed (exit ${vm.exitCode})`)
  }
  const f = JSON.parse(fs.readFileSync(file, "utf8")) as Footprint
  console.log(`footprint: VM 2 of 2 (detection at the shipped defaults, ${DETECTION_TRIALS} trials)...`)
  const dvm = await runGuest(setup, [
    "env", `GUEST_MAIN=${path.join(REPO, "bench/detection/guest.ts")}`,
    "bash", "test/e2e/guest/resilience.sh", setup.outDir, NAMESPACE, String(DETECTION_TRIALS)
  ], 900)
  const dfile = path.join(setup.outDir, "detection.json")
  const d: Detection | undefined = fs.existsSync(dfile) ? JSON.parse(fs.readFileSync(dfile, "utf8")) as Detection : undefined
  if (d === undefined) console.error(`detection: no results (VM exit ${dvm.exitCode})`)

  // ---- the table
  const rows: Array<string> = []
  const cold = f.rpcTrials.find((t) => t.trial === 1)!
  const warm = f.rpcTrials.filter((t) => t.trial > 1)
  const signed = (n: number) => `${n < 0 ? "−" : "+"}${Math.abs(Math.round(n))}`
  const rpc = (label: string, key: string, bareText: string, target: string) => {
    const overhead = (t: Trial) => t.plugin[key]! - t.bare[key]!["total"]!
    const ownOverheads = warm.flatMap((t) => t.logged?.[key] === undefined ? [] : [t.logged[key]! - t.bare[key]!["total"]!])
    const leanOverheads = warm.flatMap((t) => t.lean?.[key] === undefined ? [] : [t.lean[key]! - t.bare[key]!["total"]!])
    const own = (leanOverheads.length === 0 ? "" : `; through a bare HTTP/2 client **${stat(leanOverheads)}**`) +
      (ownOverheads.length === 0 ? "" : `; by the plugin's own log ${stat(ownOverheads)}`) +
      (warm.some((t) => t.outside?.[key] !== undefined)
        ? `; its log outside the commands it ran ${stat(warm.flatMap((t) => t.outside?.[key] === undefined ? [] : [t.outside[key]!]))}` +
          (cold.outside?.[key] === undefined ? "" : ` (trial 1: ${Math.round(cold.outside[key]!)} ms)`)
        : "")
    // Trial 1's bare commands ran first in the VM (cold binaries and kernel paths): the plugin's
    // trial 1 after them is cold in its own code only, so it is set against the warm bare median.
    const bareTotals = warm.map((t) => t.bare[key]!["total"]!)
    const bareWarm = median(bareTotals)
    const coldOwn = cold.logged?.[key] === undefined ? "" : `; own log ${signed(cold.logged[key]! - bareWarm)}`
    rows.push(`| ${label} | ${Math.round(cold.plugin[key]!)} ms (${signed(cold.plugin[key]! - bareWarm)}${coldOwn}) | ${stat(warm.map((t) => t.plugin[key]!))} | ` +
      `${stat(bareTotals)}, the first in the VM ${Math.round(cold.bare[key]!["total"]!)} ms: ${bareText} | ${stat(warm.map(overhead))}${own} | ${target} |`)
  }
  const step = (key: string, s: string) => `${s} ${Math.round(median(warm.map((t) => t.bare[key]![s]!)))}`
  rpc("NodeStage, formats ext4", "stageNew", ["connect", "device", "blkid", "mkfs", "mount"].map((s) => step("stageNew", s)).join(" + "), "≤ bare + 300 ms")
  rpc("NodeStage, existing fs", "stageExisting", ["connect", "device", "blkid", "mount"].map((s) => step("stageExisting", s)).join(" + "), "≤ bare + 300 ms")
  rpc("NodePublish", "publish", step("publish", "bind"), "≤ bare + 50 ms")
  rpc("NodeUnpublish", "unpublish", step("unpublish", "umount"), "—")
  rpc("NodeUnstage", "unstage", ["umount", "disconnect"].map((s) => step("unstage", s)).join(" + "), "≤ bare + 100 ms")
  const failures = (d?.detection ?? []).flatMap((x) => x.failureMs === undefined ? [] : [x.failureMs])
  const recoveries = (d?.detection ?? []).flatMap((x) => x.recoveryMs === undefined ? [] : [x.recoveryMs])
  const lines = [
    `bench/footprint: ${TRIALS} trials (trial 1 = the first RPCs after a cold start, each trial's bare commands first), ${VOLUMES} volumes; TCG guest, 1 vCPU, 1 GiB; the plugin as the DaemonSet starts it (bundle, NODE_OPTIONS=${PLUGIN_NODE_OPTIONS === "" ? `${DAEMONSET_NODE_OPTIONS} (deploy/base/daemonset.yaml)` : `${PLUGIN_NODE_OPTIONS} (FOOTPRINT_NODE_OPTIONS)`}, shipped defaults)`,
    "",
    "| measure | plugin cold: trial 1 (above the warm bare median) | plugin warm, median (min–max) | bare commands warm, median (min–max), and the VM's first: steps | overhead warm, median of pairs (min–max) | target |",
    "| --- | ---: | ---: | --- | ---: | ---: |",
    ...rows,
    `| spawn → first ready Probe (events off) | ${stat(f.startupColdMs)} first start on a node (the build's code cache); ${stat(f.startupNoCacheMs)} without any | ${stat(f.startupWarmMs)} (the node's own cache) | floor: Node loading http2 + child_process, ${stat(f.nodeFloorQuietMs ?? [])}; importing the start-up bundle ${stat(f.importQuietMs ?? [])}; MemAvailable ${f.memAvailableQuietMiB} MiB | — | ≤ 3000 ms |`,
    `| restart with ${VOLUMES + 1} staged volumes (one in fault C), events on | — | ${f.restartReadyMs} ms to ready; that volume reconnected ${f.restartRecoveredAfterReadyMs ?? "NOT"} ms after ready` +
      (f.restartAgainReadyMs === undefined ? "" : `; restarted twice more (all live): ${f.restartAgainReadyMs.join(", ")} ms; the three: ${stat([f.restartReadyMs, ...f.restartAgainReadyMs])}`) +
      ` | with the volumes connected: the floor ${stat(f.nodeFloorLoadedMs ?? [])}${f.restartAgainFloorMs === undefined ? "" : ` (before the two more: ${f.restartAgainFloorMs.join(", ")} ms)`}; importing the start-up bundle ${stat(f.importLoadedMs ?? [])}; MemAvailable ${f.memAvailableLoadedMiB} MiB | — | ≤ 3000 ms; recovery after ready |`,
    `| RSS idle | — | ${f.rssIdleEventsOffMiB} MiB events off, ${f.rssIdleEventsOnMiB} MiB events on | — | — | ≤ 64 MiB events on |`,
    `| RSS with ${VOLUMES} staged volumes (events on) | — | ${f.rssWithVolumesMiB} MiB | — | — | ≤ 80 MiB |`,
    `| the plugin's CPU at rest with ${VOLUMES} staged volumes (health passes, state watch; 20 s) | — | ${f.idleCpuWithVolumesMsPerS ?? "—"} ms per s | — | — | — |`,
    `| kernel state change → Event in the API server (shipped defaults) | — | ConnectionFailure ${stat(failures)}, ConnectionRecovery ${stat(recoveries)} | — | — | ≤ 1000 ms median; ≤ 200 ms to the recorder |`,
    "",
    `every RPC above is timed through the harness's grpc-js client, on the same vCPU: a Probe (no kernel work) takes ${stat(f.probeRoundTripMs ?? [])} through it; ` +
      `"through a bare HTTP/2 client" is the same sequence on a twin volume right after, each request encoded before the clock starts and sent on an open HTTP/2 session (bench/footprint/lean.ts; a Probe ${stat(f.leanProbeRoundTripMs ?? [])}), minus the same trial's bare commands: the plugin and its server without grpc-js's own cost; ` +
      "\"by the plugin's own log\" is the duration the plugin logs for the call (from the decoded request to the reply), minus the bare commands; " +
      "\"outside the commands it ran\" is that duration minus the time of the commands it ran (its log's commands_ms): the plugin's own time and the wait for the device, without the commands' spread from one run to the next",
    "",
    `staging ${VOLUMES} raw-block volumes one after another took ${f.stageManyMs} ms; VM runs ${Math.round(vm.wallMs / 1000)} s + ${Math.round(dvm.wallMs / 1000)} s` +
      (d !== undefined && d.errors.length > 0 ? `; detection errors: ${d.errors.join("; ")}` : "")
  ]
  console.log(lines.join("\n"))
  fs.mkdirSync(path.join(REPO, "bench/out"), { recursive: true })
  fs.writeFileSync(path.join(REPO, "bench/out/footprint.json"), JSON.stringify({ footprint: f, detection: d }, null, 2) + "\n")
  status = d !== undefined && d.errors.length === 0 ? 0 : 1
} finally {
  await setup.stop()
}
process.exit(status)
