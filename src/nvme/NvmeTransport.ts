/**
 * NvmeTransport: idempotent attach and detach of an NVMe/TCP volume (SPEC §4.1). Reuses a live
 * connection to the same subsystem and address, never opens a second path while the kernel is
 * still reconnecting one, retries `nvme connect` with exponential backoff and jitter within a
 * time budget, and waits (bounded, polling sysfs, no fixed sleep) for the namespace block
 * device. A failed attach leaves no connection it created behind.
 *
 * May import: domain, nvme/*, observability/Metrics (a leaf), Settings.
 */
import { Clock, Context, Data, Duration, Effect, Layer, Metric, Schedule } from "effect"
import type { Nqn } from "../domain/Ids.ts"
import type { VolumeTarget } from "../domain/Volume.ts"
import * as Metrics from "../observability/Metrics.ts"
import { Settings } from "../Settings.ts"
import { type DeviceNotFound, resolveIn } from "./DeviceResolver.ts"
import { NvmeCli, type NvmeCliError } from "./NvmeCli.ts"
import { type Controller, isDeleting, type NamespaceDevice, Sysfs, type SysfsError } from "./Sysfs.ts"

export interface Attached {
  readonly device: NamespaceDevice
  /** Failed `nvme connect` attempts before success (0 when the first worked or nothing was needed). */
  readonly failedAttempts: number
  /** False when an existing connection was reused. */
  readonly connected: boolean
  /** The subsystem had a controller (at any address, in any state) before this attach. */
  readonly subsystemWasConnected: boolean
}

export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly nqn: string
  readonly address: string
  readonly attempts: number
  readonly detail: string
}> {
  override get message(): string {
    return `connect to ${this.nqn} at ${this.address} failed after ${this.attempts} attempt(s): ${this.detail}`
  }
}

export type AttemptFailed = (attempt: number, error: NvmeCliError | DeviceNotFound | ConnectFailed) => Effect.Effect<void>

/** The controllers of `target` (same NQN, same address and port) that are not being deleted. */
export const controllersOf = (controllers: ReadonlyArray<Controller>, target: VolumeTarget): ReadonlyArray<Controller> =>
  controllers.filter((c) =>
    c.subsysnqn === target.nqn && !isDeleting(c) &&
    (c.traddr === undefined || c.traddr === target.address) &&
    (c.trsvcid === undefined || c.trsvcid === String(target.port))
  )

/** Counts one `nvme connect` by outcome. */
const countConnect = <A, E>(self: Effect.Effect<A, E>) =>
  self.pipe(
    Effect.tap(() => Metric.update(Metric.withAttributes(Metrics.nvmeConnects, { status: "ok" }), 1)),
    Effect.tapError(() => Metric.update(Metric.withAttributes(Metrics.nvmeConnects, { status: "failed" }), 1))
  )

export class NvmeTransport extends Context.Service<NvmeTransport, {
  /** Attaches `target` and returns its namespace device; `onAttemptFailed` runs after each failed attempt. */
  readonly attach: (target: VolumeTarget, onAttemptFailed: AttemptFailed) => Effect.Effect<Attached, ConnectFailed | SysfsError>
  /** Disconnects every controller of `nqn` and waits (bounded) until sysfs shows none. */
  readonly detach: (nqn: Nqn) => Effect.Effect<void, NvmeCliError | SysfsError | ConnectFailed>
}>()("rds-csi/nvme/NvmeTransport") {
  static readonly layer = Layer.effect(
    NvmeTransport,
    Effect.gen(function*() {
      const cli = yield* NvmeCli
      const sysfs = yield* Sysfs
      const settings = yield* Settings

      // Check sysfs until `check` yields a value, up to `within`: again at each change under /dev
      // (the namespace's node appearing or going), and at the latest after 10 ms growing to 200 ms.
      const pollUntil = <A, E>(check: Effect.Effect<A | undefined, E>, within: Duration.Duration) =>
        Effect.gen(function*() {
          const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
          let delay = 10
          while (true) {
            const a = yield* check
            if (a !== undefined) return a
            const left = deadline - (yield* Clock.currentTimeMillis)
            if (left <= 0) return undefined
            yield* sysfs.deviceChange(Duration.millis(Math.min(delay, left)))
            delay = Math.min(delay * 1.5, 200)
          }
        })

      // The device once a controller of the target is live; undefined while it is not (yet), after
      // telling `waiting` why, so that a caller who gives up can say what it was waiting for.
      const liveDevice = (target: VolumeTarget, waiting: (why: string) => void = () => {}) =>
        Effect.gen(function*() {
          const snap = yield* sysfs.snapshotOf(target.nqn)
          const ctrls = controllersOf(snap.controllers, target)
          if (!ctrls.some((c) => c.state === "live")) {
            waiting(ctrls.length === 0
              ? "no controller of the subsystem at this address"
              : `controller(s) ${ctrls.map((c) => `${c.name} ${c.state}`).join(", ")}, none live`)
            return undefined
          }
          const resolved = yield* Effect.result(resolveIn(snap, target.nqn, target.namespace))
          if (resolved._tag === "Success") return resolved.success
          waiting(resolved.failure.detail)
          return undefined
        })

      const attach = Effect.fn("NvmeTransport.attach")(function*(target: VolumeTarget, onAttemptFailed: AttemptFailed) {
        const address = `${target.address}:${target.port}`
        const found = (yield* sysfs.snapshotOf(target.nqn)).controllers
        const subsystemWasConnected = found.length > 0
        const before = controllersOf(found, target)
        if (before.length > 0) {
          // A connection exists (live, or the kernel is reconnecting it): reuse it, never add a second path.
          let waitingFor: string | undefined
          const device = yield* pollUntil(liveDevice(target, (why) => { waitingFor = why }), settings.deviceWaitTimeout)
          if (device !== undefined) return { device, failedAttempts: 0, connected: false, subsystemWasConnected } satisfies Attached
          const states = before.map((c) => `${c.name} ${c.state}`).join(", ")
          // Say what was missing: a live controller, or the namespace on it (a pinned nsid it does not have).
          const err = new ConnectFailed({ nqn: target.nqn, address, attempts: 0, detail: `existing controller(s) ${states}: ${waitingFor ?? "not live"}` })
          yield* onAttemptFailed(1, err)
          return yield* err
        }

        let attempts = 0
        const started = yield* Clock.currentTimeMillis
        // The connect timeout can end the attempts in the middle of one: keep the last problem
        // seen (a refused connection, an NQN the target rejects, a namespace it does not have)
        // for the error, instead of a bare "timed out".
        let lastProblem: string | undefined
        const note = (why: string) => {
          lastProblem = why
        }
        const once = Effect.gen(function*() {
          attempts++
          yield* countConnect(cli.connect({
            nqn: target.nqn,
            address: target.address,
            port: target.port,
            ctrlLossTmo: target.ctrlLossTmo,
            reconnectDelay: target.reconnectDelay,
            keepAliveTmo: target.keepAliveTmo,
            hostNqn: settings.hostNqn,
            hostId: settings.hostId
          }))
          const device = yield* pollUntil(liveDevice(target, note), settings.deviceWaitTimeout)
          if (device === undefined) {
            const snap = yield* sysfs.snapshotOf(target.nqn)
            return yield* resolveIn(snap, target.nqn, target.namespace)
          }
          return device
        }).pipe(
          Effect.tapError((e) => {
            if (e._tag === "SysfsError") return Effect.void
            note(e._tag === "NvmeCliError" ? e.detail : e.message)
            return onAttemptFailed(attempts, e)
          })
        )

        const result = yield* once.pipe(
          Effect.retry({
            while: (e) => e._tag !== "SysfsError",
            schedule: Schedule.exponential(settings.connectBackoff).pipe(
              Schedule.jittered,
              Schedule.upTo({ times: Math.max(0, settings.connectAttempts - 1) })
            )
          }),
          Effect.timeoutOrElse({
            duration: settings.connectTimeout,
            orElse: () =>
              Effect.fail(new ConnectFailed({
                nqn: target.nqn,
                address,
                attempts,
                detail: `no usable connection within ${Duration.format(settings.connectTimeout)}` +
                  (lastProblem === undefined ? "" : `; last problem: ${lastProblem}`)
              }))
          }),
          Effect.mapError((e) =>
            e._tag === "ConnectFailed" || e._tag === "SysfsError"
              ? e
              : new ConnectFailed({ nqn: target.nqn, address, attempts, detail: e.message })
          ),
          // Leave nothing behind: a controller we created for this target that never worked is removed.
          Effect.tapError(() => cleanupCreated(target))
        )
        yield* Metric.update(Metrics.nvmeConnectDuration, ((yield* Clock.currentTimeMillis) - started) / 1000)
        return { device: result, failedAttempts: attempts - 1, connected: true, subsystemWasConnected } satisfies Attached
      })

      const cleanupCreated = (target: VolumeTarget) =>
        Effect.gen(function*() {
          const leftovers = controllersOf((yield* sysfs.snapshotOf(target.nqn)).controllers, target)
          for (const c of leftovers) yield* cli.disconnectController(c.name)
        }).pipe(Effect.ignore)

      const detach = Effect.fn("NvmeTransport.detach")(function*(nqn: Nqn) {
        yield* cli.disconnect(nqn)
        const gone = yield* pollUntil(
          Effect.map(sysfs.snapshotOf(nqn), (s) => s.controllers.length > 0 ? undefined : true),
          settings.deviceWaitTimeout
        )
        if (gone === undefined) {
          return yield* new ConnectFailed({ nqn, address: "", attempts: 1, detail: "controllers still present after nvme disconnect" })
        }
      })

      return NvmeTransport.of({ attach, detach })
    })
  )
}
