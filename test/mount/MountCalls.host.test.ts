/**
 * The live mount layer's binds and unmounts as system calls (mount(2), umount2(2)) made by the
 * spawn helper's fork, on this host's kernel, in a private mount namespace (mountCalls.scenario.ts
 * under `unshare -m`): a read-write and a read-only bind (the source's nosuid, nodev and noexec
 * kept, the source itself still writable), a file onto a file (raw block's shape), not mounted,
 * missing, busy and lazy unmounts, a missing source, a NUL in a path, and a bind with another
 * option left to mount(8) — with PATH emptied, so any of the others running mount(8) or umount(8)
 * instead would fail — and ext4 mounted read-write (flags and data) and read-only (noload) on a
 * loop device, when the host has them (said when not). Needs root and unshare; says so when skipped.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const isRoot = process.getuid?.() === 0
const unshare = spawnSync("unshare", ["--version"]).status === 0
if (!isRoot || !unshare) process.stderr.write(`[mount calls] skipped: needs root and unshare (root: ${isRoot}, unshare: ${unshare})\n`)

describe("binds and unmounts as system calls through the spawn helper", () => {
  it.skipIf(!isRoot || !unshare)("on this kernel, in a private mount namespace, with no mount(8) on PATH", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-mountcalls-"))
    const script = path.join(import.meta.dirname, "mountCalls.scenario.ts")
    const run = spawnSync("unshare", ["-m", "--propagation", "private", process.execPath, script, dir], { encoding: "utf8", timeout: 60_000 })
    expect(run.stderr).toBe("")
    expect(run.status).toBe(0)
    const r = JSON.parse(run.stdout.trim().split("\n").at(-1)!)
    expect(r.helperReady && r.calls).toBe(true)

    expect(r.bind).toEqual({ ok: true })
    expect(r.bindTally, "a call is tallied as a command").toBe(1)
    expect(r.bindSeen).toHaveLength(1)
    expect(r.bindSeen[0].options).toContain("rw")
    expect(r.bindReads).toBe("in a\n")

    expect(r.readOnly).toEqual({ ok: true })
    expect(r.readOnlySeen).toHaveLength(1)
    expect(r.readOnlySeen[0].options).toEqual(expect.arrayContaining(["ro", "nosuid", "nodev", "noexec"]))
    expect(r.readOnlyWrite).toBe("EROFS")
    expect(r.sourceSeen[0].options, "the remount is the bind's alone").toContain("rw")

    expect(r.unmount).toEqual({ ok: true })
    expect(r.afterUnmount).toEqual([])
    expect(r.unmountAgain).toMatchObject({ ok: false, reason: "NotMounted" })
    expect(r.unmountAgain.detail).toMatch(/Invalid argument \(errno 22\)/)
    expect(r.unmountMissing).toMatchObject({ ok: false, reason: "NotMounted" })
    expect(r.unmountBusy).toMatchObject({ ok: false, reason: "Busy" })
    expect(r.unmountBusy.detail).toMatch(/busy \(errno 16\)/)
    expect(r.unmountLazy).toEqual({ ok: true })
    expect(r.afterLazy).toEqual([])

    expect(r.missingSource).toMatchObject({ ok: false, reason: "Failed" })
    expect(r.missingSource.detail).toMatch(/^mount\(2\) of .*no-such-source failed: No such file or directory \(errno 2\)$/)
    expect(r.fileOnFile).toEqual({ ok: true })
    expect(r.fileOnFileSeen[0].options).toContain("ro")
    expect(r.fileOnFileReads).toBe("in a\n")
    expect(r.fileOnFileUnmount).toEqual({ ok: true })

    expect(r.otherOption, "a bind with another option runs mount(8), absent from PATH here").toMatchObject({ ok: false, reason: "NotInstalled" })
    expect(r.nul).toMatchObject({ ok: false, reason: "Failed", detail: "mount(2): an argument contains a NUL byte" })
    expect(r.nulUnmount).toMatchObject({ ok: false, reason: "Failed", detail: "umount2(2): an argument contains a NUL byte" })
    expect(r.readOnlyUnmount).toEqual({ ok: true })

    // A file system: mount(2) wants a block device (ENOTBLK from a regular file), then a real one.
    expect(r.fsOnFile).toMatchObject({ ok: false, reason: "Failed" })
    expect(r.fsOnFile.detail).toMatch(/^mount\(2\) of .*fs\.img \(ext4\) failed: Block device required \(errno 15\)$/)
    if (String(r.loop).startsWith("unavailable")) {
      process.stderr.write(`[mount calls] the ext4 mounts on a loop device were not made: loop ${r.loop} (the e2e suite mounts real NVMe volumes)\n`)
    } else {
      expect(r.fsMount).toEqual({ ok: true })
      expect(r.fsSeen).toHaveLength(1)
      expect(r.fsSeen[0]).toMatchObject({ fsType: "ext4", source: r.loop })
      expect(r.fsSeen[0].options).toEqual(expect.arrayContaining(["rw", "noatime"]))
      expect(r.fsSeen[0].superOptions, "discard is the file system's own option, passed as data").toContain("discard")
      expect(r.fsAgain, "the same file system again at the same point: EBUSY").toMatchObject({ ok: false, reason: "Busy" })
      expect(r.fsUnmount).toEqual({ ok: true })
      expect(r.fsReadOnly).toEqual({ ok: true })
      expect(r.fsReadOnlySeen[0].options).toContain("ro")
      expect(r.fsReadOnlySeen[0].superOptions, "read-only never replays the journal (noload)").toContain("norecovery")
      expect(r.fsReadOnlyReads).toBe("on the volume\n")
      expect(r.fsReadOnlyUnmount).toEqual({ ok: true })
      expect(r.fsWrongType).toMatchObject({ ok: false, reason: "Failed" })
      expect(r.fsWrongType.detail).toMatch(/\(xfs\) failed: .*(wrong fs type, bad option or bad superblock|no xfs driver loaded)/)
      expect(r.fsOtherOption, "an option outside the known list goes to mount(8), absent from PATH here").toMatchObject({ ok: false, reason: "NotInstalled" })
    }
    // The namespace died with the scenario: nothing of it is mounted here.
    expect(fs.readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir)
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
