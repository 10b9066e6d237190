import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import {
  FailedPrecondition,
  IncompatibleRequest,
  InvalidArgument,
  SafetyRefusal,
  VolumeBusy,
  VolumeNotFound
} from "../../src/domain/Errors.ts"
import { FormatRefused } from "../../src/mount/Format.ts"
import { MountError } from "../../src/mount/Mounter.ts"
import type { NodeError } from "../../src/node/NodeVolumes.ts"
import { StageStoreError } from "../../src/node/StageStore.ts"
import { DeviceNotFound } from "../../src/nvme/DeviceResolver.ts"
import { NvmeCliError } from "../../src/nvme/NvmeCli.ts"
import { ConnectFailed } from "../../src/nvme/NvmeTransport.ts"
import { SysfsError } from "../../src/nvme/Sysfs.ts"
import { runCommand } from "../../src/process/Command.ts"
import { status, statusOf } from "./client.ts"
import { TestCsi, testCsiLayer } from "./fixture.ts"
import { publishReq, stageReq, statsReq, unstageReq } from "./requests.ts"

const mountError = (reason: MountError["reason"]) =>
  new MountError({ reason, operation: "mount", target: "/var/lib/kubelet/x", exitCode: 32, detail: "wrong fs type" })
const cliError = (reason: NvmeCliError["reason"]) =>
  new NvmeCliError({ reason, command: "nvme connect", exitCode: reason === "Timeout" ? undefined : 1, detail: "no route" })

// A key per tag: adding a tag to NodeError without a row here fails to compile.
const byTag: { readonly [K in NodeError["_tag"]]: ReadonlyArray<readonly [NodeError, status]> } = {
  InvalidArgument: [[new InvalidArgument({ field: "volume_context.nsid", rule: "must be between 1 and 4294967294" }), status.INVALID_ARGUMENT]],
  VolumeNotFound: [[new VolumeNotFound({ volumeId: "pvc-1", detail: "not staged on this node" }), status.NOT_FOUND]],
  FailedPrecondition: [[new FailedPrecondition({ volumeId: "pvc-1", detail: "not staged" }), status.FAILED_PRECONDITION]],
  IncompatibleRequest: [[new IncompatibleRequest({ volumeId: "pvc-1", detail: "staged as xfs" }), status.ALREADY_EXISTS]],
  VolumeBusy: [[new VolumeBusy({ volumeId: "pvc-1", heldBy: "stage" }), status.ABORTED]],
  SafetyRefusal: [[new SafetyRefusal({ volumeId: "pvc-1", detail: "NQN outside the managed prefix" }), status.FAILED_PRECONDITION]],
  FormatRefused: [[new FormatRefused({ device: "/dev/nvme0n1", reason: "NotProvenEmpty", detail: "blkid exit 4" }), status.FAILED_PRECONDITION]],
  ConnectFailed: [[new ConnectFailed({ nqn: "nqn.2000-02.com.mikrotik:x", address: "10.0.0.1:4420", attempts: 3, detail: "refused" }), status.UNAVAILABLE]],
  DeviceNotFound: [[new DeviceNotFound({ nqn: "nqn.2000-02.com.mikrotik:x", reason: "NoNamespace", detail: "nvme0 (connecting)" }), status.UNAVAILABLE]],
  SysfsError: [[new SysfsError({ path: "/sys/class/nvme/nvme0/state", detail: "EIO" }), status.INTERNAL]],
  NvmeCliError: [[cliError("Failed"), status.INTERNAL], [cliError("Timeout"), status.DEADLINE_EXCEEDED]],
  MountError: [[mountError("Failed"), status.INTERNAL], [mountError("Busy"), status.INTERNAL], [mountError("Timeout"), status.DEADLINE_EXCEEDED]],
  StageStoreError: [[new StageStoreError({ volumeId: "pvc-1", operation: "write", detail: "ENOSPC" }), status.INTERNAL]]
}

layer(testCsiLayer(), { excludeTestServices: true })("every NodeError tag → its gRPC code, with its message", (it) => {
  for (const [tag, rows] of Object.entries(byTag)) {
    for (const [error, code] of rows) {
      const label = "reason" in error ? `${tag} (${String(error.reason)})` : tag
      it.effect(`${label} → ${status[code]}`, () =>
        Effect.gen(function*() {
          const { client, fake } = yield* TestCsi
          fake.reset()
          fake.next.void.stage = Effect.fail(error)
          fake.next.stats = Effect.fail(error)
          const staged = yield* statusOf(client.NodeStageVolume(stageReq()))
          assert.strictEqual(status[staged.code], status[code])
          assert.strictEqual(staged.details, error.message)
          const stats = yield* statusOf(client.NodeGetVolumeStats(statsReq()))
          assert.strictEqual(status[stats.code], status[code])
        }))
    }
  }

  it.effect("a defect is INTERNAL with a generic message; the cause is logged, not sent", () =>
    Effect.gen(function*() {
      const { client, fake, logs } = yield* TestCsi
      fake.reset()
      fake.next.void.publish = Effect.die(new Error("bug: secret detail"))
      const result = yield* statusOf(client.NodePublishVolume(publishReq()))
      assert.strictEqual(result.code, status.INTERNAL)
      assert.notInclude(result.details, "secret detail")
      const entry = logs.findLast((l) => l.annotations["rpc"] === "NodePublishVolume")
      assert.strictEqual(entry?.level, "Error")
      assert.include(entry?.cause, "bug: secret detail")
    }))

  it.effect("NodeUnstageVolume of a never-staged volume is OK when NodeVolumes says so", () =>
    Effect.gen(function*() {
      const { client, fake } = yield* TestCsi
      fake.reset()
      assert.strictEqual((yield* statusOf(client.NodeUnstageVolume(unstageReq()))).code, status.OK)
    }))
})

describe("every RPC is logged", () => {
  layer(testCsiLayer(), { excludeTestServices: true })((it) => {
    it.effect("rpc, volume, duration_ms and code; never the secrets", () =>
      Effect.gen(function*() {
        const { client, fake, logs } = yield* TestCsi
        fake.reset()
        logs.length = 0
        yield* statusOf(client.NodeStageVolume(stageReq()))
        fake.next.void.unstage = Effect.fail(new VolumeBusy({ volumeId: "pvc-0b5e1b1c", heldBy: "stage" }))
        yield* statusOf(client.NodeUnstageVolume(unstageReq()))
        yield* statusOf(client.NodeGetCapabilities())
        const rpcs = logs.filter((l) => l.annotations["code"] !== undefined)
        assert.deepStrictEqual(
          rpcs.map((l) => [l.level, l.annotations["rpc"], l.annotations["volume"], l.annotations["code"]]),
          [
            ["Info", "NodeStageVolume", "pvc-0b5e1b1c", "OK"],
            ["Warn", "NodeUnstageVolume", "pvc-0b5e1b1c", "ABORTED"],
            ["Debug", "NodeGetCapabilities", undefined, "OK"]
          ]
        )
        for (const l of rpcs) assert.isNumber(l.annotations["duration_ms"])
        assert.include(rpcs[1]?.message, "an operation is already in progress")
        assert.isFalse(logs.some((l) => JSON.stringify(l).includes("do-not-log")))
      }))

    it.effect("the commands a call ran and their time, beside its duration; none for a call that ran none, nor for a command outside a call", () =>
      Effect.gen(function*() {
        const { client, fake, logs } = yield* TestCsi
        fake.reset()
        logs.length = 0
        const sh = (script: string) => runCommand("sh", ["-c", script], Duration.seconds(10)).pipe(Effect.asVoid, Effect.orDie)
        fake.next.void.stage = Effect.andThen(sh("sleep 0.1"), sh("exit 3"))
        yield* statusOf(client.NodeStageVolume(stageReq()))
        yield* statusOf(client.NodePublishVolume(publishReq()))
        yield* sh("true")
        const [stage, publish] = logs.filter((l) => l.annotations["code"] !== undefined).map((l) => l.annotations)
        assert.strictEqual(stage?.["commands"], 2)
        const commandsMs = stage?.["commands_ms"] as number
        assert.isAtLeast(commandsMs, 100)
        assert.isAtMost(commandsMs, stage?.["duration_ms"] as number)
        assert.isUndefined(publish?.["commands"])
        assert.isUndefined(publish?.["commands_ms"])
      }))
  })
})
