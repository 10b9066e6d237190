/**
 * `npm run bench -- controller [N]`: the controller's RPC latency over real SSH. The RDS
 * emulator (memory backend) behind Debian's sshd on loopback, `rds-csi controller`'s own
 * composition (ssh2 client, use cases, gRPC edge) on a unix socket, a gRPC client: N
 * CreateVolume, N ControllerPublish/Unpublish, N ControllerExpand, N DeleteVolume, one after
 * another; medians and p99 per RPC, and how many RouterOS commands (SSH round trips) each RPC
 * cost, counted by the emulator. Target (issue 11): CreateVolume ≤ 3 commands.
 * Results are printed and written to bench/out/controller.json. Needs /usr/sbin/sshd
 * (openssh-server; `bash scripts/prepare-host.sh host` installs it).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { testControllerSettings } from "../../src/controller/ControllerSettings.ts"
import { controllerServices, serveController, sshOptions } from "../../src/controllerMain.ts"
import { startEmulator } from "../../src/emulator/Emulator.ts"
import * as RdsClientSsh from "../../src/rds/RdsClientSsh.ts"
import { makeCsiClient } from "../../test/csi/client.ts"

const N = Number(process.argv[2] ?? 50)
const GiB = 1024 ** 3
const NODE = "bench-node,nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-000000000001"
const cap = { mount: { fs_type: "ext4", mount_flags: [] }, access_mode: { mode: "SINGLE_NODE_WRITER" } }

const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
}

if (!Fs.existsSync("/usr/sbin/sshd")) {
  console.error("bench/controller: /usr/sbin/sshd is missing (Debian: apt-get install openssh-server, or bash scripts/prepare-host.sh host)")
  process.exit(1)
}

const program = Effect.gen(function*() {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rds-csi-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
  const emu = yield* startEmulator({ dir: Path.join(dir, "emulator"), sshPort: 0, backend: "memory", poolSize: 10_000 * GiB, log: () => undefined })
  const settings = testControllerSettings({
    endpoint: `unix://${dir}/controller.sock`,
    rdsHost: "127.0.0.1",
    rdsPort: emu.sshPort,
    rdsUser: emu.user,
    sshKeyFile: emu.clientKey!,
    hostKeyFile: emu.hostKeyPub,
    insecureSkipHostKeyCheck: false
  })
  const options = yield* sshOptions(settings)
  const socket = yield* serveController.pipe(Effect.provide(controllerServices(settings, RdsClientSsh.layer(options))))
  const client = makeCsiClient(socket)
  yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
  const count = () => Effect.runPromise(emu.control("count")).then((r) => Number(/\d+/.exec(r.output)?.[0] ?? NaN))

  const rows: Record<string, { ms: Array<number>; commands: Array<number> }> = {}
  const measure = async (rpc: string, call: () => Promise<unknown>) => {
    const before = await count()
    const t = performance.now()
    await call()
    const ms = performance.now() - t
    const row = rows[rpc] ?? (rows[rpc] = { ms: [], commands: [] })
    row.ms.push(ms)
    row.commands.push((await count()) - before)
  }
  yield* Effect.promise(async () => {
    await client.ListVolumes({}) // the SSH connection is open before the first timed call
    const names = Array.from({ length: N }, (_, i) => `pvc-bench-${String(i).padStart(4, "0")}`)
    for (const name of names) await measure("CreateVolume", () => client.CreateVolume({ name, volume_capabilities: [cap], capacity_range: { required_bytes: GiB } }))
    for (const name of names) await measure("CreateVolume (exists)", () => client.CreateVolume({ name, volume_capabilities: [cap], capacity_range: { required_bytes: GiB } }))
    for (const name of names) await measure("ControllerPublishVolume", () => client.ControllerPublishVolume({ volume_id: name, node_id: NODE, volume_capability: cap }))
    for (const name of names) await measure("ControllerUnpublishVolume", () => client.ControllerUnpublishVolume({ volume_id: name, node_id: NODE }))
    for (const name of names) await measure("ControllerExpandVolume", () => client.ControllerExpandVolume({ volume_id: name, capacity_range: { required_bytes: 2 * GiB } }))
    await measure("ListVolumes", () => client.ListVolumes({}))
    for (const name of names) await measure("DeleteVolume", () => client.DeleteVolume({ volume_id: name }))
  })
  const table = Object.entries(rows).map(([rpc, r]) => ({
    rpc,
    n: r.ms.length,
    medianMs: Math.round(quantile(r.ms, 0.5) * 10) / 10,
    p99Ms: Math.round(quantile(r.ms, 0.99) * 10) / 10,
    commands: `${Math.min(...r.commands)}–${Math.max(...r.commands)}`
  }))
  console.log(`bench/controller: ${N} volumes through \`rds-csi controller\` over ssh2 → OpenSSH ${Fs.existsSync("/usr/sbin/sshd") ? "sshd" : ""} → the emulator (memory backend), ${Os.cpus().length} cores, Node ${process.version}`)
  console.log("| RPC | n | median | p99 | RouterOS commands per call |")
  console.log("| --- | ---: | ---: | ---: | ---: |")
  for (const t of table) console.log(`| ${t.rpc} | ${t.n} | ${t.medianMs} ms | ${t.p99Ms} ms | ${t.commands} |`)
  const create = rows["CreateVolume"]!
  console.log(`CreateVolume used at most ${Math.max(...create.commands)} commands (target ≤ 3): ${Math.max(...create.commands) <= 3 ? "met" : "MISSED"}`)
  Fs.mkdirSync("bench/out", { recursive: true })
  Fs.writeFileSync("bench/out/controller.json", JSON.stringify({ n: N, table }, null, 2) + "\n")
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(NodeServices.layer))).catch((e) => {
  console.error(e)
  process.exit(1)
})
