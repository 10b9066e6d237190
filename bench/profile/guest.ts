/**
 * bench/profile, guest side (real kernel, TCG): the plugin as the image starts it, twice.
 *  1. Cold (an empty compile cache) under `--cpu-prof`: start-up to a ready Probe, then one
 *     volume through NodeStage (formats ext4), NodePublish, NodeUnpublish, NodeUnstage, and the
 *     same volume again (NodeStage of an existing file system), each RPC between idle pauses so
 *     that the host side can cut the profile at the marks written here (CLOCK_MONOTONIC µs,
 *     the clock V8's profile uses).
 *  2. Warm (the compile cache the first run left), profiled the same way; then VOLUMES raw block
 *     volumes staged and 20 s of no RPC: the plugin at rest (health passes, state watch).
 *  3. Warm again under `strace -f`: the same sequence; the host side counts, per RPC,
 *     processes spawned (and how long each took from fork to exit), files opened and fsyncs.
 * Writes OUT/profile/{cold,warm}/*.cpuprofile, OUT/strace.txt and OUT/marks.json.
 *   node guest.ts OUT_DIR [VOLUMES]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { withoutFlag } from "../../test/e2e/guest/resilience-common.ts"
import { blockCap, blockStagingPath, call, ctx, DAEMONSET_NODE_OPTIONS, log, mountCap, PREFIX, sleep, stagingPath, startPlugin, targetPath } from "../../test/e2e/guest/harness.ts"

const outDir = process.argv[2]!
const VOLUMES = Number(process.argv[3] ?? "100")
const mono = (): number => Number(process.hrtime.bigint() / 1000n)
const shipped = { editFlags: (flags: ReadonlyArray<string>) => withoutFlag(withoutFlag(flags, "--health-interval"), "--orphan-interval") }

interface Mark { readonly run: string; readonly what: string; readonly startMono: number; readonly endMono: number; readonly startEpochMs: number; readonly endEpochMs: number; readonly ok: boolean }
const marks: Array<Mark> = []
const mark = async (run: string, what: string, f: () => Promise<boolean>): Promise<void> => {
  const startEpochMs = Date.now()
  const startMono = mono()
  const ok = await f()
  marks.push({ run, what, startMono, endMono: mono(), startEpochMs, endEpochMs: Date.now(), ok })
  log(`${run}: ${what} ${ok ? "OK" : "FAILED"} in ${Math.round((marks.at(-1)!.endMono - startMono) / 1000)} ms`)
}

const cycle = async (run: string, plugin: Awaited<ReturnType<typeof startPlugin>>, vol: string): Promise<void> => {
  const c = plugin.client
  const stage = { volume_id: vol, staging_target_path: stagingPath(vol), volume_capability: mountCap("ext4"), volume_context: ctx(`${PREFIX}${vol}`) }
  const publish = { volume_id: vol, staging_target_path: stagingPath(vol), target_path: targetPath(vol), volume_capability: mountCap("ext4"), readonly: false }
  const rpcs: ReadonlyArray<readonly [string, () => Promise<{ code: number }>]> = [
    ["NodeStage (formats ext4)", () => call(() => c.NodeStageVolume(stage))],
    ["NodePublish", () => call(() => c.NodePublishVolume(publish))],
    ["NodeUnpublish", () => call(() => c.NodeUnpublishVolume({ volume_id: vol, target_path: targetPath(vol) }))],
    ["NodeUnstage", () => call(() => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: stagingPath(vol) }))],
    ["NodeStage (existing ext4)", () => call(() => c.NodeStageVolume(stage))],
    ["NodePublish (again)", () => call(() => c.NodePublishVolume(publish))],
    ["NodeUnpublish (again)", () => call(() => c.NodeUnpublishVolume({ volume_id: vol, target_path: targetPath(vol) }))],
    ["NodeUnstage (again)", () => call(() => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: stagingPath(vol) }))],
    ["Probe", () => call(() => c.Probe({}))]
  ]
  for (const [what, rpc] of rpcs) {
    await sleep(1500) // an idle gap on both sides of every RPC
    await mark(run, what, async () => (await rpc()).code === 0)
  }
  await sleep(1500)
}

const main = async () => {
  const cache = fs.mkdtempSync("/tmp/rds-csi-compile-cache-")
  // 1. cold, 2. warm (the cache run 1 left), both profiled at 1 ms (less sampling overhead under TCG)
  for (const run of ["cold", "warm"] as const) {
    const profDir = path.join(outDir, "profile", run)
    fs.mkdirSync(profDir, { recursive: true })
    const spawnMono = mono()
    const spawnEpoch = Date.now()
    const plugin = await startPlugin(outDir, {
      ...shipped,
      env: { NODE_COMPILE_CACHE: cache, NODE_OPTIONS: `${DAEMONSET_NODE_OPTIONS} --cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-interval=1000` }
    })
    marks.push({ run, what: "spawn → ready Probe", startMono: spawnMono, endMono: spawnMono + plugin.readyMs * 1000, startEpochMs: spawnEpoch, endEpochMs: spawnEpoch + plugin.readyMs, ok: true })
    await cycle(run, plugin, run === "cold" ? "prof-1" : "prof-2")
    if (run === "warm" && VOLUMES > 0) {
      for (let i = 1; i <= VOLUMES; i++) {
        const vol = `many-${i}`
        const r = await call(() => plugin.client.NodeStageVolume({ volume_id: vol, staging_target_path: blockStagingPath(vol), volume_capability: blockCap(), volume_context: ctx(`${PREFIX}${vol}`) }))
        if (r.code !== 0) throw new Error(`staging ${vol}: gRPC ${r.code}`)
      }
      await sleep(8000) // the passes that follow the staging settle
      await mark(run, `at rest, ${VOLUMES} raw block volumes staged (20 s, no RPC)`, async () => {
        await sleep(20_000)
        return true
      })
      // Unstaged (and disconnected) again: the traced run that follows starts on one volume, as before.
      for (let i = 1; i <= VOLUMES; i++) {
        const vol = `many-${i}`
        const r = await call(() => plugin.client.NodeUnstageVolume({ volume_id: vol, staging_target_path: blockStagingPath(vol) }))
        if (r.code !== 0) throw new Error(`unstaging ${vol}: gRPC ${r.code}`)
      }
    }
    log(`${run} plugin: ${await plugin.stop("SIGTERM")}`)
  }

  // 3. warm, traced
  const spawnMono = mono()
  const spawnEpoch = Date.now()
  const traced = await startPlugin(outDir, {
    ...shipped,
    env: { NODE_COMPILE_CACHE: cache },
    wrap: ["strace", "-f", "-q", "-ttt", "-T", "-s", "120", "-e", "trace=execve,clone,clone3,vfork,fork,openat,fsync,fdatasync,rename,exit_group,mount,umount2", "-o", path.join(outDir, "strace.txt")]
  })
  marks.push({ run: "traced", what: "spawn → ready Probe", startMono: spawnMono, endMono: spawnMono + traced.readyMs * 1000, startEpochMs: spawnEpoch, endEpochMs: spawnEpoch + traced.readyMs, ok: true })
  // A namespace of its own: its first NodeStage formats, as the row says (prof-1 already holds the cold run's ext4).
  await cycle("traced", traced, "prof-3")
  log(`traced plugin: ${await traced.stop("SIGTERM")}`)
  fs.writeFileSync(path.join(outDir, "marks.json"), JSON.stringify(marks, null, 2))
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(`[guest] profile failed: ${e instanceof Error ? e.stack : String(e)}`)
  process.exit(1)
})
