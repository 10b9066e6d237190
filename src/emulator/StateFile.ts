/**
 * The emulator's state on disk: one JSON file, replaced atomically (temp file in the same
 * directory, fsync, rename) after every change, read once at start. A file that is not a valid
 * state stops the emulator (EmulatorError "StateFile"): it is never overwritten by a fresh pool.
 *
 * May import: effect, ./Backend (errors), ./Model.
 */
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { EmulatorError } from "./Backend.ts"
import { EmulatorState, initialState } from "./Model.ts"

const decode = Schema.decodeUnknownEffect(EmulatorState)
const failure = (detail: string) => new EmulatorError({ reason: "StateFile", detail })
const text = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** Writes `state` to `file` atomically. */
export const save = (file: string, state: EmulatorState): Effect.Effect<void, EmulatorError> =>
  Effect.tryPromise({
    try: async () => {
      const dir = path.dirname(file)
      await fs.mkdir(dir, { recursive: true })
      const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`)
      try {
        const h = await fs.open(tmp, "wx", 0o600)
        try {
          await h.writeFile(JSON.stringify(state, null, 1) + "\n", "utf8")
          await h.sync()
        } finally {
          await h.close()
        }
        await fs.rename(tmp, file)
      } catch (e) {
        await fs.rm(tmp, { force: true })
        throw e
      }
    },
    catch: (e) => failure(`cannot write ${file}: ${text(e)}`)
  })

/**
 * The state in `file`, or a fresh pool of `poolSize` bytes (written at once) when there is none.
 * A loaded pool takes `poolSize` too: the flag wins over the file.
 */
export const load = (file: string, poolSize: number, now: number): Effect.Effect<EmulatorState, EmulatorError> =>
  Effect.gen(function*() {
    const content = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8").catch((e: unknown) => {
        if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") return undefined
        throw e
      }),
      catch: (e) => failure(`cannot read ${file}: ${text(e)}`)
    })
    if (content === undefined) {
      const fresh = initialState(poolSize, now)
      yield* save(file, fresh)
      return fresh
    }
    const json = yield* Effect.try({ try: () => JSON.parse(content) as unknown, catch: (e) => failure(`${file} is not JSON: ${text(e)}`) })
    const state = yield* decode(json).pipe(Effect.mapError((e) => failure(`${file} is not an emulator state: ${e.message}`)))
    return state.pool.size === poolSize ? state : { ...state, pool: { ...state.pool, size: poolSize } }
  })
