/**
 * The node-plugin review's defects on the real kernel (INSIDE the VM; issue 10): hostile volume
 * contexts never reach `nvme connect`; two volumes pinned to namespaces of ONE subsystem staged
 * at once, one failing, never take each other's connection; two raw-block volumes whose devices
 * trade names while the plugin is down each get their own disk; records of an earlier boot are
 * never reconnected or re-bound by the plugin on its own, and unstage of them succeeds.
 *
 * May import: node built-ins, ./harness.ts, ./node-plugin.guest.ts (types).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import {
  attachedOf, blockCap, blockStagingPath, blockTargetPath, call, codeName, ctrlsOf, ctx, goneFromSysfs, mountCap, mountsAt, must, namespacesOf,
  pattern, PREFIX, rdevOf, type Recorder, stagingPath, stateFileOf, targetPath, waitFor, writeSynced
} from "./harness.ts"
import type { Env } from "./node-plugin.guest.ts"

const LONG = { deadlineMs: 120_000 }

/** Values that would add options to the kernel's connect string, and a host name: INVALID_ARGUMENT, nothing connected. */
export const hostileContext = async (env: Env, r: Recorder): Promise<void> => {
  const c = env.plugin.client
  const nqn = `${PREFIX}h-real`
  const cases = [
    { label: "NQN with ',duplicate_connect'", context: ctx(`${nqn},duplicate_connect`), field: "volume_context.nqn" },
    { label: "NQN with '='", context: ctx(`${nqn}=1`), field: "volume_context.nqn" },
    { label: "address with ',nr_io_queues=1'", context: { ...ctx(nqn), nvmeAddress: "127.0.0.1,nr_io_queues=1" }, field: "volume_context.nvmeAddress" },
    { label: "host name as the address", context: { ...ctx(nqn), nvmeAddress: "localhost" }, field: "volume_context.nvmeAddress" }
  ]
  for (const k of cases) {
    const vol = "pvc-h-hostile"
    const o = await call(() => c.NodeStageVolume({ volume_id: vol, staging_target_path: stagingPath(vol), volume_capability: mountCap("ext4"), volume_context: k.context }, LONG))
    r.time(k.label, o.ms)
    r.check(o.code === 3 && o.details.includes(k.field), `${k.label} → INVALID_ARGUMENT naming ${k.field}`, `${codeName(o.code)}: ${o.details}`)
    r.check(ctrlsOf(nqn).length === 0 && !fs.existsSync(stateFileOf(vol)), `${k.label}: nothing connected, nothing recorded`, JSON.stringify(ctrlsOf(nqn)))
  }
}

/** Two namespaces of one subsystem: concurrent stages (one asks for a namespace that does not exist), then unstage one by one. */
export const sharedSubsystem = async (env: Env, r: Recorder): Promise<void> => {
  const c = env.plugin.client
  const nqn = `${PREFIX}h-shared`
  const vol = (n: string) => ({ vol: `pvc-h-shared-${n}`, staging: stagingPath(`pvc-h-shared-${n}`) })
  const [a, bad, b] = [vol("a"), vol("bad"), vol("b")]
  const stage = (v: { vol: string; staging: string }, nsid: string) =>
    call(() => c.NodeStageVolume({ volume_id: v.vol, staging_target_path: v.staging, volume_capability: mountCap("ext4"), volume_context: ctx(nqn, { nsid }) }, LONG))
  const [oa, obad] = await Promise.all([stage(a, "1"), stage(bad, "7")])
  r.ok("stage nsid 1 (concurrently with a stage of nsid 7)", oa)
  r.check(obad.code === 14, "the concurrent stage of nsid 7 (no such namespace) → UNAVAILABLE", `${codeName(obad.code)}: ${obad.details}`)
  const ctrls = ctrlsOf(nqn)
  const nsA = namespacesOf(nqn).find((n) => n.nsid === 1)
  r.check(ctrls.length === 1 && ctrls[0]!.state === "live", "the shared controller is still live after the sibling's failure", JSON.stringify(ctrls))
  const m = mountsAt(a.staging)
  r.check(m.length === 1 && m[0]!.devT === nsA?.devT, "nsid 1 still mounted on its device", JSON.stringify(m.map((x) => x.devT)))
  const data = pattern("h-shared-a", 128 * 1024)
  writeSynced(`${a.staging}/a.bin`, data)
  r.check(!fs.existsSync(stateFileOf(bad.vol)), "the failed stage left no record")

  r.ok("stage nsid 2 on the same subsystem", await stage(b, "2"))
  r.check(ctrlsOf(nqn).length === 1, "still one controller for both volumes", JSON.stringify(ctrlsOf(nqn)))
  r.ok("unstage nsid 1", await call(() => c.NodeUnstageVolume({ volume_id: a.vol, staging_target_path: a.staging }, LONG)))
  r.check(ctrlsOf(nqn).length === 1 && mountsAt(b.staging).length === 1, "nsid 2 keeps the subsystem connected and mounted")
  r.ok("unstage nsid 2", await call(() => c.NodeUnstageVolume({ volume_id: b.vol, staging_target_path: b.staging }, LONG)))
  r.check(await waitFor(() => (goneFromSysfs(nqn) ? true : undefined), 5000) === true, "the last volume's unstage disconnects the subsystem")
}

/** Two raw-block volumes staged; the plugin dies; their controllers come back in the other order; publish gives each its own disk. */
export const swappedBlock = async (env: Env, r: Recorder): Promise<void> => {
  const vols = ["x", "y"].map((n) => ({ vol: `pvc-h-blk-${n}`, nqn: `${PREFIX}h-blk-${n}`, staging: blockStagingPath(`pvc-h-blk-${n}`), target: blockTargetPath(`pvc-h-blk-${n}`) }))
  let c = env.plugin.client
  for (const v of vols) {
    fs.mkdirSync(v.staging, { recursive: true })
    r.ok(`stage ${v.vol} (raw block)`, await call(() => c.NodeStageVolume({ volume_id: v.vol, staging_target_path: v.staging, volume_capability: blockCap(), volume_context: ctx(v.nqn) }, LONG)))
  }
  const before = vols.map((v) => attachedOf(v.nqn)!)
  r.device("x before", `${before[0]!.ns.name} (${before[0]!.ns.devT})`)
  r.device("y before", `${before[1]!.ns.name} (${before[1]!.ns.devT})`)
  await env.plugin.stop("SIGKILL")
  for (const v of vols) await must("nvme", ["disconnect", "-n", v.nqn])
  for (const v of [...vols].reverse()) {
    await must("nvme", ["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", v.nqn])
    await waitFor(() => attachedOf(v.nqn), 15_000, 20)
  }
  const after = vols.map((v) => attachedOf(v.nqn))
  r.check(after[1]?.ns.name === before[0]!.ns.name, "the devices traded names (y now has x's old name)", `x ${after[0]?.ns.name}, y ${after[1]?.ns.name}`)
  env.plugin = await env.start()
  c = env.plugin.client
  for (const [i, v] of vols.entries()) {
    r.ok(`publish ${v.vol}`, await call(() => c.NodePublishVolume({ volume_id: v.vol, staging_target_path: v.staging, target_path: v.target, volume_capability: blockCap(), readonly: false }, LONG)))
    r.check(rdevOf(v.target) === after[i]?.ns.devT, `${v.vol}'s pod gets its own disk`, `target ${rdevOf(v.target)}, volume's device ${after[i]?.ns.name} (${after[i]?.ns.devT})`)
  }
  for (const v of vols) {
    r.ok(`unpublish ${v.vol}`, await call(() => c.NodeUnpublishVolume({ volume_id: v.vol, target_path: v.target }, LONG)))
    r.ok(`unstage ${v.vol}`, await call(() => c.NodeUnstageVolume({ volume_id: v.vol, staging_target_path: v.staging }, LONG)))
  }
}

/**
 * A node reboot as the plugin sees it: its records stay, while connections, mounts and the boot id
 * are new (here: everything torn down by hand and the records' boot id set to another one's), and
 * one pod was deleted meanwhile. The plugin must not reconnect or re-bind anything by itself.
 */
export const rebootRecords = async (env: Env, r: Recorder): Promise<void> => {
  const vol = "pvc-h-reboot"
  const nqn = `${PREFIX}h-reboot`
  const staging = stagingPath(vol)
  const target = targetPath(vol, "pod-gone")
  let c = env.plugin.client
  const cap = mountCap("ext4")
  r.ok("stage", await call(() => c.NodeStageVolume({ volume_id: vol, staging_target_path: staging, volume_capability: cap, volume_context: ctx(nqn) }, LONG)))
  r.ok("publish", await call(() => c.NodePublishVolume({ volume_id: vol, staging_target_path: staging, target_path: target, volume_capability: cap, readonly: false }, LONG)))
  await env.plugin.stop("SIGKILL")
  await must("umount", [target])
  await must("umount", [staging])
  await must("nvme", ["disconnect", "-n", nqn])
  const record = JSON.parse(fs.readFileSync(stateFileOf(vol), "utf8")) as { bootId?: string }
  r.check(typeof record.bootId === "string" && record.bootId === fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
    "the stage record carries this boot's id", String(record.bootId))
  fs.writeFileSync(stateFileOf(vol), JSON.stringify({ ...record, bootId: "11111111-2222-4333-8444-555555555555" }))
  fs.rmSync(path.dirname(path.dirname(path.dirname(path.dirname(target)))), { recursive: true, force: true }) // the pod's directory
  env.plugin = await env.start()
  c = env.plugin.client
  await new Promise((res) => setTimeout(res, 4000)) // several monitor passes (500 ms) and an orphan scan
  r.check(ctrlsOf(nqn).length === 0, "no controller: the plugin did not reconnect a record of an earlier boot", JSON.stringify(ctrlsOf(nqn)))
  r.check(mountsAt(staging).length === 0 && !fs.existsSync(target), "nothing remounted, the deleted pod's target not recreated")
  const stats = await call(() => c.NodeGetVolumeStats({ volume_id: vol, volume_path: staging }))
  r.check(stats.code !== 0 || stats.response?.volume_condition?.abnormal === true, "stats does not call it healthy", `${codeName(stats.code)} ${stats.details}`)
  r.ok("unstage (kubelet: the pod is gone)", await call(() => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: staging }, LONG)))
  r.check(!fs.existsSync(stateFileOf(vol)) && ctrlsOf(nqn).length === 0, "record removed, nothing connected")
}
