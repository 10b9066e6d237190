/**
 * StageStore in memory. The records live in their own small service, StageStoreMemory, as the
 * JSON text the live layer would write, so they survive a simulated plugin restart (rebuild the
 * node layers, keep the KernelModel and the StageStoreMemory) and every record goes through the
 * schema both ways. Unreadable "files" and injected failures test the error paths.
 *
 * May import: node/StageStore.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { type StageRecord, StageRecord as StageRecordSchema, StageStore, StageStoreError } from "../node/StageStore.ts"

type Operation = StageStoreError["operation"]

export interface StageStoreMemoryShape {
  /** The stored files: volume ID → JSON text, as written. */
  readonly files: Effect.Effect<ReadonlyMap<string, string>>
  /** Replaces one stored file's text (e.g. with garbage, to test an unreadable record). */
  readonly writeRaw: (volumeId: string, text: string) => Effect.Effect<void>
  /** The next `times` calls of an operation fail with StageStoreError. */
  readonly fail: (operation: Operation, detail: string, times?: number) => Effect.Effect<void>
  /** The live map and fault queue the StageStore test layer works on. */
  readonly state: {
    readonly files: Map<string, string>
    readonly faults: Array<{ readonly operation: Operation; readonly detail: string; remaining: number }>
  }
}

export class StageStoreMemory extends Context.Service<StageStoreMemory, StageStoreMemoryShape>()("rds-csi/testing/StageStoreMemory") {
  /** An empty store. */
  static readonly layer: Layer.Layer<StageStoreMemory> = Layer.sync(StageStoreMemory, () => {
    const state: StageStoreMemoryShape["state"] = { files: new Map(), faults: [] }
    return StageStoreMemory.of({
      files: Effect.sync(() => new Map(state.files)),
      writeRaw: (volumeId, text) => Effect.sync(() => void state.files.set(volumeId, text)),
      fail: (operation, detail, times = 1) => Effect.sync(() => void state.faults.push({ operation, detail, remaining: times })),
      state
    })
  })
}

const decode = Schema.decodeUnknownEffect(StageRecordSchema)
const encode = Schema.encodeEffect(StageRecordSchema)

/** StageStore over the StageStoreMemory in context. */
export const layer: Layer.Layer<StageStore, never, StageStoreMemory> = Layer.effect(
  StageStore,
  Effect.gen(function*() {
    const { state } = yield* StageStoreMemory

    const injected = (volumeId: string, operation: Operation) =>
      Effect.suspend(() => {
        const i = state.faults.findIndex((f) => f.operation === operation)
        const f = state.faults[i]
        if (f === undefined) return Effect.void
        if (--f.remaining <= 0) state.faults.splice(i, 1)
        return Effect.fail(new StageStoreError({ volumeId, operation, detail: f.detail }))
      })

    const parse = (volumeId: string, text: string, operation: Operation) =>
      Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => new StageStoreError({ volumeId, operation, detail: `not JSON: ${String(e)}` }) }).pipe(
        Effect.flatMap((json) => decode(json)),
        Effect.mapError((e) => e._tag === "StageStoreError" ? e : new StageStoreError({ volumeId, operation, detail: e.message }))
      )

    const get = Effect.fn("StageStore.get")(function*(volumeId: string) {
      yield* injected(volumeId, "read")
      const text = state.files.get(volumeId)
      return text === undefined ? undefined : yield* parse(volumeId, text, "read")
    })

    const put = Effect.fn("StageStore.put")(function*(record: StageRecord) {
      yield* injected(record.volumeId, "write")
      const encoded = yield* encode(record).pipe(Effect.mapError((e) => new StageStoreError({ volumeId: record.volumeId, operation: "write", detail: e.message })))
      state.files.set(record.volumeId, JSON.stringify(encoded))
    })

    const remove = Effect.fn("StageStore.remove")(function*(volumeId: string) {
      yield* injected(volumeId, "remove")
      state.files.delete(volumeId)
    })

    const list = Effect.gen(function*() {
      yield* injected("*", "list")
      const out: Array<StageRecord> = []
      const bad: Array<string> = []
      for (const [volumeId, text] of [...state.files].sort(([a], [b]) => a.localeCompare(b))) {
        const r = yield* Effect.result(parse(volumeId, text, "list"))
        if (r._tag === "Success") out.push(r.success)
        else bad.push(`${volumeId}: ${r.failure.detail}`)
      }
      if (bad.length > 0) return yield* new StageStoreError({ volumeId: "*", operation: "list", detail: `unreadable record(s): ${bad.join("; ")}` })
      return out as ReadonlyArray<StageRecord>
    }).pipe(Effect.withSpan("StageStore.list"))

    return StageStore.of({ get, put, remove, list })
  })
)
