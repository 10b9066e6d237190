/**
 * The nvmet backend's configfs layout, against a temp directory standing in for
 * /sys/kernel/config/nvmet (Configfs.plainDir: configfs's mkdir/symlink/rmdir rules) and a temp
 * storage root. The real kernel target is exercised in the e2e VM, not here.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { plainDir } from "../../src/emulator/Configfs.ts"
import { execute } from "../../src/emulator/Interpreter.ts"
import { type EmulatorState, initialState } from "../../src/emulator/Model.ts"
import * as NvmetBackend from "../../src/emulator/NvmetBackend.ts"

const NQN = "nqn.2000-02.com.mikrotik:pvc-1"
const HOST1 = "nqn.2014-08.org.nvmexpress:uuid:host-1"
const HOST2 = "nqn.2014-08.org.nvmexpress:uuid:host-2"
const T0 = Date.UTC(2025, 0, 1)

const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })))

const setup = () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nvmet-"))
  dirs.push(tmp)
  const cfs = path.join(tmp, "nvmet")
  const storage = path.join(tmp, "storage")
  fs.mkdirSync(cfs)
  const backend = NvmetBackend.make({ storageRoot: storage, nvmeAddress: "10.0.0.5", configfsRoot: cfs, configfs: plainDir })
  let state: EmulatorState = initialState(100 * 2 ** 30, T0)
  /** Runs a RouterOS command and applies its actions, as the daemon does. */
  const run = (line: string) =>
    Effect.gen(function*() {
      const o = execute(state, line, { now: T0, bootedAt: T0, flags: false })
      assert.strictEqual(o.exitCode, 0, `${line}: ${o.output}`)
      for (const a of o.actions) yield* backend.apply(a)
      state = o.state
    })
  const at = (...p: ReadonlyArray<string>) => path.join(cfs, ...p)
  const read = (...p: ReadonlyArray<string>) => fs.readFileSync(at(...p), "utf8")
  /** A directory's entries; [] when absent (the stand-in has no default groups until used). */
  const ls = (...p: ReadonlyArray<string>) => (fs.existsSync(at(...p)) ? fs.readdirSync(at(...p)) : [])
  return { tmp, cfs, storage, backend, run, at, read, ls, state: () => state }
}

const add = `/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=10G slot=pvc-1 nvme-tcp-export=yes ` +
  `nvme-tcp-server-port=4420 nvme-tcp-server-nqn=${NQN}`

describe("NvmetBackend over a configfs stand-in", () => {
  it.live("add: a sparse file, a subsystem open to any host, namespace 1 on the file, enabled, linked to a TCP port", () =>
    Effect.gen(function*() {
      const t = setup()
      yield* t.run(add)
      const file = path.join(t.storage, "storage-pool/k8s/pvc-1.img")
      const st = fs.statSync(file)
      assert.strictEqual(st.size, 10 * 2 ** 30)
      assert.isBelow(st.blocks * 512, 1024 * 1024, "sparse")
      assert.strictEqual(t.read("subsystems", NQN, "attr_allow_any_host"), "1")
      assert.strictEqual(t.read("subsystems", NQN, "namespaces/1/device_path"), file)
      assert.strictEqual(t.read("subsystems", NQN, "namespaces/1/enable"), "1")
      assert.deepStrictEqual(
        ["addr_trtype", "addr_adrfam", "addr_traddr", "addr_trsvcid"].map((k) => t.read("ports/4420", k)),
        ["tcp", "ipv4", "10.0.0.5", "4420"]
      )
      assert.strictEqual(fs.readlinkSync(t.at("ports/4420/subsystems", NQN)), t.at("subsystems", NQN))
      assert.deepStrictEqual(t.ls("subsystems", NQN, "allowed_hosts"), [])
    }))

  it.live("allowed host: hosts/<nqn> linked into allowed_hosts, any-host off; switching hosts drops the old one", () =>
    Effect.gen(function*() {
      const t = setup()
      yield* t.run(add)
      yield* t.run(`/disk set [find slot=pvc-1] nvme-tcp-server-allow-host-name=${HOST1}`)
      assert.strictEqual(t.read("subsystems", NQN, "attr_allow_any_host"), "0")
      assert.strictEqual(fs.readlinkSync(t.at("subsystems", NQN, "allowed_hosts", HOST1)), t.at("hosts", HOST1))
      yield* t.run(`/disk set [find slot=pvc-1] nvme-tcp-server-allow-host-name=${HOST2}`)
      assert.deepStrictEqual(t.ls("subsystems", NQN, "allowed_hosts"), [HOST2])
      assert.deepStrictEqual(t.ls("hosts"), [HOST2])
      yield* t.run(`/disk set [find slot=pvc-1] nvme-tcp-server-allow-host-name=""`)
      assert.strictEqual(t.read("subsystems", NQN, "attr_allow_any_host"), "1")
      assert.deepStrictEqual(t.ls("subsystems", NQN, "allowed_hosts"), [])
      assert.deepStrictEqual(t.ls("hosts"), [])
    }))

  it.live("grow: the file is truncated larger and revalidate_size (where the kernel has it) gets 1", () =>
    Effect.gen(function*() {
      const t = setup()
      yield* t.run(add)
      fs.writeFileSync(t.at("subsystems", NQN, "namespaces/1/revalidate_size"), "")
      yield* t.run("/disk set [find slot=pvc-1] file-size=12G")
      assert.strictEqual(fs.statSync(path.join(t.storage, "storage-pool/k8s/pvc-1.img")).size, 12 * 2 ** 30)
      assert.strictEqual(t.read("subsystems", NQN, "namespaces/1/revalidate_size"), "1")
    }))

  it.live("remove: unlinked from the port, namespace and subsystem gone, host entries too; the file stays until /file remove", () =>
    Effect.gen(function*() {
      const t = setup()
      yield* t.run(add)
      yield* t.run(`/disk set [find slot=pvc-1] nvme-tcp-server-allow-host-name=${HOST1}`)
      yield* t.run("/disk remove [find slot=pvc-1]")
      assert.isFalse(fs.existsSync(t.at("subsystems", NQN)))
      assert.deepStrictEqual(t.ls("ports/4420/subsystems"), [])
      assert.deepStrictEqual(t.ls("hosts"), [])
      const file = path.join(t.storage, "storage-pool/k8s/pvc-1.img")
      assert.isTrue(fs.existsSync(file))
      yield* t.run("/file remove [find name=\"storage-pool/k8s/pvc-1.img\"]")
      assert.isFalse(fs.existsSync(file))
      yield* t.run("/file remove [find name=\"storage-pool/k8s\"]")
      assert.isFalse(fs.existsSync(path.join(t.storage, "storage-pool/k8s")))
    }))

  it.live("buffered_io is switched on before enabling where the kernel offers it", () =>
    Effect.gen(function*() {
      const t = setup()
      fs.mkdirSync(t.at("subsystems", NQN, "namespaces/1"), { recursive: true })
      fs.writeFileSync(t.at("subsystems", NQN, "namespaces/1/buffered_io"), "0")
      yield* t.run(add)
      assert.strictEqual(t.read("subsystems", NQN, "namespaces/1/buffered_io"), "1")
    }))

  it.live("a port already serving another address is not rewritten: the command fails", () =>
    Effect.gen(function*() {
      const t = setup()
      fs.mkdirSync(t.at("ports/4420/subsystems/other"), { recursive: true })
      fs.writeFileSync(t.at("ports/4420/addr_traddr"), "192.168.1.1")
      const o = execute(t.state(), add, { now: T0, bootedAt: T0, flags: false })
      const exit = yield* Effect.exit(Effect.forEach(o.actions, (a) => t.backend.apply(a)))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(exit), "nvmet port 4420 is in use with another address")
    }))

  it.live("restore after a reboot: configfs emptied and the file lost come back from the state", () =>
    Effect.gen(function*() {
      const t = setup()
      yield* t.run(add)
      fs.rmSync(t.cfs, { recursive: true })
      fs.mkdirSync(t.cfs)
      fs.rmSync(path.join(t.storage, "storage-pool/k8s/pvc-1.img"))
      yield* t.backend.restore(t.state())
      assert.strictEqual(fs.statSync(path.join(t.storage, "storage-pool/k8s/pvc-1.img")).size, 10 * 2 ** 30)
      assert.strictEqual(t.read("subsystems", NQN, "namespaces/1/enable"), "1")
      assert.isTrue(fs.existsSync(t.at("ports/4420/subsystems", NQN)))
    }))
})
