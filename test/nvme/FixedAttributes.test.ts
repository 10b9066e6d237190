import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { FixedAttributes } from "../../src/nvme/SysfsAttributes.ts"
import { readSnapshot } from "../../src/nvme/SysfsLive.ts"
import { materialiseSysfs } from "../fixtures/fixtures.ts"

// The snapshot with FixedAttributes (SysfsLive's) reads each directory's unchanging attributes
// once; everything it returns must still be what reading every file gives.
const FIXTURES = new URL("../fixtures/sysfs", import.meta.url).pathname
const names = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, ""))

/** A controller directory (and its subsystem) in a scratch sysfs tree. */
const controller = (root: string, name: string, nqn: string, state: string) => {
  const dir = path.join(root, "class/nvme", name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "subsysnqn"), `${nqn}\n`)
  fs.writeFileSync(path.join(dir, "transport"), "tcp\n")
  fs.writeFileSync(path.join(dir, "address"), "traddr=127.0.0.1,trsvcid=4420\n")
  fs.writeFileSync(path.join(dir, "state"), `${state}\n`)
  fs.mkdirSync(path.join(root, "class/nvme-subsystem"), { recursive: true })
  return dir
}

describe("FixedAttributes", () => {
  it("gives the same snapshots as reading every file, on every captured tree, read again from what it kept", () => {
    assert.isAbove(names.length, 5)
    for (const name of names) {
      const root = materialiseSysfs(name).root
      const fixed = new FixedAttributes()
      const plain = readSnapshot(root)
      assert.deepStrictEqual(readSnapshot(root, undefined, fixed), plain, name)
      assert.deepStrictEqual(readSnapshot(root, undefined, fixed), plain, `${name}, again`)
      for (const c of plain.controllers) {
        assert.deepStrictEqual(readSnapshot(root, c.subsysnqn, fixed), readSnapshot(root, c.subsysnqn), `${name} ${c.subsysnqn}`)
      }
    }
  })

  it("reads the state every time, keeps subsysnqn while the directory is the same, and reads a directory made again", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sysfs-fixed-"))
    const fixed = new FixedAttributes()
    const dir = controller(root, "nvme0", "nqn.first", "live")
    assert.deepStrictEqual(readSnapshot(root, undefined, fixed).controllers.map((c) => [c.subsysnqn, c.state]), [["nqn.first", "live"]])
    fs.writeFileSync(path.join(dir, "state"), "connecting\n")
    // Written in place (kernfs never does this): the kept value shows that it was not read again.
    fs.writeFileSync(path.join(dir, "subsysnqn"), "nqn.rewritten\n")
    assert.deepStrictEqual(readSnapshot(root, undefined, fixed).controllers.map((c) => [c.subsysnqn, c.state]), [["nqn.first", "connecting"]])
    assert.deepStrictEqual(readSnapshot(root).controllers.map((c) => c.subsysnqn), ["nqn.rewritten"])
    // The kernel deletes the controller and makes another under the same name.
    fs.rmSync(dir, { recursive: true })
    assert.deepStrictEqual(readSnapshot(root, undefined, fixed).controllers, [])
    controller(root, "nvme0", "nqn.second", "live")
    assert.deepStrictEqual(readSnapshot(root, undefined, fixed).controllers.map((c) => [c.subsysnqn, c.state]), [["nqn.second", "live"]])
  })

  it("does not keep what a controller showed before it went live (a connect in progress)", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sysfs-fixed-"))
    const fixed = new FixedAttributes()
    // Seen while being set up, with a subsystem NQN that is not its final one.
    const dir = controller(root, "nvme0", "nqn.not-yet", "connecting")
    assert.deepStrictEqual(readSnapshot(root, undefined, fixed).controllers.map((c) => [c.subsysnqn, c.state]), [["nqn.not-yet", "connecting"]])
    // The same directory (kernfs does not make a new one) goes live with its real NQN.
    fs.writeFileSync(path.join(dir, "subsysnqn"), "nqn.final\n")
    fs.writeFileSync(path.join(dir, "state"), "live\n")
    assert.deepStrictEqual(readSnapshot(root, "nqn.final", fixed).controllers.map((c) => [c.subsysnqn, c.state]), [["nqn.final", "live"]])
    // Kept from here on.
    fs.writeFileSync(path.join(dir, "subsysnqn"), "nqn.rewritten\n")
    assert.deepStrictEqual(readSnapshot(root, undefined, fixed).controllers.map((c) => c.subsysnqn), ["nqn.final"])
  })

  it("keeps only a reading its caller calls whole, and answers Gone for a directory that is not there", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sysfs-fixed-"))
    const fixed = new FixedAttributes()
    const dir = controller(root, "nvme0", "nqn.first", "live")
    const nqn = (keep: boolean) => fixed.read(dir, ["subsysnqn"], () => keep)
    assert.deepStrictEqual(nqn(false), ["nqn.first"])
    // Rewritten in place (the directory's inode and ctime unchanged): read again, since not kept.
    fs.writeFileSync(path.join(dir, "subsysnqn"), "nqn.second\n")
    assert.deepStrictEqual(nqn(true), ["nqn.second"])
    fs.writeFileSync(path.join(dir, "subsysnqn"), "nqn.third\n")
    assert.deepStrictEqual(nqn(true), ["nqn.second"])
    assert.strictEqual(typeof fixed.read(path.join(root, "class/nvme/nvme9"), ["subsysnqn"], () => true), "symbol")
  })

  it("keeps a subsystem's subsysnqn while its directory is the same one (snapshotOf reads no file of the others)", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sysfs-fixed-"))
    const fixed = new FixedAttributes()
    controller(root, "nvme0", "nqn.a", "live")
    const sub = path.join(root, "class/nvme-subsystem/nvme-subsys0")
    fs.mkdirSync(sub)
    fs.writeFileSync(path.join(sub, "subsysnqn"), "nqn.a\n")
    fs.symlinkSync("../../nvme/nvme0", path.join(sub, "nvme0"))
    const subsystemOf = (only?: string) => readSnapshot(root, only, fixed).controllers.map((c) => [c.subsysnqn, c.subsystem])
    assert.deepStrictEqual(subsystemOf(), [["nqn.a", "nvme-subsys0"]])
    // Rewritten in place (kernfs never does this): the kept value shows it is not read again.
    fs.writeFileSync(path.join(sub, "subsysnqn"), "nqn.rewritten\n")
    assert.deepStrictEqual(subsystemOf("nqn.a"), [["nqn.a", "nvme-subsys0"]])
    // The kernel removes the subsystem and makes another under the same name: read afresh.
    fs.rmSync(sub, { recursive: true })
    assert.deepStrictEqual(subsystemOf(), [["nqn.a", undefined]], "gone: forgotten by the full snapshot")
    fs.mkdirSync(sub)
    fs.writeFileSync(path.join(sub, "subsysnqn"), "nqn.b\n")
    assert.deepStrictEqual(readSnapshot(root, "nqn.b", fixed).controllers, [], "nvme0 is nqn.a's")
    assert.deepStrictEqual(subsystemOf(), [["nqn.a", undefined]], "and no longer a member of the new nvme-subsys0")
  })
})
