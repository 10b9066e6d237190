/**
 * bench/events: N objects × M repeats through the EventRecorder against a real kube-apiserver
 * (the test cluster, started here and stopped at the end), as the node ServiceAccount.
 *
 * For each scenario it prints: occurrences, API writes we sent, the writes client-go's
 * tools/record rules would send for the same occurrences at the same times (EventCorrelator
 * run per occurrence, spam token per occurrence, as client-go does), the count the server ends
 * up showing vs the true count, and the caller-side cost per post (median). Plus the time from
 * a post to the server's acknowledgement of its event (median of single posts).
 *
 *   npx node bench/events/run.ts        (about a minute; writes bench/out/events.json)
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { Duration, Effect, Layer, Logger, ManagedRuntime } from "effect"
import { CLIENT_GO_DEFAULTS, EventCorrelator, type Occurrence } from "../../src/kube/EventCorrelator.ts"
import { EventPoster } from "../../src/kube/EventPoster.ts"
import { Target } from "../../src/kube/EventLanes.ts"
import { DEFAULT_RECORDER_OPTIONS, make as makeRecorder } from "../../src/kube/EventRecorder.ts"
import type { ObjectRef } from "../../src/kube/KubeClient.ts"
import * as KubeClientLive from "../../src/kube/KubeClientLive.ts"
import { startCluster } from "../../test/cluster/cluster.ts"

const NS = "bench-events"
const NODE = "bench-node"

interface Scenario {
  readonly name: string
  readonly objects: number
  readonly repeats: number
  /** Pause between rounds (one occurrence per object per round). */
  readonly roundGapMs: number
  readonly message: (round: number) => string
}

const SCENARIOS: ReadonlyArray<Scenario> = [
  { name: "storm: identical repeats, back to back", objects: 20, repeats: 100, roundGapMs: 0, message: () => "Connection to 10.0.0.5:4420 failed: connection refused" },
  { name: "flapping: repeats 50 ms apart", objects: 10, repeats: 40, roundGapMs: 50, message: () => "Connection to 10.0.0.5:4420 failed: connection refused" },
  { name: "similar: a new message each time", objects: 10, repeats: 30, roundGapMs: 0, message: (i) => `Connection to 10.0.0.5:4420 failed: attempt ${i}` },
  { name: "slow: repeats 1.2 s apart", objects: 5, repeats: 5, roundGapMs: 1_200, message: () => "Stale mount detected - old device: /dev/nvme0n1, new device: /dev/nvme0n2" }
]

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}

/** client-go's rules, one request per occurrence that passes the spam filter; and the count the server would show. */
const clientGo = (occurrences: ReadonlyArray<Occurrence>) => {
  const c = new EventCorrelator({ ...CLIENT_GO_DEFAULTS, component: "rds-csi-node", host: NODE, reportingInstance: NODE })
  let requests = 0
  const shown = new Map<string, number>()
  for (const o of occurrences) {
    const slot = c.observe(o)
    if (!c.admit(slot, o.at)) continue
    requests++
    shown.set(slot.event.name, slot.event.count)
  }
  return { requests, shownTotal: [...shown.values()].reduce((a, b) => a + b, 0) }
}

const main = async () => {
  const { cluster, stop } = await startCluster()
  const kubectl = (args: ReadonlyArray<string>, input?: string) =>
    execFileSync("kubectl", ["--kubeconfig", cluster.adminKubeconfig, ...args], { encoding: "utf8", input, maxBuffer: 64 << 20 })
  try {
    const maxObjects = Math.max(...SCENARIOS.map((s) => s.objects))
    kubectl(["apply", "-f", "-"], [
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}`,
      ...Array.from({ length: maxObjects }, (_, i) =>
        `apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data-${i}, namespace: ${NS}}\nspec: {accessModes: [ReadWriteOnce], storageClassName: "", resources: {requests: {storage: 1Gi}}}`)
    ].join("\n---\n"))
    const uids = (JSON.parse(kubectl(["get", "pvc", "-n", NS, "-o", "json"])) as { items: Array<{ metadata: { name: string; uid: string } }> }).items
    const refs: Array<ObjectRef> = Array.from({ length: maxObjects }, (_, i) => ({
      apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: NS, name: `data-${i}`, uid: uids.find((u) => u.metadata.name === `data-${i}`)!.metadata.uid
    }))
    const client = KubeClientLive.layerFromConnection({ server: cluster.server, caFile: cluster.caFile, token: cluster.nodeToken })
    const quiet = Logger.layer([]) as Layer.Layer<never>

    const results: Array<Record<string, unknown>> = []
    const costs: Array<number> = []
    for (const [k, sc] of SCENARIOS.entries()) {
      const reason = `Bench${k}`
      const runtime = ManagedRuntime.make(Layer.mergeAll(client, quiet))
      const occurrences: Array<Occurrence> = []
      const stats = await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
        const rec = yield* makeRecorder({ ...DEFAULT_RECORDER_OPTIONS, host: NODE, reportingInstance: NODE })
        for (let round = 0; round < sc.repeats; round++) {
          for (let o = 0; o < sc.objects; o++) {
            const message = sc.message(round)
            const t0 = performance.now()
            yield* rec.record({ target: Target.object(refs[o]!), type: "Warning", reason, message })
            costs.push(performance.now() - t0)
            occurrences.push({ ref: refs[o]!, type: "Warning", reason, message, at: Date.now() })
          }
          if (sc.roundGapMs > 0) yield* Effect.sleep(Duration.millis(sc.roundGapMs))
        }
        yield* rec.awaitIdle
        return yield* rec.stats
      })))
      await runtime.dispose()
      const onServer = (JSON.parse(kubectl(["get", "events", "-n", NS, "--field-selector", `reason=${reason}`, "-o", "json"])) as {
        items: Array<{ count: number }>
      }).items
      const cg = clientGo(occurrences)
      const writes = stats.requests.create + stats.requests.patch
      results.push({
        scenario: sc.name,
        occurrences: occurrences.length,
        writes,
        clientGoWrites: cg.requests,
        occurrencesPerWrite: +(occurrences.length / writes).toFixed(1),
        clientGoOccurrencesPerWrite: +(occurrences.length / cg.requests).toFixed(1),
        events: onServer.length,
        countOnServer: onServer.reduce((a, e) => a + e.count, 0),
        clientGoCountShown: cg.shownTotal,
        dropped: Object.entries(stats.dropped).filter(([, n]) => n > 0).map(([k, n]) => `${k}:${n}`).join(" ") || 0
      })
    }

    // Caller-side cost with events disabled, for scale.
    const noop = ManagedRuntime.make(EventPoster.layerNoop(NODE).pipe(Layer.provide(quiet)))
    const noopCosts = await noop.runPromise(Effect.gen(function*() {
      const p = yield* EventPoster
      const out: Array<number> = []
      for (let i = 0; i < 2_000; i++) {
        const t0 = performance.now()
        yield* p.postConnectionFailure(`vol-${i % 20}`, "10.0.0.5:4420", "refused")
        out.push(performance.now() - t0)
      }
      return out
    }))
    await noop.dispose()

    // Post → the server has the event: single posts, one at a time.
    const latencyRuntime = ManagedRuntime.make(Layer.mergeAll(client, quiet))
    const latencies = await latencyRuntime.runPromise(Effect.scoped(Effect.gen(function*() {
      const rec = yield* makeRecorder({ ...DEFAULT_RECORDER_OPTIONS, host: NODE, reportingInstance: NODE })
      const out: Array<number> = []
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now()
        yield* rec.record({ target: Target.object(refs[i % refs.length]!), type: "Normal", reason: "BenchLatency", message: `sample ${i}` })
        yield* rec.awaitIdle
        out.push(performance.now() - t0)
      }
      return out
    })))
    await latencyRuntime.dispose()

    console.log("\nbench/events: recorder vs client-go's tools/record rules, real kube-apiserver v1.20.2 on loopback\n")
    console.table(results)
    const summary = {
      callerCostMedianMicros: +(median(costs) * 1000).toFixed(2),
      callerCostP99Micros: +([...costs].sort((a, b) => a - b)[Math.floor(costs.length * 0.99)]! * 1000).toFixed(2),
      eventsDisabledCostMedianMicros: +(median(noopCosts) * 1000).toFixed(2),
      postToServerMedianMs: +median(latencies).toFixed(1)
    }
    console.log(summary)
    mkdirSync("bench/out", { recursive: true })
    writeFileSync("bench/out/events.json", JSON.stringify({ results, summary }, null, 2))
  } finally {
    await stop()
  }
}

await main()
