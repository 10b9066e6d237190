import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { rpc } from "./client.ts"
import { TestCsi, testCsiLayer } from "./fixture.ts"
import { expandReq, statsReq } from "./requests.ts"

layer(testCsiLayer(), { excludeTestServices: true })("NodeGetVolumeStats and NodeExpandVolume replies", (it) => {
  it.effect("a file system: BYTES and INODES usage, and the volume condition", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* TestCsi
      fake.reset()
      const stats = yield* rpc(() => client.NodeGetVolumeStats(statsReq()))
      assert.deepStrictEqual(stats.usage, [
        { unit: "BYTES", total: "1000", used: "300", available: "700" },
        { unit: "INODES", total: "64", used: "4", available: "60" }
      ])
      assert.deepStrictEqual(stats.volume_condition, { abnormal: false, message: "volume is healthy" })
    }))

  it.effect("a raw block volume: BYTES with the total only", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* TestCsi
      fake.reset()
      fake.next.stats = Effect.succeed({ usage: { _tag: "Block", totalBytes: 10737418240 }, condition: { abnormal: false, message: "ok" } })
      const stats = yield* rpc(() => client.NodeGetVolumeStats(statsReq()))
      assert.deepStrictEqual(stats.usage, [{ unit: "BYTES", total: "10737418240", used: "0", available: "0" }])
    }))

  it.effect("an unreadable file system: no usage, an abnormal condition that says why", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* TestCsi
      fake.reset()
      fake.next.stats = Effect.succeed({ usage: undefined, condition: { abnormal: true, message: "stale mount: recovery failed after 3 attempts" } })
      const stats = yield* rpc(() => client.NodeGetVolumeStats(statsReq()))
      assert.deepStrictEqual(stats.usage, [])
      assert.deepStrictEqual(stats.volume_condition, { abnormal: true, message: "stale mount: recovery failed after 3 attempts" })
    }))

  it.effect("NodeExpandVolume returns the capacity NodeVolumes reports", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* TestCsi
      fake.reset()
      fake.next.expand = Effect.succeed({ capacityBytes: 5368709120 })
      assert.strictEqual((yield* rpc(() => client.NodeExpandVolume(expandReq()))).capacity_bytes, "5368709120")
    }))
})
