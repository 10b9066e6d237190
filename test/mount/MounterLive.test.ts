import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { classifyProbe } from "../../src/mount/Format.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import {
  callFailureDetail,
  classifyMount,
  classifyMountErrno,
  classifyUmount,
  classifyUmountErrno,
  devTOf,
  fsMountCall,
  isPlainBind,
  MS,
  mountArgv,
  readOnlyRemountFlags,
  resizeArgv,
  scanHolders,
  TOOLS
} from "../../src/mount/MountCommands.ts"
import { onPath } from "../../src/process/Path.ts"
import { MounterLive } from "../../src/mount/MounterLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { captured } from "../fixtures/fixtures.ts"

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))
const live = (overrides: Parameters<typeof testSettings>[0] = {}) =>
  MounterLive.pipe(Layer.provide(Layer.mergeAll(NodeServices.layer, Settings.layer(testSettings(overrides)))))

describe("blkid -p -o export as util-linux 2.38 printed it, through Format.classifyProbe", () => {
  const verdict = (name: string) => classifyProbe(captured("blkid", name))
  it("empty namespace: exit 2, nothing printed → Empty (the only way to Empty)", () => {
    assert.deepStrictEqual(captured("blkid", "empty"), { exitCode: 2, stdout: "", stderr: "" })
    assert.deepStrictEqual(verdict("empty"), { _tag: "Empty" })
  })
  it("ext4, xfs, an MBR and ext4 written over an MBR", () => {
    const uuidOf = (name: string) => /^UUID=(.*)$/m.exec(captured("blkid", name).stdout)?.[1]
    assert.match(uuidOf("ext4") ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-/)
    assert.deepStrictEqual(verdict("ext4"), { _tag: "Filesystem", fsType: "ext4", uuid: uuidOf("ext4") })
    assert.deepStrictEqual(verdict("xfs"), { _tag: "Filesystem", fsType: "xfs", uuid: uuidOf("xfs") })
    assert.deepStrictEqual(verdict("mbr"), { _tag: "PartitionTable", ptType: "dos" })
    assert.strictEqual(verdict("ext4-after-mbr")._tag, "Filesystem")
  })
  it("a missing path and a directory ALSO exit 2 with nothing printed: why the live probe checks the device itself", () => {
    assert.deepStrictEqual(captured("blkid", "missing-device"), { exitCode: 2, stdout: "", stderr: "" })
    assert.deepStrictEqual(captured("blkid", "not-a-device"), { exitCode: 2, stdout: "", stderr: "" })
    assert.deepStrictEqual(verdict("missing-device"), { _tag: "Empty" })
  })

  it.live("so probe refuses anything but a block device before blkid can say 'empty'", () =>
    Effect.gen(function*() {
      const m = yield* Mounter
      const dir = tmp("probe-")
      const reasons: Array<string> = []
      for (const p of ["/dev/nonexistent-nvme9n9", dir, "/dev/null"]) {
        const e = yield* Effect.flip(m.probe(p))
        reasons.push(`${e.reason}: ${e.detail}`)
      }
      fs.rmSync(dir, { recursive: true })
      assert.deepStrictEqual(reasons, ["Io: missing", "Io: not a block device", "Io: not a block device"])
      const e = yield* Effect.flip(m.mkfs("/dev/nonexistent-nvme9n9", "ext4"))
      assert.strictEqual(e.detail, "missing")
    }).pipe(Effect.provide(live())))
})

describe("mount and umount outcomes as util-linux 2.38 printed them (exit 32 for every failure)", () => {
  const m = (n: string) => captured("mount", n)
  it("umount: busy, not mounted, no mount point, and a stale mount whose device is gone unmounts normally", () => {
    assert.deepStrictEqual(
      ["umount-ok", "umount-busy", "umount-not-mounted", "umount-missing", "umount-lazy-not-mounted", "umount-stale", "umount-block", "umount-ro"]
        .map((n) => `${n}: ${classifyUmount(m(n))}`),
      [
        "umount-ok: Ok",
        "umount-busy: Busy",
        "umount-not-mounted: NotMounted",
        "umount-missing: NotMounted",
        "umount-lazy-not-mounted: NotMounted",
        "umount-stale: Ok",
        "umount-block: Ok",
        "umount-ro: Ok"
      ]
    )
    assert.strictEqual(m("umount-busy").exitCode, 32)
  })
  it("mount: already mounted is Busy, a wrong type is Failed", () => {
    assert.deepStrictEqual(
      ["mount-ext4", "bind", "bind-ro-single", "bind-block", "mount-xfs", "mount-already-mounted", "mount-wrong-fs"].map((n) => classifyMount(m(n))),
      ["Ok", "Ok", "Ok", "Ok", "Ok", "Busy", "Failed"]
    )
  })
  it("builds mount, mkfs and resize arguments", () => {
    const o = { fsType: "ext4" as const, options: ["noatime"], bind: false, readOnly: false }
    assert.deepStrictEqual(mountArgv("/dev/nvme0n1", "/stage", o), ["-t", "ext4", "-o", "noatime", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(mountArgv("/dev/nvme0n1", "/stage", { ...o, options: [] }), ["-t", "ext4", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(mountArgv("/stage", "/pub", { ...o, fsType: undefined, bind: true, readOnly: true }), ["-o", "bind,noatime,ro", "/stage", "/pub"])
    assert.deepStrictEqual(mountArgv("/dev/nvme0n1", "/blk", { fsType: undefined, options: [], bind: true, readOnly: false }), ["-o", "bind", "/dev/nvme0n1", "/blk"])
    // a user's "ro" is never dropped; "rw" cannot undo a read-only request (read-only ext4: noload, MountOptions.test.ts)
    assert.deepStrictEqual(mountArgv("/d", "/t", { ...o, options: ["ro"] }), ["-t", "ext4", "-o", "noload,ro", "/d", "/t"])
    assert.deepStrictEqual(mountArgv("/d", "/t", { ...o, options: ["rw"], readOnly: true }), ["-t", "ext4", "-o", "noload,ro", "/d", "/t"])
    assert.deepStrictEqual(resizeArgv("/dev/nvme0n1", "xfs", "/stage"), ["xfs_growfs", ["/stage"]])
    assert.deepStrictEqual(resizeArgv("/dev/nvme0n1", "ext4", "/stage"), ["resize2fs", ["/dev/nvme0n1"]])
  })
})

describe("binds and unmounts as system calls (their real-kernel run: MountCalls.host.test.ts)", () => {
  const b = (options: ReadonlyArray<string>, readOnly = false) => ({ fsType: undefined, options, bind: true, readOnly })
  it("only a bind with nothing but bind, ro or rw is made by mount(2); any other option goes to mount(8)", () => {
    assert.deepStrictEqual(
      [b([]), b(["ro"]), b(["rw"], true), b(["bind"]), b(["noexec"]), b(["ro", "nosuid"]), { ...b([]), bind: false }].map(isPlainBind),
      [true, true, true, true, false, false, false]
    )
  })
  it("the read-only remount keeps nosuid, nodev, noexec and nosymfollow and names no atime flag (the kernel keeps the mount's own)", () => {
    const base = MS.REMOUNT | MS.BIND | MS.RDONLY
    assert.strictEqual(readOnlyRemountFlags(["rw", "relatime"]), base)
    assert.strictEqual(readOnlyRemountFlags(["rw", "nosuid", "nodev", "noexec", "noatime"]), base | MS.NOSUID | MS.NODEV | MS.NOEXEC)
    assert.strictEqual(readOnlyRemountFlags(["rw", "nosymfollow"]), base | MS.NOSYMFOLLOW)
    assert.strictEqual(base, 32 | 4096 | 1, "MS_REMOUNT | MS_BIND | MS_RDONLY as include/uapi/linux/mount.h has them")
  })
  it("a file system's mount: VFS options as flags, its own known options as data, ro wins and adds noload/norecovery; any other option goes to mount(8)", () => {
    const f = (fsType: "ext4" | "xfs", options: ReadonlyArray<string>, readOnly = false) => fsMountCall({ fsType, options, bind: false, readOnly })
    assert.deepStrictEqual(f("ext4", []), { fsType: "ext4", flags: 0, data: "" })
    assert.deepStrictEqual(f("ext4", ["noatime", "nodev", "discard"]), { fsType: "ext4", flags: MS.NOATIME | MS.NODEV, data: "discard" })
    assert.deepStrictEqual(f("ext4", ["rw"], true), { fsType: "ext4", flags: MS.RDONLY, data: "noload" })
    assert.deepStrictEqual(f("xfs", ["ro"]), { fsType: "xfs", flags: MS.RDONLY, data: "norecovery" })
    assert.deepStrictEqual(f("xfs", ["sync", "dirsync", "strictatime", "nosuid", "noexec"]), {
      fsType: "xfs",
      flags: MS.SYNCHRONOUS | MS.DIRSYNC | MS.STRICTATIME | MS.NOSUID | MS.NOEXEC,
      data: ""
    })
    for (const other of ["defaults", "data=journal", "x-mount.mkdir", "context=system_u:object_r:x:s0", "nouuid", "lazytime"]) {
      assert.isUndefined(f("ext4", ["noatime", other]), other)
    }
    assert.isUndefined(fsMountCall({ fsType: undefined, options: [], bind: false, readOnly: false }))
    assert.isUndefined(fsMountCall({ fsType: undefined, options: [], bind: true, readOnly: false }))
    assert.deepStrictEqual([MS.NOATIME, MS.RELATIME, MS.STRICTATIME, MS.SYNCHRONOUS, MS.DIRSYNC], [1024, 1 << 21, 1 << 24, 16, 128])
  })
  it("a failed call says what was mounted, the errno's text and number, and mount(8)'s words for EINVAL and ENODEV", () => {
    const e = os.constants.errno
    const fsCall = { name: "mount" as const, source: "/dev/nvme0n1", target: "/stage", fsType: "xfs", flags: 0, data: "norecovery" }
    assert.strictEqual(
      callFailureDetail(fsCall, e.EINVAL, "Invalid argument\n"),
      "mount(2) of /dev/nvme0n1 (xfs, norecovery) failed: Invalid argument (errno 22); wrong fs type, bad option or bad superblock: the kernel's log says which"
    )
    assert.strictEqual(callFailureDetail({ ...fsCall, data: "" }, e.ENODEV, "No such device"), "mount(2) of /dev/nvme0n1 (xfs) failed: No such device (errno 19); this kernel has no xfs driver loaded")
    assert.strictEqual(callFailureDetail({ ...fsCall, fsType: "", data: "", flags: MS.BIND }, e.EINVAL, ""), "mount(2) of /dev/nvme0n1 failed: errno 22 (errno 22)")
    assert.strictEqual(callFailureDetail({ name: "umount2", target: "/t", flags: 0 }, e.EBUSY, "Device or resource busy"), "umount2(2) failed: Device or resource busy (errno 16)")
  })
  it("errnos mean what umount(8) and mount(8) say in words: EINVAL and ENOENT not mounted, EBUSY busy", () => {
    const e = os.constants.errno
    assert.deepStrictEqual([0, e.EINVAL, e.ENOENT, e.EBUSY, e.EPERM, e.EIO].map(classifyUmountErrno), ["Ok", "NotMounted", "NotMounted", "Busy", "Failed", "Failed"])
    assert.deepStrictEqual([0, e.EBUSY, e.ENOENT, e.EPERM].map(classifyMountErrno), ["Ok", "Busy", "Failed", "Failed"])
  })
})

describe("files, not processes", () => {
  it("dev_t split like glibc, and the host's own disk agrees with sysfs", () => {
    const makedev = (major: bigint, minor: bigint) =>
      ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n)
    assert.deepStrictEqual([devTOf(makedev(259n, 1n)), devTOf(makedev(8n, 300n)), devTOf(makedev(5000n, 70000n))], ["259:1", "8:300", "5000:70000"])
  })

  it.live("deviceNumber, fileSystemDevice, pathKind, statfs and mountinfo on this host", () =>
    Effect.gen(function*() {
      const m = yield* Mounter
      const disk = fs.readdirSync("/sys/block").find((d) => fs.existsSync(`/dev/${d}`) && !d.startsWith("loop"))
      if (disk !== undefined) assert.strictEqual(yield* m.deviceNumber(`/dev/${disk}`), fs.readFileSync(`/sys/block/${disk}/dev`, "utf8").trim())
      assert.strictEqual(yield* m.deviceNumber("/dev/null"), undefined)
      assert.strictEqual(yield* m.deviceNumber("/nonexistent"), undefined)
      assert.deepStrictEqual(
        [yield* m.pathKind("/nonexistent"), yield* m.pathKind("/tmp"), yield* m.pathKind("/etc/hostname"), yield* m.pathKind("/dev/null")],
        ["missing", "directory", "file", "other"]
      )
      const st = yield* m.statfs(os.tmpdir())
      assert.isAbove(st.totalBytes, 0)
      assert.strictEqual(st.usedBytes + (st.totalBytes - st.usedBytes), st.totalBytes)
      assert.isAtMost(st.availableBytes, st.totalBytes)
      const mi = yield* m.mountinfo
      assert.isTrue(mi.some((e) => e.mountPoint === "/"))
      // st_dev is the mount table's major:minor of the topmost mount there (here: /proc's and /'s).
      for (const at of ["/", "/proc"]) assert.strictEqual(yield* m.fileSystemDevice(at), mi.findLast((e) => e.mountPoint === at)?.devT, at)
      assert.strictEqual(yield* m.fileSystemDevice("/nonexistent"), undefined)
    }).pipe(Effect.provide(live())))

  it.live("missingTools: every tool present on PATH → none missing; one removed → exactly that one", () => {
    // Fake executables on a PATH of our own: the unit suite needs no host package
    // (the real tools are checked by MounterLive.host.test.ts, after scripts/prepare-host.sh).
    const bin = tmp("fake-tools-")
    for (const t of TOOLS) fs.writeFileSync(path.join(bin, t), "#!/bin/sh\nexit 0\n", { mode: 0o755 })
    const saved = process.env["PATH"]
    return Effect.gen(function*() {
      const m = yield* Mounter
      process.env["PATH"] = bin
      assert.deepStrictEqual(yield* m.missingTools, [])
      fs.rmSync(path.join(bin, TOOLS[0]!))
      assert.deepStrictEqual(yield* m.missingTools, [TOOLS[0]])
    }).pipe(
      Effect.provide(live()),
      Effect.ensuring(Effect.sync(() => {
        process.env["PATH"] = saved
        fs.rmSync(bin, { recursive: true })
      }))
    )
  })

  it.live("makeDirectory, makeFile (never truncates), removePath (never recursive, missing is fine)", () =>
    Effect.gen(function*() {
      const m = yield* Mounter
      const dir = tmp("paths-")
      const f = `${dir}/a/b/target`
      yield* m.makeFile(f)
      fs.writeFileSync(f, "data")
      yield* m.makeFile(f)
      assert.strictEqual(fs.readFileSync(f, "utf8"), "data")
      yield* m.makeDirectory(`${dir}/x/y`)
      yield* m.makeDirectory(`${dir}/x/y`)
      assert.strictEqual((yield* Effect.flip(m.makeFile(`${dir}/x/y`))).reason, "Io")
      const notEmpty = yield* Effect.flip(m.removePath(`${dir}/a`))
      assert.strictEqual(notEmpty.reason, "Failed")
      assert.isTrue(fs.existsSync(f), "nothing removed recursively")
      yield* m.removePath(f)
      yield* m.removePath(f)
      yield* m.removePath(`${dir}/x/y`)
      assert.deepStrictEqual([fs.existsSync(f), fs.existsSync(`${dir}/x/y`)], [false, false])
      fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(live())))

  it.live("deviceSize reads sysfs size × 512", () => {
    const sys = tmp("sys-")
    const dev = tmp("dev-")
    fs.mkdirSync(`${sys}/class/block/nvme0n2`, { recursive: true })
    fs.writeFileSync(`${sys}/class/block/nvme0n2/size`, "524288\n")
    fs.writeFileSync(`${dev}/nvme0n2`, "")
    fs.symlinkSync(`${dev}/nvme0n2`, `${dev}/by-link`)
    return Effect.gen(function*() {
      const m = yield* Mounter
      assert.strictEqual(yield* m.deviceSize(`${dev}/by-link`), 256 * 1024 * 1024)
      assert.strictEqual((yield* Effect.flip(m.deviceSize(`${dev}/missing`))).reason, "Io")
    }).pipe(Effect.provide(live({ sysfsRoot: sys })), Effect.ensuring(Effect.sync(() => [sys, dev].forEach((d) => fs.rmSync(d, { recursive: true })))))
  })

  it("missingTools looks each tool up on PATH", () => {
    assert.isDefined(onPath("mount"))
    assert.deepStrictEqual(TOOLS.filter((t) => onPath(t, "/nonexistent:") === undefined), [...TOOLS])
  })
})

describe("holders: the in-use check through /proc", () => {
  it("finds cwd, root and open files under the mount point, not a sibling with the same prefix", () => {
    const proc = tmp("proc-")
    const mk = (pid: string, links: Record<string, string>) => {
      fs.mkdirSync(`${proc}/${pid}/fd`, { recursive: true })
      for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, `${proc}/${pid}/${name}`)
    }
    mk("10", { cwd: "/mnt/vol/sub", root: "/" })
    mk("11", { cwd: "/", root: "/", "fd/3": "/mnt/vol/file (deleted)" })
    mk("12", { cwd: "/mnt/vol2", root: "/", "fd/0": "/dev/null", "fd/1": "socket:[123]" })
    mk("13", { cwd: "/", root: "/mnt/vol" })
    fs.mkdirSync(`${proc}/self`)
    fs.writeFileSync(`${proc}/uptime`, "1 1")
    try {
      assert.deepStrictEqual([...scanHolders(proc, "/mnt/vol")].sort(), [10, 11, 13])
      assert.deepStrictEqual([...scanHolders(proc, "/mnt/vol/")].sort(), [10, 11, 13])
    } finally {
      fs.rmSync(proc, { recursive: true })
    }
  })

  it.live("sees a real process whose cwd is inside the directory", () => {
    const dir = tmp("held-")
    const child = spawn("sleep", ["30"], { cwd: dir, stdio: "ignore" })
    return Effect.gen(function*() {
      const m = yield* Mounter
      yield* Effect.promise(() => new Promise((r) => child.once("spawn", r)))
      assert.include(yield* m.holders(dir), child.pid)
      assert.notInclude(yield* m.holders(`${dir}-other`), child.pid)
    }).pipe(
      Effect.provide(live()),
      Effect.ensuring(Effect.sync(() => {
        child.kill("SIGKILL")
        fs.rmSync(dir, { recursive: true })
      }))
    )
  })
})
