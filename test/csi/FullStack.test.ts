/**
 * The gRPC edge on the whole node plugin: a real grpc-js client over a real unix socket, the
 * production composition (nodeLayer) on the in-memory kernel. What issue 2 asks of the server
 * as a whole: every RPC twice gives the same result, publish before stage is
 * FAILED_PRECONDITION, and two concurrent operations on one volume give exactly one ABORTED.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import { CsiServer } from "../../src/csi/Server.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { plugin, stateLayer } from "../node/harness.ts"
import { csiClient, status, statusOf } from "./client.ts"
import { tempDir } from "./fixture.ts"
import { blockCap, context, expandReq, NQN, publishReq, STAGING, stageReq, statsReq, TARGET, unpublishReq, unstageReq, VOLUME } from "./requests.ts"

const GiB = 1024 ** 3
const ADDRESS = context.nvmeAddress

/** The plugin's server on a socket in a temp dir, and a client on it. */
const server = (overrides: Parameters<typeof plugin>[0] = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const services = plugin({ endpoint: `unix://${dir}/csi.sock`, ...overrides })
    const ctx = yield* Layer.build(Layer.provideMerge(CsiServer.layerWith({ shutdownTimeout: "2 seconds" }), services))
    const k = yield* KernelModel
    yield* k.exportSubsystem({ address: ADDRESS, port: 4420, nqn: NQN, namespaces: [{ nsid: 1, sizeBytes: GiB }] })
    const client = yield* csiClient(Context.get(ctx, CsiServer).socketPath)
    return { client, k }
  })

/** A response without the fields that legitimately change between calls (none so far): deep-comparable. */
const same = (a: unknown, b: unknown, what: string) => assert.deepStrictEqual(JSON.parse(JSON.stringify(b)), JSON.parse(JSON.stringify(a)), what)

describe("CSI server over the whole plugin (in-memory kernel)", () => {
  it.live("every RPC twice gives the same result; the device is formatted once", () =>
    Effect.gen(function*() {
      const { client, k } = yield* server()
      // The controller grew the namespace (expandReq asks for 2 GiB).
      yield* k.resizeNamespace(NQN, 1, 4 * GiB)
      const calls: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
        ["NodeStageVolume", () => client.NodeStageVolume(stageReq())],
        ["NodePublishVolume", () => client.NodePublishVolume(publishReq())],
        ["NodeGetVolumeStats", () => client.NodeGetVolumeStats(statsReq())],
        ["NodeExpandVolume", () => client.NodeExpandVolume(expandReq())],
        ["NodeUnpublishVolume", () => client.NodeUnpublishVolume(unpublishReq())],
        ["NodeUnstageVolume", () => client.NodeUnstageVolume(unstageReq())],
        ["Probe", () => client.Probe({})],
        ["NodeGetInfo", () => client.NodeGetInfo({})],
        ["NodeGetCapabilities", () => client.NodeGetCapabilities({})],
        ["GetPluginInfo", () => client.GetPluginInfo({})]
      ]
      for (const [name, call] of calls) {
        const first = yield* Effect.promise(call)
        const second = yield* Effect.promise(call)
        same(first, second, name)
      }
      assert.strictEqual((yield* k.mkfsLog).length, 1)
      assert.deepStrictEqual((yield* k.view).controllers.filter((c) => c.state !== "removed"), [], "unstage disconnected")
      // CSI: unstage and unpublish of what is not staged or published are OK too.
      assert.strictEqual((yield* statusOf(client.NodeUnstageVolume(unstageReq()))).code, status.OK)
      assert.strictEqual((yield* statusOf(client.NodeUnpublishVolume(unpublishReq()))).code, status.OK)
    }).pipe(Effect.scoped, Effect.provide(stateLayer)))

  it.live("publish before stage is FAILED_PRECONDITION; stats of an unknown volume is NOT_FOUND", () =>
    Effect.gen(function*() {
      const { client } = yield* server()
      const publish = yield* statusOf(client.NodePublishVolume(publishReq()))
      assert.strictEqual(publish.code, status.FAILED_PRECONDITION)
      assert.include(publish.details, "not staged on this node")
      const stats = yield* statusOf(client.NodeGetVolumeStats(statsReq()))
      assert.strictEqual(stats.code, status.NOT_FOUND)
    }).pipe(Effect.scoped, Effect.provide(stateLayer)))

  it.live("two concurrent operations on one volume: exactly one ABORTED, the other completes", () =>
    Effect.gen(function*() {
      const { client, k } = yield* server({ connectBackoff: Duration.millis(400), connectAttempts: 4, connectTimeout: Duration.seconds(10) })
      // The link is down: the first stage waits in its connect backoff when the second arrives.
      yield* k.linkDown(ADDRESS, 4420)
      const first = client.NodeStageVolume(stageReq())
      yield* Effect.sleep("100 millis")
      const second = yield* statusOf(client.NodeStageVolume(stageReq({ volume_capability: blockCap(), staging_target_path: STAGING })))
      const publish = yield* statusOf(client.NodePublishVolume(publishReq({ target_path: TARGET })))
      yield* k.linkUp(ADDRESS, 4420)
      const done = yield* statusOf(first)
      assert.strictEqual(second.code, status.ABORTED, second.details)
      assert.include(second.details, `volume ${VOLUME}: an operation is already in progress (stage)`)
      assert.strictEqual(publish.code, status.ABORTED)
      assert.strictEqual(done.code, status.OK, done.details)
    }).pipe(Effect.scoped, Effect.provide(stateLayer)))
})
