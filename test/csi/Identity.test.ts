import { assert, describe, layer } from "@effect/vitest"
import { Effect, Result } from "effect"
import { parseNodeId } from "../../src/domain/Ids.ts"
import { rpc } from "./client.ts"
import { TestCsi, testCsiLayer } from "./fixture.ts"

const HOST = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-000000000001"

layer(testCsiLayer({ driverName: "rds.csi.example.io", version: "1.2.3", maxVolumesPerNode: 24, reportedHostNqn: HOST }), { excludeTestServices: true })("Identity and node info", (it) => {
  it.effect("GetPluginInfo reports the configured name and version", () =>
    Effect.gen(function*() {
      const { client } = yield* TestCsi
      const info = yield* rpc(() => client.GetPluginInfo())
      assert.strictEqual(info.name, "rds.csi.example.io")
      assert.strictEqual(info.vendor_version, "1.2.3")
    }))

  it.effect("GetPluginCapabilities: the driver's controller service and online expansion, no topology", () =>
    Effect.gen(function*() {
      const { client } = yield* TestCsi
      const caps = yield* rpc(() => client.GetPluginCapabilities())
      assert.deepStrictEqual(caps.capabilities.map((c) => c.service?.type ?? c.volume_expansion?.type), ["CONTROLLER_SERVICE", "ONLINE"])
    }))

  it.effect("Probe reflects NodeVolumes.readiness as a BoolValue", () =>
    Effect.gen(function*() {
      const { client, fake, logs } = yield* TestCsi
      fake.reset()
      assert.deepStrictEqual((yield* rpc(() => client.Probe())).ready, { value: true })
      fake.next.readiness = { ready: false, problems: ["nvme-cli not found"] }
      assert.deepStrictEqual((yield* rpc(() => client.Probe())).ready, { value: false })
      assert.isTrue(logs.some((l) => l.message === "not ready" && l.annotations["problems"] === "nvme-cli not found"))
      fake.reset()
    }))

  it.effect("NodeGetCapabilities: stage/unstage, stats, volume condition, expand", () =>
    Effect.gen(function*() {
      const { client } = yield* TestCsi
      const caps = yield* rpc(() => client.NodeGetCapabilities())
      assert.deepStrictEqual(
        caps.capabilities.map((c) => c.rpc.type),
        ["STAGE_UNSTAGE_VOLUME", "GET_VOLUME_STATS", "VOLUME_CONDITION", "EXPAND_VOLUME"]
      )
    }))

  it.effect("NodeGetInfo: node id = node name and host NQN (the controller fences to it), volume limit, no topology", () =>
    Effect.gen(function*() {
      const { client, settings } = yield* TestCsi
      const info = yield* rpc(() => client.NodeGetInfo())
      assert.strictEqual(info.node_id, `${settings.nodeId},${HOST}`)
      const parsed = parseNodeId(info.node_id)
      assert.isTrue(Result.isSuccess(parsed) && parsed.success.name === settings.nodeId && parsed.success.hostNqn === HOST)
      assert.strictEqual(info.max_volumes_per_node, "24")
      assert.strictEqual(info.accessible_topology, null)
    }))
})

describe("Identity with defaults", () => {
  layer(testCsiLayer(), { excludeTestServices: true })((it) => {
    it.effect("the default driver name is rds.csi.srvlab.io; max volumes 0 means the CO decides", () =>
      Effect.gen(function*() {
        const { client } = yield* TestCsi
        assert.strictEqual((yield* rpc(() => client.GetPluginInfo())).name, "rds.csi.srvlab.io")
        assert.strictEqual((yield* rpc(() => client.NodeGetInfo())).max_volumes_per_node, "0")
        assert.strictEqual((yield* rpc(() => client.NodeGetInfo())).node_id, "node-1", "no host NQN known: the name alone")
      }))
  })
})
