/**
 * EventRecorder on TestClock against the in-memory API: client-go's aggregation, dedup and spam
 * filter, and what we do better (coalescing, retries honouring Retry-After, bounded queue and
 * backlog, isolation of a bad event, bounded drain).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Metric, Scope } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { COMBINED_PREFIX } from "../../src/kube/EventCorrelator.ts"
import { Target } from "../../src/kube/EventLanes.ts"
import { EventsDropped, EventsPosted } from "../../src/kube/EventRecorder.ts"
import { Fault, KubeFake } from "../../src/kube/KubeFake.ts"
import { kubeError } from "../../src/kube/KubeClient.ts"
import { Result } from "effect"
import { advance, advanceBy, collectLogs, node, on, pvc, recorderIn, recorderOn, settle } from "./helpers.ts"

const MIN = 60_000

describe("EventRecorder: what gets posted", () => {
  it.effect("a PVC event carries the full involvedObject, source and reporting fields", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      yield* advance(5_000)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "boom" })
      yield* settle
      const [e] = fake.eventList()
      assert.deepStrictEqual(e!.involvedObject, pvc("data"))
      assert.strictEqual(e!.namespace, "team-a")
      assert.strictEqual(e!.type, "Warning")
      assert.strictEqual(e!.reason, "MountFailure")
      assert.strictEqual(e!.message, "boom")
      assert.strictEqual(e!.count, 1)
      assert.strictEqual(e!.firstTimestamp, 5_000)
      assert.deepStrictEqual(e!.source, { component: "rds-csi-node", host: "node-1" })
      assert.strictEqual(e!.reportingComponent, "rds-csi-node")
      assert.strictEqual(e!.reportingInstance, "node-1")
      assert.match(e!.name, /^data\.[0-9a-f]+$/)
    }))

  it.effect("a Node event lives in namespace default with an empty involvedObject namespace", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      yield* rec.record({ target: on(node()), type: "Warning", reason: "OrphanDetected", message: "orphan" })
      yield* settle
      const [e] = fake.eventList()
      assert.strictEqual(e!.namespace, "default")
      assert.strictEqual(e!.involvedObject.namespace, "")
      assert.strictEqual(e!.involvedObject.kind, "Node")
      assert.strictEqual(e!.involvedObject.uid, "node-1-uid")
    }))

  it.effect("messages over 1024 bytes are truncated on a character boundary", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "é".repeat(2000) })
      yield* settle
      const m = fake.eventList()[0]!.message
      assert.isAtMost(Buffer.byteLength(m, "utf8"), 1024)
      assert.isTrue(m.endsWith("...[truncated]"))
      assert.isFalse(m.includes("\uFFFD"))
    }))
})

describe("EventRecorder: dedup (client-go eventObserve)", () => {
  it.effect("ten repeats a minute apart: one event, count 10, one CREATE then PATCHes", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      for (let i = 0; i < 10; i++) {
        yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: "down" })
        yield* advance(MIN)
      }
      const evs = fake.eventList()
      assert.strictEqual(evs.length, 1)
      assert.strictEqual(evs[0]!.count, 10)
      assert.strictEqual(evs[0]!.firstTimestamp, 0)
      assert.strictEqual(evs[0]!.lastTimestamp, 9 * MIN)
      assert.strictEqual(fake.count("createEvent"), 1)
      assert.strictEqual(fake.count("patchEvent"), 9)
      assert.strictEqual((yield* rec.stats).posted, 10)
    }))

  it.effect("a burst of ten repeats is one write; repeats after the first write are folded into one PATCH", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      const post = rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: "down" })
      for (let i = 0; i < 10; i++) yield* post
      yield* settle
      assert.deepStrictEqual(fake.eventList().map((e) => e.count), [10])
      assert.strictEqual(fake.requests.length, 1)
      for (let i = 0; i < 10; i++) {
        yield* post
        yield* advance(50)
      }
      yield* advance(1_000)
      assert.deepStrictEqual(fake.eventList().map((e) => e.count), [20])
      assert.deepStrictEqual(fake.requests.map((r) => r.op), ["createEvent", "patchEvent"])
    }))

  it.effect("PATCH 404 (the server expired the event) → CREATE with the count so far", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      const post = rec.record({ target: on(pvc("data")), type: "Normal", reason: "StaleMountDetected", message: "stale" })
      yield* post
      yield* advance(MIN)
      yield* post
      yield* advance(MIN)
      fake.events.clear() // event TTL passed on the server
      yield* post
      yield* advance(MIN)
      const evs = fake.eventList()
      assert.strictEqual(evs.length, 1)
      assert.strictEqual(evs[0]!.count, 3)
      assert.deepStrictEqual(fake.requests.filter((r) => r.op !== "canI").map((r) => r.op), ["createEvent", "patchEvent", "patchEvent", "createEvent"])
    }))

  it.effect("different messages are different events", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: "a" })
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: "b" })
      yield* rec.record({ target: on(pvc("other")), type: "Warning", reason: "ConnectionFailure", message: "a" })
      yield* settle
      assert.strictEqual(fake.eventList().length, 3)
    }))
})

describe("EventRecorder: aggregation (client-go EventAggregator)", () => {
  it.effect("the 10th similar event within 10 minutes is combined, and later ones count on it", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      for (let i = 1; i <= 12; i++) {
        yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: `attempt ${i} failed` })
        yield* advance(30_000)
      }
      const evs = fake.eventList()
      const combined = evs.filter((e) => e.message.startsWith(COMBINED_PREFIX))
      assert.strictEqual(evs.length, 10)
      assert.strictEqual(combined.length, 1)
      assert.strictEqual(combined[0]!.count, 3)
      assert.strictEqual(combined[0]!.message, `${COMBINED_PREFIX}attempt 12 failed`)
    }))

  it.effect("similar events more than 10 minutes apart are not combined", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      for (let i = 1; i <= 12; i++) {
        yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: `attempt ${i}` })
        yield* advance(11 * MIN)
      }
      assert.strictEqual(fake.eventList().filter((e) => e.message.startsWith(COMBINED_PREFIX)).length, 0)
      assert.strictEqual(fake.eventList().length, 12)
    }))
})

describe("EventRecorder: spam filter (per object and type, burst 25, one per 5 min)", () => {
  it.effect("the 26th distinct event on one object is dropped; another object is not affected", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake, { qps: 1000, burst: 1000 })
      for (let i = 0; i < 30; i++) yield* rec.record({ target: on(pvc("noisy")), type: "Warning", reason: `R${i}`, message: "x" })
      yield* rec.record({ target: on(pvc("quiet")), type: "Warning", reason: "R0", message: "x" })
      yield* rec.record({ target: on(pvc("noisy")), type: "Normal", reason: "N", message: "other type, other bucket" })
      yield* settle
      assert.strictEqual(fake.eventList().filter((e) => e.involvedObject.name === "noisy" && e.type === "Warning").length, 25)
      assert.strictEqual(fake.eventList().filter((e) => e.involvedObject.name === "quiet").length, 1)
      assert.strictEqual(fake.eventList().filter((e) => e.type === "Normal").length, 1)
      assert.strictEqual((yield* rec.stats).dropped.spam_filtered, 5)
      yield* advance(5 * MIN)
      yield* rec.record({ target: on(pvc("noisy")), type: "Warning", reason: "later", message: "x" })
      yield* settle
      assert.strictEqual(fake.eventList().filter((e) => e.involvedObject.name === "noisy" && e.type === "Warning").length, 26)
    }))

  it.effect("a repeat over the limit waits for a token instead of being lost: the count ends right", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      // 25 writes use the bucket up: one event repeated slowly enough that every repeat is its own PATCH.
      for (let i = 0; i < 25; i++) {
        yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: "down" })
        yield* advance(2_000)
      }
      assert.strictEqual(fake.eventList()[0]!.count, 25)
      for (let i = 0; i < 5; i++) yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "ConnectionFailure", message: "down" })
      yield* advance(2_000)
      assert.strictEqual(fake.eventList()[0]!.count, 25) // over the limit: not yet
      yield* advanceBy(5 * MIN, 10_000)
      assert.strictEqual(fake.eventList()[0]!.count, 30) // one PATCH when a token came back
      assert.strictEqual((yield* rec.stats).dropped.spam_filtered, 0)
    }))
})

describe("EventRecorder: sending", () => {
  it.effect("5xx and transport errors are retried with exponential backoff and jitter", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      let n = 0
      fake.fault = (r) => (r.op === "createEvent" && n++ < 3 ? (n === 2 ? Fault.fail("Transport") : Fault.fail("ServerError", 503)) : undefined)
      const rec = yield* recorderOn(fake)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* advanceBy(10_000, 50)
      const at = fake.requests.filter((r) => r.op === "createEvent").map((r) => r.at)
      assert.strictEqual(at.length, 4)
      const gaps = at.slice(1).map((t, i) => t - at[i]!)
      // base 500 ms, doubling, equal jitter: [b/2, b]
      assert.isTrue(gaps[0]! >= 250 && gaps[0]! <= 550, `gap 1 ${gaps[0]}`)
      assert.isTrue(gaps[1]! >= 500 && gaps[1]! <= 1050, `gap 2 ${gaps[1]}`)
      assert.isTrue(gaps[2]! >= 1000 && gaps[2]! <= 2050, `gap 3 ${gaps[2]}`)
      assert.strictEqual(fake.eventList().length, 1)
      assert.strictEqual((yield* rec.stats).posted, 1)
    }))

  it.effect("429 waits at least Retry-After, and so does every other event", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      let n = 0
      fake.fault = (r) => (r.op === "createEvent" && n++ === 0 ? Fault.fail("TooManyRequests", 429, Duration.seconds(7)) : undefined)
      const rec = yield* recorderOn(fake)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* advance(1_000)
      yield* rec.record({ target: on(pvc("other")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* advanceBy(5_900, 100)
      assert.strictEqual(fake.eventList().length, 0)
      yield* advanceBy(200, 100)
      assert.strictEqual(fake.eventList().length, 2)
    }))

  it.effect("a hung request times out and is retried", () =>
    Effect.gen(function*() {
      const fake = new KubeFake(Duration.seconds(10))
      let n = 0
      fake.fault = (r) => (r.op === "createEvent" && n++ === 0 ? Fault.hang : undefined)
      const rec = yield* recorderOn(fake)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* advanceBy(12_000, 500)
      assert.strictEqual(fake.eventList().length, 1)
      assert.strictEqual(fake.count("createEvent"), 2)
    }))

  it.effect("403 is not retried: dropped as rejected and logged once", () =>
    Effect.gen(function*() {
      const logs = collectLogs()
      yield* Effect.gen(function*() {
        const fake = new KubeFake()
        fake.fault = (r) => (r.op === "createEvent" ? Fault.fail("Forbidden", 403) : undefined)
        const rec = yield* recorderOn(fake)
        for (let i = 0; i < 3; i++) yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: `R${i}`, message: "m" })
        yield* advanceBy(5_000, 500)
        assert.strictEqual(fake.count("createEvent"), 3)
        assert.strictEqual((yield* rec.stats).dropped.rejected, 3)
      }).pipe(Effect.provide(logs.layer))
      assert.strictEqual(logs.lines.filter((l) => l.startsWith("Warn") && l.includes("rejected")).length, 1)
    }))

  it.effect("one event failing forever does not hold up the others; it is dropped after its tries", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = (r) => (r.target.includes("/bad.") ? Fault.fail("ServerError", 500) : undefined)
      const rec = yield* recorderOn(fake, { attempts: 4 })
      yield* rec.record({ target: on(pvc("bad")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* rec.record({ target: on(pvc("good")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* settle
      assert.deepStrictEqual(fake.eventList().map((e) => e.involvedObject.name), ["good"])
      yield* advanceBy(20_000, 250)
      assert.strictEqual(fake.requests.filter((r) => r.target.includes("/bad.")).length, 4)
      assert.strictEqual((yield* rec.stats).dropped.retries_exhausted, 1)
    }))

  it.effect("bounded concurrency: at most `concurrency` requests in flight", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = () => Fault.delay(1_000)
      const rec = yield* recorderOn(fake, { concurrency: 2 })
      for (let i = 0; i < 6; i++) yield* rec.record({ target: on(pvc(`v${i}`)), type: "Warning", reason: "MountFailure", message: "m" })
      yield* settle
      assert.strictEqual(fake.requests.length, 2)
      yield* advance(1_000)
      assert.strictEqual(fake.requests.length, 4)
      yield* advanceBy(2_000, 500)
      assert.strictEqual(fake.eventList().length, 6)
    }))

  it.effect("global rate limit: a burst, then qps", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake, { qps: 5, burst: 10 })
      for (let i = 0; i < 20; i++) yield* rec.record({ target: on(pvc(`v${i}`)), type: "Warning", reason: "MountFailure", message: "m" })
      yield* settle
      assert.strictEqual(fake.requests.length, 10)
      yield* advanceBy(1_000, 100)
      assert.strictEqual(fake.requests.length, 15)
      yield* advanceBy(1_000, 100)
      assert.strictEqual(fake.requests.length, 20)
    }))
})

describe("EventRecorder: the caller", () => {
  it.effect("never fails or waits, even with the API server hung; a full queue drops and counts", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = () => Fault.hang
      const rec = yield* recorderOn(fake, { queueCapacity: 5, maxWriters: 3 })
      for (let i = 0; i < 20; i++) yield* rec.record({ target: on(pvc(`v${i}`)), type: "Warning", reason: "MountFailure", message: "m" })
      let s = yield* rec.stats
      assert.strictEqual(s.dropped.queue_full, 15)
      yield* settle
      s = yield* rec.stats
      assert.strictEqual(s.writers, 3)
      assert.strictEqual(s.dropped.backlog_full, 2)
      assert.strictEqual(s.recorded, 20)
    }))

  it.effect("lookups run off the caller's path, in a lane per object: a slow one does not delay another", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake)
      const slow = Target.lookup("volume/slow", Effect.sleep(Duration.seconds(20)).pipe(Effect.as(Result.succeed(pvc("slow")))))
      const fast = Target.lookup("volume/fast", Effect.succeed(Result.succeed(pvc("fast"))))
      yield* rec.record({ target: slow, type: "Warning", reason: "MountFailure", message: "m" })
      yield* rec.record({ target: slow, type: "Warning", reason: "MountFailure", message: "m" })
      yield* rec.record({ target: fast, type: "Warning", reason: "MountFailure", message: "m" })
      yield* settle
      assert.deepStrictEqual(fake.eventList().map((e) => e.involvedObject.name), ["fast"])
      yield* advanceBy(21_000, 1_000)
      const slowEvent = fake.eventList().find((e) => e.involvedObject.name === "slow")
      assert.strictEqual(slowEvent?.count, 2)
    }))

  it.effect("no object to post on: nothing posted, one log line", () =>
    Effect.gen(function*() {
      const logs = collectLogs()
      yield* Effect.gen(function*() {
        const fake = new KubeFake()
        const rec = yield* recorderOn(fake)
        const gone = Target.lookup("volume/gone", Effect.succeed(Result.fail("PVC team-a/gone does not exist")))
        for (let i = 0; i < 5; i++) {
          yield* rec.record({ target: gone, type: "Warning", reason: "MountFailure", message: "m" })
          yield* advance(1_000)
        }
        assert.strictEqual(fake.requests.length, 0)
        assert.strictEqual((yield* rec.stats).dropped.no_object, 5)
      }).pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(logs.lines.filter((l) => l.startsWith("Warn")), ["Warn: event not posted: nothing to post it on PVC team-a/gone does not exist"])
    }))

  it.effect("a lookup that fails transiently is retried; one that keeps failing is dropped after the budget", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const rec = yield* recorderOn(fake, { resolveBudget: Duration.seconds(10) })
      let n = 0
      const flaky = Target.lookup("volume/flaky", Effect.suspend(() =>
        n++ < 2 ? Effect.fail(kubeError("Transport", "getPvc", "reset")) : Effect.succeed(Result.succeed(pvc("flaky")))))
      const down = Target.lookup("volume/down", Effect.fail(kubeError("Transport", "getPvc", "refused")))
      yield* rec.record({ target: flaky, type: "Warning", reason: "MountFailure", message: "m" })
      yield* rec.record({ target: down, type: "Warning", reason: "MountFailure", message: "m" })
      yield* advanceBy(15_000, 250)
      assert.deepStrictEqual(fake.eventList().map((e) => e.involvedObject.name), ["flaky"])
      assert.strictEqual((yield* rec.stats).dropped.unresolved, 1)
    }))
})

describe("EventRecorder: drain on shutdown", () => {
  it.effect("closing the scope flushes a coalesced repeat at once", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      const scope = yield* Scope.make()
      const rec = yield* recorderIn(fake, scope)
      const post = rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* post
      yield* settle
      yield* post
      yield* post
      yield* settle
      assert.strictEqual(fake.eventList()[0]!.count, 1) // the repeats wait for the coalescing window
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(fake.eventList()[0]!.count, 3)
      yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "late" })
      assert.strictEqual((yield* rec.stats).dropped.shutdown, 1)
    }))

  it.effect("with the API server hung the drain gives up after drainTimeout and counts the loss", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = () => Fault.hang
      const scope = yield* Scope.make()
      const rec = yield* recorderIn(fake, scope, { drainTimeout: Duration.seconds(3) })
      for (let i = 0; i < 4; i++) yield* rec.record({ target: on(pvc(`v${i}`)), type: "Warning", reason: "MountFailure", message: "m" })
      yield* settle
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* advance(2_900)
      assert.isUndefined(closing.pollUnsafe())
      yield* advance(200)
      yield* Fiber.join(closing)
      assert.strictEqual((yield* rec.stats).dropped.shutdown, 4)
    }))
})

describe("EventRecorder: metrics", () => {
  it.effect("rds_csi_events_posted_total{reason} counts occurrences, rds_csi_events_dropped_total{why} losses", () =>
    Effect.gen(function*() {
      const fake = new KubeFake()
      fake.fault = (r) => (r.target.includes("/bad.") ? Fault.fail("Invalid", 422) : undefined)
      const rec = yield* recorderOn(fake)
      for (let i = 0; i < 3; i++) yield* rec.record({ target: on(pvc("data")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* rec.record({ target: on(pvc("bad")), type: "Warning", reason: "MountFailure", message: "m" })
      yield* advance(1_000)
      const posted = yield* Metric.value(Metric.withAttributes(EventsPosted, { reason: "MountFailure" }))
      const rejected = yield* Metric.value(Metric.withAttributes(EventsDropped, { why: "rejected" }))
      assert.strictEqual(posted.count, 3)
      assert.strictEqual(rejected.count, 1)
      const text = yield* PrometheusMetrics.format()
      assert.match(text, /rds_csi_events_posted_total\{reason="MountFailure"\} 3/)
      assert.match(text, /rds_csi_events_dropped_total\{why="rejected"\} 1/)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})
