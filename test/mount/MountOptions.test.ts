import { assert, describe, it } from "@effect/vitest"
import { mountArgv, mountOptions } from "../../src/mount/MountCommands.ts"
import type { MountOptions } from "../../src/mount/Mounter.ts"

const STAGE: MountOptions = { fsType: "ext4", options: [], bind: false, readOnly: true }
const argv = (o: Partial<MountOptions>) => mountArgv("/dev/nvme0n1", "/stage", { ...STAGE, ...o })

describe("read-only file-system mounts do not replay the journal or log", () => {
  it("a read-only staging mount adds noload (ext4) or norecovery (xfs)", () => {
    assert.deepStrictEqual(argv({}), ["-t", "ext4", "-o", "noload,ro", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(argv({ fsType: "xfs" }), ["-t", "xfs", "-o", "norecovery,ro", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(argv({ options: ["noatime"] }), ["-t", "ext4", "-o", "noatime,noload,ro", "/dev/nvme0n1", "/stage"])
  })

  it("a user's `ro` mount flag counts as read-only too; `rw` cannot undo it", () => {
    assert.deepStrictEqual(argv({ readOnly: false, options: ["ro"] }), ["-t", "ext4", "-o", "noload,ro", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(argv({ fsType: "xfs", options: ["rw"] }), ["-t", "xfs", "-o", "norecovery,ro", "/dev/nvme0n1", "/stage"])
  })

  it("read-write mounts replay as usual", () => {
    assert.deepStrictEqual(argv({ readOnly: false }), ["-t", "ext4", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(argv({ readOnly: false, fsType: "xfs", options: ["noatime"] }), ["-t", "xfs", "-o", "noatime", "/dev/nvme0n1", "/stage"])
  })

  it("binds (file-system or raw block targets) are unaffected, read-only or not", () => {
    assert.deepStrictEqual(mountArgv("/stage", "/pub", { ...STAGE, bind: true }), ["-o", "bind,ro", "/stage", "/pub"])
    assert.deepStrictEqual(mountArgv("/stage", "/pub", { ...STAGE, fsType: undefined, bind: true }), ["-o", "bind,ro", "/stage", "/pub"])
    assert.deepStrictEqual(mountArgv("/dev/nvme0n1", "/blk", { ...STAGE, fsType: undefined, bind: true, readOnly: false }), ["-o", "bind", "/dev/nvme0n1", "/blk"])
  })

  it("no file-system type (mount guesses): nothing to add; an option already asked for is not repeated", () => {
    assert.deepStrictEqual(argv({ fsType: undefined }), ["-o", "ro", "/dev/nvme0n1", "/stage"])
    assert.deepStrictEqual(mountOptions({ ...STAGE, options: ["noload"] }).options, ["noload"])
    assert.deepStrictEqual(mountOptions({ ...STAGE, fsType: "xfs" }).options, ["norecovery"])
  })
})
