/**
 * The live nvme-cli layer against the REAL nvme binary of this host (host suite: run after
 * scripts/prepare-host.sh host, which installs nvme-cli). No kernel module is needed for these.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { NvmeCli } from "../../src/nvme/NvmeCli.ts"
import { NvmeCliLive } from "../../src/nvme/NvmeCliLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"

const cli = NvmeCliLive.pipe(Layer.provide(Layer.mergeAll(NodeServices.layer, Settings.layer(testSettings({ commandTimeout: Duration.seconds(10) })))))

describe("NvmeCliLive with the host's nvme-cli", () => {
  it.live("nvme version through ChildProcess: a 2.x nvme-cli", () =>
    Effect.gen(function*() {
      const v = yield* Effect.flatMap(NvmeCli, (c) => c.version)
      assert.match(v, /^nvme version 2\./)
    }).pipe(Effect.provide(cli)))

  it.live("list-subsys decodes whatever this host has connected (usually nothing) without error", () =>
    Effect.gen(function*() {
      const subsystems = yield* Effect.flatMap(NvmeCli, (c) => c.listSubsystems)
      assert.isArray(subsystems)
    }).pipe(Effect.provide(cli)))
})
