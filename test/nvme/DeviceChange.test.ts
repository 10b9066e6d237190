import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { deviceChange, watchDevices } from "../../src/nvme/SysfsLive.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "devchange-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Polls `version` (the watch's events arrive through the event loop) until it differs from `from`, for up to 5 s. */
const movedFrom = (version: Effect.Effect<string | undefined>, from: string | undefined) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const v = yield* version
      if (v !== from) return v
      yield* Effect.sleep("10 millis")
    }
    return from
  })

// The device wait's notification: a node created in the watched directory ends the wait at once;
// without one it ends at the bound; an unwatchable directory is a plain sleep.
describe("deviceChange", () => {
  it.live("returns as soon as an entry appears, long before the bound", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const started = Date.now()
      const wait = yield* Effect.forkChild(deviceChange(dir, Duration.seconds(10)))
      yield* Effect.sleep("50 millis")
      fs.writeFileSync(path.join(dir, "nvme0n1"), "")
      yield* Fiber.join(wait)
      const took = Date.now() - started
      assert.isBelow(took, 5000, `took ${took} ms`)
    }))

  it.live("ends at the bound when nothing changes, and on a directory it cannot watch", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      for (const d of [dir, path.join(dir, "missing")]) {
        const started = Date.now()
        yield* deviceChange(d, Duration.millis(100))
        const took = Date.now() - started
        assert.isAtLeast(took, 90, d)
        assert.isBelow(took, 5000, d)
      }
    }))
})

// The health monitor's reason to read sysfs afresh: the device nodes' version moves with every
// node added or removed, stays while nothing happens, and is unknown where nothing can be watched.
describe("watchDevices", () => {
  it.live("the version moves when a node is added and when one is removed, and stays put otherwise", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const watch = yield* watchDevices(dir)
      const v0 = yield* watch.version
      assert.isDefined(v0)
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* watch.version, v0, "nothing happened")
      fs.writeFileSync(path.join(dir, "nvme1n1"), "")
      const v1 = yield* movedFrom(watch.version, v0)
      assert.notStrictEqual(v1, v0, "a node was added")
      assert.isDefined(v1)
      // Let the events of that one creation (create, close) all arrive before the next look.
      yield* Effect.sleep("100 millis")
      const v2 = yield* watch.version
      fs.rmSync(path.join(dir, "nvme1n1"))
      assert.notStrictEqual(yield* movedFrom(watch.version, v2), v2, "a node was removed")
    }))

  it.live("a directory that cannot be watched has no version: every look must read it all", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const watch = yield* watchDevices(path.join(dir, "missing"))
      assert.isUndefined(yield* watch.version)
    }))
})
