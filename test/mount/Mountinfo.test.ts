import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Result, Schema } from "effect"
import type { MountEntry } from "../../src/mount/Mounter.ts"
import { parseLine, parseMountinfo, parseMountinfoAt, renderMountinfo, topMountAt, unescape } from "../../src/mount/Mountinfo.ts"
import { fixtureText } from "../fixtures/fixtures.ts"

// Characters the kernel must escape, mixed with ordinary ones.
const charOf = (chars: ReadonlyArray<string>) => Arbitrary.schema(Schema.Literals(chars as [string, ...Array<string>]))
const text = (chars: ReadonlyArray<string>, minLength: number, maxLength: number) =>
  Arbitrary.array(charOf(chars), { minLength, maxLength }).pipe(Arbitrary.map((cs) => cs.join("")))
const NASTY = ["a", "b", "Z", "0", "7", "-", ".", "_", ":", " ", "\t", "\n", "\\", "#", "é", "~", "\\040"]
const segment = text(NASTY.filter((c) => c !== "/"), 1, 8)
const absPath = Arbitrary.array(segment, { minLength: 0, maxLength: 4 }).pipe(Arbitrary.map((s) => "/" + s.join("/")))
const option = text(["r", "w", "o", "=", "1", "x", " ", ",", "\\", "_"], 1, 6)
const uint = Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100000 })))
const devT = Arbitrary.all([uint, uint]).pipe(Arbitrary.map(([a, b]) => `${a}:${b}`))
const optional = Arbitrary.array(charOf(["shared:1", "master:12", "propagate_from:3", "unbindable"]), { maxLength: 4 })

const entry: Arbitrary.Arbitrary<MountEntry> = Arbitrary.all({
  mountId: uint,
  parentId: uint,
  devT,
  root: absPath,
  mountPoint: absPath,
  mountOptions: Arbitrary.array(option, { maxLength: 4 }),
  optionalFields: optional,
  fsType: text(["e", "x", "t", "4", ".", " ", "\\"], 1, 6),
  source: text(NASTY, 1, 10),
  superOptions: Arbitrary.array(option, { maxLength: 4 })
})

describe("Mountinfo", () => {
  it.prop("render(entries) then parse gives them back", [Arbitrary.array(entry, { maxLength: 8 })], ([entries]) => {
    const parsed = parseMountinfo(renderMountinfo(entries))
    assert.isTrue(Result.isSuccess(parsed))
    assert.deepStrictEqual(Result.getOrThrow(parsed).map((e) => ({ ...e })), entries.map((e) => ({ ...e })))
  }, { arbitrary: { runs: 300 } })

  it.prop(
    "parseMountinfoAt gives the whole table's entries at the points asked, in order",
    [Arbitrary.array(entry, { maxLength: 10 }), Arbitrary.array(absPath, { maxLength: 3 }), Arbitrary.array(Arbitrary.schema(Schema.Boolean), { maxLength: 10 })],
    ([entries, others, pick]) => {
      // Points both taken from the table (so nested and repeated ones occur) and arbitrary ones.
      const points = [...entries.filter((_, i) => pick[i] === true).map((e) => e.mountPoint), ...others]
      const text = renderMountinfo(entries)
      const want = Result.getOrThrow(parseMountinfo(text)).filter((e) => points.includes(e.mountPoint))
      assert.deepStrictEqual(Result.getOrThrow(parseMountinfoAt(text, points)).map((e) => ({ ...e })), want.map((e) => ({ ...e })))
    },
    { arbitrary: { runs: 300 } }
  )

  it("parseMountinfoAt fails on a malformed line at a wanted point, with its number, and does not read the others", () => {
    const text = "36 35 98:0 / /a rw - ext4 /dev/x rw\n37 35 98:0 / /b rw shared:1 ext4 /dev/x rw\n38 35 98:0 / /c rw - ext4 /dev/y rw\n"
    const r = parseMountinfoAt(text, ["/b"])
    assert.deepStrictEqual(Result.isFailure(r) ? [r.failure.lineNumber, r.failure.line] : [], [2, "37 35 98:0 / /b rw shared:1 ext4 /dev/x rw"])
    assert.deepStrictEqual(Result.getOrThrow(parseMountinfoAt(text, ["/c", "/a"])).map((e) => e.mountPoint), ["/a", "/c"])
    assert.deepStrictEqual(Result.getOrThrow(parseMountinfoAt(text.replace(/^37.*\n/m, ""), ["/nowhere", "/"])), [])
    // "/" stands between spaces in every line (the root field): the malformed one is read too.
    assert.isTrue(Result.isFailure(parseMountinfoAt(text, ["/"])))
    // The kernel's escaped form is what is searched: a space in a mount point is \040 there.
    const spaced = "40 35 259:1 / /var/lib/x\\040y rw,relatime - ext4 /dev/nvme0n1 rw\n"
    assert.deepStrictEqual(Result.getOrThrow(parseMountinfoAt(spaced, ["/var/lib/x y"])).map((e) => e.devT), ["259:1"])
    assert.deepStrictEqual(Result.getOrThrow(parseMountinfoAt(spaced, ["/var/lib/x"])), [])
  })

  it("decodes the kernel's octal escapes", () => {
    assert.strictEqual(unescape("a\\040b\\011c\\012d\\134e"), "a b\tc\nd\\e")
    assert.strictEqual(unescape("no escapes"), "no escapes")
  })

  it("reads the mountinfo captured with a staged volume, rw and ro bind publishes and a raw block bind", () => {
    const entries = Result.getOrThrow(parseMountinfo(fixtureText("mount/mountinfo.staged")))
    const staging = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/abc123/globalmount"
    const staged = topMountAt(entries, staging)!
    assert.deepStrictEqual([staged.devT, staged.fsType, staged.source, staged.root], ["259:1", "ext4", "/dev/nvme0n1", "/"])
    assert.deepStrictEqual(staged.mountOptions, ["rw", "noatime"])
    const ro = topMountAt(entries, "/var/lib/kubelet/pods/0f0e-pod/volumes/kubernetes.io~csi/pvc-1 ro/mount")!
    assert.strictEqual(ro.devT, "259:1")
    assert.include(ro.mountOptions, "ro", "mount -o bind,ro made a read-only bind in one call")
    // A raw block publish is a bind of the /dev node: devtmpfs, and the device name is the root.
    const blk = topMountAt(entries, "/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-2/pod-uid")!
    assert.deepStrictEqual([blk.fsType, blk.root], ["devtmpfs", "/nvme1n2"])
    assert.notStrictEqual(blk.devT.split(":")[0], "259")
  })

  it("reads the stale mount left on the deleted head after renumbering", () => {
    const entries = Result.getOrThrow(parseMountinfo(fixtureText("mount/mountinfo.stale")))
    const m = topMountAt(entries, "/mnt")!
    assert.deepStrictEqual([m.devT, m.source], ["259:1", "/dev/nvme0n1"]) // the new head is nvme0n2, 259:6
  })

  it("rejects malformed lines with their number instead of skipping them", () => {
    const r = parseMountinfo("36 35 98:0 / /a rw - ext4 /dev/x rw\n37 35 98:0 / /b rw shared:1 ext4 /dev/x rw\n")
    assert.deepStrictEqual(Result.isFailure(r) ? [r.failure.lineNumber, r.failure.why] : [], [2, "expected at least 10 fields with a '-' separator, got 10"])
    assert.isTrue(Result.isFailure(parseLine("x 35 98:0 / /a rw - ext4 /dev/x rw")))
    assert.isTrue(Result.isFailure(parseLine("36 35 980 / /a rw - ext4 /dev/x rw")))
    assert.isTrue(Result.isFailure(parseLine("36 35 98:0 / /a rw - ext4 /dev/x rw extra")))
  })

  it("keeps any number of optional fields", () => {
    const e = Result.getOrThrow(parseLine("36 35 98:0 / /a rw shared:1 master:2 propagate_from:3 unbindable - ext4 /dev/x rw"))
    assert.deepStrictEqual(e.optionalFields, ["shared:1", "master:2", "propagate_from:3", "unbindable"])
  })
})
