/**
 * Node-plugin e2e scenarios about safety, run INSIDE the VM against the real `rds-csi node`
 * process (see node-plugin.guest.ts): a device holding data is never formatted, even when a
 * stage is retried after the plugin died midway; connections outside the managed NQN prefix
 * are never touched; a bad volume context fails clearly, in time, and leaves nothing behind.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import {
  attachedOf,
  blkid,
  call,
  codeName,
  CONNECT_TIMEOUT_MS,
  controllers,
  ctrlsOf,
  ctx,
  FOREIGN,
  goneFromSysfs,
  log,
  mountCap,
  mounts,
  mountsAt,
  must,
  namespacesOf,
  ORPHAN_INTERVAL_MS,
  pattern,
  PREFIX,
  readAt,
  type Recorder,
  run,
  RUN_DIR,
  sha,
  since,
  sleep,
  SOCKET,
  stagingPath,
  stateFileOf,
  targetPath,
  waitFor,
  writeSynced
} from "./harness.ts"
import type { Env } from "./node-plugin.guest.ts"

const LONG = { deadlineMs: 120_000 }

/** `dumpe2fs -h`: the superblock's creation time (changes with every mkfs). */
const createdAt = async (device: string): Promise<string | undefined> => {
  const r = await run("dumpe2fs", ["-h", device])
  return /^Filesystem created:\s+(.+)$/m.exec(r.stdout)?.[1]?.trim()
}

const realTool = (name: string): string => ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map((d) => `${d}/${name}`).find((p) => fs.existsSync(p))!

/**
 * 4. A device holding a file system with data is never formatted, even when the stage is retried
 * after the plugin was SIGKILLed between connect and mount.
 */
export const neverFormat = async (env: Env, r: Recorder): Promise<void> => {
  const vol = "pvc-s4-data"
  const nqn = `${PREFIX}s4-data`
  const staging = stagingPath(vol)
  const target = targetPath(vol)
  const cap = mountCap("ext4")
  const stageReq = { volume_id: vol, staging_target_path: staging, volume_capability: cap, volume_context: ctx(nqn) }
  let c = env.plugin.client

  // The data: a first, ordinary stage formats the fresh namespace; a file is written; all undone.
  r.ok("first stage (formats the empty namespace)", await call(() => c.NodeStageVolume(stageReq, LONG)))
  const first = attachedOf(nqn)!
  const dev = `/dev/${first.ns.name}`
  r.device("first stage", `${first.ctrl.name} ${first.ns.name} (${first.ns.devT})`)
  const fs0 = await blkid(dev)
  const created0 = await createdAt(dev)
  r.check(fs0.type === "ext4" && fs0.uuid !== undefined && created0 !== undefined, "the plugin made an ext4", `UUID ${fs0.uuid}, created ${created0}`)
  r.ok("publish", await call(() => c.NodePublishVolume({ volume_id: vol, staging_target_path: staging, target_path: target, volume_capability: cap, readonly: false }, LONG)))
  const data = pattern(vol, 1024 * 1024)
  writeSynced(`${target}/precious.bin`, data)
  r.ok("unpublish", await call(() => c.NodeUnpublishVolume({ volume_id: vol, target_path: target }, LONG)))
  r.ok("unstage", await call(() => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: staging }, LONG)))
  r.check(goneFromSysfs(nqn) && !fs.existsSync(stateFileOf(vol)), "disconnected, no stage record: the next stage starts from nothing")

  // A plugin whose `mount` of this staging path waits for us: the wrapper is only a timing point
  // (it announces itself and waits; it would then run the real mount), the real tools do the work.
  // Without the spawn helper (RDS_CSI_SPAWN=direct) the mount is mount(8), so the wrapper is the
  // one that runs; the stage's steps and records are the same either way.
  const stopped = await env.plugin.stop("SIGTERM")
  r.check(stopped === "exit 0" && !fs.existsSync(SOCKET), "plugin stopped by SIGTERM: exit 0, socket removed", stopped)
  const hold = path.join(RUN_DIR, "hold-mount")
  const mark = path.join(RUN_DIR, "hold-mount.pid")
  fs.mkdirSync(hold, { recursive: true })
  fs.rmSync(mark, { force: true })
  fs.writeFileSync(path.join(hold, "mount"), [
    "#!/bin/bash",
    "# e2e timing point: the plugin's mount of one staging path announces itself and waits to be killed",
    `if [ "\${*: -1}" = ${JSON.stringify(staging)} ] && [[ " $* " != *" -o bind"* ]]; then`,
    `  echo $$ > ${JSON.stringify(mark)}`,
    `  while [ ! -e ${JSON.stringify(mark + ".release")} ]; do sleep 0.1; done`,
    "fi",
    `exec ${realTool("mount")} "$@"`,
    ""
  ].join("\n"), { mode: 0o755 })
  env.plugin = await env.start({ pathPrefix: hold, env: { RDS_CSI_SPAWN: "direct" } })
  c = env.plugin.client

  const t0 = performance.now()
  const pending = call(() => c.NodeStageVolume(stageReq, LONG))
  const holder = await waitFor(() => fs.existsSync(mark) ? Number(fs.readFileSync(mark, "utf8").trim()) || undefined : undefined, 60_000)
  r.check(holder !== undefined, "the plugin reached mount (connect and blkid done)", `after ${since(t0)} ms`)
  r.time("stage → reaching mount", since(t0))
  const mid = attachedOf(nqn)
  const rec = fs.existsSync(stateFileOf(vol)) ? JSON.parse(fs.readFileSync(stateFileOf(vol), "utf8")) as { complete: boolean } : undefined
  r.check(mid !== undefined && mountsAt(staging).length === 0, "midway: connected, nothing mounted", `${mid?.ctrl.name} ${mid?.ns.name}`)
  r.device("midway", `${mid!.ctrl.name} ${mid!.ns.name} (${mid!.ns.devT})`)
  r.check(rec?.complete === false, "midway: the stage record says incomplete", JSON.stringify(rec))

  const how = await env.plugin.stop("SIGKILL")
  process.kill(holder!, "SIGKILL") // the orphaned timing wrapper (it never ran the real mount)
  const killed = await pending
  r.check(how === "signal SIGKILL" && killed.code !== 0, "plugin SIGKILLed inside NodeStageVolume; the CO sees the call fail",
    `${how}; stage ended ${codeName(killed.code)}: ${killed.details}`)
  const after = await blkid(dev)
  r.check(attachedOf(nqn)?.ctrl.name === mid!.ctrl.name && after.uuid === fs0.uuid, "after the kill: still connected, file system untouched", `UUID ${after.uuid}`)

  env.plugin = await env.start()
  c = env.plugin.client
  r.time("restart: spawn → Probe ready", env.plugin.readyMs)
  r.ok("stage retried after the restart", await call(() => c.NodeStageVolume(stageReq, LONG)))
  const final = attachedOf(nqn)!
  r.device("retried stage", `${final.ctrl.name} ${final.ns.name} (${final.ns.devT})`)
  const m = mountsAt(staging)
  r.check(m.length === 1 && m[0]!.devT === final.ns.devT && m[0]!.fsType === "ext4", "staging mounted once from the device", JSON.stringify(m.map((x) => x.devT)))
  const fs1 = await blkid(`/dev/${final.ns.name}`)
  const created1 = await createdAt(`/dev/${final.ns.name}`)
  r.check(fs1.uuid === fs0.uuid && created1 === created0, "no second format: same UUID and superblock creation time",
    `UUID ${fs1.uuid}, created ${created1}`)
  r.check(sha(readAt(`${staging}/precious.bin`, data.length)) === sha(data), "the data written before is intact", sha(data))
  const rec2 = JSON.parse(fs.readFileSync(stateFileOf(vol), "utf8")) as { complete: boolean }
  r.check(rec2.complete, "the stage record is complete now")
  r.ok("unstage", await call(() => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: staging }, LONG)))
  r.check(goneFromSysfs(nqn), "disconnected")
}

/**
 * 5. Connections outside the managed prefix (made with nvme-cli before the plugin starts, one of
 * them mounted) are never touched, while a managed orphan is cleaned and other volumes come and go.
 */
export const foreign = async (env: Env, r: Recorder): Promise<void> => {
  const mounted = `${FOREIGN}mounted`
  const idle = `${FOREIGN}idle`
  const orphan = `${PREFIX}s5-orphan`
  const mnt = "/mnt/e2e-foreign"
  if (env.plugin !== undefined) {
    const howStopped = await env.plugin.stop("SIGTERM")
    r.check(howStopped === "exit 0" && !fs.existsSync(SOCKET), "running plugin stopped by SIGTERM first: exit 0, socket removed", howStopped)
  }
  r.check(controllers().filter((c) => c.nqn.startsWith(PREFIX) || c.nqn.startsWith(FOREIGN)).length === 0, "no plugin runs; no e2e connection exists yet")

  try {
    for (const nqn of [mounted, idle, orphan]) {
      await must("nvme", ["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", nqn, "--ctrl-loss-tmo=30", "--reconnect-delay=1"])
    }
    const ready = await waitFor(() => [mounted, idle, orphan].every((n) => attachedOf(n) !== undefined) ? true : undefined, 15_000)
    r.check(ready === true, "nvme connect (not the plugin): two foreign NQNs and one managed orphan connected")
    const fm = attachedOf(mounted)!
    const fi = attachedOf(idle)!
    const mo = attachedOf(orphan)!
    r.device("foreign mounted", `${fm.ctrl.name} ${fm.ns.name} (${fm.ns.devT})`)
    r.device("foreign idle", `${fi.ctrl.name} ${fi.ns.name} (${fi.ns.devT})`)
    r.device("managed orphan", `${mo.ctrl.name} ${mo.ns.name} (${mo.ns.devT})`)
    await must("mkfs.ext4", ["-q", "-F", `/dev/${fm.ns.name}`])
    fs.mkdirSync(mnt, { recursive: true })
    await must("mount", [`/dev/${fm.ns.name}`, mnt])
    const data = pattern("foreign", 256 * 1024)
    writeSynced(`${mnt}/boot-data.bin`, data)

    env.plugin = await env.start()
    const c = env.plugin.client
    const started = performance.now()
    r.time("restart: spawn → Probe ready", env.plugin.readyMs)
    const cleaned = await waitFor(() => goneFromSysfs(orphan) ? true : undefined, 3 * ORPHAN_INTERVAL_MS + 10_000, 100)
    r.time("managed orphan disconnected after ready", since(started))
    r.check(cleaned === true, `the reconciler runs: managed orphan ${mo.ctrl.name} (${orphan}) disconnected`, `${since(started)} ms after ready`)

    const vol = "pvc-s5-vol"
    const nqn = `${PREFIX}s5-vol`
    const cap = mountCap("ext4")
    r.ok("stage a managed volume", await call(() =>
      c.NodeStageVolume({ volume_id: vol, staging_target_path: stagingPath(vol), volume_capability: cap, volume_context: ctx(nqn) }, LONG)))
    r.ok("publish it", await call(() =>
      c.NodePublishVolume({ volume_id: vol, staging_target_path: stagingPath(vol), target_path: targetPath(vol), volume_capability: cap, readonly: false }, LONG)))
    r.ok("unpublish it", await call(() => c.NodeUnpublishVolume({ volume_id: vol, target_path: targetPath(vol) }, LONG)))
    r.ok("unstage it", await call(() => c.NodeUnstageVolume({ volume_id: vol, staging_target_path: stagingPath(vol) }, LONG)))
    r.check(goneFromSysfs(nqn), "the managed volume is disconnected")

    const refused = await call(() =>
      c.NodeStageVolume({ volume_id: "pvc-s5-foreign", staging_target_path: stagingPath("pvc-s5-foreign"), volume_capability: cap, volume_context: ctx(idle) }, LONG))
    r.check(refused.code === 9 && refused.details.includes("managed prefix"), "staging a foreign NQN is refused (FAILED_PRECONDITION)",
      `${codeName(refused.code)}: ${refused.details}`)
    r.ok("unstage of that never-staged volume", await call(() =>
      c.NodeUnstageVolume({ volume_id: "pvc-s5-foreign", staging_target_path: stagingPath("pvc-s5-foreign") }, LONG)))

    const waited = 3 * ORPHAN_INTERVAL_MS + 500 - since(started)
    if (waited > 0) await sleep(waited)
    r.time("plugin running alongside the foreign connections", since(started))
    const fmNow = attachedOf(mounted)
    const fiNow = attachedOf(idle)
    r.check(fmNow?.ctrl.name === fm.ctrl.name && fmNow.ctrl.state === "live" && fmNow.ns.devT === fm.ns.devT,
      `foreign mounted ${fm.ctrl.name} still connected, same device`, JSON.stringify(fmNow))
    r.check(fiNow?.ctrl.name === fi.ctrl.name && fiNow.ctrl.state === "live", `foreign idle ${fi.ctrl.name} (nothing mounted) still connected`,
      JSON.stringify(fiNow))
    const mm = mountsAt(mnt)
    r.check(mm.length === 1 && mm[0]!.devT === fm.ns.devT && sha(readAt(`${mnt}/boot-data.bin`, data.length)) === sha(data),
      `foreign mount ${mnt} still there, data intact`)
    const touched = env.plugin.logText().split("\n").filter((l) => l.includes(FOREIGN) && /orphan|disconnect/i.test(l))
    r.check(touched.length === 0, "the plugin's log never names a foreign NQN as orphan or disconnects it", touched.join(" | ").slice(0, 300))
    const seen = env.plugin.logText().split("\n").filter((l) => l.includes(orphan) && /orphan/i.test(l)).length
    r.check(seen > 0, "while it did report the managed orphan", `${seen} log line(s)`)
  } finally {
    // Whatever happened above, the foreign connections are the test's to undo, not the plugin's.
    if (mountsAt(mnt).length > 0) await run("umount", [mnt])
    for (const nqn of [mounted, idle]) if (ctrlsOf(nqn).length > 0) await run("nvme", ["disconnect", "-n", nqn])
  }
  r.check(goneFromSysfs(mounted) && goneFromSysfs(idle), "the test undid its foreign connections")
}

/** 6. Bad volume contexts → a clear gRPC error within the connect timeout, nothing left in sysfs. */
export const badContext = async (env: Env, r: Recorder): Promise<void> => {
  const c = env.plugin.client
  const cases = [
    {
      label: "unreachable address (127.0.0.1:4999, nothing listening)", vol: "pvc-s6-unreachable", nqn: `${PREFIX}s6-unreachable`,
      extra: { nvmePort: "4999" }, cause: /Connection refused/
    },
    { label: "NQN the target does not export", vol: "pvc-s6-wrong-nqn", nqn: `${PREFIX}s6-no-such-subsystem`, extra: {}, cause: /Input\/output error/ },
    {
      label: "namespace the subsystem does not have (nsid 7)", vol: "pvc-s6-wrong-nsid", nqn: `${PREFIX}s6-real`,
      extra: { nsid: "7" }, cause: /nsid 1\).*do not match/
    }
  ]
  for (const k of cases) {
    const before = ctrlsOf(k.nqn).length
    const o = await call(() =>
      c.NodeStageVolume({ volume_id: k.vol, staging_target_path: stagingPath(k.vol), volume_capability: mountCap("ext4"), volume_context: ctx(k.nqn, k.extra) }, LONG))
    r.time(k.label, o.ms)
    log(`[bad-context] ${k.label}: ${codeName(o.code)} after ${o.ms} ms: ${o.details}`)
    r.check(before === 0 && o.code === 14, `${k.label} → UNAVAILABLE`, `${codeName(o.code)}: ${o.details}`)
    r.check(o.details.includes(k.nqn) && k.cause.test(o.details), `${k.label}: the message names the NQN and the cause (${k.cause.source})`)
    r.check(o.ms <= CONNECT_TIMEOUT_MS + 3000, `${k.label}: answered within the ${CONNECT_TIMEOUT_MS / 1000} s connect timeout (+3 s)`, `${o.ms} ms`)
    const left = await waitFor(() => goneFromSysfs(k.nqn) ? true : undefined, 3000)
    r.check(left === true, `${k.label}: no controller left in sysfs`, JSON.stringify(ctrlsOf(k.nqn)))
    r.check(!fs.existsSync(stateFileOf(k.vol)) && mountsAt(stagingPath(k.vol)).length === 0, `${k.label}: no stage record, nothing mounted`)
  }
  const stray = mounts().filter((m) => m.mountPoint.includes("pvc-s6-"))
  r.check(stray.length === 0 && namespacesOf(`${PREFIX}s6-real`).length === 0, "no stray mounts or namespace heads")
}
