/**
 * EventCorrelator: client-go's tools/record EventCorrelator, as plain synchronous state on a
 * clock the caller passes in (the recorder passes Effect's Clock, so TestClock drives it).
 *
 * - Aggregation (EventAggregatorByReasonFunc): events with the same source, object, type and
 *   reason but different messages are "similar"; from the 10th similar one within 10 minutes of
 *   the previous, they become one event whose message is prefixed
 *   "(combined from similar events): ".
 * - Observation (eventLogger): a repeat of the same event (or aggregate) reuses the first one's
 *   name and firstTimestamp with count + 1: the recorder then PATCHes instead of CREATEs.
 * - Spam filter (EventSourceObjectSpamFilter): a token bucket per source + object + type,
 *   burst 25, one token per 5 minutes. Unlike client-go it is charged per API write, not per
 *   occurrence: repeats folded into one write cost one token (see EventRecorder).
 * - All three caches are LRUs of 4096 entries, as in client-go.
 *
 * May import: ./KubeClient.ts (types), ./Lru.ts, ./TokenBucket.ts.
 */
import type { KubeEvent, ObjectRef } from "./KubeClient.ts"
import { Lru } from "./Lru.ts"
import { TokenBucket } from "./TokenBucket.ts"

export const COMBINED_PREFIX = "(combined from similar events): "
/** core/v1 Event messages longer than this are truncated (events.k8s.io's note limit). */
export const MAX_MESSAGE_BYTES = 1024

export interface CorrelatorOptions {
  /** source.component and reportingComponent, e.g. `rds-csi-node`. */
  readonly component: string
  /** source.host: the node name. */
  readonly host: string
  readonly reportingInstance: string
  readonly maxSimilar: number
  readonly similarWindowMs: number
  readonly spamBurst: number
  readonly spamRefillMs: number
  readonly cacheSize: number
}

export const CLIENT_GO_DEFAULTS = {
  maxSimilar: 10,
  similarWindowMs: 600_000,
  spamBurst: 25,
  spamRefillMs: 300_000,
  cacheSize: 4096
} as const

export interface Occurrence {
  readonly ref: ObjectRef
  readonly type: "Normal" | "Warning"
  readonly reason: string
  readonly message: string
  /** Clock time of the occurrence (ms). */
  readonly at: number
}

/** One event as the server should have it, and what the recorder knows about writing it. */
export interface Slot {
  readonly key: string
  readonly spamKey: string
  /** The desired state: the latest count, lastTimestamp and message. */
  event: KubeEvent
  /** The server has (had) this event: repeats are PATCHed. */
  created: boolean
  /** Occurrences folded into `event` that no successful write has carried yet. */
  pending: number
  /** The desired state changed since the last write began. */
  dirty: boolean
  /** A writer fiber owns this slot. */
  writing: boolean
  lastWriteAt: number
}

/** Cuts a message to MAX_MESSAGE_BYTES of UTF-8 without splitting a character. */
export const truncateMessage = (message: string): string => {
  const bytes = Buffer.from(message, "utf8")
  if (bytes.length <= MAX_MESSAGE_BYTES) return message
  const marker = "...[truncated]"
  let cut = MAX_MESSAGE_BYTES - marker.length
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--
  return bytes.subarray(0, cut).toString("utf8") + marker
}

const join = (...parts: ReadonlyArray<string>) => parts.join("\u0000")

export class EventCorrelator {
  private readonly aggregates: Lru<string, { readonly messages: Set<string>; last: number }>
  private readonly slots: Lru<string, Slot>
  private readonly spam: Lru<string, TokenBucket>
  private lastNanos = 0n
  readonly options: CorrelatorOptions

  constructor(options: CorrelatorOptions) {
    this.options = options
    this.aggregates = new Lru(options.cacheSize)
    this.slots = new Lru(options.cacheSize)
    this.spam = new Lru(options.cacheSize)
  }

  /** client-go names events `<object>.<unix nanos in hex>`; ours are also unique within one millisecond. */
  private eventName(objectName: string, at: number): string {
    let nanos = BigInt(Math.floor(at)) * 1_000_000n
    if (nanos <= this.lastNanos) nanos = this.lastNanos + 1n
    this.lastNanos = nanos
    return `${objectName.slice(0, 253 - 17)}.${nanos.toString(16)}`
  }

  /** Folds one occurrence into its slot (new or existing) and returns the slot, marked dirty. */
  observe(o: Occurrence): Slot {
    const { component, host } = this.options
    const r = o.ref
    const objectKey = join(component, host, r.kind, r.namespace, r.name, r.uid, r.apiVersion)
    const aggregateKey = join(objectKey, o.type, o.reason)
    let agg = this.aggregates.get(aggregateKey)
    if (agg === undefined || o.at - agg.last > this.options.similarWindowMs) agg = { messages: new Set(), last: o.at }
    agg.messages.add(o.message)
    agg.last = o.at
    this.aggregates.set(aggregateKey, agg)

    let key = join(aggregateKey, o.message)
    let message = o.message
    if (agg.messages.size >= this.options.maxSimilar) {
      // client-go pops an arbitrary member so the set stays below the threshold; we pop the oldest.
      agg.messages.delete(agg.messages.values().next().value as string)
      key = aggregateKey
      message = COMBINED_PREFIX + o.message
    }
    message = truncateMessage(message)

    const slot = this.slots.get(key)
    if (slot !== undefined) {
      slot.event = { ...slot.event, count: slot.event.count + 1, lastTimestamp: o.at, message }
      slot.pending++
      slot.dirty = true
      return slot
    }
    const fresh: Slot = {
      key,
      spamKey: join(objectKey, o.type),
      event: {
        name: this.eventName(r.name, o.at),
        namespace: r.namespace === "" ? "default" : r.namespace,
        involvedObject: r,
        type: o.type,
        reason: o.reason,
        message,
        count: 1,
        firstTimestamp: o.at,
        lastTimestamp: o.at,
        source: { component, host },
        reportingComponent: component,
        reportingInstance: this.options.reportingInstance
      },
      created: false,
      pending: 1,
      dirty: true,
      writing: false,
      lastWriteAt: 0
    }
    this.slots.set(key, fresh)
    return fresh
  }

  private bucket(slot: Slot, now: number): TokenBucket {
    let b = this.spam.get(slot.spamKey)
    if (b === undefined) {
      b = new TokenBucket(this.options.spamBurst, this.options.spamRefillMs, now)
      this.spam.set(slot.spamKey, b)
    }
    return b
  }

  /** Charges one write of `slot` to its object's spam bucket; false = over the limit. */
  admit(slot: Slot, now: number): boolean {
    return this.bucket(slot, now).tryTake(now)
  }

  /** Milliseconds until `slot`'s object may write again. */
  admitWaitMs(slot: Slot, now: number): number {
    return this.bucket(slot, now).waitMs(now)
  }
}
