/**
 * The warm-up the start-up snapshot's builder runs (src/WarmUp.ts): every request it makes up
 * passes the codecs and the validation the real RPCs use, and the record comes back from the
 * store's schema as it went in. `npm run build` runs it inside the snapshot builder, where a
 * refused value fails the build.
 */
import { assert, describe, it } from "@effect/vitest"
import { warmUp } from "../src/WarmUp.ts"

describe("warmUp", () => {
  it("runs the four node RPCs' requests through codec and validation, and a record through the store's schema", () => {
    const w = warmUp()
    assert.strictEqual(w.stage.capability.accessType._tag, "Mount")
    assert.strictEqual(w.stage.target.port, 4420)
    assert.match(w.stage.target.nqn, /^nqn\.2000-02\.com\.mikrotik:pvc-/)
    assert.strictEqual(w.publish.targetPath, w.record.publishedTargets[0]?.path)
    assert.strictEqual(w.unpublish.volumeId, w.stage.volumeId)
    assert.strictEqual(w.unstage.stagingPath, w.stage.stagingPath)
    assert.deepStrictEqual(w.record.device.identity, { nsid: 1, nguid: "a3c5fa9cfd726d3e6d9d528055c24900" })
    // again: the same (nothing kept between runs but what the schema and V8 cache)
    assert.deepStrictEqual(warmUp(), w)
  })
})
