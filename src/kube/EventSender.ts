/**
 * EventSender: one event write (CREATE, or PATCH of count/lastTimestamp/message) with what
 * client-go lacks: bounded concurrency, a global rate limit, retries with exponential backoff
 * and jitter for transport errors, timeouts, 429 and 5xx, and a Retry-After that holds every
 * writer off (it is about the server, not one event). Other 4xx are final. The per-request
 * timeout is KubeClient's. All waiting is on Effect's Clock.
 *
 * May import: effect, ./KubeClient.ts, ./TokenBucket.ts.
 */
import { Clock, Duration, Effect, Metric, Random, Result, Semaphore } from "effect"
import { isRetryable, KubeClient, type KubeError, type KubeEvent } from "./KubeClient.ts"
import { TokenBucket } from "./TokenBucket.ts"

export interface SenderOptions {
  readonly concurrency: number
  /** Global request rate: `qps` sustained, `burst` at once. */
  readonly qps: number
  readonly burst: number
  /** Tries per write (first + retries). */
  readonly attempts: number
  readonly backoffBase: Duration.Duration
  readonly backoffMax: Duration.Duration
}

/** Why a write was given up. */
export type SendFailure = "rejected" | "retries_exhausted"

export const EventApiRequests = Metric.counter("rds_csi_event_api_requests_total", {
  description: "Event API requests sent (create, patch), successful or not",
  incremental: true
})

/** base·2^(attempt-1), capped, with equal jitter ([b/2, b]); never shorter than the server's Retry-After. */
export const backoffMs = (options: Pick<SenderOptions, "backoffBase" | "backoffMax">, attempt: number, retryAfter: Duration.Duration | undefined) =>
  Effect.map(Random.next, (r) => {
    const exp = Math.min(Duration.toMillis(options.backoffMax), Duration.toMillis(options.backoffBase) * 2 ** (attempt - 1))
    return Math.max(exp / 2 + r * (exp / 2), retryAfter === undefined ? 0 : Duration.toMillis(retryAfter))
  })

export const makeSender = (
  options: SenderOptions,
  /** Logs a warning once per key (then at debug level), so a refusing server does not flood the log. */
  logOnce: (key: string, message: string, detail: string) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const kube = yield* KubeClient
    const semaphore = yield* Semaphore.make(options.concurrency)
    const limiter = new TokenBucket(options.burst, 1000 / options.qps, yield* Clock.currentTimeMillis)
    const requests = { create: 0, patch: 0 }
    let notBefore = 0

    const count = (verb: "create" | "patch") =>
      Effect.suspend(() => {
        requests[verb]++
        return Metric.update(Metric.withAttributes(EventApiRequests, { verb }), 1)
      })

    const once = (exists: boolean, e: KubeEvent): Effect.Effect<void, KubeError> => {
      const create = Effect.andThen(count("create"), kube.createEvent(e))
      const patch = Effect.andThen(
        count("patch"),
        kube.patchEvent(e.namespace, e.name, { count: e.count, lastTimestamp: e.lastTimestamp, message: e.message })
      )
      return Effect.asVoid(exists
        // The server forgets events after its TTL (1 h by default): PATCH 404 → CREATE with the count so far.
        ? patch.pipe(Effect.catchTag("KubeError", (err) => (err.reason === "NotFound" ? create : Effect.fail(err))))
        // A CREATE that timed out may have landed: 409 → PATCH it to the state we want.
        : create.pipe(Effect.catchTag("KubeError", (err) => (err.reason === "Conflict" ? patch : Effect.fail(err)))))
    }

    /** Writes `e` (PATCH when `exists`, else CREATE); undefined on success. Never fails. */
    const send = (exists: boolean, e: KubeEvent): Effect.Effect<SendFailure | undefined> =>
      Effect.gen(function*() {
        for (let attempt = 1; ; attempt++) {
          const pause = notBefore - (yield* Clock.currentTimeMillis)
          if (pause > 0) yield* Effect.sleep(Duration.millis(pause))
          const wait = limiter.reserve(yield* Clock.currentTimeMillis)
          if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
          const r = yield* Effect.result(semaphore.withPermit(once(exists, e)))
          if (Result.isSuccess(r)) return undefined
          const err = r.failure
          if (err.retryAfter !== undefined) notBefore = Math.max(notBefore, (yield* Clock.currentTimeMillis) + Duration.toMillis(err.retryAfter))
          if (!isRetryable(err)) {
            yield* logOnce(`rejected:${err.reason}:${err.status}`, `event ${e.reason} rejected by the API server; dropped`, err.message)
            return "rejected"
          }
          if (attempt >= options.attempts) {
            yield* logOnce(`exhausted:${err.reason}`, `event ${e.reason} not posted after ${attempt} tries; dropped`, err.message)
            return "retries_exhausted"
          }
          yield* Effect.sleep(Duration.millis(yield* backoffMs(options, attempt, err.retryAfter)))
        }
      })

    return { send, requests: () => ({ ...requests }) }
  })
