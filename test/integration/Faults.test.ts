/**
 * The recorder against a misbehaving API server: a FaultProxy in front of the real one injects
 * 429 (Retry-After), 500/503, connection resets, 403 and hangs. Nothing within the retry budget
 * is lost, a refusal is dropped and logged once, and a hung server never delays the caller and
 * never grows memory without bound.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { EventRecorder } from "../../src/kube/EventRecorder.ts"
import { FaultProxy } from "../cluster/FaultProxy.ts"
import { ensureNamespace, eventsFor, kube, logSink, nodeFixture, pluginRuntime, unique, volumeFixture } from "./support.ts"

const NS = "it-faults"
const FORBIDDEN_NS = "it-faults-forbidden"
const EVENTS_POST = /\/api\/v1\/namespaces\/it-faults\/events(\?|$)/
const EVENTS_PATCH = /\/api\/v1\/namespaces\/it-faults\/events\/[^/?]+/
const fastRetries = { backoffBase: Duration.millis(100), backoffMax: Duration.seconds(2), attempts: 8 }

let proxy: FaultProxy
beforeAll(async () => {
  ensureNamespace(NS)
  ensureNamespace(FORBIDDEN_NS)
  proxy = await FaultProxy.start(kube.server, kube.pkiDir)
})
afterAll(() => proxy.close())

const within = <A>(runtime: ManagedRuntime.ManagedRuntime<EventPoster | EventRecorder, never>, f: (p: EventPoster["Service"], r: EventRecorder["Service"]) => Effect.Effect<A>) =>
  runtime.runPromise(Effect.gen(function*() {
    return yield* f(yield* EventPoster, yield* EventRecorder)
  }))

// A real collection before each heap reading, so the figure is what the recorder keeps, not garbage.
setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

describe("through the fault proxy", () => {
  it("429 with Retry-After, 500, 503 and resets within the retry budget: no event lost", async () => {
    const nodeName = unique("node")
    nodeFixture(nodeName)
    const volumeId = unique("vol")
    const pvc = unique("data")
    volumeFixture(NS, { pvName: volumeId, pvcName: pvc, volumeId, withUid: true })
    const logs = logSink()
    const runtime = pluginRuntime({ server: proxy.url, nodeName, recorder: fastRetries, logs: logs.layer })
    try {
      proxy.add({ method: "POST", path: EVENTS_POST, action: { kind: "status", status: 429, retryAfter: 1 }, times: 2 })
      proxy.add({ method: "POST", path: EVENTS_POST, action: { kind: "status", status: 503 }, times: 1 })
      proxy.add({ method: "POST", path: EVENTS_POST, action: { kind: "reset" }, times: 1 })
      proxy.add({ method: "POST", path: EVENTS_POST, action: { kind: "status", status: 500 }, times: 1 })
      proxy.add({ method: "PATCH", path: EVENTS_PATCH, action: { kind: "status", status: 503 }, times: 2 })
      const stats = await within(runtime, (p, r) =>
        Effect.gen(function*() {
          yield* p.postMountFailure(volumeId, "mount failed")
          yield* p.postConnectionFailure(volumeId, "10.0.0.5:4420", "refused")
          yield* p.postStaleMountDetected(volumeId, "/dev/nvme0n1", "/dev/nvme0n2")
          yield* r.awaitIdle
          for (let i = 0; i < 9; i++) yield* p.postConnectionFailure(volumeId, "10.0.0.5:4420", "refused")
          yield* r.awaitIdle
          return yield* r.stats
        })
      )
      expect(Object.values(stats.dropped).reduce((a, b) => a + b, 0)).toBe(0)
      const evs = eventsFor("PersistentVolumeClaim", pvc, NS)
      expect(evs.map((e) => [e.reason, e.count]).sort()).toEqual([["ConnectionFailure", 10], ["MountFailure", 1], ["StaleMountDetected", 1]])
      expect(proxy.count(/^POST .*\/it-faults\/events/, /status:429/)).toBe(2)
      expect(proxy.count(/^POST .*\/it-faults\/events/, /status:50[03]/)).toBe(2)
      expect(proxy.count(/^POST .*\/it-faults\/events/, /reset/)).toBe(1)
      expect(proxy.count(/^PATCH .*\/it-faults\/events/, /status:503/)).toBe(2)
      // client-node defaults PATCH to JSON Patch; every one of ours is a strategic merge.
      const patches = proxy.log.filter((r) => r.method === "PATCH")
      expect(patches.length).toBeGreaterThan(0)
      for (const p of patches) expect(p.contentType).toBe("application/strategic-merge-patch+json")
      // Retry-After: 1 was honoured by every writer: after the requests already in flight with the
      // first 429, nothing reached the server for a second.
      const writes = proxy.log.filter((r) => /\/it-faults\/events/.test(r.path))
      const first429 = writes.find((r) => r.outcome === "status:429")!
      const inPause = writes.filter((r) => r.at > first429.at + 100 && r.at < first429.at + 950)
      expect(inPause).toEqual([])
      expect(writes.filter((r) => r.at >= first429.at + 950).length).toBeGreaterThan(0)
    } finally {
      proxy.clear()
      await runtime.dispose()
    }
  })

  it("403: that event is dropped and logged once, the others still get through", async () => {
    const nodeName = unique("node")
    nodeFixture(nodeName)
    const good = unique("vol")
    const bad = unique("vol")
    const goodPvc = unique("data")
    volumeFixture(NS, { pvName: good, pvcName: goodPvc, volumeId: good, withUid: true })
    volumeFixture(FORBIDDEN_NS, { pvName: bad, pvcName: unique("data"), volumeId: bad, withUid: true })
    const logs = logSink()
    const runtime = pluginRuntime({ server: proxy.url, nodeName, recorder: fastRetries, logs: logs.layer })
    try {
      proxy.add({ method: "POST", path: /\/namespaces\/it-faults-forbidden\/events/, action: { kind: "status", status: 403 } })
      const stats = await within(runtime, (p, r) =>
        Effect.gen(function*() {
          yield* p.postMountFailure(bad, "a")
          yield* p.postMountFailure(bad, "b")
          yield* p.postMountFailure(good, "a")
          yield* r.awaitIdle
          return yield* r.stats
        })
      )
      expect(stats.dropped.rejected).toBe(2)
      expect(eventsFor("PersistentVolumeClaim", goodPvc, NS)).toHaveLength(1)
      expect(proxy.count(/it-faults-forbidden\/events/)).toBe(2) // no retries
      expect(logs.lines.filter((l) => l.startsWith("Warn") && l.includes("rejected"))).toHaveLength(1)
    } finally {
      proxy.clear()
      await runtime.dispose()
    }
  })

  it("a hung API server never delays the caller, and 10,000 queued events keep memory bounded", async () => {
    const nodeName = unique("node")
    const posts = 2_000
    const timeEach = (poster: EventPoster["Service"], n: number, volume: (i: number) => string) =>
      Effect.gen(function*() {
        const times: Array<number> = []
        for (let i = 0; i < n; i++) {
          const t0 = performance.now()
          yield* poster.postConnectionFailure(volume(i), "10.0.0.5:4420", "refused")
          times.push(performance.now() - t0)
        }
        return times
      })

    // Baseline: events disabled.
    const noop = ManagedRuntime.make(EventPoster.layerNoop(nodeName).pipe(Layer.provide(logSink().layer)))
    const disabled = await noop.runPromise(Effect.gen(function*() {
      return yield* timeEach(yield* EventPoster, posts, (i) => `vol-${i % 50}`)
    }))
    await noop.dispose()

    proxy.add({ action: { kind: "hang" } }) // every request, lists and watches included
    const runtime = pluginRuntime({
      server: proxy.url,
      nodeName,
      recorder: { ...fastRetries, drainTimeout: Duration.seconds(2) },
      requestTimeout: Duration.seconds(30)
    })
    try {
      const hung = await within(runtime, (p) => timeEach(p, posts, (i) => `vol-${i % 50}`))
      const live = median(hung)
      const base = median(disabled)
      console.log(`enqueue median: ${(live * 1000).toFixed(1)} µs with a hung API server, ${(base * 1000).toFixed(1)} µs with events disabled; p99 ${(hung.sort((a, b) => a - b)[Math.floor(posts * 0.99)]! * 1000).toFixed(1)} µs`)
      // "Never delays": the same order of cost as posting nothing at all, far below any network round trip.
      expect(live).toBeLessThan(Math.max(base * 10, 0.05))
      expect(hung.reduce((a, b) => a + b, 0)).toBeLessThan(1_000)

      gc()
      const heapBefore = process.memoryUsage().heapUsed
      const stats = await within(runtime, (p, r) =>
        Effect.gen(function*() {
          for (let i = 0; i < 10_000; i++) yield* p.postMountFailure(`vol-flood-${i}`, `error ${i}`)
          yield* Effect.sleep(Duration.millis(200))
          return yield* r.stats
        })
      )
      gc()
      const grown = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024
      console.log(`10,000 events against a hung server: queued ${stats.queued}, dropped queue_full ${stats.dropped.queue_full}, heap +${grown.toFixed(1)} MiB`)
      expect(stats.queued).toBeLessThanOrEqual(2 * 1024)
      expect(stats.dropped.queue_full).toBeGreaterThanOrEqual(10_000 + posts - 2 * 1024)
      expect(grown).toBeLessThan(16)
    } finally {
      proxy.clear()
      const t0 = Date.now()
      await runtime.dispose()
      expect(Date.now() - t0).toBeLessThan(5_000) // the drain is bounded
    }
  })
})
