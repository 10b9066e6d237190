/**
 * The health monitor's watch of controller state files (issue 12, detection): a state change
 * reaches the event recorder within one --state-watch-interval (100 ms), not at the next full
 * pass (--health-interval, 2 s); the full pass keeps its interval; passes never overlap; a pass
 * reads the whole of sysfs only when something may have changed. Runs the monitor's own loop
 * (HealthMonitor.run) on the in-memory kernel, in test time, with a Sysfs that counts passes,
 * full snapshots and state reads.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Layer, Result } from "effect"
import { TestClock } from "effect/testing"
import { parseInterval } from "../../src/Config.ts"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { nodeLayer } from "../../src/node/NodeLayer.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { VolumeLocks } from "../../src/node/VolumeLocks.ts"
import * as StateWatch from "../../src/node/StateWatch.ts"
import { type ControllerState, type StateReader, Sysfs, type WatchedState } from "../../src/nvme/Sysfs.ts"
import { DEFAULTS, type NodeSettings, Settings, testSettings } from "../../src/Settings.ts"
import { KernelModel, MounterTest, NvmeCliTest, StageStoreTest, SysfsTest } from "../../src/testing/index.ts"
import { ADDRESS, events, ext4, nqnOf, PORT, RecordedEvents, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf } from "./harness.ts"

const GiB = 1024 ** 3
const STEP = 10

/**
 * What the wrapped Sysfs saw: passes (each starts with one look at the device nodes' version),
 * how many at once, full snapshots, state readers and reads.
 */
interface Probe {
  passes: number
  snapshots: number
  inFlight: number
  most: number
  /** Test time the start of a pass takes (a slow pass); 0: none. */
  slowMs: number
  readers: number
  reads: number
  lastRead: ReadonlyArray<string>
}
const newProbe = (): Probe => ({ passes: 0, snapshots: 0, inFlight: 0, most: 0, slowMs: 0, readers: 0, reads: 0, lastRead: [] })

const probedSysfs = (probe: Probe) =>
  Layer.effect(
    Sysfs,
    Effect.gen(function*() {
      const inner = yield* Sysfs
      return Sysfs.of({
        ...inner,
        snapshot: Effect.suspend(() => {
          probe.snapshots++
          return inner.snapshot
        }),
        deviceWatch: Effect.map(inner.deviceWatch, (w) => ({
          version: Effect.suspend(() => {
            probe.passes++
            probe.most = Math.max(probe.most, ++probe.inFlight)
            return (probe.slowMs > 0 ? Effect.sleep(Duration.millis(probe.slowMs)) : Effect.void).pipe(
              Effect.andThen(w.version),
              Effect.ensuring(Effect.sync(() => void probe.inFlight--))
            )
          })
        })),
        stateReader: Effect.map(inner.stateReader, (reader): StateReader => {
          probe.readers++
          return {
            read: (names) =>
              Effect.suspend(() => {
                probe.reads++
                probe.lastRead = names
                return reader.read(names)
              })
          }
        })
      })
    })
  ).pipe(Layer.provide(SysfsTest.layer))

/** The plugin on the in-memory kernel with the probed Sysfs; `body` runs in its own scope (the loop ends with it). */
const run = (probe: Probe, overrides: Partial<NodeSettings> = {}) => <A, E>(body: Effect.Effect<A, E, any>) => {
  const settings = testSettings(overrides)
  const poster = Layer.unwrap(Effect.gen(function*() {
    return EventPoster.layerRecording(settings.nodeId, yield* RecordedEvents)
  }))
  const host = Layer.mergeAll(NvmeCliTest.layer, probedSysfs(probe), MounterTest.layer, StageStoreTest.layer)
  const plugin = nodeLayer(host, poster).pipe(Layer.provideMerge(Settings.layer(settings)))
  return Effect.scoped(body).pipe(Effect.provide(plugin), Effect.provide(stateLayer)) as Effect.Effect<A, E>
}

const staged = Effect.gen(function*() {
  const k = yield* KernelModel
  const volumes = yield* NodeVolumes
  yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(1), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
  yield* volumes.stage(stageRequest(1))
  yield* volumes.publish({ volumeId: volumeIdOf(1), stagingPath: stagingOf(1), targetPath: targetOf(1), capability: ext4, readOnly: false })
})

/** Test time moves on in 10 ms steps, letting the woken fibers run after each. */
const advance = (ms: number) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += STEP) {
      yield* TestClock.adjust(Duration.millis(STEP))
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
    }
  })

/** Advances test time until an event starting with `prefix` has been posted `count` times; the test time it took. */
const untilEvent = (prefix: string, count = 1, limitMs = 10_000) =>
  Effect.gen(function*() {
    const t0 = yield* Clock.currentTimeMillis
    const posted = Effect.map(events, (all) => all.filter((e) => e.startsWith(prefix)).length)
    while ((yield* posted) < count) {
      if ((yield* Clock.currentTimeMillis) - t0 > limitMs) return yield* Effect.die(new Error(`no ${prefix} within ${limitMs} ms: ${(yield* events).join(" | ")}`))
      yield* advance(STEP)
    }
    return (yield* Clock.currentTimeMillis) - t0
  })

describe("HealthMonitor with the state watch", () => {
  it.effect("link loss, return and controller deletion each reach the recorder within one watch interval (100 ms), not the next pass (2 s)", () => {
    const probe = newProbe()
    return run(probe)(Effect.gen(function*() {
      const k = yield* KernelModel
      yield* staged
      yield* HealthMonitor.run
      yield* advance(500)
      assert.deepStrictEqual(yield* events, [])
      assert.deepStrictEqual(probe.lastRead, ["nvme0"], "the staged volume's controller is watched")
      const passes = probe.passes
      const full = probe.snapshots

      yield* k.linkDown(ADDRESS, PORT)
      const lost = yield* untilEvent("ConnectionFailure")
      assert.isAtMost(lost, 100 + STEP, `ConnectionFailure after ${lost} ms`)
      assert.strictEqual(probe.passes, passes + 1, "one pass, woken by the watch")
      assert.strictEqual(probe.snapshots, full + 1, "reading sysfs afresh: the watch saw a state the last snapshot does not show")
      assert.strictEqual((yield* Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(1))))?.connection, "connecting")

      yield* advance(300)
      yield* k.linkUp(ADDRESS, PORT)
      const back = yield* untilEvent("ConnectionRecovery")
      assert.isAtMost(back, 100 + STEP, `ConnectionRecovery after ${back} ms`)

      yield* advance(300)
      yield* k.loseControllers(nqnOf(1))
      const gone = yield* untilEvent("ConnectionFailure", 2)
      assert.isAtMost(gone, 100 + STEP, `the deleted controller reported after ${gone} ms`)
      assert.include(yield* events, `ConnectionFailure: [pvc-1] on [node-1]: Connection to ${ADDRESS}:${PORT} failed: controller removed by the kernel`)
      // The recovery the pass started reconnects; the next full pass watches the new controller.
      yield* untilEvent("ConnectionRecovery", 2)
      yield* advance(2_100)
      const now = (yield* Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(1))))!
      assert.strictEqual(now.connection, "live")
      assert.deepStrictEqual(probe.lastRead, now.controllers.map((c) => c.name))
      assert.notDeepEqual(probe.lastRead, ["nvme0"], "the kernel renumbered the controller")
    }))
  })

  it.effect("the full pass keeps its interval: with nothing changing, one pass per 2 s while the watch reads every 100 ms", () => {
    const probe = newProbe()
    return run(probe)(Effect.gen(function*() {
      yield* staged
      yield* HealthMonitor.run
      yield* advance(50)
      const passes = probe.passes
      const reads = probe.reads
      yield* advance(10_000)
      assert.strictEqual(probe.passes - passes, 5)
      assert.approximately(probe.reads - reads, 100, 2)
      assert.strictEqual(probe.readers, 1, "the state files are opened once, not per read")
      assert.deepStrictEqual(yield* events, [])
    }))
  })

  it.effect("a pass reads sysfs afresh only when something may have changed: a device node, a watched state, or 30 s", () => {
    const probe = newProbe()
    return run(probe)(Effect.gen(function*() {
      const k = yield* KernelModel
      const volumes = yield* NodeVolumes
      yield* staged
      yield* HealthMonitor.run
      yield* advance(50)
      assert.strictEqual(probe.snapshots, 1, "the first pass reads it all")
      yield* advance(10_000)
      assert.strictEqual(probe.passes, 6)
      assert.strictEqual(probe.snapshots, 1, "nothing changed: five passes on the same snapshot")

      // Another volume: its connect adds a controller and a namespace (device nodes).
      yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(2), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
      yield* volumes.stage(stageRequest(2))
      yield* advance(2_000)
      assert.strictEqual(probe.snapshots, 2, "the next pass saw the new devices")
      assert.sameMembers([...probe.lastRead], ["nvme0", "nvme1"], "and watches the new volume's controller")
      assert.strictEqual((yield* Effect.flatMap(HealthView, (v) => v.get(volumeIdOf(2))))?.connection, "live")

      // Nothing more changes: read afresh once 30 s have gone by since the last full read.
      const at = yield* Clock.currentTimeMillis
      yield* advance(StateWatch.FULL_SNAPSHOT_EVERY_MS - 2_100)
      assert.strictEqual(probe.snapshots, 2)
      yield* advance(2_100)
      assert.strictEqual(probe.snapshots, 3, `a full read within ${(yield* Clock.currentTimeMillis) - at} ms`)
      assert.deepStrictEqual(yield* events, [])
    }))
  })

  it.effect("the monitor's periodic pass waits for a node RPC holding a volume (publish), not for a stats call's recovery", () => {
    const probe = newProbe()
    return run(probe)(Effect.gen(function*() {
      yield* staged
      yield* HealthMonitor.run
      yield* advance(50)
      const locks = yield* VolumeLocks
      const at = probe.passes
      const held = (operation: string) => Effect.forkChild(locks.withLock("pvc-other", operation, Effect.sleep("3 seconds")))
      yield* held("publish")
      yield* advance(2_500)
      assert.strictEqual(probe.passes, at, "the pass due at 2 s waits while the publish runs")
      yield* advance(1_100)
      assert.strictEqual(probe.passes, at + 1, "and runs once it has ended (3 s) and 500 ms were quiet")
      yield* held("stats-recovery")
      yield* advance(2_000)
      assert.strictEqual(probe.passes, at + 2, "a stats call's recovery holds no pass back")
    }))
  })

  it.effect("--state-watch-interval 0: nothing is watched, a link loss waits for the next full pass", () => {
    const probe = newProbe()
    return run(probe, { stateWatchInterval: Duration.zero })(Effect.gen(function*() {
      const k = yield* KernelModel
      yield* staged
      yield* HealthMonitor.run
      yield* advance(500)
      yield* k.linkDown(ADDRESS, PORT)
      const lost = yield* untilEvent("ConnectionFailure")
      assert.isAtLeast(lost, 1_400, `ConnectionFailure after ${lost} ms: at the next pass`)
      assert.strictEqual(probe.readers, 0)
      assert.strictEqual(probe.reads, 0)
      assert.strictEqual(probe.snapshots, probe.passes, "with no watch every pass reads sysfs afresh")
    }))
  })

  it.effect("one pass at a time: changes during a slow pass coalesce into one more, a tick from outside waits its turn", () => {
    const probe = newProbe()
    return run(probe)(Effect.gen(function*() {
      const k = yield* KernelModel
      const monitor = yield* HealthMonitor
      yield* staged
      probe.slowMs = 300
      yield* HealthMonitor.run
      const passes = probe.passes
      const ticks: Array<Fiber.Fiber<void>> = []
      // 3 s of a flapping link: the state changes every 30 ms, a tick is asked for every 500 ms.
      for (let t = 0; t < 3_000; t += 30) {
        yield* (t % 60 === 0 ? k.linkDown(ADDRESS, PORT) : k.linkUp(ADDRESS, PORT))
        if (t % 500 === 0) ticks.push(yield* Effect.forkChild(monitor.tick))
        yield* advance(30)
      }
      yield* advance(1_000)
      for (const f of ticks) yield* Fiber.join(f)
      assert.strictEqual(probe.most, 1, "never two passes at once")
      const ran = probe.passes - passes
      // Every pass takes 300 ms: back to back, at most 4000 / 300 of them; woken, far more than one per 2 s.
      assert.isAtMost(ran, Math.ceil(4_000 / 300) + 1, `${ran} passes`)
      assert.isAtLeast(ran, 8, `${ran} passes`)
    }))
  })
})

/** A Sysfs whose only use here is the state reader, over a map the test changes. */
const fakeSysfs = (states: Map<string, WatchedState>) =>
  Layer.succeed(
    Sysfs,
    Sysfs.of({
      snapshot: Effect.die("unused"),
      snapshotOf: () => Effect.die("unused"),
      deviceChange: () => Effect.die("unused"),
      deviceWatch: Effect.die("unused"),
      blockDevT: () => Effect.die("unused"),
      fabricsAvailable: Effect.succeed(true),
      bootId: Effect.succeed("boot"),
      stateReader: Effect.succeed({
        read: (names) => Effect.sync(() => new Map(names.flatMap((n) => states.has(n) ? [[n, states.get(n)!] as const] : [])))
      })
    })
  )

const seen = (entries: Record<string, ControllerState>) => new Map(Object.entries(entries))

/** Forks `wait(2 s)` and advances test time until it returns; how long it waited. */
const waited = (watch: StateWatch.StateWatch) =>
  Effect.gen(function*() {
    const t0 = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.forkChild(watch.wait("2 seconds"))
    for (let i = 0; i < 5; i++) yield* Effect.yieldNow
    while (fiber.pollUnsafe() === undefined) yield* advance(STEP)
    return (yield* Clock.currentTimeMillis) - t0
  })

describe("StateWatch", () => {
  it.effect("a wake is an edge: a pass and the watch reading a controller differently wake the loop once, not at every poll", () => {
    const states = new Map<string, WatchedState>([["nvme0", "connecting"]])
    return Effect.gen(function*() {
      const watch = yield* StateWatch.make
      yield* watch.publish(seen({ nvme0: "live" }))
      yield* Effect.forkScoped(watch.poll("100 millis"))
      assert.strictEqual(yield* waited(watch), 0, "the first poll (at once) disagrees with the pass: wake")
      yield* watch.publish(seen({ nvme0: "live" }))
      assert.strictEqual(yield* waited(watch), 2_000, "no change since: the full interval")
      assert.deepStrictEqual(Object.fromEntries(yield* watch.watched), { nvme0: "connecting" })
    }).pipe(Effect.provide(fakeSysfs(states)))
  })

  it.effect("several changes before the wait coalesce into one wake; controllers a pass let go are not read", () => {
    const states = new Map<string, WatchedState>([["nvme0", "live"], ["nvme1", "live"]])
    return Effect.gen(function*() {
      const watch = yield* StateWatch.make
      yield* watch.publish(seen({ nvme0: "live", nvme1: "live" }))
      yield* Effect.forkScoped(watch.poll("100 millis"))
      yield* advance(150)
      states.set("nvme0", "connecting")
      yield* advance(100)
      states.set("nvme1", "gone")
      yield* advance(100)
      assert.strictEqual(yield* waited(watch), 0, "already woken")
      assert.strictEqual(yield* waited(watch), 2_000, "one wake for both")
      yield* watch.publish(seen({ nvme0: "connecting" }))
      states.set("nvme1", "live")
      assert.strictEqual(yield* waited(watch), 2_000, "nvme1 is no longer watched")
      assert.deepStrictEqual(Object.fromEntries(yield* watch.watched), { nvme0: "connecting" })
    }).pipe(Effect.provide(fakeSysfs(states)))
  })
})

describe("StateWatch.loop and the node's RPCs", () => {
  /** Runs the loop with a pass that notes its test time and `busy` read from `rpc`; the watch polls nvme0 every 100 ms. */
  const running = (rpc: { inFlight: boolean }) =>
    Effect.gen(function*() {
      const watch = yield* StateWatch.make
      yield* watch.publish(seen({ nvme0: "live" }))
      const passes: Array<number> = []
      const pass = Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void passes.push(t)))
      yield* Effect.forkScoped(StateWatch.loop(watch, pass, testSettings(), Effect.sync(() => rpc.inFlight)))
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      return passes
    })

  it.effect("idle, a pass every 2 s; an RPC in flight at a periodic pass's time: the pass waits for it and 500 ms of quiet after it", () => {
    const states = new Map<string, WatchedState>([["nvme0", "live"]])
    const rpc = { inFlight: false }
    return Effect.gen(function*() {
      const passes = yield* running(rpc)
      yield* advance(4_000)
      assert.deepStrictEqual(passes, [0, 2_000, 4_000])
      yield* advance(1_900)
      rpc.inFlight = true // a NodeStageVolume from 5,900 to 6,700 ms
      yield* advance(800)
      assert.deepStrictEqual(passes, [0, 2_000, 4_000], "no pass while it runs")
      rpc.inFlight = false
      yield* advance(300)
      rpc.inFlight = true // and the NodePublishVolume its client sends 300 ms after it, to 7,300 ms
      yield* advance(300)
      rpc.inFlight = false
      yield* advance(400)
      assert.deepStrictEqual(passes, [0, 2_000, 4_000], "not in the gap between the two, nor right after the second")
      yield* advance(200)
      assert.strictEqual(passes.length, 4)
      assert.isAtLeast(passes[3]!, 7_300 + Duration.toMillis(StateWatch.QUIET_FOR), "after both RPCs and 500 ms of quiet")
      assert.isAtMost(passes[3]!, 7_300 + Duration.toMillis(StateWatch.QUIET_FOR) + 50)
    }).pipe(Effect.provide(fakeSysfs(states)))
  })

  it.effect("RPCs without end delay a periodic pass by one interval at most; a controller's change runs a pass at once all the same", () => {
    const states = new Map<string, WatchedState>([["nvme0", "live"]])
    const rpc = { inFlight: false }
    return Effect.gen(function*() {
      const passes = yield* running(rpc)
      rpc.inFlight = true
      yield* advance(4_500)
      assert.strictEqual(passes.length, 2)
      assert.isAtLeast(passes[1]!, 4_000, "the periodic pass due at 2 s waited")
      assert.isAtMost(passes[1]!, 4_100, "one more interval at most")
      states.set("nvme0", "connecting")
      yield* advance(200)
      assert.strictEqual(passes.length, 3, "the change is seen by the next poll and its pass does not wait")
      assert.isAtMost(passes[2]! - 4_500, 200)
    }).pipe(Effect.provide(fakeSysfs(states)))
  })
})

describe("--state-watch-interval", () => {
  const parse = (value: string) => {
    const r = parseInterval(value, "--state-watch-interval")
    return Result.isSuccess(r) ? Duration.toMillis(r.success) : r.failure.message
  }
  it("a duration of 10 ms or more, or 0 (off); the default as --help prints it parses back", () => {
    assert.strictEqual(parse(Duration.format(DEFAULTS.stateWatchInterval)), 100)
    assert.deepStrictEqual(["250ms", "1s", "0", "0ms", "0s"].map(parse), [250, 1000, 0, 0, 0])
  })
  it("the start-up log line says both intervals, or that the watch is off", () => {
    assert.strictEqual(StateWatch.describe(testSettings()), "2s (state files every 100ms)")
    assert.strictEqual(StateWatch.describe(testSettings({ stateWatchInterval: Duration.zero })), "2s (state file watch off)")
  })
  it("anything else names the flag and the rule", () => {
    assert.strictEqual(parse("5ms"), "--state-watch-interval: must be 0 (off) or at least 10ms (got '5ms')")
    assert.strictEqual(parse("fast"), "--state-watch-interval: must be a duration like 500ms, 2s, 5m or 1h (got 'fast')")
    assert.strictEqual(parse("-1s"), "--state-watch-interval: must be a duration like 500ms, 2s, 5m or 1h (got '-1s')")
  })
})

describe("StateWatch.reusable", () => {
  const controller = (name: string, state: ControllerState) => ({
    name, state, subsysnqn: nqnOf(1), transport: "tcp", traddr: ADDRESS, trsvcid: String(PORT), ctrlLossTmo: 60, subsystem: "nvme-subsys0"
  })
  const last: StateWatch.FullReading = { snapshot: { controllers: [controller("nvme0", "live")], namespaces: [] }, version: "3", at: 1_000 }
  const now = { version: "3", at: 3_000, lastRead: 2_900, watched: new Map<string, WatchedState>([["nvme0", "live"]]) }

  it("goes on the last snapshot only while the devices, the watched states and its age all allow it", () => {
    assert.isTrue(StateWatch.reusable(last, now))
    assert.isFalse(StateWatch.reusable(undefined, now), "no snapshot yet")
    assert.isFalse(StateWatch.reusable(last, { ...now, version: "4" }), "a device node came or went")
    assert.isFalse(StateWatch.reusable(last, { ...now, version: undefined }), "the device watch failed")
    assert.isFalse(StateWatch.reusable({ ...last, version: undefined }, now), "taken while the device watch was failing")
    assert.isFalse(StateWatch.reusable(last, { ...now, lastRead: undefined }), "the watch has not read yet")
    assert.isFalse(StateWatch.reusable(last, { ...now, lastRead: 900 }), "the watch last read before the snapshot")
    assert.isFalse(StateWatch.reusable(last, { ...now, watched: new Map([["nvme0", "connecting"]]) }), "a watched state changed")
    assert.isFalse(StateWatch.reusable(last, { ...now, watched: new Map([["nvme0", "gone"]]) }), "a watched controller went")
    assert.isFalse(StateWatch.reusable(last, { ...now, watched: new Map([["nvme1", "live"]]) }), "a watched controller the snapshot does not show")
    assert.isFalse(StateWatch.reusable(last, { ...now, at: last.at + StateWatch.FULL_SNAPSHOT_EVERY_MS }), "too old")
    assert.isTrue(StateWatch.reusable(last, { ...now, at: last.at + StateWatch.FULL_SNAPSHOT_EVERY_MS - 1 }))
  })
})
