/**
 * The NodeVolumes layer: each use case under its volume's lock, annotated for logs and traces.
 * Stats does not lock (kubelet polls it; a stale volume's recovery takes the lock itself).
 *
 * May import: domain, nvme, mount, kube (EventPoster contract), node, Settings.
 */
import { Cause, Clock, Deferred, Effect, Exit, Layer, Option } from "effect"
import { EventPoster } from "../kube/EventPoster.ts"
import { Mounter } from "../mount/Mounter.ts"
import { NvmeCli } from "../nvme/NvmeCli.ts"
import { NvmeTransport } from "../nvme/NvmeTransport.ts"
import { Sysfs } from "../nvme/Sysfs.ts"
import * as Metrics from "../observability/Metrics.ts"
import { Settings } from "../Settings.ts"
import { HealthView } from "./HealthView.ts"
import { NodeVolumes } from "./NodeVolumes.ts"
import { publish, unpublish } from "./Publish.ts"
import { stage, unstage } from "./Stage.ts"
import { StageStore } from "./StageStore.ts"
import { expand, stats } from "./Stats.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

type Deps = Settings | StageStore | NvmeTransport | Sysfs | Mounter | EventPoster | VolumeLocks | HealthView

export const NodeVolumesLive: Layer.Layer<
  NodeVolumes,
  never,
  Settings | StageStore | NvmeTransport | NvmeCli | Sysfs | Mounter | EventPoster | VolumeLocks | HealthView
> = Layer.effect(
  NodeVolumes,
  Effect.gen(function*() {
    const ctx = yield* Effect.context<Deps>()
    const locks = yield* VolumeLocks
    const cli = yield* NvmeCli
    let nvmeAnswered = false
    let firstAnswered = false
    const sysfs = yield* Sysfs
    const mounter = yield* Mounter
    const answered = yield* Deferred.make<void>()
    let lastReady: boolean | undefined

    // Every operation is counted by status (ok, or the error's tag) and timed.
    const measured = <A, E extends { readonly _tag: string }>(operation: string, volumeId: string, self: Effect.Effect<A, E, Deps>) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        return yield* self.pipe(
          Effect.provideContext(ctx),
          Effect.onExit((exit) =>
            Effect.flatMap(Clock.currentTimeMillis, (end) =>
              Metrics.recordOperation(
                operation,
                Exit.isSuccess(exit) ? "ok" : Option.getOrElse(Option.map(Cause.findErrorOption(exit.cause), (e) => e._tag), () => "defect"),
                (end - start) / 1000
              )
            )
          ),
          Effect.annotateLogs({ volume: volumeId, operation })
        )
      })

    const locked = <A, E extends { readonly _tag: string }>(operation: string, volumeId: string, self: Effect.Effect<A, E, Deps>) =>
      measured(operation, volumeId, locks.withLock(volumeId, operation, self))

    return NodeVolumes.of({
      stage: (req) => locked("stage", req.volumeId, stage(req)),
      unstage: (req) => locked("unstage", req.volumeId, unstage(req)),
      publish: (req) => locked("publish", req.volumeId, publish(req)),
      unpublish: (req) => locked("unpublish", req.volumeId, unpublish(req)),
      expand: (req) => locked("expand", req.volumeId, expand(req)),
      stats: (req) => measured("stats", req.volumeId, stats(req)),
      readiness: Effect.gen(function*() {
        const problems: Array<string> = []
        // The first Probe (the readiness wait, kubelet's registration) finds nvme on PATH without
        // starting it: a process started while the plugin starts costs most of a second under
        // emulation. The next Probes run `nvme version` until it has answered once (through the
        // spawn helper by then); a failure makes them not ready. The tools on PATH are checked each time.
        if (!firstAnswered) {
          if (!(yield* cli.installed)) problems.push("nvme-cli: nvme is not on PATH")
        } else if (!nvmeAnswered) {
          const version = yield* Effect.result(cli.version)
          if (version._tag === "Failure") problems.push(`nvme-cli: ${version.failure.message}`)
          else nvmeAnswered = true
        }
        if (!(yield* sysfs.fabricsAvailable)) problems.push("sysfs: /sys/class/nvme-fabrics is missing (load the nvme-tcp module)")
        const missing = yield* mounter.missingTools
        if (missing.length > 0) problems.push(`mount tools missing: ${missing.join(", ")}`)
        const ready = problems.length === 0
        // Said once, and again whenever it changes (the liveness probe asks every few seconds).
        if (ready !== lastReady) yield* ready ? Effect.logInfo("Probe: ready") : Effect.logWarning(`Probe: not ready: ${problems.join("; ")}`)
        lastReady = ready
        return { ready, problems }
      }).pipe(
        // Only an answer counts: a Probe its caller gave up on (its deadline) is interrupted before this.
        Effect.tap(() =>
          Effect.andThen(
            Effect.sync(() => {
              firstAnswered = true
            }),
            Deferred.succeed(answered, undefined)
          )
        )
      ),
      firstReadiness: Deferred.await(answered)
    })
  })
)
