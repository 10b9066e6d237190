/**
 * Node-plugin e2e scenarios about the volume life cycle, run INSIDE the VM against the real
 * `rds-csi node` process (see node-plugin.guest.ts): stage/publish/write/unpublish/unstage/
 * restage for ext4, xfs and raw block; every RPC repeated; two volumes on one target;
 * a plugin restarted under a staged and published volume.
 */
import * as fs from "node:fs"
import {
  attachedOf,
  blkid,
  blockCap,
  blockStagingPath,
  blockTargetPath,
  call,
  codeName,
  ctrlsOf,
  ctx,
  goneFromSysfs,
  mountCap,
  mountsAt,
  pattern,
  PREFIX,
  readAt,
  type Recorder,
  rdevOf,
  sha,
  SOCKET,
  stagingPath,
  stateFileOf,
  targetPath,
  writeSynced
} from "./harness.ts"
import type { Env } from "./node-plugin.guest.ts"

const MiB = 1024 * 1024
const LONG = { deadlineMs: 120_000 }

/** Unpublish + unstage, checking the target, the staging mount, the state file and sysfs. */
const tearDown = async (env: Env, r: Recorder, label: string, v: { vol: string; nqn: string; staging: string; target: string }) => {
  const c = env.plugin.client
  r.ok(`${label} unpublish`, await call(() => c.NodeUnpublishVolume({ volume_id: v.vol, target_path: v.target }, LONG)))
  r.check(mountsAt(v.target).length === 0 && !fs.existsSync(v.target), `${label}: target unmounted and removed`, v.target)
  r.ok(`${label} unstage`, await call(() => c.NodeUnstageVolume({ volume_id: v.vol, staging_target_path: v.staging }, LONG)))
  r.check(mountsAt(v.staging).length === 0, `${label}: staging path unmounted`, v.staging)
  r.check(goneFromSysfs(v.nqn), `${label}: controller disconnected (no controller, no subsystem in sysfs for ${v.nqn})`,
    JSON.stringify(ctrlsOf(v.nqn)))
  r.check(!fs.existsSync(stateFileOf(v.vol)), `${label}: stage record removed`, stateFileOf(v.vol))
}

/** 1. ext4, xfs, raw block: stage, publish, write, unpublish, unstage, stage again → data intact. */
export const lifecycle = async (env: Env, r: Recorder): Promise<void> => {
  const c = env.plugin.client
  for (const kind of ["ext4", "xfs", "block"] as const) {
    const block = kind === "block"
    const vol = `pvc-s1-${kind}`
    const nqn = `${PREFIX}s1-${kind}`
    const staging = block ? blockStagingPath(vol) : stagingPath(vol)
    const target = block ? blockTargetPath(vol) : targetPath(vol)
    const cap = block ? blockCap() : mountCap(kind)
    if (block) fs.mkdirSync(staging, { recursive: true }) // kubelet creates the block staging directory
    const stageReq = { volume_id: vol, staging_target_path: staging, volume_capability: cap, volume_context: ctx(nqn) }
    const publishReq = { volume_id: vol, staging_target_path: staging, target_path: target, volume_capability: cap, readonly: false }
    const data = pattern(vol, MiB)
    const offset = block ? MiB : 0

    r.check(goneFromSysfs(nqn), `${kind}: nothing connected to ${nqn} before stage`)
    r.ok(`${kind} stage (connect${block ? "" : " + mkfs + mount"})`, await call(() => c.NodeStageVolume(stageReq, LONG)))
    const first = attachedOf(nqn)
    r.check(first !== undefined, `${kind}: sysfs shows one live controller and one namespace head`, JSON.stringify(first ?? ctrlsOf(nqn)))
    const dev = `/dev/${first!.ns.name}`
    r.device(kind, `${first!.ctrl.name} ${first!.ns.name} (${first!.ns.devT})`)
    let uuid: string | undefined
    if (!block) {
      const m = mountsAt(staging)
      r.check(m.length === 1 && m[0]!.devT === first!.ns.devT && m[0]!.fsType === kind, `${kind}: staging path mounted once from ${dev}`,
        JSON.stringify(m))
      const probe = await blkid(dev)
      uuid = probe.uuid
      r.check(probe.type === kind && uuid !== undefined, `${kind}: blkid -p shows the new ${kind}`, `UUID ${uuid}`)
    }

    r.ok(`${kind} publish`, await call(() => c.NodePublishVolume(publishReq, LONG)))
    const pub = mountsAt(target)
    const reached = block ? rdevOf(target) : pub[0]?.devT
    r.check(pub.length === 1 && reached === first!.ns.devT && !pub[0]!.options.split(",").includes("ro"),
      `${kind}: target bound read-write to ${dev}`, `${target} reaches ${reached}`)

    const w0 = performance.now()
    writeSynced(block ? target : `${target}/data.bin`, data, block ? offset : undefined)
    r.time(`${kind} write 1 MiB + fsync through the target`, Math.round(performance.now() - w0))

    await tearDown(env, r, kind, { vol, nqn, staging, target })

    r.ok(`${kind} stage again`, await call(() => c.NodeStageVolume(stageReq, LONG)))
    const again = attachedOf(nqn)
    r.check(again !== undefined, `${kind}: reconnected`, JSON.stringify(again ?? ctrlsOf(nqn)))
    r.device(`${kind} after restage`, `${again!.ctrl.name} ${again!.ns.name} (${again!.ns.devT})`)
    if (!block) {
      const probe = await blkid(`/dev/${again!.ns.name}`)
      r.check(probe.type === kind && probe.uuid === uuid, `${kind}: same file system (UUID ${uuid}), not formatted again`, `blkid UUID ${probe.uuid}`)
      const back = readAt(`${staging}/data.bin`, MiB)
      r.check(sha(back) === sha(data), `${kind}: data intact in the staging mount`, `sha ${sha(back)}`)
    }
    r.ok(`${kind} publish again`, await call(() => c.NodePublishVolume(publishReq, LONG)))
    const back = block ? readAt(target, MiB, offset) : readAt(`${target}/data.bin`, MiB)
    r.check(sha(back) === sha(data), `${kind}: data intact through the target`, `sha ${sha(back)} = ${sha(data)}`)
    await tearDown(env, r, `${kind} (final)`, { vol, nqn, staging, target })
  }
}

/** 2. Every RPC twice → the same result; unstage/unpublish of a never-staged volume → OK. */
export const idempotency = async (env: Env, r: Recorder): Promise<void> => {
  const c = env.plugin.client
  const same = async (label: string, rpc: () => Promise<unknown>) => {
    const a = await call(rpc)
    const b = await call(rpc)
    r.time(`${label} #1`, a.ms)
    r.time(`${label} #2`, b.ms)
    r.check(a.code === 0 && b.code === 0 && JSON.stringify(a.response) === JSON.stringify(b.response),
      `${label} twice → OK, same response`, `${codeName(a.code)}/${codeName(b.code)} ${JSON.stringify(a.response).slice(0, 160)}`)
    return a.response
  }
  await same("Probe", () => c.Probe({}))
  await same("GetPluginInfo", () => c.GetPluginInfo({}))
  await same("GetPluginCapabilities", () => c.GetPluginCapabilities({}))
  await same("NodeGetInfo", () => c.NodeGetInfo({}))
  await same("NodeGetCapabilities", () => c.NodeGetCapabilities({}))

  const vol = "pvc-s2-idem"
  const nqn = `${PREFIX}s2-idem`
  const staging = stagingPath(vol)
  const target = targetPath(vol)
  const cap = mountCap("ext4")
  const stageReq = { volume_id: vol, staging_target_path: staging, volume_capability: cap, volume_context: ctx(nqn) }
  await same("NodeStageVolume", () => c.NodeStageVolume(stageReq, LONG))
  const a = attachedOf(nqn)
  r.check(a !== undefined && ctrlsOf(nqn).length === 1, "after two stages: one controller", JSON.stringify(ctrlsOf(nqn)))
  r.device("volume", `${a!.ctrl.name} ${a!.ns.name} (${a!.ns.devT})`)
  const sm = mountsAt(staging)
  r.check(sm.length === 1 && sm[0]!.devT === a!.ns.devT, "after two stages: staging mounted exactly once", JSON.stringify(sm.map((m) => m.devT)))

  await same("NodePublishVolume", () =>
    c.NodePublishVolume({ volume_id: vol, staging_target_path: staging, target_path: target, volume_capability: cap, readonly: false }, LONG))
  const tm = mountsAt(target)
  r.check(tm.length === 1 && tm[0]!.devT === a!.ns.devT, "after two publishes: target mounted exactly once", JSON.stringify(tm.map((m) => m.devT)))

  const st1 = await call(() => c.NodeGetVolumeStats({ volume_id: vol, volume_path: target }))
  const st2 = await call(() => c.NodeGetVolumeStats({ volume_id: vol, volume_path: target }))
  r.time("NodeGetVolumeStats #1", st1.ms)
  r.time("NodeGetVolumeStats #2", st2.ms)
  const total = (s: typeof st1) => s.response?.usage.find((u) => u.unit === "BYTES")?.total
  r.check(st1.code === 0 && st2.code === 0 && total(st1) === total(st2) && st1.response?.volume_condition?.abnormal === false,
    "NodeGetVolumeStats twice → OK, same capacity, condition normal", `${total(st1)} bytes; ${JSON.stringify(st1.response?.volume_condition)}`)

  await same("NodeExpandVolume (no growth)", () => c.NodeExpandVolume({ volume_id: vol, volume_path: target, volume_capability: cap }, LONG))

  await same("NodeUnpublishVolume", () => c.NodeUnpublishVolume({ volume_id: vol, target_path: target }, LONG))
  r.check(mountsAt(target).length === 0 && !fs.existsSync(target), "after two unpublishes: target gone")
  await same("NodeUnstageVolume", () => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: staging }, LONG))
  r.check(mountsAt(staging).length === 0 && goneFromSysfs(nqn), "after two unstages: unmounted and disconnected")

  const never = "pvc-never-staged"
  const u = await call(() => c.NodeUnstageVolume({ volume_id: never, staging_target_path: stagingPath(never) }))
  r.check(u.code === 0, "NodeUnstageVolume of a never-staged volume → OK", `${codeName(u.code)} ${u.details} (${u.ms} ms)`)
  const p = await call(() => c.NodeUnpublishVolume({ volume_id: never, target_path: targetPath(never) }))
  r.check(p.code === 0, "NodeUnpublishVolume of a never-published volume → OK", `${codeName(p.code)} ${p.details} (${p.ms} ms)`)
}

/** 3. Two volumes on one target (same address and port), different NQNs: unstaging one leaves the other. */
export const twoVolumes = async (env: Env, r: Recorder): Promise<void> => {
  const c = env.plugin.client
  const vols = ["a", "b"].map((x) => ({ vol: `pvc-s3-${x}`, nqn: `${PREFIX}s3-${x}`, staging: stagingPath(`pvc-s3-${x}`) }))
  for (const v of vols) {
    r.ok(`stage ${v.vol}`, await call(() =>
      c.NodeStageVolume({ volume_id: v.vol, staging_target_path: v.staging, volume_capability: mountCap("ext4"), volume_context: ctx(v.nqn) }, LONG)))
  }
  const [a, b] = vols.map((v) => attachedOf(v.nqn))
  r.check(a !== undefined && b !== undefined && a.ctrl.name !== b.ctrl.name && a.ctrl.address === b.ctrl.address,
    "two controllers on the same target address", `${a?.ctrl.name} and ${b?.ctrl.name} at ${a?.ctrl.address}`)
  r.device("a", `${a!.ctrl.name} ${a!.ns.name} (${a!.ns.devT})`)
  r.device("b", `${b!.ctrl.name} ${b!.ns.name} (${b!.ns.devT})`)
  const data = pattern("s3-b", 256 * 1024)
  writeSynced(`${vols[1]!.staging}/before.bin`, data)

  r.ok("unstage pvc-s3-a", await call(() => c.NodeUnstageVolume({ volume_id: vols[0]!.vol, staging_target_path: vols[0]!.staging }, LONG)))
  r.check(goneFromSysfs(vols[0]!.nqn), `a's controller ${a!.ctrl.name} disconnected`)
  const bAfter = attachedOf(vols[1]!.nqn)
  r.check(bAfter !== undefined && bAfter.ctrl.name === b!.ctrl.name && bAfter.ctrl.state === "live" && bAfter.ns.devT === b!.ns.devT,
    `b's controller ${b!.ctrl.name} still live with the same device`, JSON.stringify(bAfter))
  const m = mountsAt(vols[1]!.staging)
  r.check(m.length === 1 && m[0]!.devT === b!.ns.devT, "b still mounted at its staging path", JSON.stringify(m.map((x) => x.devT)))
  const more = pattern("s3-b-after", 256 * 1024)
  writeSynced(`${vols[1]!.staging}/after.bin`, more)
  r.check(sha(readAt(`${vols[1]!.staging}/before.bin`, data.length)) === sha(data), "b's data readable and b still writable")

  r.ok("unstage pvc-s3-b", await call(() => c.NodeUnstageVolume({ volume_id: vols[1]!.vol, staging_target_path: vols[1]!.staging }, LONG)))
  r.check(goneFromSysfs(vols[1]!.nqn), `b's controller ${b!.ctrl.name} disconnected`)
}

/** The plugin restarted (SIGKILL) under a staged and published volume: Probe OK, unpublish/unstage from the state files. */
export const restart = async (env: Env, r: Recorder): Promise<void> => {
  const vol = "pvc-r-restart"
  const nqn = `${PREFIX}r-restart`
  const staging = stagingPath(vol)
  const target = targetPath(vol)
  const cap = mountCap("ext4")
  let c = env.plugin.client
  r.ok("stage", await call(() => c.NodeStageVolume({ volume_id: vol, staging_target_path: staging, volume_capability: cap, volume_context: ctx(nqn) }, LONG)))
  const publishReq = { volume_id: vol, staging_target_path: staging, target_path: target, volume_capability: cap, readonly: false }
  r.ok("publish", await call(() => c.NodePublishVolume(publishReq, LONG)))
  const a = attachedOf(nqn)!
  r.device("volume", `${a.ctrl.name} ${a.ns.name} (${a.ns.devT})`)
  const data = pattern(vol, 512 * 1024)
  writeSynced(`${target}/data.bin`, data)

  const how = await env.plugin.stop("SIGKILL")
  r.check(how === "signal SIGKILL", "plugin killed with SIGKILL", how)
  r.check(fs.existsSync(SOCKET), "its socket is left behind (stale)")
  r.check(mountsAt(staging).length === 1 && mountsAt(target).length === 1 && attachedOf(nqn)?.ctrl.name === a.ctrl.name,
    "volume still staged, published and connected while no plugin runs")

  env.plugin = await env.start()
  c = env.plugin.client
  r.time("restart: spawn → Probe ready", env.plugin.readyMs)
  const probe = await call(() => c.Probe({}))
  r.check(probe.code === 0 && probe.response?.ready?.value === true, "restarted plugin replaced the stale socket and answers Probe ready",
    `${env.plugin.readyMs} ms after spawn`)
  const stats = await call(() => c.NodeGetVolumeStats({ volume_id: vol, volume_path: target }))
  r.time("stats after restart", stats.ms)
  r.check(stats.code === 0 && stats.response?.volume_condition?.abnormal === false,
    "NodeGetVolumeStats after restart → OK, condition normal", `${codeName(stats.code)} ${stats.details} ${JSON.stringify(stats.response?.volume_condition)}`)
  r.ok("publish again after restart", await call(() => c.NodePublishVolume(publishReq, LONG)))
  r.check(mountsAt(target).length === 1, "still exactly one mount at the target")
  r.check(sha(readAt(`${target}/data.bin`, data.length)) === sha(data), "data intact through the target after restart")
  await tearDown(env, r, "after restart", { vol, nqn, staging, target })
}
