/**
 * Doctor checks on the host's kernel and tools: the nvme-tcp module (sysfs, then a real spawn of
 * a fake modprobe), sysfs nvme-fabrics (the live Sysfs over a temp root, and the test layer),
 * nvme-cli's version and the mount tools (the test layers the plugin's own tests use), the host NQN file.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Fabrics from "../../src/doctor/Fabrics.ts"
import * as HostNqn from "../../src/doctor/HostNqn.ts"
import * as KernelModule from "../../src/doctor/KernelModule.ts"
import * as MountTools from "../../src/doctor/MountTools.ts"
import * as NvmeCliVersion from "../../src/doctor/NvmeCliVersion.ts"
import * as SpawnHelper from "../../src/doctor/SpawnHelper.ts"
import { NvmeCliError } from "../../src/nvme/NvmeCli.ts"
import { SysfsLive } from "../../src/nvme/SysfsLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { fakeModprobe, options, testHost, tmp } from "./helpers.ts"

const moduleCheck = (root: string, modprobe: string) =>
  KernelModule.check(options(root, { modprobe }))

describe("nvme-tcp module", () => {
  it.effect("loaded (sysfs module dir present): OK, and modprobe is not even asked", () =>
    Effect.gen(function*() {
      const root = tmp()
      fs.mkdirSync(path.join(root, "sys/module/nvme_tcp"), { recursive: true })
      const r = yield* moduleCheck(root, fakeModprobe(root, { exit: 1 }))
      assert.strictEqual(r.status, "ok")
      assert.match(r.detail, /loaded/)
      assert.isFalse(fs.existsSync(path.join(root, "argv")))
    }))

  it.effect("not loaded, loadable: WARN with the commands that load it now and at boot; modprobe ran as a dry run", () =>
    Effect.gen(function*() {
      const root = tmp()
      const r = yield* moduleCheck(root, fakeModprobe(root, { stdout: "insmod /lib/modules/6.1.0-28-amd64/kernel/drivers/nvme/host/nvme-tcp.ko \n", exit: 0 }))
      assert.strictEqual(r.status, "warn")
      assert.match(r.fix ?? "", /modprobe nvme-tcp/)
      assert.match(r.fix ?? "", /\/etc\/modules-load\.d\//)
      assert.strictEqual(fs.readFileSync(path.join(root, "argv"), "utf8").trim(), "-n -v nvme-tcp")
    }))

  it.effect("built in: OK", () =>
    Effect.gen(function*() {
      const root = tmp()
      const r = yield* moduleCheck(root, fakeModprobe(root, { stdout: "builtin nvme_tcp\n", exit: 0 }))
      assert.strictEqual(r.status, "ok")
      assert.match(r.detail, /built into the kernel/)
    }))

  it.effect("not loadable: FAIL quoting modprobe, and the fix installs, loads and persists it", () =>
    Effect.gen(function*() {
      const root = tmp()
      const r = yield* moduleCheck(root, fakeModprobe(root, { stderr: "modprobe: FATAL: Module nvme-tcp not found in directory /lib/modules/6.1.0\n", exit: 1 }))
      assert.strictEqual(r.status, "fail")
      assert.match(r.detail, /FATAL: Module nvme-tcp not found/)
      assert.match(r.fix ?? "", /install the nvme-tcp module/)
      assert.match(r.fix ?? "", /modprobe nvme-tcp; echo nvme-tcp > \/etc\/modules-load\.d\/nvme-tcp\.conf/)
    }))

  it.effect("no modprobe at all: FAIL that says so", () =>
    Effect.gen(function*() {
      const root = tmp()
      const r = yield* moduleCheck(root, path.join(root, "absent"))
      assert.strictEqual(r.status, "fail")
      assert.match(r.detail, /modprobe could not run/)
    }))
})

describe("sysfs nvme-fabrics", () => {
  const live = (sysfsRoot: string) => Fabrics.check(sysfsRoot).pipe(Effect.provide(SysfsLive.pipe(Layer.provide(Settings.layer(testSettings({ sysfsRoot }))))))

  it.effect("the live Sysfs over a root without class/nvme-fabrics: FAIL naming the path and --sysfs-root", () =>
    Effect.gen(function*() {
      const root = path.join(tmp(), "sys")
      fs.mkdirSync(root)
      const r = yield* live(root)
      assert.strictEqual(r.status, "fail")
      assert.include(r.detail, `${root}/class/nvme-fabrics missing`)
      assert.match(r.fix ?? "", /--sysfs-root/)
    }))

  it.effect("the live Sysfs over a root with class/nvme-fabrics and no controllers: OK, 0 controllers", () =>
    Effect.gen(function*() {
      const root = path.join(tmp(), "sys")
      fs.mkdirSync(path.join(root, "class/nvme-fabrics/ctl"), { recursive: true })
      const r = yield* live(root)
      assert.strictEqual(r.status, "ok")
      assert.match(r.detail, /0 NVMe controller\(s\)/)
    }))

  it.effect("the test layer: fabrics gone → FAIL; a failing snapshot → FAIL with the sysfs error", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      yield* k.setHost({ fabricsAvailable: false })
      assert.strictEqual((yield* Fabrics.check("/sys")).status, "fail")
      yield* k.setHost({ fabricsAvailable: true })
      assert.strictEqual((yield* Fabrics.check("/sys")).status, "ok")
      yield* k.failSysfs("EACCES")
      const r = yield* Fabrics.check("/sys")
      assert.strictEqual(r.status, "fail")
      assert.match(r.detail, /EACCES/)
    }).pipe(Effect.provide(testHost())))
})

describe("nvme-cli", () => {
  it("reads the version numbers nvme-cli 1.x and 2.x print", () => {
    assert.deepStrictEqual(NvmeCliVersion.parseNvmeVersion("nvme version 2.3 (git 2.3)"), { major: 2, minor: 3 })
    assert.deepStrictEqual(NvmeCliVersion.parseNvmeVersion("nvme version 1.16"), { major: 1, minor: 16 })
    assert.isUndefined(NvmeCliVersion.parseNvmeVersion("nvme version git-abc"))
  })

  it.effect("through the NvmeCli test layer: 2.3 OK, 1.16 FAIL (upgrade), not installed FAIL (install), no number WARN", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const ok = yield* NvmeCliVersion.check
      assert.strictEqual(ok.status, "ok")
      assert.match(ok.detail, /2\.3.*>= 2\.0/)
      yield* k.setHost({ nvmeVersion: "nvme version 1.16" })
      const old = yield* NvmeCliVersion.check
      assert.strictEqual(old.status, "fail")
      assert.match(old.fix ?? "", /^upgrade/)
      yield* k.failNvme("version", { reason: "NotInstalled", detail: "spawn nvme ENOENT" })
      const missing = yield* NvmeCliVersion.check
      assert.strictEqual(missing.status, "fail")
      assert.match(missing.fix ?? "", /apt-get install nvme-cli/)
      assert.strictEqual(NvmeCliVersion.decideVersion("nvme version unknown").status, "warn")
      const failed = NvmeCliVersion.decideVersion(new NvmeCliError({ reason: "Timeout", command: "nvme version", exitCode: undefined, detail: "killed" }))
      assert.strictEqual(failed.status, "fail")
    }).pipe(Effect.provide(testHost())))
})

describe("mount tools", () => {
  it.effect("through the Mounter test layer: all there OK; a resize tool missing WARN; a required one FAIL naming its package", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      assert.strictEqual((yield* MountTools.check).status, "ok")
      yield* k.setHost({ missingTools: ["xfs_growfs"] })
      const w = yield* MountTools.check
      assert.strictEqual(w.status, "warn")
      assert.match(w.fix ?? "", /apt-get install xfsprogs/)
      yield* k.setHost({ missingTools: ["blkid", "mkfs.xfs", "resize2fs"] })
      const f = yield* MountTools.check
      assert.strictEqual(f.status, "fail")
      assert.match(f.detail, /blkid, mkfs\.xfs, resize2fs/)
      assert.match(f.fix ?? "", /apt-get install util-linux xfsprogs e2fsprogs/)
    }).pipe(Effect.provide(testHost())))
})

describe("spawn helper", () => {
  it.effect("perl on this host's PATH: OK naming it; none on PATH: WARN (the plugin forks itself), with the package", () =>
    Effect.gen(function*() {
      const found = yield* SpawnHelper.check
      assert.strictEqual(found.status, "ok")
      assert.match(found.detail, /\/perl: a small process forks/)
      const saved = process.env.PATH
      process.env.PATH = tmp()
      const none = yield* SpawnHelper.check.pipe(Effect.ensuring(Effect.sync(() => {
        process.env.PATH = saved
      })))
      assert.strictEqual(none.status, "warn")
      assert.match(none.detail, /perl is not on PATH/)
      assert.match(none.fix ?? "", /perl-base/)
    }))
  it("binds and unmounts as system calls where the architecture's numbers are known, mount(8) said otherwise", () => {
    assert.match(SpawnHelper.decideHelper("/usr/bin/perl", "x64").detail, /makes its binds and unmounts as system calls$/)
    assert.match(SpawnHelper.decideHelper("/usr/bin/perl", "arm64").detail, /as system calls$/)
    const other = SpawnHelper.decideHelper("/usr/bin/perl", "s390x")
    assert.strictEqual(other.status, "ok")
    assert.match(other.detail, /binds and unmounts run mount\(8\) and umount\(8\) \(no system call numbers for s390x\)/)
  })
})

describe("host NQN", () => {
  it.effect("a file with an NQN OK; missing or garbage WARN with nvme gen-hostnqn", () =>
    Effect.gen(function*() {
      const root = tmp()
      const file = path.join(root, "hostnqn")
      const missing = yield* HostNqn.check(file)
      assert.strictEqual(missing.status, "warn")
      assert.match(missing.fix ?? "", /nvme gen-hostnqn > \/etc\/nvme\/hostnqn/)
      fs.writeFileSync(file, "hello\n")
      assert.strictEqual((yield* HostNqn.check(file)).status, "warn")
      fs.writeFileSync(file, "nqn.2014-08.org.nvmexpress:uuid:8fa66ea5-0c0b-4850-abf1-a5bc43e3cc84\n")
      const ok = yield* HostNqn.check(file)
      assert.strictEqual(ok.status, "ok")
      assert.include(ok.detail, "nqn.2014-08.org.nvmexpress:uuid:8fa66ea5")
    }))
})
