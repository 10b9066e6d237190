/**
 * The live mount layer finds every tool it runs on this host (host suite: run after
 * scripts/prepare-host.sh host, which installs e2fsprogs, xfsprogs and util-linux).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Mounter } from "../../src/mount/Mounter.ts"
import { MounterLive } from "../../src/mount/MounterLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"

describe("MounterLive with the host's tools", () => {
  it.live("no mount, mkfs or resize tool is missing", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Effect.flatMap(Mounter, (m) => m.missingTools), [], "prepare-host.sh host installs every one")
    }).pipe(Effect.provide(MounterLive.pipe(Layer.provide(Layer.mergeAll(NodeServices.layer, Settings.layer(testSettings({}))))))))
})
