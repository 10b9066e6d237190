/**
 * StageStore on disk: one JSON file per staged volume under Settings.stateDir, written
 * atomically (temp file in the same directory, fsync, rename over the old one, and fsync the
 * directory when the record is new: writeAtomically) so a crash or power loss leaves either the
 * old record or the new one, never half of one. Records are decoded with the StageRecord schema
 * on every read.
 *
 * File names: `encodeURIComponent(volumeId).json` (readable for operators; a volume ID has no
 * `/`, the suffix keeps `.`/`..` harmless, a leading dot is encoded), or `sha256-<hex>.json`
 * when that would be too long. Temp files end in `.tmp`. The record inside names its volume, and a read checks it.
 *
 * A record file that holds no usable record (not JSON, not a StageRecord, another volume's
 * record, not a regular file, not readable) is moved to `quarantine/<name>.<epoch-ms>` in the
 * state dir, kept for a person, and logged as an error. `list` then carries on with the other
 * records: one bad file must not fail every unstage and every health-monitor tick. `get` of
 * that volume fails (StageStoreError "read", naming the file and where it went) rather than
 * answering "not staged": unstage would return OK and leave the connection behind. The retry
 * finds no record, and unstage's fallback (unmount the staging path) runs; the connection is then
 * one no record uses, which the orphan reconciler removes. An I/O error that may
 * pass (EIO, EMFILE, ...) moves nothing and fails the call, as before.
 *
 * May import: effect, node/AtomicFile, node/StageStore, Settings.
 */
import { Clock, Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Settings } from "../Settings.ts"
import { fsyncDir, writeAtomically } from "./AtomicFile.ts"
import { StageRecord, StageStore, StageStoreError } from "./StageStore.ts"

const MAX_NAME = 200
/** Sub-folder of the state dir where unusable record files are moved, kept for a person to look at. */
export const QUARANTINE = "quarantine"

/** The file (base name) that holds `volumeId`'s record. */
export const fileNameFor = (volumeId: string): string => {
  // a leading "." would hide the file from ls; "%" is always encoded, so this stays one-to-one
  const readable = encodeURIComponent(volumeId).replace(/^\./, "%2E")
  if (readable.length <= MAX_NAME) return `${readable}.json`
  // node:crypto only for such a long ID: loading it costs every start (~0.2 s under emulation).
  return `sha256-${process.getBuiltinModule("node:crypto").createHash("sha256").update(volumeId).digest("hex")}.json`
}

const isRecordFile = (name: string): boolean => name.endsWith(".json")
const code = (e: unknown): string => (e as NodeJS.ErrnoException)?.code ?? ""
const message = (e: unknown): string => (e as Error)?.message ?? String(e)

const decodeRecord = Schema.decodeUnknownEffect(StageRecord)
const encodeRecord = Schema.encodeUnknownEffect(StageRecord)

/** A record file's content: the encoded record as indented JSON. */
const recordText = (json: unknown): string => JSON.stringify(json, null, 2) + "\n"

/** Parses and decodes one file's content; the error says why, for a person. */
const parseRecord = (text: string): Effect.Effect<StageRecord, string> =>
  Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => `not JSON: ${message(e)}` }).pipe(
    Effect.flatMap((json) => decodeRecord(json).pipe(Effect.mapError((e) => `not a stage record: ${e.message}`)))
  )

/**
 * A record through what put and get do to it (encode, the file's JSON, decode). The start-up
 * snapshot's builder runs it once (src/WarmUp.ts): Effect builds a schema's parser on its first
 * use, which would otherwise be part of the first stage after every start.
 */
export const recordRoundTrip = (record: StageRecord): Effect.Effect<StageRecord, Schema.SchemaError | string> =>
  encodeRecord(record).pipe(Effect.flatMap((json) => parseRecord(recordText(json))))

/** What identifies one version of a record file: a read whose stat gives the same key reads the same bytes. */
const versionOf = (st: fs.BigIntStats): string => `${st.ino}:${st.size}:${st.mtimeNs}`

/** What one read of a record file found. */
type Read =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Record"; readonly record: StageRecord }
  | { readonly _tag: "Bad"; readonly why: string; readonly ino: bigint }
/** A read after quarantining what could not be used. */
type Loaded =
  | Exclude<Read, { readonly _tag: "Bad" }>
  | { readonly _tag: "Quarantined"; readonly why: string; readonly to: string }
  | { readonly _tag: "Stuck"; readonly why: string; readonly detail: string }

const absent: Read = { _tag: "Absent" }
const found = (record: StageRecord): Read => ({ _tag: "Record", record })
const bad = (why: string, ino: bigint): Read => ({ _tag: "Bad", why, ino })
const quarantined = (why: string, to: string): Loaded => ({ _tag: "Quarantined", why, to })
const stuck = (why: string, detail: string): Loaded => ({ _tag: "Stuck", why, detail })

/** Errors that belong to the file, not to the moment: reading again would fail again. */
const PERMANENT = new Set(["EACCES", "EPERM", "EISDIR"])

// Records are small files in the node's own state directory on its root file system: stat and
// read synchronously. The health monitor stats every record each pass, and a round trip through
// libuv's thread pool per file cost more than the call itself (seconds per pass over 100
// volumes under emulation).
const statFile = (file: string) =>
  Effect.try({
    try: () => fs.statSync(file, { bigint: true, throwIfNoEntry: false }),
    catch: (e) => `${file}: ${message(e)}`
  })

type Text = { readonly _tag: "Text"; readonly text: string } | { readonly _tag: "Absent" } | { readonly _tag: "Unreadable"; readonly why: string }
const readText = (file: string) =>
  Effect.try({
    try: (): Text => {
      try {
        return { _tag: "Text", text: fs.readFileSync(file, "utf8") }
      } catch (e) {
        if (code(e) === "ENOENT") return { _tag: "Absent" }
        if (PERMANENT.has(code(e))) return { _tag: "Unreadable", why: `unreadable: ${message(e)}` }
        throw e
      }
    },
    catch: (e) => `${file}: ${message(e)}`
  })

/**
 * Renames `file` to `to` (creating its folder) when it is still the inode that was read; false
 * when it was replaced or removed meanwhile (a record written since must not be moved away).
 */
export const moveIfSame = async (file: string, ino: bigint, to: string): Promise<boolean> => {
  await fs.promises.mkdir(path.dirname(to), { recursive: true, mode: 0o700 })
  const st = await fs.promises.stat(file, { bigint: true }).catch((e) => code(e) === "ENOENT" ? undefined : Promise.reject(e))
  if (st === undefined || st.ino !== ino) return false
  await fs.promises.rename(file, to)
  await fsyncDir(path.dirname(file))
  return true
}

export const StageStoreLive: Layer.Layer<StageStore, never, Settings> = Layer.effect(
  StageStore,
  Effect.gen(function*() {
    const dir = (yield* Settings).stateDir
    const quarantineDir = path.join(dir, QUARANTINE)

    const fail = (volumeId: string, operation: StageStoreError["operation"]) => (detail: string) =>
      new StageStoreError({ volumeId, operation, detail })

    // The health monitor lists every record each tick. The files stay the only truth (a record
    // edited or removed by hand is seen at once), but one whose inode, size and mtime have not
    // changed since it was last decoded (or written here) is not read and decoded again.
    const decoded = new Map<string, { readonly key: string; readonly record: StageRecord }>()

    const put = Effect.fn("StageStore.put")(function*(record: StageRecord) {
      const json = yield* encodeRecord(record).pipe(Effect.mapError((e) => fail(record.volumeId, "write")(`invalid record: ${e.message}`)))
      const name = fileNameFor(record.volumeId)
      const text = recordText(json)
      const written = yield* Effect.tryPromise({
        try: () => writeAtomically(dir, name, text),
        catch: (e) => fail(record.volumeId, "write")(message(e))
      })
      // The next get (publish after stage, the monitor's next pass) finds what was just written
      // without reading it back: the encoded record is the record (the schema transforms nothing),
      // and the key is the written inode's own.
      decoded.set(path.join(dir, name), { key: versionOf(written), record: JSON.parse(text) as StageRecord })
    })

    const remove = Effect.fn("StageStore.remove")(function*(volumeId: string) {
      yield* Effect.tryPromise({
        try: async () => {
          try {
            fs.unlinkSync(path.join(dir, fileNameFor(volumeId)))
          } catch (e) {
            if (code(e) === "ENOENT") return
            throw e
          }
          // Flushed: a record back after a power loss would report a volume kubelet no longer stages.
          await fsyncDir(dir)
        },
        catch: (e) => fail(volumeId, "remove")(message(e))
      })
    })

    const readRecord = (file: string) =>
      Effect.gen(function*() {
        const st = yield* statFile(file)
        if (st === undefined) return absent
        if (!st.isFile()) return bad("not a regular file", st.ino)
        const key = versionOf(st)
        const known = decoded.get(file)
        if (known !== undefined && known.key === key) return found(known.record)
        const text = yield* readText(file)
        if (text._tag !== "Text") return text._tag === "Absent" ? absent : bad(text.why, st.ino)
        const parsed = yield* parseRecord(text.text).pipe(Effect.result)
        if (parsed._tag === "Failure") return bad(parsed.failure, st.ino)
        if (fileNameFor(parsed.success.volumeId) !== path.basename(file)) {
          return bad(`holds the record of '${parsed.success.volumeId}'`, st.ino)
        }
        decoded.set(file, { key, record: parsed.success })
        return found(parsed.success)
      })

    /**
     * Moves `file` to quarantine/<name>.<epoch-ms> and logs why; undefined when the file is no
     * longer the one that was read (replaced or removed meanwhile: read it again). The failure
     * says why it could not be moved.
     */
    const quarantine = (file: string, why: string, ino: bigint) =>
      Effect.gen(function*() {
        const to = path.join(quarantineDir, `${path.basename(file)}.${yield* Clock.currentTimeMillis}`)
        const moved = yield* Effect.tryPromise({ try: () => moveIfSame(file, ino, to), catch: message })
        decoded.delete(file)
        if (moved) yield* Effect.logError(`stage record ${file} is unreadable (${why}); moved to ${to}`)
        return moved ? to : undefined
      }).pipe(Effect.tapError((e) => Effect.logError(`stage record ${file} is unreadable (${why}); cannot move it to ${quarantineDir}: ${e}`)))

    /** Reads `file`, quarantining it when it holds no usable record. Fails only on an I/O error worth retrying. */
    const load = (file: string) =>
      Effect.gen(function*() {
        for (let attempt = 1;; attempt++) {
          const read = yield* readRecord(file)
          if (read._tag !== "Bad") return read
          const moved = yield* quarantine(file, read.why, read.ino).pipe(Effect.result)
          if (moved._tag === "Failure") return stuck(read.why, moved.failure)
          if (moved.success !== undefined) return quarantined(read.why, moved.success)
          if (attempt >= 3) return yield* Effect.fail(`${file}: changes under every read`)
        }
      })

    const get = Effect.fn("StageStore.get")(function*(volumeId: string) {
      const file = path.join(dir, fileNameFor(volumeId))
      const loaded = yield* load(file).pipe(Effect.mapError(fail(volumeId, "read")))
      switch (loaded._tag) {
        case "Absent":
          return undefined
        case "Record":
          return loaded.record
        case "Quarantined":
          // Not "not staged": unstage would answer OK and leave the connection. The next call
          // finds no file, and unstage's fallback (unmount the staging path) runs.
          return yield* fail(volumeId, "read")(`${file}: ${loaded.why}; moved to ${loaded.to}`)
        case "Stuck":
          return yield* fail(volumeId, "read")(`${file}: ${loaded.why}; cannot move it to ${quarantineDir}: ${loaded.detail}`)
      }
    })

    const list = Effect.gen(function*() {
      const names = yield* Effect.tryPromise({
        try: () => fs.promises.readdir(dir).catch((e) => code(e) === "ENOENT" ? [] : Promise.reject(e)),
        catch: (e) => fail("*", "list")(`${dir}: ${message(e)}`)
      })
      const present = new Set(names.map((name) => path.join(dir, name)))
      for (const file of decoded.keys()) if (!present.has(file)) decoded.delete(file)
      const records: Array<StageRecord> = []
      const failed: Array<string> = []
      for (const [i, name] of names.filter(isRecordFile).sort().entries()) {
        // Decoding a hundred records is seconds under emulation: let RPCs (Probe) in between.
        if (i % 8 === 7) yield* Effect.yieldNow
        // A quarantined or unmovable file has been logged; the rest of the records still count.
        const loaded = yield* load(path.join(dir, name)).pipe(Effect.result)
        if (loaded._tag === "Failure") failed.push(loaded.failure)
        else if (loaded.success._tag === "Record") records.push(loaded.success.record)
      }
      if (failed.length > 0) {
        return yield* fail("*", "list")(`${failed.length} record(s) in ${dir} could not be read (${records.length} readable): ${failed.join("; ")}`)
      }
      return records
    }).pipe(Effect.withSpan("StageStore.list"))

    return StageStore.of({ get, put, remove, list })
  })
)

export const layer = StageStoreLive
