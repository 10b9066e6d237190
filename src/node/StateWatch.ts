/**
 * StateWatch: the health monitor's quick path to a controller state change (issue 12). A full
 * pass (every --health-interval, 2 s) reads every controller, the mount table and the stage
 * records; between passes this watch re-reads only the `state` attribute of the controllers of
 * staged volumes (those the last pass saw), every --state-watch-interval (100 ms), through files
 * kept open (Sysfs.stateReader: one pread each; sysfs sends no inotify events for them), and
 * wakes the monitor's loop when one changes or disappears. The loop runs one pass at a time: a
 * pass, then the interval or a wake, whichever comes first; wakes during a pass coalesce into
 * one more pass. The full pass keeps its interval: the watch adds reads, never a snapshot.
 *
 * May import: effect, mount (types), nvme/Sysfs, node (Lifecycle, StageStore types), Settings.
 */
import { Clock, Deferred, Duration, Effect, type Scope } from "effect"
import type { MountEntry } from "../mount/Mounter.ts"
import { type ControllerState, type NvmeSnapshot, Sysfs, type SysfsError, type WatchedState } from "../nvme/Sysfs.ts"
import { stagedThisBoot } from "./Lifecycle.ts"
import type { NodeSettings } from "../Settings.ts"
import type { StageRecord } from "./StageStore.ts"

export interface StateWatch {
  /** A pass's reading: the controllers to watch and the state it saw each in (replaces the previous set). */
  readonly publish: (seen: ReadonlyMap<string, ControllerState>) => Effect.Effect<void>
  /** The controllers watched now, each with the state last known (tests, logs). */
  readonly watched: Effect.Effect<ReadonlyMap<string, WatchedState>>
  /** When (clock ms) the poll last read every watched controller's state file; undefined before its first read. */
  readonly lastRead: Effect.Effect<number | undefined>
  /** Re-reads the watched state files every `every` until interrupted, waking `wait` on a change. */
  readonly poll: (every: Duration.Input) => Effect.Effect<never, never, Scope.Scope>
  /**
   * Waits for `interval`, or less: until a watched controller changes (a change seen since the
   * last wait counts). True when a change ended it.
   */
  readonly wait: (interval: Duration.Input) => Effect.Effect<boolean>
}

/** The controllers of the staged, active volumes of this boot, in the state the snapshot shows. */
export const controllersToWatch = (
  active: ReadonlyArray<StageRecord>,
  snapshot: NvmeSnapshot,
  mounts: ReadonlyArray<MountEntry>,
  bootId: string
): ReadonlyMap<string, ControllerState> => {
  const nqns = new Set(active.filter((r) => stagedThisBoot(r, bootId, mounts, snapshot)).map((r) => r.nqn))
  return new Map(snapshot.controllers.filter((c) => nqns.has(c.subsysnqn)).map((c) => [c.name, c.state]))
}

export const make: Effect.Effect<StateWatch, never, Sysfs> = Effect.gen(function*() {
  const sysfs = yield* Sysfs
  // Each watched controller's last known state: the pass's reading when it enters the set, then
  // the watch's own. A wake is an edge (a state unlike the last one read), so a pass and the
  // watch reading a controller differently can never keep waking the loop.
  const known = new Map<string, WatchedState>()
  // Completed by a change; replaced when a wait ends, so the changes seen during a pass wake the next wait.
  let changed = Deferred.makeUnsafe<void>()
  let lastRead: number | undefined

  const publish = (seen: ReadonlyMap<string, ControllerState>) =>
    Effect.sync(() => {
      for (const name of [...known.keys()]) if (!seen.has(name)) known.delete(name)
      for (const [name, state] of seen) if (!known.has(name)) known.set(name, state)
    })

  const poll = (every: Duration.Input) =>
    Effect.gen(function*() {
      const reader = yield* sysfs.stateReader
      const once = Effect.gen(function*() {
        const names = [...known.keys()]
        const now = names.length === 0 ? new Map<string, WatchedState>() : yield* reader.read(names)
        lastRead = yield* Clock.currentTimeMillis
        const changes: Array<string> = []
        for (const [name, state] of now) {
          const before = known.get(name)
          // Undefined: a pass let the controller go while it was being read.
          if (before === undefined || before === state) continue
          known.set(name, state)
          changes.push(`${name} ${before} → ${state}`)
        }
        if (changes.length === 0) return
        yield* Effect.logDebug(`controller state changed (${changes.join(", ")}): health pass now`)
        yield* Deferred.succeed(changed, undefined)
      })
      return yield* Effect.forever(Effect.andThen(once, Effect.sleep(every)))
    }).pipe(
      // A bug in the watch must not end the monitor: its full passes go on, only later.
      Effect.catchDefect((defect) => Effect.andThen(Effect.logError("controller state watch stopped", defect), Effect.never))
    )

  const wait = (interval: Duration.Input) =>
    Effect.suspend(() => Deferred.await(changed)).pipe(
      Effect.timeoutOption(interval),
      Effect.map((woken) => {
        if (woken._tag === "Some") changed = Deferred.makeUnsafe<void>()
        return woken._tag === "Some"
      })
    )

  return { publish, watched: Effect.sync(() => new Map(known)), lastRead: Effect.sync(() => lastRead), poll, wait }
})

/** A full snapshot a pass took, and the device-node version it was taken at. */
export interface FullReading {
  readonly snapshot: NvmeSnapshot
  readonly version: string | undefined
  readonly at: number
}

/**
 * The longest a pass goes on the last full snapshot: what the device nodes and the watch cannot
 * tell (a controller's ctrl_loss_tmo set by hand, a namespace's size) is read again this often.
 */
export const FULL_SNAPSHOT_EVERY_MS = 30_000

/**
 * Whether a pass may go on the last full snapshot instead of reading sysfs again (at rest with a
 * hundred volumes that read was a third of the plugin's time under emulation; bench/README.md,
 * round 11). Only while all of these hold, else the pass reads it all:
 *  - the device nodes have not changed since it was taken (no controller or namespace came or went,
 *    so no renumbering either);
 *  - the watch has read every watched controller's state since then, and each is as the snapshot
 *    shows it (a change makes it a full read, as does a watch that is off or not polling);
 *  - it is younger than FULL_SNAPSHOT_EVERY_MS.
 */
export const reusable = (
  last: FullReading | undefined,
  now: { readonly version: string | undefined; readonly at: number; readonly lastRead: number | undefined; readonly watched: ReadonlyMap<string, WatchedState> }
): last is FullReading => {
  if (last === undefined || last.version === undefined || now.version !== last.version) return false
  if (now.at - last.at >= FULL_SNAPSHOT_EVERY_MS || now.lastRead === undefined || now.lastRead <= last.at) return false
  const shown = new Map(last.snapshot.controllers.map((c) => [c.name, c.state]))
  for (const [name, state] of now.watched) if (shown.get(name) !== state) return false
  return true
}

/**
 * The snapshot each health pass observes: the last full one while `reusable` says nothing
 * changed, else a new full read. Watches the device nodes for the scope (Sysfs.deviceWatch).
 */
export const snapshotSource = (watch: StateWatch): Effect.Effect<Effect.Effect<NvmeSnapshot, SysfsError>, never, Sysfs | Scope.Scope> =>
  Effect.gen(function*() {
    const sysfs = yield* Sysfs
    const devices = yield* sysfs.deviceWatch
    let last: FullReading | undefined
    return Effect.gen(function*() {
      const version = yield* devices.version
      const at = yield* Clock.currentTimeMillis
      if (reusable(last, { version, at, lastRead: yield* watch.lastRead, watched: yield* watch.watched })) return last.snapshot
      const snapshot = yield* sysfs.snapshot
      last = { snapshot, version, at }
      return snapshot
    })
  })

/** --state-watch-interval; zero: no watch. */
export const intervalOf = (settings: NodeSettings): Duration.Duration => settings.stateWatchInterval

/** How often the loop runs a pass, for the start-up log line: `2s (state files every 100ms)`. */
export const describe = (settings: NodeSettings): string => {
  const every = intervalOf(settings)
  return `${Duration.format(settings.healthInterval)} (${Duration.toMillis(every) > 0 ? `state files every ${Duration.format(every)}` : "state file watch off"})`
}

/** How often a periodic pass that waits for the node's RPCs looks again. */
export const QUIET_POLL = Duration.millis(50)
/**
 * How long the node's RPCs must have been quiet before a periodic pass runs. A client sends the
 * next call some time after the last answer (kubelet's NodePublishVolume after NodeStageVolume;
 * a gRPC client under emulation takes 100–200 ms to do so): a pass started in that gap ran beside
 * the next RPC and its command (bench/footprint round 11: `mount --bind` 105–215 ms in the
 * plugin against 59–88 ms bare, and 81 ms through the same spawn helper in an idle process).
 */
export const QUIET_FOR = Duration.millis(500)

/**
 * Runs `pass` for ever, one at a time: again after --health-interval, or as soon as the watch
 * (forked here, polling every --state-watch-interval) sees a watched controller change.
 *
 * A periodic pass (not one a change asked for) first lets the node's own RPCs finish: while
 * `busy` says one is in flight, and until none has been for QUIET_FOR (kubelet sends
 * NodePublishVolume right after NodeStageVolume), it waits, at most one more --health-interval.
 * Under emulation a pass over a handful of volumes is ~50–80 ms of the one vCPU, which an RPC
 * running beside it paid (bench/README.md, round 10). A change still runs a pass at once.
 */
export const loop = (
  watch: StateWatch,
  pass: Effect.Effect<void>,
  settings: NodeSettings,
  busy: Effect.Effect<boolean> = Effect.succeed(false)
): Effect.Effect<never> =>
  Effect.gen(function*() {
    const every = intervalOf(settings)
    if (Duration.toMillis(every) > 0) yield* Effect.forkScoped(watch.poll(every))
    const most = Math.ceil(Duration.toMillis(settings.healthInterval) / Duration.toMillis(QUIET_POLL))
    const looks = Math.ceil(Duration.toMillis(QUIET_FOR) / Duration.toMillis(QUIET_POLL))
    const next = Effect.gen(function*() {
      if (yield* watch.wait(settings.healthInterval)) return
      if (!(yield* busy)) return
      let quiet = 0
      for (let look = 0; look < most; look++) {
        if (yield* watch.wait(QUIET_POLL)) return
        quiet = (yield* busy) ? 0 : quiet + 1
        if (quiet >= looks) return
      }
    })
    return yield* Effect.forever(Effect.andThen(pass, next))
  }).pipe(Effect.scoped)
