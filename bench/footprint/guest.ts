/**
 * bench/footprint, guest side (real kernel, TCG): the plugin's start-up time to a ready Probe,
 * its RSS idle and with many staged volumes, and NodeStage / NodePublish latency against the
 * bare kernel commands they need, measured in the same VM in the same run. Writes
 * OUT/footprint.json for the host side to print.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { withoutFlag } from "../../test/e2e/guest/resilience-common.ts"
import {
  attachedOf, blockCap, blockStagingPath, ctx, FOREIGN, log, mountCap, must, PREFIX, run, stagingPath, startPlugin, targetPath, waitFor
} from "../../test/e2e/guest/harness.ts"

const [outDir, trialsArg, volumesArg] = process.argv.slice(2)
const TRIALS = Number(trialsArg ?? 5)
const VOLUMES = Number(volumesArg ?? 100)

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const rssMiB = (pid: number): number => {
  const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!
  return Math.round(Number(line.split(/\s+/)[1]) / 1024 * 10) / 10
}
const timed = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  const t = performance.now()
  const a = await f()
  return [a, performance.now() - t]
}
const ok = <A extends { readonly code: number; readonly details?: string }>(r: A, what: string): A => {
  if (r.code !== 0) throw new Error(`${what}: gRPC ${r.code} ${r.details ?? ""}`)
  return r
}
const grpc = async <A>(rpc: () => Promise<A>): Promise<{ code: number; details?: string }> => {
  try {
    await rpc()
    return { code: 0 }
  } catch (e) {
    const err = e as { code?: number; details?: string }
    return { code: err.code ?? -1, details: err.details ?? String(e) }
  }
}

// ------------------------------------------------------------------ the bare kernel commands
/** What NodeStage of an empty ext4 volume needs the kernel for, by hand: connect, wait for the device, blkid, mkfs, mount. */
const bareStage = async (nqn: string, mountPoint: string): Promise<number> => {
  const t = performance.now()
  await must("nvme", ["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", nqn, "--ctrl-loss-tmo=-1", "--reconnect-delay=5"])
  const ns = await waitFor(() => attachedOf(nqn)?.ns, 15_000, 10)
  if (ns === undefined) throw new Error(`no device for ${nqn}`)
  const dev = `/dev/${ns.name}`
  await run("blkid", ["-p", "-o", "export", dev])
  await must("mkfs.ext4", ["-F", "-q", dev])
  fs.mkdirSync(mountPoint, { recursive: true })
  await must("mount", ["-t", "ext4", dev, mountPoint])
  return performance.now() - t
}

/** The plugin as shipped: the e2e harness's fast monitor and orphan scan back to their defaults (2 s, 5 min). */
const shipped = { editFlags: (flags: ReadonlyArray<string>) => withoutFlag(withoutFlag(flags, "--health-interval"), "--orphan-interval") }

const main = async () => {
  const results: Record<string, unknown> = { trials: TRIALS, volumes: VOLUMES }

  // Start-up: spawn to first Probe answering ready, several times; RSS idle on the last one.
  const startups: Array<number> = []
  for (let i = 0; i < 3; i++) {
    const p = await startPlugin(outDir!, shipped)
    startups.push(p.readyMs)
    if (i < 2) await p.stop("SIGTERM")
    else {
      await new Promise((r) => setTimeout(r, 3000))
      results["rssIdleMiB"] = rssMiB(p.pid)
      await p.stop("SIGTERM")
    }
  }
  results["startupToReadyProbeMs"] = { median: median(startups), all: startups.map(Math.round) }
  log(`start-up to ready Probe: ${startups.map(Math.round).join(", ")} ms; RSS idle ${results["rssIdleMiB"]} MiB`)

  const plugin = await startPlugin(outDir!, shipped)
  const c = plugin.client
  const bare: Array<number> = []
  const stage: Array<number> = []
  const bareBind: Array<number> = []
  const publish: Array<number> = []
  for (let i = 1; i <= TRIALS; i++) {
    // Bare: the kernel commands by hand; then the same through NodeStage on a twin namespace.
    const bareMount = `/mnt/bare-${i}`
    bare.push(await bareStage(`${FOREIGN}bare-${i}`, bareMount))
    const vol = `stage-${i}`
    const [, st] = await timed(async () =>
      ok(await grpc(() => c.NodeStageVolume({ volume_id: vol, staging_target_path: stagingPath(vol), volume_capability: mountCap("ext4"), volume_context: ctx(`${PREFIX}${vol}`) })), "stage"))
    stage.push(st)
    // Bare bind mount vs NodePublish of the staged volume.
    const bareTarget = `/mnt/bare-bind-${i}`
    fs.mkdirSync(bareTarget, { recursive: true })
    const [, bb] = await timed(() => must("mount", ["--bind", bareMount, bareTarget]))
    bareBind.push(bb)
    const [, pub] = await timed(async () =>
      ok(await grpc(() => c.NodePublishVolume({ volume_id: vol, staging_target_path: stagingPath(vol), target_path: targetPath(vol), volume_capability: mountCap("ext4"), readonly: false })), "publish"))
    publish.push(pub)
    log(`trial ${i}: bare stage ${Math.round(bare.at(-1)!)} ms, NodeStage ${Math.round(st)} ms; bare bind ${Math.round(bb)} ms, NodePublish ${Math.round(pub)} ms`)
  }
  results["nodeStage"] = { medianMs: median(stage), bareMedianMs: median(bare), overheadMedianMs: median(stage.map((s, i) => s - bare[i]!)) }
  results["nodePublish"] = { medianMs: median(publish), bareMedianMs: median(bareBind), overheadMedianMs: median(publish.map((p, i) => p - bareBind[i]!)) }

  // Many staged volumes: raw block (connect only), then RSS after the monitor has ticked over them.
  const t = performance.now()
  for (let i = 1; i <= VOLUMES; i++) {
    const vol = `many-${i}`
    ok(await grpc(() => c.NodeStageVolume({ volume_id: vol, staging_target_path: blockStagingPath(vol), volume_capability: blockCap(), volume_context: ctx(`${PREFIX}${vol}`) })), `stage ${vol}`)
  }
  log(`staged ${VOLUMES} raw block volumes in ${Math.round(performance.now() - t)} ms`)
  await new Promise((r) => setTimeout(r, 5000))
  results["rssWithVolumesMiB"] = rssMiB(plugin.pid)
  const stats = await grpc(() => c.NodeGetVolumeStats({ volume_id: "many-1", volume_path: blockStagingPath("many-1") }))
  results["statsWithVolumes"] = stats.code
  log(`RSS with ${VOLUMES} staged volumes: ${results["rssWithVolumesMiB"]} MiB`)
  await plugin.stop("SIGTERM")
  fs.writeFileSync(path.join(outDir!, "footprint.json"), JSON.stringify(results, null, 2))
  log(`results: ${JSON.stringify(results)}`)
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(`[guest] footprint failed: ${e instanceof Error ? e.stack : String(e)}`)
  process.exit(1)
})
