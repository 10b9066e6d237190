/**
 * EventLanes: the EventRecorder's first stage, between its caller-side queue and the correlator.
 * A dispatcher takes each burst off the queue into one lane per target; each lane's fiber
 * resolves its object (volume → PVC, node name → Node) once per burst, retrying transient
 * failures within `resolveBudget`, then hands every item of the batch on, or drops them all with
 * why. A slow lookup for one volume does not hold up another's events.
 *
 * May import: effect, and ./EventSender.ts (backoff), ./KubeClient.ts, ./PvcLookup.ts (types)
 * of this folder.
 */
import { Clock, Duration, Effect, Queue, Result, Scope } from "effect"
import { backoffMs, type SenderOptions } from "./EventSender.ts"
import { isRetryable, type KubeError, type ObjectRef } from "./KubeClient.ts"
import type { Lookup } from "./PvcLookup.ts"

/** What to post on: a known object, or one to look up (volume → PVC, node name → Node). */
export type Target =
  | { readonly _tag: "Object"; readonly ref: ObjectRef }
  | { readonly _tag: "Lookup"; readonly key: string; readonly resolve: Effect.Effect<Lookup, KubeError> }

export const Target = {
  object: (ref: ObjectRef): Target => ({ _tag: "Object", ref }),
  lookup: (key: string, resolve: Effect.Effect<Lookup, KubeError>): Target => ({ _tag: "Lookup", key, resolve })
}

/** The drops decided here (a subset of EventRecorder's DropReason). */
export type LaneDropReason = "queue_full" | "no_object" | "unresolved"

export interface LanesOptions extends Pick<SenderOptions, "backoffBase" | "backoffMax"> {
  /** Occurrences that may wait in the lanes at once; more are dropped as queue_full. */
  readonly queueCapacity: number
  /** How long a lookup may keep failing before its events are dropped. */
  readonly resolveBudget: Duration.Duration
}

export interface LanesDeps<I extends { readonly target: Target }> {
  readonly options: LanesOptions
  readonly queue: Queue.Dequeue<I>
  /** Where the dispatcher and lane fibers run. */
  readonly scope: Scope.Scope
  readonly drop: (why: LaneDropReason, n: number) => Effect.Effect<void>
  /** Called with minus the number of items an item or a batch leaves the lanes with. */
  readonly settle: (delta: number) => void
  readonly logOnce: (key: string, message: string, detail: string) => Effect.Effect<void>
  /** The next stage, for each item whose object was found. */
  readonly deliver: (item: I, ref: ObjectRef) => Effect.Effect<void>
}

type Resolved = { readonly _tag: "Ok"; readonly ref: ObjectRef } | { readonly _tag: "Drop"; readonly why: LaneDropReason }

const keyOf = (t: Target) => (t._tag === "Object" ? `${t.ref.kind}/${t.ref.namespace}/${t.ref.name}/${t.ref.uid}` : t.key)

/** Forks the dispatcher into `scope`; returns how many items wait in the lanes. */
export const startLanes = <I extends { readonly target: Target }>(deps: LanesDeps<I>) =>
  Effect.gen(function*() {
    const { options, queue, scope, drop, settle, logOnce, deliver } = deps
    const lanes = new Map<string, Array<I>>()
    let inLanes = 0

    // ---- resolution: volume → PVC, node name → Node, retried within the budget ----
    const resolve = (target: Target): Effect.Effect<Resolved> => {
      if (target._tag === "Object") return Effect.succeed({ _tag: "Ok", ref: target.ref })
      return Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        for (let attempt = 1; ; attempt++) {
          const r = yield* Effect.result(target.resolve)
          if (Result.isSuccess(r)) {
            if (Result.isSuccess(r.success)) return { _tag: "Ok", ref: r.success.success } as const
            yield* logOnce(`missing:${target.key}`, "event not posted: nothing to post it on", r.success.failure)
            return { _tag: "Drop", why: "no_object" } as const
          }
          const e = r.failure
          const wait = yield* backoffMs(options, attempt, e.retryAfter)
          const now = yield* Clock.currentTimeMillis
          if (!isRetryable(e) || now + wait - started > Duration.toMillis(options.resolveBudget)) {
            yield* logOnce(`unresolved:${e.reason}`, "event not posted: cannot look up its object", e.message)
            return { _tag: "Drop", why: "unresolved" } as const
          }
          yield* Effect.sleep(Duration.millis(wait))
        }
      })
    }

    // ---- lanes: one per target, resolved once per burst ----
    const laneWorker = (key: string, lane: Array<I>): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (lane.length > 0) {
          const resolved = yield* resolve(lane[0]!.target)
          const batch = lane.splice(0)
          inLanes -= batch.length
          for (const item of batch) {
            if (resolved._tag === "Ok") yield* deliver(item, resolved.ref)
            else yield* drop(resolved.why, 1)
          }
          settle(-batch.length)
        }
        lanes.delete(key)
      })

    // Takes everything queued at once: one scheduler turn moves a whole burst into the lanes.
    const dispatcher = Effect.forever(
      Effect.gen(function*() {
        const items = yield* Queue.takeAll(queue)
        for (const item of items) {
          if (inLanes >= options.queueCapacity) {
            yield* drop("queue_full", 1)
            settle(-1)
            continue
          }
          const key = keyOf(item.target)
          const lane = lanes.get(key)
          inLanes++
          if (lane !== undefined) lane.push(item)
          else {
            const fresh = [item]
            lanes.set(key, fresh)
            yield* Effect.forkIn(laneWorker(key, fresh), scope)
          }
        }
      })
    )
    yield* Effect.forkIn(dispatcher, scope)

    return { size: (): number => inLanes }
  })
