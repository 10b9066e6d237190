/**
 * Runs INSIDE the VM (Node 24, as root): the whole driver on a real kernel. Starts the project's
 * RDS emulator on the nvmet backend (`rds-csi emulator`: Debian's sshd on 127.0.0.1, configfs,
 * sparse files), `rds-csi controller` against it over SSH, and `rds-csi node`, then drives both
 * CSI sockets the way Kubernetes would:
 *   provision  CreateVolume → ControllerPublish (fenced to the node's host NQN) → NodeStage →
 *              NodePublish → write → online expand (ControllerExpand + NodeExpand: the file
 *              system grows mounted, data intact) → unpublish / unstage / ControllerUnpublish →
 *              DeleteVolume (subsystem and backing file gone)
 *   fencing    while published to node A, a second host NQN cannot connect at all; after
 *              ControllerUnpublish it can
 *   full-pool  a volume larger than the pool's free space → RESOURCE_EXHAUSTED, nothing left
 *   csi-sanity the CSI conformance suite v5.4.0 against both sockets, when its binary is present
 *              (../shared/tools/csi-sanity; users' machines lack it: then the scenario says so)
 *
 *   node controller.guest.ts OUT_DIR SCENARIO...
 */
import * as fs from "node:fs"
import * as path from "node:path"
import {
  call, ctrlsOf, KUBELET, log, mountCap, pattern, PREFIX, readAt, type Recorder, REPO, run, scenario, sha,
  SOCKET, startPlugin, STATE_DIR, stagingPath, targetPath, waitFor, writeSynced
} from "./harness.ts"

import { CFG, CONTROLLER_SOCKET, startController, startEmulator, stopAll, STORAGE_ROOT } from "./controllerHarness.ts"

const HOST_A = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-00000000000a"
const HOST_B = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-4000-8000-00000000000b"
const MiB = 1024 ** 2
const SANITY = path.resolve(REPO, "../shared/tools/csi-sanity/csi-sanity")

const [outDir, ...names] = process.argv.slice(2) as [string, ...Array<string>]
fs.mkdirSync(STATE_DIR, { recursive: true })
const read = (p: string): string | undefined => {
  try {
    return fs.readFileSync(p, "utf8").trim()
  } catch {
    return undefined
  }
}
const allowedHosts = (nqn: string): ReadonlyArray<string> => {
  try {
    return fs.readdirSync(`${CFG}/subsystems/${nqn}/allowed_hosts`)
  } catch {
    return []
  }
}
const fsSizeOf = (mountPoint: string): number => {
  const s = fs.statfsSync(mountPoint)
  return s.blocks * s.bsize
}

/** `nvme connect` as another host; returns whether the kernel got a controller for `nqn`. */
const connectAs = async (host: string, nqn: string): Promise<{ readonly connected: boolean; readonly output: string }> => {
  const before = new Set(ctrlsOf(nqn).map((c) => c.name))
  const r = await run("nvme", ["connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420", "-n", nqn, "--hostnqn", host, "-l", "1"], 30_000)
  const added = ctrlsOf(nqn).filter((c) => !before.has(c.name))
  for (const c of added) await run("nvme", ["disconnect", "-d", c.name])
  return { connected: added.length > 0, output: `${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 200)}` }
}

const main = async (): Promise<number> => {
  const flags = await startEmulator(outDir)
  const controller = await startController(outDir, flags)
  const node = await startPlugin(outDir, { extraFlags: ["--host-nqn", HOST_A] })
  const info = await call(() => node.client.NodeGetInfo({}))
  const nodeId = info.response?.node_id ?? ""
  log(`node plugin ready ${node.readyMs} ms after spawn; NodeGetInfo node_id ${nodeId}`)

  const SCENARIOS: Record<string, { readonly title: string; readonly body: (r: Recorder) => Promise<void> }> = {
    provision: {
      title: "CreateVolume → ControllerPublish (fenced) → NodeStage → NodePublish → write → online expand → unpublish/unstage/ControllerUnpublish → DeleteVolume",
      body: async (r) => {
        r.check(nodeId === `e2e-guest,${HOST_A}`, "NodeGetInfo reports the node name and its host NQN", nodeId)
        const vol = "pvc-e2e-1"
        const nqn = `${PREFIX}${vol}`
        const created = r.ok("CreateVolume 64 MiB", await call(() => controller.CreateVolume({ name: vol, capacity_range: { required_bytes: 64 * MiB }, volume_capabilities: [mountCap("ext4")] }, { deadlineMs: 120_000 })))
        r.check(Number(created.volume.capacity_bytes) === 64 * MiB, "capacity is what was asked", String(created.volume.capacity_bytes))
        r.check(fs.existsSync(`${CFG}/subsystems/${nqn}`), "a real nvmet subsystem exists for the volume", nqn)
        const backing = `${STORAGE_ROOT}/storage-pool/k8s/${vol}.img`
        r.check(fs.statSync(backing).size === 64 * MiB, "its backing file is a 64 MiB sparse file", `${backing}: ${fs.statSync(backing).size} bytes, ${fs.statSync(backing).blocks * 512} allocated`)
        const again = r.ok("CreateVolume again (idempotent)", await call(() => controller.CreateVolume({ name: vol, capacity_range: { required_bytes: 64 * MiB }, volume_capabilities: [mountCap("ext4")] }, { deadlineMs: 120_000 })))
        r.check(again.volume.volume_id === vol, "the same volume", again.volume.volume_id)
        const cap = mountCap("ext4")
        r.ok("ControllerPublishVolume", await call(() => controller.ControllerPublishVolume({ volume_id: vol, node_id: nodeId, volume_capability: cap, volume_context: created.volume.volume_context }, { deadlineMs: 120_000 })))
        r.check(read(`${CFG}/subsystems/${nqn}/attr_allow_any_host`) === "0" && allowedHosts(nqn).join() === HOST_A, "fenced at the target: only the node's host NQN is allowed", `allow_any_host=${read(`${CFG}/subsystems/${nqn}/attr_allow_any_host`)} allowed_hosts=${allowedHosts(nqn).join(",")}`)
        const staging = stagingPath(vol)
        const target = targetPath(vol)
        r.ok("NodeStageVolume (ext4)", await call(() => node.client.NodeStageVolume({ volume_id: vol, staging_target_path: staging, volume_capability: cap, volume_context: created.volume.volume_context }, { deadlineMs: 120_000 })))
        r.ok("NodePublishVolume", await call(() => node.client.NodePublishVolume({ volume_id: vol, staging_target_path: staging, target_path: target, volume_capability: cap, volume_context: created.volume.volume_context }, { deadlineMs: 60_000 })))
        const data = pattern("controller-e2e", 4 * MiB)
        writeSynced(`${target}/data.bin`, data)
        const before = fsSizeOf(target)
        r.check(before < 64 * MiB && before > 40 * MiB, "the file system is about 64 MiB", `${before} bytes`)
        const grown = r.ok("ControllerExpandVolume to 128 MiB", await call(() => controller.ControllerExpandVolume({ volume_id: vol, capacity_range: { required_bytes: 128 * MiB }, volume_capability: cap }, { deadlineMs: 120_000 })))
        r.check(Number(grown.capacity_bytes) === 128 * MiB && grown.node_expansion_required, "the disk grew and the node must grow the file system", JSON.stringify(grown))
        r.check(fs.statSync(backing).size === 128 * MiB, "the backing file grew", `${fs.statSync(backing).size}`)
        // The target tells the host (namespace attribute changed AEN); the CO retries NodeExpand until the device has grown.
        const expanded = await waitFor(async () => {
          const o = await call(() => node.client.NodeExpandVolume({ volume_id: vol, volume_path: target, capacity_range: { required_bytes: 128 * MiB }, staging_target_path: staging, volume_capability: cap }, { deadlineMs: 60_000 }))
          return o.code === 0 ? o : undefined
        }, 60_000, 500)
        r.check(expanded !== undefined, "NodeExpandVolume → OK once the namespace has grown on this node")
        const after = fsSizeOf(target)
        r.check(after > before + 50 * MiB, "the mounted file system grew online", `${before} → ${after} bytes`)
        r.check(sha(readAt(`${target}/data.bin`, data.length)) === sha(data), "data intact after the expansion")
        r.ok("NodeUnpublishVolume", await call(() => node.client.NodeUnpublishVolume({ volume_id: vol, target_path: target }, { deadlineMs: 60_000 })))
        r.ok("NodeUnstageVolume", await call(() => node.client.NodeUnstageVolume({ volume_id: vol, staging_target_path: staging }, { deadlineMs: 60_000 })))
        r.check(ctrlsOf(nqn).length === 0, "the node disconnected")
        r.ok("ControllerUnpublishVolume", await call(() => controller.ControllerUnpublishVolume({ volume_id: vol, node_id: nodeId }, { deadlineMs: 120_000 })))
        r.check(read(`${CFG}/subsystems/${nqn}/attr_allow_any_host`) === "1" && allowedHosts(nqn).length === 0, "the fence is open again")
        r.ok("DeleteVolume", await call(() => controller.DeleteVolume({ volume_id: vol }, { deadlineMs: 120_000 })))
        r.check(!fs.existsSync(`${CFG}/subsystems/${nqn}`), "the subsystem is gone from configfs")
        r.check(!fs.existsSync(backing), "the backing file is gone")
        r.ok("DeleteVolume again (idempotent)", await call(() => controller.DeleteVolume({ volume_id: vol }, { deadlineMs: 120_000 })))
      }
    },
    fencing: {
      title: "published to node A: a second host NQN cannot connect; after ControllerUnpublish it can",
      body: async (r) => {
        const vol = "pvc-e2e-fence"
        const nqn = `${PREFIX}${vol}`
        const created = r.ok("CreateVolume", await call(() => controller.CreateVolume({ name: vol, capacity_range: { required_bytes: 32 * MiB }, volume_capabilities: [mountCap("ext4")] }, { deadlineMs: 120_000 })))
        const open = await connectAs(HOST_B, nqn)
        r.check(open.connected, "before any publish, any host may connect (the RDS default)", open.output)
        r.ok("ControllerPublishVolume to node A", await call(() => controller.ControllerPublishVolume({ volume_id: vol, node_id: nodeId, volume_capability: mountCap("ext4"), volume_context: created.volume.volume_context }, { deadlineMs: 120_000 })))
        const b = await connectAs(HOST_B, nqn)
        r.check(!b.connected, "host B's nvme connect is refused by the target", b.output)
        const a = await connectAs(HOST_A, nqn)
        r.check(a.connected, "host A connects", a.output)
        const second = await call(() => controller.ControllerPublishVolume({ volume_id: vol, node_id: `node-b,${HOST_B}`, volume_capability: mountCap("ext4") }, { deadlineMs: 120_000 }))
        r.check(second.code === 9 && second.details.includes(HOST_A), "ControllerPublish to node B → FAILED_PRECONDITION naming the first", `${second.code} ${second.details}`)
        r.ok("ControllerUnpublishVolume from A", await call(() => controller.ControllerUnpublishVolume({ volume_id: vol, node_id: nodeId }, { deadlineMs: 120_000 })))
        const later = await connectAs(HOST_B, nqn)
        r.check(later.connected, "after unpublish host B may connect", later.output)
        r.ok("DeleteVolume", await call(() => controller.DeleteVolume({ volume_id: vol }, { deadlineMs: 120_000 })))
      }
    },
    "full-pool": {
      title: "a volume larger than the pool's free space → RESOURCE_EXHAUSTED, nothing left behind; GetCapacity tells the free bytes",
      body: async (r) => {
        const capacity = r.ok("GetCapacity", await call(() => controller.GetCapacity({}, { deadlineMs: 60_000 })))
        const free = Number(capacity.available_capacity)
        r.check(free > 0 && free <= 100 * 1024 * MiB, "GetCapacity is the pool's free bytes (of the 100 GiB pool)", String(free))
        const big = await call(() => controller.CreateVolume({ name: "pvc-e2e-big", capacity_range: { required_bytes: free + 64 * MiB }, volume_capabilities: [mountCap("ext4")] }, { deadlineMs: 120_000 }))
        r.check(big.code === 8, "CreateVolume beyond the free space → RESOURCE_EXHAUSTED", `${big.code} ${big.details}`)
        r.check(!fs.existsSync(`${CFG}/subsystems/${PREFIX}pvc-e2e-big`) && !fs.existsSync(`${STORAGE_ROOT}/storage-pool/k8s/pvc-e2e-big.img`), "no subsystem, no file left")
        const list = r.ok("ListVolumes", await call(() => controller.ListVolumes({}, { deadlineMs: 60_000 })))
        r.check(list.entries.every((e) => e.volume.volume_id !== "pvc-e2e-big"), "the volume is not listed")
      }
    },
    "csi-sanity": {
      title: "csi-sanity v5.4.0 against both sockets (the emulator on nvmet, the real node plugin)",
      body: async (r) => {
        if (!fs.existsSync(SANITY)) {
          log(`csi-sanity NOT RUN: ${SANITY} is absent (it lives in ../shared/tools, which users' machines do not have)`)
          fs.writeFileSync(path.join(outDir, "csi-sanity.json"), JSON.stringify({ ran: false, reason: `${SANITY} absent` }) + "\n")
          r.check(true, "csi-sanity binary absent: NOT RUN (said plainly; see README)", SANITY)
          return
        }
        const dir = `${KUBELET}/csi-sanity`
        fs.mkdirSync(dir, { recursive: true })
        fs.writeFileSync(`${dir}/params.yaml`, "{}\n")
        const started = performance.now()
        const s = await run(SANITY, [
          `--csi.endpoint=${SOCKET}`, `--csi.controllerendpoint=${CONTROLLER_SOCKET}`,
          `--csi.stagingdir=${dir}/staging`, `--csi.mountdir=${dir}/target`, `--csi.testvolumeparameters=${dir}/params.yaml`,
          `--csi.testvolumesize=${32 * MiB}`, `--csi.testvolumeexpandsize=${48 * MiB}`, `--ginkgo.junit-report=${outDir}/csi-sanity-junit.xml`,
          "--ginkgo.timeout=40m", "--ginkgo.no-color"
        ], 45 * 60_000)
        const text = s.stdout + s.stderr
        fs.writeFileSync(path.join(outDir, "csi-sanity.log"), text)
        const summary = /Ran (\d+) of (\d+) Specs.*\n.*?(?:SUCCESS|FAIL)!.*?(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/s.exec(text)
        const passed = Number(summary?.[3] ?? -1), failed = Number(summary?.[4] ?? -1), skipped = Number(summary?.[6] ?? -1)
        fs.writeFileSync(path.join(outDir, "csi-sanity.json"), JSON.stringify({ ran: true, passed, failed, skipped, exit: s.code, ms: Math.round(performance.now() - started) }) + "\n")
        r.time("csi-sanity", Math.round(performance.now() - started))
        const failures = text.split("\n").filter((l) => /\[FAIL\]/.test(l)).slice(0, 20).join(" | ")
        r.check(summary !== null, "csi-sanity printed its summary", summary?.[0]?.replace(/\s+/g, " ") ?? text.slice(-500))
        r.check(failed === 0 && s.code === 0, `csi-sanity: ${passed} passed, ${failed} failed, ${skipped} skipped`, failures)
      }
    }
  }

  const unknown = names.filter((n) => !(n in SCENARIOS))
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(", ")}`)
  let failed = 0
  for (const name of names) if (!(await scenario(outDir, name, SCENARIOS[name]!.title, SCENARIOS[name]!.body))) failed++
  await node.stop("SIGTERM")
  return failed
}

const started = performance.now()
let failed = 1
try {
  failed = await main()
} catch (e) {
  log(`controller guest runner failed: ${(e as Error)?.stack ?? String(e)}`)
} finally {
  await stopAll()
}
log(`${names.length - failed}/${names.length} scenarios passed in ${Math.round(performance.now() - started)} ms`)
process.exit(failed === 0 ? 0 : 1)
