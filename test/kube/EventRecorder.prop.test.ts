/**
 * EventRecorder, property-based: random occurrence sequences (objects, reasons, messages, gaps)
 * against an API that fails at random with retryable errors. Whatever happens, every occurrence
 * is accounted for exactly once (posted or dropped with a why), nothing is lost that the retry
 * budget covers, and the server's counts add up to the occurrences.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Duration, Effect, Exit, Fiber, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Fault, type FakeFault, KubeFake } from "../../src/kube/KubeFake.ts"
import { advanceBy, on, pvc, recorderIn, settle } from "./helpers.ts"

const literal = <const A extends string | number>(values: ReadonlyArray<A>) => Arbitrary.schema(Schema.Literals(values as [A, ...Array<A>]))

const step = Arbitrary.all({
  obj: literal([0, 1, 2]),
  reason: literal([0, 1, 2]),
  msg: literal([0, 1, 2, 3]),
  gapMs: literal([0, 0, 10, 300, 1_500, 70_000])
})
// What the n-th write request meets; only retryable faults, and fewer than the 8 tries a write has.
const faultKind = literal(["ok", "ok", "503", "500", "429", "reset", "hang"])
const FAULTS: Record<string, FakeFault | undefined> = {
  ok: undefined,
  "503": Fault.fail("ServerError", 503),
  "500": Fault.fail("ServerError", 500),
  "429": Fault.fail("TooManyRequests", 429, Duration.seconds(2)),
  reset: Fault.fail("Transport"),
  hang: Fault.hang
}

describe("EventRecorder, property-based", () => {
  it.effect.prop(
    "every occurrence is posted or dropped exactly once; retryable faults lose nothing; server counts add up",
    { steps: Arbitrary.array(step, { maxLength: 60 }), faults: Arbitrary.array(faultKind, { maxLength: 6 }) },
    ({ steps, faults }) =>
      Effect.gen(function*() {
        const fake = new KubeFake(Duration.seconds(10))
        let writes = 0
        fake.fault = (r) => (r.op === "createEvent" || r.op === "patchEvent" ? FAULTS[faults[writes++] ?? "ok"] : undefined)
        const scope = yield* Scope.make()
        const rec = yield* recorderIn(fake, scope)
        for (const s of steps) {
          yield* rec.record({ target: on(pvc(`v${s.obj}`)), type: s.reason === 2 ? "Normal" : "Warning", reason: `R${s.reason}`, message: `m${s.msg}` })
          if (s.gapMs > 0) yield* advanceBy(s.gapMs, Math.max(10, Math.floor(s.gapMs / 20)))
          else yield* settle
        }
        yield* advanceBy(10 * 60_000, 5_000) // every backoff, Retry-After and spam-filter wait
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* settle
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(closing)

        const s = yield* rec.stats
        const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0)
        assert.strictEqual(s.recorded, steps.length)
        assert.strictEqual(s.posted + dropped, s.recorded, JSON.stringify(s))
        assert.deepStrictEqual(
          Object.entries(s.dropped).filter(([why, n]) => why !== "spam_filtered" && n > 0),
          [],
          "only the spam filter may drop here"
        )
        const onServer = fake.eventList().reduce((a, e) => a + e.count, 0)
        if (s.dropped.spam_filtered === 0) assert.strictEqual(onServer, s.recorded)
        else assert.isTrue(onServer >= s.posted && onServer <= s.recorded)
        for (const e of fake.eventList()) assert.isAtLeast(e.count, 1)
      }),
    { timeout: 120_000, arbitrary: { runs: 60 } }
  )
})
