/**
 * Composition root of `rds-csi node`: the only place that knows every layer. Builds the live
 * services from the settings, starts the CSI server, the HTTP endpoint, the health monitor and
 * the orphan reconciler under one scope, and runs until interrupted (SIGTERM/SIGINT). Closing
 * the scope stops accepting RPCs, lets in-flight ones finish (bounded), drains the event queue
 * (bounded) and removes the socket, in that order.
 *
 * May import: everything.
 */
import { Duration, Effect, Layer, Option, References, Result } from "effect"
import * as Fs from "node:fs/promises"
import { nqn } from "./domain/Ids.ts"
import { describeSettings } from "./Config.ts"
import { CsiServer } from "./csi/Server.ts"
import { EventPoster } from "./kube/EventPoster.ts"
import { deferred, KubeSide } from "./kube/KubeSideDeferred.ts"
import { PodRestarter } from "./kube/PodRestarter.ts"
import { MounterLive } from "./mount/MounterLive.ts"
import { HealthMonitor } from "./node/HealthMonitor.ts"
import { nodeLayer } from "./node/NodeLayer.ts"
import { NodeVolumes } from "./node/NodeVolumes.ts"
import { OrphanReconciler } from "./node/OrphanReconciler.ts"
import { StageStoreLive } from "./node/StageStoreLive.ts"
import { VolumeLocks } from "./node/VolumeLocks.ts"
import { NvmeCliLive } from "./nvme/NvmeCliLive.ts"
import { SysfsLive } from "./nvme/SysfsLive.ts"
import * as HttpEndpoints from "./observability/HttpEndpoints.ts"
import * as Logging from "./observability/Logging.ts"
import { startSpawnHelper } from "./process/SpawnHelper.ts"
import { type NodeSettings, Settings } from "./Settings.ts"

/**
 * The host: processes, files, sysfs, mounts, the stage records. They use Node's own modules, not
 * effect's platform services (whose layer would load crypto, readline and a terminal at start-up).
 */
const hostLayer = Layer.mergeAll(NvmeCliLive, SysfsLive, MounterLive, StageStoreLive)

/**
 * The host NQN the node connects with: --host-nqn, else what nvme-cli reads, /etc/nvme/hostnqn
 * (mounted from the host by the DaemonSet). Undefined when neither is usable: NodeGetInfo then
 * reports the node name alone and the controller cannot fence single-node volumes to this node.
 */
const hostNqnOf = (settings: NodeSettings): Effect.Effect<string | undefined> =>
  settings.hostNqn !== undefined ? Effect.succeed(settings.hostNqn) : Effect.tryPromise(() => Fs.readFile("/etc/nvme/hostnqn", "utf8")).pipe(
    Effect.map((text) => text.trim()),
    Effect.flatMap((text) => {
      const checked = nqn(text, "/etc/nvme/hostnqn")
      return Result.isSuccess(checked) ? Effect.succeed<string | undefined>(checked.success) : Effect.logWarning(`ignoring /etc/nvme/hostnqn: ${checked.failure.message}`).pipe(Effect.as(undefined))
    }),
    Effect.catch(() => Effect.logWarning("no host NQN: neither --host-nqn nor /etc/nvme/hostnqn; the controller cannot fence volumes to this node").pipe(Effect.as(undefined)))
  )

/** The longest the first health pass waits for the first Probe (and its answer to leave). */
const FIRST_PASS_AFTER_MAX = Duration.seconds(3)
const PROBE_ANSWER_SETTLE = Duration.millis(500)
/**
 * The longest the Kubernetes side waits (for the first health pass and a quiet moment) before it
 * loads anyway. Loading the client takes seconds of one emulated vCPU: at 10 s it landed in the
 * middle of the first volume RPCs of a fresh node (bench/footprint's cold trial: NodeUnstage
 * +4.4 s), whose kubelet stages back to back after registration; 30 s leaves them a gap.
 */
const KUBE_AFTER_MAX = Duration.seconds(30)
/** A quiet moment: no volume operation seen in QUIET_POLLS checks QUIET_POLL apart (1 s). */
const QUIET_POLL = Duration.millis(100)
const QUIET_POLLS = 10

/** How this process was started, for the "starting" log line: V8's start-up snapshot (dist/node.blob), the ES build (dist/) or the sources. */
export type StartedFrom = "snapshot" | "bundle" | "sources"

/** Runs the node plugin until interrupted. */
export const runNode = (given: NodeSettings, startedFrom?: StartedFrom): Effect.Effect<void> => Effect.flatMap(hostNqnOf(given).pipe(Effect.provide(Logging.layer(given))), (reportedHostNqn) => {
  const settings: NodeSettings = { ...given, reportedHostNqn }
  // The Kubernetes client is loaded only when events are on (with --events=false it never costs
  // memory or start-up time), and then only once the plugin is ready: events posted before are
  // queued and replayed. One client serves the events and the pod restarter
  // (--restart-pods-on-recovery), which the health monitor finds in its context.
  const events = settings.events
    ? deferred(
      Effect.promise(() => import("./kube/EventPosterLive.ts")).pipe(Effect.map((m) => m.KubeSideLive)),
      (node) => Layer.merge(EventPoster.layerNoop(node), PodRestarter.layerNoop),
      settings.nodeId
    )
    : EventPoster.layerNoop(settings.nodeId)
  const services = nodeLayer(hostLayer, events)
  const app = Layer.mergeAll(CsiServer.layer, HttpEndpoints.layer).pipe(Layer.provideMerge(services))
  return Effect.gen(function*() {
    yield* Effect.logInfo("rds-csi node starting").pipe(Effect.annotateLogs({ config: describeSettings(settings), ...(startedFrom === undefined ? {} : { startedFrom }) }))
    yield* OrphanReconciler.run
    // The first health pass (over every staged volume: seconds of CPU on one emulated vCPU with
    // a hundred of them) and the spawn helper start once the first Probe has been answered, so
    // readiness comes first; FIRST_PASS_AFTER_MAX after ready at the latest.
    const volumes = yield* NodeVolumes
    yield* volumes.firstReadiness.pipe(
      // The answer is sent after readiness returns: let it leave before the pass takes the CPU.
      Effect.andThen(Effect.sleep(PROBE_ANSWER_SETTLE)),
      Effect.timeoutOption(FIRST_PASS_AFTER_MAX),
      // From now on commands are forked by the small spawn helper, not by this process (one
      // more fork of it to start, which readiness did not wait behind).
      Effect.andThen(Effect.sync(startSpawnHelper)),
      Effect.andThen(HealthMonitor.run),
      Effect.forkScoped
    )
    yield* Effect.logInfo("rds-csi node ready")
    const kube = yield* Effect.serviceOption(KubeSide)
    if (Option.isSome(kube)) {
      // Loading the client and checking its access is the heaviest CPU work after ready (seconds
      // on one emulated vCPU): it comes after the first health pass, whose recoveries matter
      // more, and once no volume operation has run for a moment (kubelet's first stages come
      // right after registration); the events wait in the queue meanwhile. KUBE_AFTER_MAX at most.
      const monitor = yield* HealthMonitor
      const locks = yield* VolumeLocks
      const quiet = Effect.gen(function*() {
        for (let calm = 0; calm < QUIET_POLLS;) {
          calm = (yield* locks.inFlight).size === 0 ? calm + 1 : 0
          yield* Effect.sleep(QUIET_POLL)
        }
      })
      yield* monitor.firstPass.pipe(Effect.andThen(quiet), Effect.timeoutOption(KUBE_AFTER_MAX), Effect.andThen(kube.value.start), Effect.forkScoped)
    }
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(app),
    Effect.provide(Settings.layer(settings)),
    Effect.annotateLogs({ node: settings.nodeId }),
    // No tracer is configured: the spans every Effect.fn opens would only cost (~17 % of a call).
    Effect.provideService(References.TracerEnabled, false),
    Effect.provide(Logging.layer(settings)),
    Effect.catchCause((cause) => Effect.logFatal("rds-csi node stopped on an error", cause).pipe(
      Effect.andThen(Effect.sync(() => {
        process.exitCode = 1
      }))
    ))
  )
})
