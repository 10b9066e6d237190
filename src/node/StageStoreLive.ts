/**
 * StageStore on disk: one JSON file per staged volume under Settings.stateDir, written
 * atomically (temp file in the same directory, fsync, rename over the old one, fsync the
 * directory) so a crash or power loss leaves either the old record or the new one, never half
 * of one. Records are decoded with the StageRecord schema on every read.
 *
 * File names: `encodeURIComponent(volumeId).json` (readable for operators; a volume ID has no
 * `/`, the suffix keeps `.`/`..` harmless, a leading dot is encoded), or `sha256-<hex>.json`
 * when that would be too long. Temp files end in `.tmp`. The record inside names its volume, and a read checks it.
 *
 * May import: effect, node/StageStore, Settings.
 */
import { Effect, Layer, Schema } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Settings } from "../Settings.ts"
import { StageRecord, StageStore, StageStoreError } from "./StageStore.ts"

const MAX_NAME = 200

/** The file (base name) that holds `volumeId`'s record. */
export const fileNameFor = (volumeId: string): string => {
  // a leading "." would hide the file from ls; "%" is always encoded, so this stays one-to-one
  const readable = encodeURIComponent(volumeId).replace(/^\./, "%2E")
  return readable.length <= MAX_NAME ? `${readable}.json` : `sha256-${createHash("sha256").update(volumeId).digest("hex")}.json`
}

const isRecordFile = (name: string): boolean => name.endsWith(".json")
const code = (e: unknown): string => (e as NodeJS.ErrnoException)?.code ?? ""
const message = (e: unknown): string => (e as Error)?.message ?? String(e)

const decodeRecord = Schema.decodeUnknownEffect(StageRecord)
const encodeRecord = Schema.encodeUnknownEffect(StageRecord)

/** Parses and decodes one file's content; the error says why, for a person. */
const parseRecord = (text: string): Effect.Effect<StageRecord, string> =>
  Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => `not JSON: ${message(e)}` }).pipe(
    Effect.flatMap((json) => decodeRecord(json).pipe(Effect.mapError((e) => `not a stage record: ${e.message}`)))
  )

const fsyncDir = async (dir: string): Promise<void> => {
  const h = await fs.promises.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    await h.sync()
  } finally {
    await h.close()
  }
}

/** Write-temp, fsync, rename, fsync-dir. The temp file is removed if anything fails. */
export const writeAtomically = async (dir: string, name: string, content: string): Promise<void> => {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 })
  // not *.json: a temp file left by a crash is never read as a record
  const tmp = path.join(dir, `.${name}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`)
  try {
    const h = await fs.promises.open(tmp, "wx", 0o600)
    try {
      await h.writeFile(content, "utf8")
      await h.sync()
    } finally {
      await h.close()
    }
    await fs.promises.rename(tmp, path.join(dir, name))
  } catch (e) {
    await fs.promises.rm(tmp, { force: true })
    throw e
  }
  await fsyncDir(dir)
}

export const StageStoreLive: Layer.Layer<StageStore, never, Settings> = Layer.effect(
  StageStore,
  Effect.gen(function*() {
    const dir = (yield* Settings).stateDir

    const fail = (volumeId: string, operation: StageStoreError["operation"]) => (detail: string) =>
      new StageStoreError({ volumeId, operation, detail })

    const readFile = (file: string) =>
      Effect.tryPromise({
        try: () => fs.promises.readFile(file, "utf8").catch((e) => code(e) === "ENOENT" ? undefined : Promise.reject(e)),
        catch: message
      })

    const get = Effect.fn("StageStore.get")(function*(volumeId: string) {
      const file = path.join(dir, fileNameFor(volumeId))
      const text = yield* readFile(file).pipe(Effect.mapError(fail(volumeId, "read")))
      if (text === undefined) return undefined
      const record = yield* parseRecord(text).pipe(Effect.mapError((why) => fail(volumeId, "read")(`${file}: ${why}`)))
      if (record.volumeId !== volumeId) {
        return yield* fail(volumeId, "read")(`${file} holds the record of '${record.volumeId}'`)
      }
      return record
    })

    const put = Effect.fn("StageStore.put")(function*(record: StageRecord) {
      const json = yield* encodeRecord(record).pipe(Effect.mapError((e) => fail(record.volumeId, "write")(`invalid record: ${e.message}`)))
      yield* Effect.tryPromise({
        try: () => writeAtomically(dir, fileNameFor(record.volumeId), JSON.stringify(json, null, 2) + "\n"),
        catch: (e) => fail(record.volumeId, "write")(message(e))
      })
    })

    const remove = Effect.fn("StageStore.remove")(function*(volumeId: string) {
      yield* Effect.tryPromise({
        try: async () => {
          try {
            await fs.promises.unlink(path.join(dir, fileNameFor(volumeId)))
          } catch (e) {
            if (code(e) === "ENOENT") return
            throw e
          }
          await fsyncDir(dir)
        },
        catch: (e) => fail(volumeId, "remove")(message(e))
      })
    })

    // The health monitor lists every record each tick. The files stay the only truth (a record
    // edited or removed by hand is seen at once), but one whose inode, size and mtime have not
    // changed since it was last decoded is not read and decoded again.
    const decoded = new Map<string, { readonly key: string; readonly record: StageRecord }>()
    const readRecord = (file: string) =>
      Effect.gen(function*() {
        const st = yield* Effect.tryPromise({
          try: () => fs.promises.stat(file, { bigint: true }).catch((e) => code(e) === "ENOENT" ? undefined : Promise.reject(e)),
          catch: message
        })
        if (st === undefined) return undefined
        const key = `${st.ino}:${st.size}:${st.mtimeNs}`
        const known = decoded.get(file)
        if (known !== undefined && known.key === key) return known.record
        const text = yield* readFile(file)
        if (text === undefined) return undefined
        const record = yield* parseRecord(text)
        decoded.set(file, { key, record })
        return record
      })

    const list = Effect.gen(function*() {
      const names = yield* Effect.tryPromise({
        try: () => fs.promises.readdir(dir).catch((e) => code(e) === "ENOENT" ? [] : Promise.reject(e)),
        catch: (e) => fail("*", "list")(`${dir}: ${message(e)}`)
      })
      const present = new Set(names.map((name) => path.join(dir, name)))
      for (const file of decoded.keys()) if (!present.has(file)) decoded.delete(file)
      const records: Array<StageRecord> = []
      const broken: Array<string> = []
      for (const name of names.filter(isRecordFile).sort()) {
        const file = path.join(dir, name)
        const outcome = yield* readRecord(file).pipe(Effect.result)
        if (outcome._tag === "Failure") broken.push(`${name}: ${outcome.failure}`)
        else if (outcome.success === undefined) continue // removed meanwhile
        else if (fileNameFor(outcome.success.volumeId) !== name) broken.push(`${name}: holds the record of '${outcome.success.volumeId}'`)
        else records.push(outcome.success)
      }
      if (broken.length > 0) {
        return yield* fail("*", "list")(`${broken.length} unreadable record(s) in ${dir} (${records.length} readable): ${broken.join("; ")}`)
      }
      return records
    }).pipe(Effect.withSpan("StageStore.list"))

    return StageStore.of({ get, put, remove, list })
  })
)

export const layer = StageStoreLive
