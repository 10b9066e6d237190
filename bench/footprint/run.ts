/**
 * bench/footprint (one command: `npx node bench/footprint/run.ts [TRIALS] [VOLUMES]`): in the
 * real-kernel VM (TCG, 1 vCPU), the plugin's start-up time to a ready Probe, RSS idle and with
 * VOLUMES staged raw-block volumes, and NodeStage / NodePublish median latency minus the bare
 * kernel commands they need (nvme connect + blkid + mkfs.ext4 + mount; mount --bind), same VM,
 * same run. Prints a table against the targets of SPEC §8 and writes bench/out/footprint.json.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { REPO, runInVm } from "../../test/e2e/vm/runInVm.ts"

const trials = process.argv[2] ?? "5"
const volumes = process.argv[3] ?? "100"

execFileSync("bash", [path.join(REPO, "test/e2e/vm/setup-host.sh")], { stdio: ["ignore", "ignore", "inherit"] })
// What ships: the bundled build (bin/rds-csi.js runs it when it is fresh).
execFileSync("npm", ["run", "-s", "build"], { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] })
console.log(`footprint: booting the VM (${trials} trials, ${volumes} volumes; a few minutes under TCG)...`)
const vm = await runInVm({
  command: (out) => ["bash", path.join(REPO, "bench/footprint/guest.sh"), out, trials, volumes],
  timeoutSeconds: 900,
  memoryMb: 1024
})
const file = path.join(vm.outDir, "footprint.json")
if (vm.exitCode !== 0 || !fs.existsSync(file)) {
  console.error(vm.console.split("\n").filter((l) => l.includes("[guest") || l.includes("Error") || l.includes("failed")).slice(-60).join("\n"))
  console.error(`footprint: the guest failed (exit ${vm.exitCode})`)
  process.exit(1)
}
interface Latency { readonly medianMs: number; readonly bareMedianMs: number; readonly overheadMedianMs: number }
const r = JSON.parse(fs.readFileSync(file, "utf8")) as {
  readonly startupToReadyProbeMs: { readonly median: number; readonly all: ReadonlyArray<number> }
  readonly rssIdleMiB: number
  readonly rssWithVolumesMiB: number
  readonly nodeStage: Latency
  readonly nodePublish: Latency
}
const ms = (n: number) => `${Math.round(n)} ms`
const rows: ReadonlyArray<readonly [string, string, string]> = [
  ["start-up to a ready Probe (median of 3)", ms(r.startupToReadyProbeMs.median), "≤ 5000 ms"],
  ["RSS idle (events off)", `${r.rssIdleMiB} MiB`, "≤ 80 MiB"],
  [`RSS with ${volumes} staged volumes`, `${r.rssWithVolumesMiB} MiB`, "—"],
  [`NodeStage ext4, median of ${trials}`, ms(r.nodeStage.medianMs), "—"],
  ["  bare kernel commands (connect, blkid, mkfs, mount)", ms(r.nodeStage.bareMedianMs), "—"],
  ["  NodeStage minus bare (median of pairs)", ms(r.nodeStage.overheadMedianMs), "≤ 600 ms"],
  [`NodePublish, median of ${trials}`, ms(r.nodePublish.medianMs), "—"],
  ["  bare mount --bind", ms(r.nodePublish.bareMedianMs), "—"],
  ["  NodePublish minus bare (median of pairs)", ms(r.nodePublish.overheadMedianMs), "≤ 100 ms"]
]
console.log("\n| measure (real kernel VM, TCG, 1 vCPU) | value | SPEC §8 target |\n| --- | ---: | ---: |")
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`)
fs.mkdirSync(path.join(REPO, "bench/out"), { recursive: true })
fs.writeFileSync(path.join(REPO, "bench/out/footprint.json"), JSON.stringify({ ...r, vmWallMs: vm.wallMs }, null, 2))
console.log(`\n(VM run ${Math.round(vm.wallMs / 1000)} s; raw figures in bench/out/footprint.json)`)
