/**
 * EventRecorder: posts core/v1 Events with client-go's tools/record semantics (aggregation,
 * dedup by PATCH, spam filter, LRU caches: see EventCorrelator.ts), all on Effect's Clock, and
 * fixes what client-go gets wrong for a storage driver:
 *
 * - `record` only enqueues into a bounded queue: it never fails, never blocks, never waits on
 *   the API server; a full queue drops and counts.
 * - The object is resolved off the caller's path, once per burst, in a lane per object
 *   (EventLanes.ts): a slow lookup for one volume does not hold up another's events.
 * - Each event has one writer fiber; repeats that arrive while it writes, or within the
 *   coalescing window after, become one PATCH with the latest count (client-go sends one
 *   request per occurrence). The spam filter is charged per write, and a PATCH over the limit
 *   waits for a token instead of being lost, so the count on the server ends up right.
 * - Bounded concurrency, a global rate limit, a per-request timeout (KubeClient), retries with
 *   exponential backoff and jitter for transport errors, timeouts, 429 (at least Retry-After)
 *   and 5xx; client-go gives up on 429/5xx. Other 4xx are dropped and logged once per kind.
 * - Closing the scope drains what is queued, bounded by `drainTimeout`.
 *
 * Counters: `rds_csi_events_posted_total{reason}` (occurrences the server has),
 * `rds_csi_events_dropped_total{why}`, `rds_csi_event_api_requests_total{verb}`.
 *
 * May import: effect, ../Settings.ts, and ./EventCorrelator.ts, ./EventLanes.ts, ./EventSender.ts,
 * ./KubeClient.ts (types), ./Lru.ts of this folder.
 */
import { Clock, Context, Deferred, Duration, Effect, Layer, Metric, Option, Queue, Scope } from "effect"
import { Settings } from "../Settings.ts"
import { CLIENT_GO_DEFAULTS, type CorrelatorOptions, EventCorrelator, type Slot } from "./EventCorrelator.ts"
import { type LanesOptions, startLanes, type Target } from "./EventLanes.ts"
import { EventApiRequests, makeSender, type SenderOptions } from "./EventSender.ts"
import type { KubeClient, ObjectRef } from "./KubeClient.ts"
import { Lru } from "./Lru.ts"

export { EventApiRequests }

/** Why an occurrence never reached the server. */
export type DropReason =
  | "queue_full" // the caller-side queue (or the resolution lanes) were full
  | "no_object" // no PVC / Node to post on (e.g. the PVC does not exist)
  | "unresolved" // the lookup kept failing (API unreachable, forbidden)
  | "spam_filtered" // over the per-object rate (burst 25, one per 5 min)
  | "backlog_full" // too many events waiting for the API server
  | "rejected" // the server refused it (403, 422, ...)
  | "retries_exhausted" // still failing after every retry
  | "shutdown" // recorded after, or still pending at, the end of the drain

export interface RecordInput {
  readonly target: Target
  readonly type: "Normal" | "Warning"
  readonly reason: string
  readonly message: string
}

export interface RecorderStats {
  readonly recorded: number
  readonly posted: number
  readonly dropped: Readonly<Record<DropReason, number>>
  readonly requests: { readonly create: number; readonly patch: number }
  /** Occurrences accepted and not yet written or dropped. */
  readonly inFlight: number
  readonly queued: number
  readonly writers: number
}

export interface RecorderOptions extends CorrelatorOptions, SenderOptions, LanesOptions {
  /** Events (not occurrences) that may wait for the server at once; more are dropped. */
  readonly maxWriters: number
  /** Repeats of one event within this window after a write are folded into the next write. */
  readonly coalesceWindow: Duration.Duration
  readonly drainTimeout: Duration.Duration
}

export const DEFAULT_RECORDER_OPTIONS: Omit<RecorderOptions, "host" | "reportingInstance"> = {
  ...CLIENT_GO_DEFAULTS,
  component: "rds-csi-node",
  queueCapacity: 1024,
  maxWriters: 1024,
  concurrency: 4,
  qps: 10,
  burst: 25,
  attempts: 8,
  backoffBase: Duration.millis(500),
  backoffMax: Duration.seconds(30),
  resolveBudget: Duration.seconds(60),
  coalesceWindow: Duration.seconds(1),
  drainTimeout: Duration.seconds(5)
}

export const EventsPosted = Metric.counter("rds_csi_events_posted_total", {
  description: "Event occurrences the API server has (a PATCH that raises count by n carries n)",
  incremental: true
})
export const EventsDropped = Metric.counter("rds_csi_events_dropped_total", {
  description: "Event occurrences never posted, by why",
  incremental: true
})

export class EventRecorder extends Context.Service<EventRecorder, {
  /** Enqueues one occurrence and returns at once; never fails, never waits on the API server. */
  readonly record: (input: RecordInput) => Effect.Effect<void>
  /** Waits until everything recorded so far has been written or dropped (tests, bench). */
  readonly awaitIdle: Effect.Effect<void>
  readonly stats: Effect.Effect<RecorderStats>
}>()("rds-csi/kube/EventRecorder") {}

interface Item extends RecordInput {
  readonly at: number
}

const ALL_REASONS: ReadonlyArray<DropReason> = ["queue_full", "no_object", "unresolved", "spam_filtered", "backlog_full", "rejected", "retries_exhausted", "shutdown"]

/** The recorder; its fibers live in the caller's scope, whose closing drains them (bounded). */
export const make = (options: RecorderOptions) =>
  Effect.gen(function*() {
    const layerScope = yield* Effect.scope
    // Workers live in a child scope, closed after the drain finalizer below has run.
    const workScope = yield* Scope.fork(layerScope)
    const queue = yield* Queue.dropping<Item>(options.queueCapacity)
    const correlator = new EventCorrelator(options)
    const draining = yield* Deferred.make<void>()
    const writers = new Set<Slot>()
    const loggedAt = new Lru<string, number>(1024)
    const stats = { recorded: 0, posted: 0, dropped: Object.fromEntries(ALL_REASONS.map((r) => [r, 0])) as Record<DropReason, number> }
    let closing = false
    let busy = 0 // occurrences not yet correlated + writers running
    let idleWaiters: Array<Deferred.Deferred<void>> = []
    const coalesceMs = Duration.toMillis(options.coalesceWindow)

    const settle = (delta: number) => {
      busy += delta
      if (busy === 0 && idleWaiters.length > 0) {
        const ws = idleWaiters
        idleWaiters = []
        for (const w of ws) Deferred.doneUnsafe(w, Effect.void)
      }
    }

    const drop = (why: DropReason, n: number) => {
      if (n <= 0) return Effect.void
      stats.dropped[why] += n
      return Metric.update(Metric.withAttributes(EventsDropped, { why }), n)
    }

    /** One warning per key every 10 minutes; the rest at debug level. */
    const logOnce = (key: string, message: string, detail: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const last = loggedAt.get(key)
        if (last !== undefined && now - last < 600_000) return yield* Effect.logDebug(message, detail)
        loggedAt.set(key, now)
        yield* Effect.logWarning(message, detail)
      })

    const sleepOrDrain = (ms: number) =>
      ms <= 0 ? Effect.void : Effect.raceFirst(Effect.sleep(Duration.millis(ms)), Deferred.await(draining))

    const sender = yield* makeSender(options, logOnce)

    // ---- one writer per event: coalescing, spam filter, then the sender ----
    const writer = (slot: Slot): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (slot.dirty) {
          let now = yield* Clock.currentTimeMillis
          if (slot.created) {
            yield* sleepOrDrain(slot.lastWriteAt + coalesceMs - now)
            now = yield* Clock.currentTimeMillis
          }
          if (!correlator.admit(slot, now)) {
            if (!slot.created || Deferred.isDoneUnsafe(draining)) {
              yield* drop("spam_filtered", slot.pending)
              slot.pending = 0
              slot.dirty = false
              break
            }
            yield* sleepOrDrain(correlator.admitWaitMs(slot, now))
            continue
          }
          const snapshot = slot.event
          const carried = slot.pending
          slot.dirty = false
          const failed = yield* sender.send(slot.created, snapshot)
          slot.pending -= carried
          if (failed === undefined) {
            slot.created = true
            slot.lastWriteAt = yield* Clock.currentTimeMillis
            stats.posted += carried
            yield* Metric.update(Metric.withAttributes(EventsPosted, { reason: snapshot.reason }), carried)
          } else {
            yield* drop(failed, carried)
          }
        }
      }).pipe(
        Effect.ensuring(Effect.sync(() => {
          slot.writing = false
          writers.delete(slot)
          settle(-1)
        }))
      )

    const correlate = (item: Item, ref: ObjectRef) =>
      Effect.gen(function*() {
        const slot = correlator.observe({ ref, type: item.type, reason: item.reason, message: item.message, at: item.at })
        if (slot.writing) return
        if (writers.size >= options.maxWriters) {
          yield* drop("backlog_full", slot.pending)
          slot.pending = 0
          slot.dirty = false
          return
        }
        slot.writing = true
        writers.add(slot)
        settle(1)
        yield* Effect.forkIn(writer(slot), workScope)
      })

    const lanes = yield* startLanes({ options, queue, scope: workScope, drop, settle, logOnce, deliver: correlate })

    const awaitIdle: Effect.Effect<void> = Effect.suspend(() => {
      if (busy === 0) return Effect.void
      const d = Deferred.makeUnsafe<void>()
      idleWaiters.push(d)
      return Deferred.await(d)
    })

    const pendingCount = () => {
      let n = Queue.sizeUnsafe(queue) + lanes.size()
      for (const s of writers) n += s.pending
      return n
    }

    // Graceful drain: no new input, coalescing windows skipped, bounded by drainTimeout.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closing = true
        yield* Deferred.succeed(draining, undefined)
        const done = yield* Effect.timeoutOption(awaitIdle, options.drainTimeout)
        if (Option.isNone(done)) {
          const left = pendingCount()
          yield* drop("shutdown", left)
          yield* Effect.logWarning(`event drain timed out after ${Duration.format(options.drainTimeout)}; ${left} occurrences not posted`)
        }
      })
    )

    return EventRecorder.of({
      record: (input) =>
        Effect.clockWith((clock) =>
          Effect.suspend(() => {
            stats.recorded++
            if (closing) return drop("shutdown", 1)
            busy++
            if (Queue.offerUnsafe(queue, { ...input, at: clock.currentTimeMillisUnsafe() })) return Effect.void
            settle(-1)
            return drop("queue_full", 1)
          })
        ),
      awaitIdle,
      stats: Effect.sync(() => ({
        recorded: stats.recorded,
        posted: stats.posted,
        dropped: { ...stats.dropped },
        requests: sender.requests(),
        inFlight: pendingCount(),
        queued: Queue.sizeUnsafe(queue) + lanes.size(),
        writers: writers.size
      }))
    })
  })

/** Live recorder for this node (source host and reporting instance = node name); needs a KubeClient. */
export const layer = (overrides: Partial<RecorderOptions> = {}): Layer.Layer<EventRecorder, never, KubeClient | Settings> =>
  Layer.effect(
    EventRecorder,
    Effect.gen(function*() {
      const settings = yield* Settings
      return yield* make({ ...DEFAULT_RECORDER_OPTIONS, host: settings.nodeId, reportingInstance: settings.nodeId, ...overrides })
    })
  )
