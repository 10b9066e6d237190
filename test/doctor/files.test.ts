/**
 * Doctor checks on directories and the mount table: the kubelet dir (exists, symlinked, missing),
 * its mount propagation decided from real mountinfo rows (shared, slave, private, nested mounts,
 * stacked mounts), kubelet's plugin dirs, the state dir (written, creatable, unwritable, a file),
 * and the host /proc.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as HostProc from "../../src/doctor/HostProc.ts"
import * as Kubelet from "../../src/doctor/Kubelet.ts"
import * as StateDir from "../../src/doctor/StateDir.ts"
import { mounterWithTable, mountinfo, options, tmp } from "./helpers.ts"

// Rows as a systemd host prints them (/ shared), with a private tmpfs and a slave bind in a container.
const row = (id: number, parent: number, mountPoint: string, optional: string, fs = "ext4") =>
  `${id} ${parent} 8:1 / ${mountPoint.replaceAll(" ", "\\040")} rw,relatime ${optional === "" ? "" : optional + " "}- ${fs} /dev/sda1 rw\n`

describe("kubelet dir propagation (pure decision over mountinfo rows)", () => {
  const shared = mountinfo(row(22, 1, "/", "shared:1") + row(40, 22, "/var/lib/kubelet/pods/x/volumes/y", "shared:5"))
  it("the deepest mount containing the dir decides: / shared → OK naming the peer group", () => {
    const r = Kubelet.decidePropagation("/var/lib/kubelet", shared)
    assert.strictEqual(r.status, "ok")
    assert.include(r.detail, "mount / (ext4, shared:1)")
  })
  it("a private mount of its own on the kubelet dir hides a shared / → FAIL with the host and DaemonSet fixes", () => {
    const r = Kubelet.decidePropagation("/var/lib/kubelet", mountinfo(row(22, 1, "/", "shared:1") + row(30, 22, "/var/lib/kubelet", "")))
    assert.strictEqual(r.status, "fail")
    assert.match(r.detail, /private/)
    assert.include(r.fix ?? "", "mount --make-rshared /var/lib/kubelet")
    assert.include(r.fix ?? "", "mountPropagation: Bidirectional")
  })
  it("slave only (a container's HostToContainer volume) → FAIL that explains the one-way propagation", () => {
    const r = Kubelet.decidePropagation("/var/lib/kubelet", mountinfo(row(22, 1, "/", "") + row(31, 22, "/var/lib/kubelet", "master:7")))
    assert.strictEqual(r.status, "fail")
    assert.match(r.detail, /slave/)
  })
  it("shared and slave at once (Bidirectional in a container) → OK", () => {
    assert.strictEqual(Kubelet.decidePropagation("/var/lib/kubelet", mountinfo(row(22, 1, "/", "") + row(31, 22, "/var/lib/kubelet", "shared:9 master:7"))).status, "ok")
  })
  it("the last mount stacked on the same point wins; a sibling prefix (/var/lib/kube) does not count", () => {
    const stacked = mountinfo(row(22, 1, "/", "shared:1") + row(30, 22, "/var/lib/kubelet", "shared:2") + row(35, 30, "/var/lib/kubelet", "") + row(36, 22, "/var/lib/kube", "shared:3"))
    assert.strictEqual(Kubelet.mountContaining(stacked, "/var/lib/kubelet/plugins")?.mountId, 35)
    assert.strictEqual(Kubelet.decidePropagation("/var/lib/kubelet", stacked).status, "fail")
    assert.strictEqual(Kubelet.mountContaining(mountinfo(row(22, 1, "/", "") + row(36, 22, "/var/lib/kube", "")), "/var/lib/kubelet")?.mountId, 22)
  })
  it("mount points with escaped spaces are compared unescaped", () => {
    const r = Kubelet.decidePropagation("/data dir/kubelet", mountinfo(row(22, 1, "/", "") + row(41, 22, "/data dir", "shared:4")))
    assert.strictEqual(r.status, "ok")
  })
  it("an unreadable table → FAIL", () => {
    assert.strictEqual(Kubelet.decidePropagation("/var/lib/kubelet", { error: "EACCES" }).status, "fail")
  })
})

describe("kubelet checks (temp dirs, the Mounter test layer's mountinfo)", () => {
  it.effect("missing dir: one FAIL that names --kubelet-dir, and no propagation verdict about a dir that is not there", () =>
    Effect.gen(function*() {
      const root = tmp()
      const results = yield* Kubelet.check(options(root))
      assert.strictEqual(results.length, 1)
      assert.strictEqual(results[0]!.status, "fail")
      assert.match(results[0]!.fix ?? "", /--kubelet-dir/)
    }).pipe(Effect.provide(mounterWithTable([]))))

  it.effect("a symlinked kubelet dir is judged by the mount its target is on; plugin dirs present → OK", () =>
    Effect.gen(function*() {
      const root = fs.realpathSync(tmp())
      fs.mkdirSync(path.join(root, "data/kubelet/plugins_registry"), { recursive: true })
      fs.mkdirSync(path.join(root, "data/kubelet/plugins/rds.csi.srvlab.io"), { recursive: true })
      fs.symlinkSync(path.join(root, "data/kubelet"), path.join(root, "kubelet"))
      const table = mountinfo(row(22, 1, "/", "") + row(50, 22, path.join(root, "data"), "shared:12"))
      const results = yield* Kubelet.check(options(root)).pipe(Effect.provide(mounterWithTable(table)))
      assert.deepStrictEqual(results.map((r) => [r.name, r.status]), [
        ["kubelet dir", "ok"],
        ["kubelet dir propagation", "ok"],
        ["kubelet plugin dirs", "ok"]
      ])
      assert.include(results[1]!.detail, `${root}/data/kubelet is on mount ${root}/data`)
    }))

  it.effect("kubelet dir without plugins_registry or the plugin dir: WARN each time, saying who creates it", () =>
    Effect.gen(function*() {
      const root = tmp()
      fs.mkdirSync(path.join(root, "kubelet"))
      const table = mountinfo(row(22, 1, "/", "shared:1"))
      const [, , noRegistry] = yield* Kubelet.check(options(root)).pipe(Effect.provide(mounterWithTable(table)))
      assert.strictEqual(noRegistry!.status, "warn")
      assert.match(noRegistry!.detail, /kubelet creates it/)
      fs.mkdirSync(path.join(root, "kubelet/plugins_registry"))
      const [, , noPluginDir] = yield* Kubelet.check(options(root)).pipe(Effect.provide(mounterWithTable(table)))
      assert.strictEqual(noPluginDir!.status, "warn")
      assert.match(noPluginDir!.fix ?? "", /DirectoryOrCreate/)
    }))
})

describe("state dir", () => {
  it.effect("existing and writable: OK, and the probe file is gone afterwards", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const r = yield* StateDir.check(dir)
      assert.strictEqual(r.status, "ok")
      assert.match(r.detail, /writable/)
      assert.deepStrictEqual(fs.readdirSync(dir), [])
    }))
  it.effect("missing under a writable parent: OK, the plugin creates it (nothing is created by doctor)", () =>
    Effect.gen(function*() {
      const root = tmp()
      const dir = path.join(root, "a/b/state")
      const r = yield* StateDir.check(dir)
      assert.strictEqual(r.status, "ok")
      assert.include(r.detail, `(${root} is writable)`)
      assert.isFalse(fs.existsSync(path.join(root, "a")))
    }))
  it.effect("a file where the dir should be: FAIL", () =>
    Effect.gen(function*() {
      const root = tmp()
      fs.writeFileSync(path.join(root, "state"), "")
      assert.strictEqual((yield* StateDir.check(path.join(root, "state"))).status, "fail")
      // …or where a parent should be
      assert.strictEqual((yield* StateDir.check(path.join(root, "state/sub"))).status, "fail")
    }))
  it.effect("a directory nobody can create files in (procfs, even for root): FAIL with the error and the fix", () =>
    Effect.gen(function*() {
      const r = yield* StateDir.check("/proc/self")
      assert.strictEqual(r.status, "fail")
      assert.match(r.detail, /^\/proc\/self: E[A-Z]+/)
      assert.match(r.fix ?? "", /--state-dir/)
    }))
})

describe("host /proc", () => {
  it.effect("PID 1 readable: OK naming it; a root without PID 1 (no hostPID): WARN", () =>
    Effect.gen(function*() {
      const root = tmp()
      fs.mkdirSync(path.join(root, "1/fd"), { recursive: true })
      fs.writeFileSync(path.join(root, "1/comm"), "systemd\n")
      const r = yield* HostProc.check(root)
      assert.strictEqual(r.status, "ok")
      assert.match(r.detail, /PID 1 is systemd/)
      const missing = yield* HostProc.check(path.join(root, "nothing"))
      assert.strictEqual(missing.status, "warn")
      assert.match(missing.fix ?? "", /hostPID: true/)
      fs.rmdirSync(path.join(root, "1/fd"))
      assert.strictEqual((yield* HostProc.check(root)).status, "warn")
    }))
})
