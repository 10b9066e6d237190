/**
 * The state reader of SysfsLive (the health monitor's watch between full passes): each watched
 * controller's `state` file stays open and is re-read at offset 0, on a sysfs tree captured from
 * kernel 6.1 and materialised in a temp directory. There the kernel's deletion of a controller
 * is its directory removed; on the real sysfs the open file answers ENODEV instead.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import { Sysfs } from "../../src/nvme/Sysfs.ts"
import { openStateFiles, SysfsLive } from "../../src/nvme/SysfsLive.ts"
import { isSysfs } from "../../src/nvme/SysfsWatch.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { materialiseSysfs, type SysfsTree } from "../fixtures/fixtures.ts"

const CTL = "devices/virtual/nvme-fabrics/ctl"

/** The kernel deletes controller `name`: its device directory and its class link go. */
const deleteController = (tree: SysfsTree, name: string) => {
  tree.remove(`${CTL}/${name}`)
  tree.remove(`class/nvme/${name}`)
}

/** File descriptors of this process open on files under `root`. */
const openUnder = (root: string): number => {
  const real = fs.realpathSync(root)
  let n = 0
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${real}/`)) n++
    } catch {
      // closed while listing (the listing's own fd)
    }
  }
  return n
}

const withTree = <A, E>(f: (tree: SysfsTree) => Effect.Effect<A, E, Sysfs>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => materialiseSysfs("mp-on.live")),
    (tree) => f(tree).pipe(Effect.provide(SysfsLive.pipe(Layer.provide(Settings.layer(testSettings({ sysfsRoot: tree.root })))))),
    (tree) => Effect.sync(tree.cleanup)
  )

const asObject = (m: ReadonlyMap<string, string>) => Object.fromEntries(m)

describe("SysfsLive state reader", () => {
  it.effect("re-reads each state file in place: a change shows on the next read, through the same open file", () =>
    withTree((tree) =>
      Effect.scoped(Effect.gen(function*() {
        const reader = yield* (yield* Sysfs).stateReader
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0", "nvme1"])), { nvme0: "live", nvme1: "live" })
        assert.strictEqual(openUnder(tree.root), 2, "one open file per watched controller")
        tree.write(`${CTL}/nvme0/state`, "connecting\n")
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0", "nvme1"])), { nvme0: "connecting", nvme1: "live" })
        tree.write(`${CTL}/nvme0/state`, "live\n")
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0", "nvme1"])), { nvme0: "live", nvme1: "live" })
        assert.strictEqual(openUnder(tree.root), 2, "still the same two files, not one more per read")
      }))
    ))

  it.effect("a controller the kernel deleted reads as gone; its name, reused by a new controller, is read again", () =>
    withTree((tree) =>
      Effect.scoped(Effect.gen(function*() {
        const reader = yield* (yield* Sysfs).stateReader
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0", "nvme1"])), { nvme0: "live", nvme1: "live" })
        deleteController(tree, "nvme0")
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0", "nvme1"])), { nvme0: "gone", nvme1: "live" })
        assert.strictEqual(openUnder(tree.root), 1, "the deleted controller's file is closed")
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0"])), { nvme0: "gone" })
        // The kernel gives the lowest free instance to the next controller it creates.
        fs.mkdirSync(`${tree.root}/${CTL}/nvme0`)
        tree.write(`${CTL}/nvme0/state`, "connecting\n")
        fs.symlinkSync(`../../${CTL}/nvme0`, `${tree.root}/class/nvme/nvme0`)
        assert.deepStrictEqual(asObject(yield* reader.read(["nvme0"])), { nvme0: "connecting" })
      }))
    ))

  it.effect("controllers no longer named are let go, and the scope closes every file", () =>
    withTree((tree) =>
      Effect.gen(function*() {
        yield* Effect.scoped(Effect.gen(function*() {
          const reader = yield* (yield* Sysfs).stateReader
          yield* reader.read(["nvme0", "nvme1"])
          assert.strictEqual(openUnder(tree.root), 2)
          assert.deepStrictEqual(asObject(yield* reader.read(["nvme1"])), { nvme1: "live" })
          assert.strictEqual(openUnder(tree.root), 1)
        }))
        assert.strictEqual(openUnder(tree.root), 0)
      })
    ))

  it("never a controller that was not there, an odd name, or an unreadable file: those are left out", () => {
    const tree = materialiseSysfs("mp-on.live")
    const files = openStateFiles(tree.root)
    try {
      assert.deepStrictEqual(asObject(files.read(["nvme7", "../../etc", "nvme0"])), { nvme7: "gone", nvme0: "live" })
      assert.deepStrictEqual(files.open(), ["nvme0"])
      // A state file that exists but cannot be opened (the snapshot reports it as a SysfsError).
      fs.rmSync(`${tree.root}/${CTL}/nvme1/state`)
      fs.mkdirSync(`${tree.root}/${CTL}/nvme1/state`)
      assert.deepStrictEqual(asObject(files.read(["nvme0", "nvme1"])), { nvme0: "live" })
      // An unknown state, as the snapshot reads it: present, not usable.
      tree.write(`${CTL}/nvme0/state`, "frozen\n")
      assert.deepStrictEqual(asObject(files.read(["nvme0"])), { nvme0: "new" })
    } finally {
      files.closeAll()
      assert.deepStrictEqual(files.open(), [])
      tree.cleanup()
    }
  })
})

describe("isSysfs", () => {
  it("tells the kernel's sysfs (ENODEV on a removed attribute) from a directory standing in for it", () => {
    const dir = fs.mkdtempSync("/tmp/rds-csi-sysfs-")
    try {
      assert.isFalse(isSysfs(dir))
      assert.isFalse(isSysfs(`${dir}/missing`))
      // Every sysfs mount this process sees (/sys on a host, a container or the VM).
      const sysfsMounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")).filter((f) => f[2] === "sysfs").map((f) => f[1]!)
      for (const m of sysfsMounts) assert.isTrue(isSysfs(m), m)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
