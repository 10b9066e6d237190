/**
 * The emulator's memory backend: the state file is the whole world, actions change nothing
 * else. `layerRecording` also appends every applied action to an array the caller holds (tests).
 *
 * May import: effect, ./Backend.
 */
import { Effect, Layer } from "effect"
import { type Action, Backend } from "./Backend.ts"

export const layer: Layer.Layer<Backend> = Layer.succeed(Backend, Backend.of({ kind: "memory", apply: () => Effect.void, restore: () => Effect.void }))

/** Like `layer`, recording each applied action into `into`. */
export const layerRecording = (into: Array<Action>): Layer.Layer<Backend> =>
  Layer.succeed(
    Backend,
    Backend.of({
      kind: "memory",
      apply: (action) => Effect.sync(() => void into.push(action)),
      restore: () => Effect.void
    })
  )

export const MemoryBackend = { layer, layerRecording } as const
