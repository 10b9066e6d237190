import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { deviceChange } from "../../src/nvme/SysfsLive.ts"

// The device wait's notification: a node created in the watched directory ends the wait at once;
// without one it ends at the bound; an unwatchable directory is a plain sleep.
describe("deviceChange", () => {
  it.live("returns as soon as an entry appears, long before the bound", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "devchange-"))
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
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "devchange-"))
      for (const d of [dir, path.join(dir, "missing")]) {
        const started = Date.now()
        yield* deviceChange(d, Duration.millis(100))
        const took = Date.now() - started
        assert.isAtLeast(took, 90, d)
        assert.isBelow(took, 5000, d)
      }
    }))
})
