/**
 * bench/footprint, guest side (real kernel, TCG, 1 vCPU): every row of issue 12's table, the
 * plugin started as the DaemonSet starts it (`node bin/rds-csi.js node …`, the DaemonSet's
 * NODE_OPTIONS, which the harness reads from deploy/base/daemonset.yaml; shipped defaults) and the bare kernel commands timed from one small
 * shell (bare.sh) in the same VM, in the same run:
 *   - spawn → first ready Probe, cold (an empty compile cache each time) and warm (the cache a
 *     start left); RSS idle with events off and on (the API server on the host's loopback);
 *   - per trial, NodeStage (formats ext4), NodePublish, NodeUnpublish, NodeUnstage, NodeStage
 *     of the existing file system and NodeUnstage again, beside the same kernel work by hand on
 *     a twin namespace; trial 1 is the plugin's first RPCs after a cold start (events on). In
 *     each trial the bare commands go first: trial 1's are the VM's first of their kind (binaries
 *     and kernel paths cold), so the plugin's trial 1 is cold in its own code only, the figure
 *     a cold plugin adds;
 *   - VOLUMES raw-block volumes staged: RSS; then the plugin SIGKILLed with one more volume in
 *     fault C (controller deleted by the kernel, target back), restarted: spawn → ready Probe,
 *     and ready → that volume reconnected by the background recovery.
 * Writes OUT/footprint.json for the host side to print.
 *   node guest.ts OUT_DIR TRIALS VOLUMES
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { withoutFlag } from "../../test/e2e/guest/resilience-common.ts"
import {
  attachedOf, blockCap, blockStagingPath, call, ctrlsOf, ctx, FOREIGN, log, mountCap, must, type Plugin, PREFIX, REPO, sleep, SOCKET, stagingPath,
  startPlugin, targetPath, waitFor
} from "../../test/e2e/guest/harness.ts"
import { leanClient } from "./lean.ts"

const [outDir, trialsArg, volumesArg] = process.argv.slice(2) as [string, string, string]
const TRIALS = Number(trialsArg ?? 5)
const VOLUMES = Number(volumesArg ?? 100)
const KUBECONFIG = path.join(outDir, "guest-node.kubeconfig")
const BARE = path.join(REPO, "bench/footprint/bare.sh")
const NVMET = path.join(REPO, "test/e2e/vm/nvmet.sh")

/** CPU time (user + system) the process has used, ms (USER_HZ = 100). */
const cpuMs = (pid: number): number => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(f[11]) + Number(f[12])) * 10
}
const rssMiB = (pid: number): number => {
  const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!
  return Math.round(Number(line.split(/\s+/)[1]) / 1024 * 10) / 10
}
const ms = (t: number) => Math.round(performance.now() - t)

/** The plugin as shipped: the harness's fast monitor and orphan scan back to their defaults; events on or off. */
const flags = (events: boolean) => (defaults: ReadonlyArray<string>): ReadonlyArray<string> => {
  const shipped = withoutFlag(withoutFlag(withoutFlag(defaults, "--health-interval"), "--orphan-interval"), "--events")
  return events ? [...shipped, "--events=true", "--kubeconfig", KUBECONFIG] : [...shipped, "--events=false"]
}
/** `cache`: a NODE_COMPILE_CACHE directory (an empty one is seeded from the build's, as on a node's first start), or "none" (no code cache at all). */
const start = (cache: string, events: boolean): Promise<Plugin> =>
  startPlugin(outDir, {
    editFlags: flags(events),
    env: cache === "none" ? { NODE_DISABLE_COMPILE_CACHE: "1" } : { NODE_COMPILE_CACHE: cache },
    readyTimeoutMs: 120_000
  })
const freshCache = (): string => fs.mkdtempSync("/tmp/rds-csi-compile-cache-")
/** A copy of the code cache `npm run build` made (what the image ships and a node's first start reads), made before the spawn. */
const shippedCache = (): string => {
  const dir = freshCache()
  fs.cpSync(path.join(REPO, "dist/.compile-cache"), dir, { recursive: true })
  return dir
}

/** bare.sh's output → its steps and total (ms). */
const bare = async (...args: ReadonlyArray<string>): Promise<Record<string, number>> => {
  const r = await must("bash", [BARE, ...args])
  return Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" ")).map(([k, v]) => [k!, Number(v)]))
}

/** The client's default deadline (10 s) would cut a slow call short: the bench measures it instead. */
const LONG = { deadlineMs: 120_000 } as const
const timedRpc = async (what: string, rpc: () => Promise<unknown>): Promise<number> => {
  const t = performance.now()
  const r = await call(rpc)
  if (r.code !== 0) throw new Error(`${what}: gRPC ${r.code} ${r.details ?? ""}`)
  return ms(t)
}

/**
 * The floor under any start-up here: a bare Node that loads what a gRPC server and the commands
 * need (http2, child_process) and exits, timed now (the VM's load moves it: a hundred NVMe/TCP
 * connections keep the emulated CPU busy with keep-alives).
 */
const nodeFloorMs = async (): Promise<number> => {
  const t = performance.now()
  await must(process.execPath, ["-e", "require('http2'); require('child_process')"])
  return ms(t)
}

/**
 * The same VM, Node importing the node plugin's start-up bundle (dist/node.mjs, which `rds-csi
 * node` loads; importing it runs nothing) and exiting: what every start pays before the plugin's
 * first line of its own.
 */
const bundleImportMs = async (cache: string): Promise<number> => {
  const t = performance.now()
  await must("env", [`NODE_COMPILE_CACHE=${cache}`, process.execPath, "--input-type=module", "-e", `await import(${JSON.stringify(path.join(REPO, "dist/node.mjs"))})`])
  return ms(t)
}
/** The plugin's own time for each RPC of a volume, from its log (`rpc` lines: duration_ms), in order. */
const loggedRpcMs = (logText: string, volume: string): Array<{ readonly rpc: string; readonly ms: number; readonly commandsMs: number }> =>
  logText.split("\n").flatMap((line) => {
    if (!line.includes('"message":"rpc"')) return []
    const entry = JSON.parse(line) as { readonly rpc?: string; readonly volume?: string; readonly duration_ms?: number; readonly commands_ms?: number }
    return entry.volume === volume && entry.rpc !== undefined && entry.duration_ms !== undefined
      ? [{ rpc: entry.rpc, ms: entry.duration_ms, commandsMs: entry.commands_ms ?? 0 }]
      : []
  })
const memAvailableMiB = (): number => Math.round(Number(/MemAvailable:\s+(\d+)/.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1]) / 1024)

interface Trial {
  readonly trial: number
  readonly plugin: Record<string, number>
  /** The same RPCs as the plugin timed them itself (its log): without the client and the transport. */
  readonly logged: Record<string, number>
  /** Of those, the time outside the commands the call ran (its log's duration_ms − commands_ms): the plugin's own, and the wait for the device. */
  readonly outside: Record<string, number>
  /** The same sequence on a twin volume through the bare HTTP/2 client (lean.ts), after the grpc-js one. */
  readonly lean: Record<string, number>
  readonly bare: Record<string, Record<string, number>>
}

const main = async () => {
  const results: Record<string, unknown> = { trials: TRIALS, volumes: VOLUMES }

  // ---- start-up, events off: no code cache at all; a node's first start (the code cache
  // `npm run build` made, as the image ships it); warm (a cache a start on this node left)
  const floorQuiet: Array<number> = []
  for (let i = 0; i < 3; i++) floorQuiet.push(await nodeFloorMs())
  const memQuiet = memAvailableMiB()
  const none: Array<number> = []
  const cold: Array<number> = []
  for (let i = 0; i < 3; i++) {
    const p = await start("none", false)
    none.push(p.readyMs)
    await p.stop("SIGTERM")
  }
  for (let i = 0; i < 3; i++) {
    const p = await start(shippedCache(), false)
    cold.push(p.readyMs)
    await p.stop("SIGTERM")
  }
  const warmCache = freshCache()
  await (await start(warmCache, false)).stop("SIGTERM") // fills the cache (written at exit)
  const versionQuiet: Array<number> = []
  for (let i = 0; i < 3; i++) versionQuiet.push(await bundleImportMs(warmCache))
  const warm: Array<number> = []
  let rssOff = 0
  for (let i = 0; i < 3; i++) {
    const p = await start(warmCache, false)
    warm.push(p.readyMs)
    if (i === 2) {
      await sleep(5000)
      rssOff = rssMiB(p.pid)
    }
    await p.stop("SIGTERM")
  }
  const on = await start(warmCache, true)
  await sleep(8000)
  const rssOn = rssMiB(on.pid)
  await on.stop("SIGTERM")
  Object.assign(results, { startupNoCacheMs: none, startupColdMs: cold, startupWarmMs: warm, rssIdleEventsOffMiB: rssOff, rssIdleEventsOnMiB: rssOn })
  log(`start-up without a code cache ${none.join(", ")} ms, first start ${cold.join(", ")} ms, warm ${warm.join(", ")} ms; RSS idle ${rssOff} MiB events off, ${rssOn} MiB events on`)

  // ---- the RPCs, trial 1 right after a node's first start (events on, shipped defaults)
  const plugin = await start(shippedCache(), true)
  const c = plugin.client
  const lean = await leanClient(SOCKET)
  const leanRpc = async (what: string, method: string, request: object): Promise<number> => {
    const frame = lean.frame("Node", method, request)
    const t = performance.now()
    const r = await lean.call("Node", method, frame)
    const took = ms(t)
    if (r.code !== 0) throw new Error(`${what} (bare HTTP/2 client): gRPC ${r.code} ${r.details}`)
    return took
  }
  const trials: Array<Trial> = []
  for (let i = 1; i <= TRIALS; i++) {
    const vol = `stage-${i}`
    const stage = { volume_id: vol, staging_target_path: stagingPath(vol), volume_capability: mountCap("ext4"), volume_context: ctx(`${PREFIX}${vol}`) }
    const publish = { volume_id: vol, staging_target_path: stagingPath(vol), target_path: targetPath(vol), volume_capability: mountCap("ext4"), readonly: false }
    const nqn = `${FOREIGN}bare-${i}`
    const mnt = `/mnt/bare-${i}`
    const tgt = `/mnt/bare-bind-${i}`
    const b: Record<string, Record<string, number>> = {}
    b["stageNew"] = await bare("stage-new", nqn, mnt)
    b["publish"] = await bare("bind", mnt, tgt)
    b["unpublish"] = await bare("umount", tgt)
    b["unstage"] = await bare("unstage", nqn, mnt)
    b["stageExisting"] = await bare("stage-existing", nqn, mnt)
    b["unstageAgain"] = await bare("unstage", nqn, mnt)
    const p: Record<string, number> = {}
    p["stageNew"] = await timedRpc("stage", () => c.NodeStageVolume(stage, LONG))
    p["publish"] = await timedRpc("publish", () => c.NodePublishVolume(publish, LONG))
    p["unpublish"] = await timedRpc("unpublish", () => c.NodeUnpublishVolume({ volume_id: vol, target_path: targetPath(vol) }, LONG))
    p["unstage"] = await timedRpc("unstage", () => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: stagingPath(vol) }, LONG))
    p["stageExisting"] = await timedRpc("stage again", () => c.NodeStageVolume(stage, LONG))
    p["unstageAgain"] = await timedRpc("unstage again", () => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: stagingPath(vol) }, LONG))
    const keys = ["stageNew", "publish", "unpublish", "unstage", "stageExisting", "unstageAgain"]
    const entries = loggedRpcMs(plugin.logText(), vol)
    const logged = Object.fromEntries(entries.map((r, k) => [keys[k] ?? r.rpc, r.ms]))
    const outside = Object.fromEntries(entries.map((r, k) => [keys[k] ?? r.rpc, r.ms - r.commandsMs]))
    // The same on the twin volume through the bare HTTP/2 client: plugin + its server, no grpc-js.
    const lv = `lean-${i}`
    const lstage = { volume_id: lv, staging_target_path: stagingPath(lv), volume_capability: mountCap("ext4"), volume_context: ctx(`${PREFIX}${lv}`) }
    const l: Record<string, number> = {}
    l["stageNew"] = await leanRpc("stage", "NodeStageVolume", lstage)
    l["publish"] = await leanRpc("publish", "NodePublishVolume", { volume_id: lv, staging_target_path: stagingPath(lv), target_path: targetPath(lv), volume_capability: mountCap("ext4"), readonly: false })
    l["unpublish"] = await leanRpc("unpublish", "NodeUnpublishVolume", { volume_id: lv, target_path: targetPath(lv) })
    l["unstage"] = await leanRpc("unstage", "NodeUnstageVolume", { volume_id: lv, staging_target_path: stagingPath(lv) })
    l["stageExisting"] = await leanRpc("stage again", "NodeStageVolume", lstage)
    l["unstageAgain"] = await leanRpc("unstage again", "NodeUnstageVolume", { volume_id: lv, staging_target_path: stagingPath(lv) })
    trials.push({ trial: i, plugin: p, logged, outside, lean: l, bare: b })
    log(`trial ${i}: plugin ${JSON.stringify(p)}; bare HTTP/2 client ${JSON.stringify(l)}; bare ${JSON.stringify(Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v["total"]])))}`)
  }
  results["rpcTrials"] = trials
  // The floor under every RPC timed here: a Probe (no kernel work) through the same client.
  const probes: Array<number> = []
  for (let i = 0; i < 5; i++) probes.push(await timedRpc("probe", () => c.Probe({}, LONG)))
  results["probeRoundTripMs"] = probes
  const leanProbes: Array<number> = []
  const probeFrame = lean.frame("Identity", "Probe", {})
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    const r = await lean.call("Identity", "Probe", probeFrame)
    leanProbes.push(ms(t))
    if (r.code !== 0) throw new Error(`probe (bare HTTP/2 client): gRPC ${r.code} ${r.details}`)
  }
  results["leanProbeRoundTripMs"] = leanProbes
  lean.close()

  // ---- many staged volumes: RSS (events on)
  const t = performance.now()
  for (let i = 1; i <= VOLUMES; i++) {
    const vol = `many-${i}`
    await timedRpc(`stage ${vol}`, () => c.NodeStageVolume({ volume_id: vol, staging_target_path: blockStagingPath(vol), volume_capability: blockCap(), volume_context: ctx(`${PREFIX}${vol}`) }, LONG))
  }
  results["stageManyMs"] = ms(t)
  await sleep(8000)
  results["rssWithVolumesMiB"] = rssMiB(plugin.pid)
  // What the hundred volumes cost the node at rest: the plugin's CPU (user + system, from
  // /proc/<pid>/stat) over 20 s with no RPC, the health passes and the state watch at their defaults.
  const cpu0 = cpuMs(plugin.pid)
  await sleep(20_000)
  results["idleCpuWithVolumesMsPerS"] = Math.round((cpuMs(plugin.pid) - cpu0) / 20)
  log(`staged ${VOLUMES} raw block volumes in ${results["stageManyMs"]} ms; RSS ${results["rssWithVolumesMiB"]} MiB (events on); idle CPU ${results["idleCpuWithVolumesMsPerS"]} ms/s`)

  // ---- restart with VOLUMES + 1 staged, one of them in fault C
  const fc = "stage-1"
  const fcNqn = `${PREFIX}${fc}`
  await timedRpc("stage fault-c volume", () => c.NodeStageVolume({ volume_id: fc, staging_target_path: blockStagingPath(fc), volume_capability: blockCap(), volume_context: ctx(fcNqn, { ctrlLossTmo: "3" }) }, LONG))
  await must("bash", [NVMET, "unlink", fcNqn])
  const deleted = await waitFor(() => ctrlsOf(fcNqn).length === 0 ? true : undefined, 60_000, 50)
  if (deleted === undefined) throw new Error("the kernel did not delete the fault-C controller")
  await plugin.stop("SIGKILL")
  const floorLoaded: Array<number> = []
  for (let i = 0; i < 3; i++) floorLoaded.push(await nodeFloorMs())
  results["nodeFloorQuietMs"] = floorQuiet
  results["nodeFloorLoadedMs"] = floorLoaded
  const versionLoaded: Array<number> = []
  for (let i = 0; i < 3; i++) versionLoaded.push(await bundleImportMs(warmCache))
  results["importQuietMs"] = versionQuiet
  results["importLoadedMs"] = versionLoaded
  results["memAvailableQuietMiB"] = memQuiet
  results["memAvailableLoadedMiB"] = memAvailableMiB()
  await must("bash", [NVMET, "link", fcNqn])
  const restarted = await start(warmCache, true)
  const readyAt = performance.now()
  // Every 200 ms: a scan of 101 controllers in sysfs takes CPU from the recovery it waits for.
  const recovered = await waitFor(() => attachedOf(fcNqn)?.ctrl.state === "live" ? true : undefined, 120_000, 200)
  results["restartReadyMs"] = restarted.readyMs
  results["restartRecoveredAfterReadyMs"] = recovered === undefined ? null : ms(readyAt)
  log(`restart with ${VOLUMES + 1} staged (one in fault C): ready ${restarted.readyMs} ms; that volume reconnected ${results["restartRecoveredAfterReadyMs"]} ms after ready`)
  await sleep(3000)
  results["rssAfterRestartMiB"] = rssMiB(restarted.pid)
  // Two more restarts with every volume live (one sample moves with the guest's speed), each
  // SIGKILLed as before and each with the floor timed right before it.
  let running = restarted
  const again: Array<number> = []
  const againFloor: Array<number> = []
  for (let i = 0; i < 2; i++) {
    await running.stop("SIGKILL")
    againFloor.push(await nodeFloorMs())
    running = await start(warmCache, true)
    again.push(running.readyMs)
    await sleep(3000)
  }
  results["restartAgainReadyMs"] = again
  results["restartAgainFloorMs"] = againFloor
  log(`restarted twice more with ${VOLUMES + 1} live volumes: ready ${again.join(", ")} ms (floors ${againFloor.join(", ")} ms)`)
  await running.stop("SIGTERM")
  fs.writeFileSync(path.join(outDir, "footprint.json"), JSON.stringify(results, null, 2))
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(`[guest] footprint failed: ${e instanceof Error ? e.stack : String(e)}`)
  process.exit(1)
})
