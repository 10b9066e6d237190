/**
 * EventPoster's rendering: every message is one line, whatever the error text carries (seen on the
 * real kernel: nvme-cli's two-line stderr inside RecoveryFailed broke `kubectl describe`'s table).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { EventPoster, oneLine, podNeedsRestartText, type PostedEvent, render } from "../../src/kube/EventPoster.ts"

const nvmeStderr = "Failed to write to /dev/nvme-fabrics: Input/output error\ncould not add new controller: failed to write to nvme-fabrics device\n"

describe("EventPoster.render", () => {
  it("folds a multi-line error into one line in every message that embeds text", () => {
    const messages = [
      render.recoveryFailed("pvc-1", "node-1", 3, `connect failed: ${nvmeStderr}`).message,
      render.connectionFailure("pvc-1", "node-1", "10.0.0.5:4420", nvmeStderr).message,
      render.mountFailure("pvc-1", "node-1", "mount: wrong fs type\r\n  dmesg(1) may have more information").message,
      render.orphanDetected("node-1", "nqn.x", "10.0.0.5:4420", "line one\nline two").message,
      render.orphanCleaned("node-1", "nqn.x", "done\n").message,
      render.podNeedsRestart("pod-uid", "pvc-1", "node-1", "recovered\nrestart it").message
    ]
    for (const m of messages) assert.notMatch(m, /[\r\n]/)
    assert.strictEqual(messages[0],
      "[pvc-1] on [node-1]: Recovery failed after 3 attempts: connect failed: Failed to write to /dev/nvme-fabrics: Input/output error; could not add new controller: failed to write to nvme-fabrics device")
    assert.strictEqual(messages[2], "[pvc-1] on [node-1]: mount: wrong fs type; dmesg(1) may have more information")
  })

  it("leaves one-line text as it is", () => {
    assert.strictEqual(oneLine("Connection to 10.0.0.5:4420 failed: controller nvme0 is connecting"), "Connection to 10.0.0.5:4420 failed: controller nvme0 is connecting")
  })

  it("VolumeRecoveredRestartPod: a Warning about the volume, addressed to the pod by uid, in the volume message format", () => {
    assert.deepStrictEqual(render.podNeedsRestart("0b6c-uid", "pvc-1", "node-1", podNeedsRestartText("/dev/nvme0n2")), {
      reason: "VolumeRecoveredRestartPod",
      type: "Warning",
      volumeId: "pvc-1",
      podUid: "0b6c-uid",
      message: "[pvc-1] on [node-1]: the volume was recovered (new device /dev/nvme0n2), but this pod still holds the old mount: " +
        "restart the pod to use the recovered volume, or use mountPropagation: HostToContainer"
    })
  })

  it.effect("every implementation has postPodNeedsRestart: layerRecording keeps the pod uid, layerNoop swallows it", () =>
    Effect.gen(function*() {
      const sink = yield* Ref.make<ReadonlyArray<PostedEvent>>([])
      const post = Effect.gen(function*() {
        yield* (yield* EventPoster).postPodNeedsRestart("uid-1", "pvc-1", "x")
      })
      yield* post.pipe(Effect.provide(EventPoster.layerRecording("node-1", sink)))
      assert.deepStrictEqual((yield* Ref.get(sink)).map((e) => [e.reason, e.podUid, e.message]), [["VolumeRecoveredRestartPod", "uid-1", "[pvc-1] on [node-1]: x"]])
      yield* post.pipe(Effect.provide(EventPoster.layerNoop("node-1")))
    }))
})
