import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StageRecord, StageStore } from "../../src/node/StageStore.ts"
import { writeAtomically } from "../../src/node/AtomicFile.ts"
import { fileNameFor, moveIfSame, QUARANTINE, StageStoreLive } from "../../src/node/StageStoreLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"

const record = (volumeId: string, over: Partial<Pick<StageRecord, "port" | "publishedTargets" | "version">> = {}): StageRecord => ({
  version: 1,
  volumeId,
  stagingPath: `/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/${volumeId}/globalmount`,
  nqn: `nqn.2000-02.com.mikrotik:${volumeId}`,
  address: "10.0.0.5",
  port: 4420,
  ctrlLossTmo: -1,
  reconnectDelay: 5,
  selector: { nsid: 1 },
  device: { name: "nvme0n1", devT: "259:1", identity: { nsid: 1, nguid: "a3c5fa9cfd726d3e6d9d528055c24900" } },
  accessType: "Mount",
  fsType: "ext4",
  mountFlags: ["noatime"],
  readOnly: false,
  connectedByPlugin: true,
  complete: true,
  publishedTargets: [{ path: "/var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/pvc-1/mount", readOnly: false }],
  stagedAt: "2026-11-26T10:00:00.000Z",
  ...over
})

/** A fresh state dir per test; `dir` is created lazily by the store itself. */
const withStore = <A, E>(f: (dir: string) => Effect.Effect<A, E, StageStore>) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "stage-"))
  const dir = path.join(base, "state")
  return f(dir).pipe(
    Effect.provide(StageStoreLive.pipe(Layer.provide(Settings.layer(testSettings({ stateDir: dir }))))),
    Effect.ensuring(Effect.sync(() => fs.rmSync(base, { recursive: true, force: true })))
  )
}
/** Collects log lines as `Level: message`. */
const logSink = () => {
  const lines: Array<string> = []
  const logger = Logger.make((o) => {
    const parts = Array.isArray(o.message) ? o.message : [o.message]
    lines.push(`${o.logLevel}: ${parts.map(String).join(" ")}`)
  })
  return { lines, layer: Logger.layer([logger]) }
}
const plain = (r: unknown) => JSON.parse(JSON.stringify(r)) as unknown
const asStored = (r: StageRecord) => plain(Schema.decodeUnknownSync(StageRecord)(r))

describe("StageStoreLive", () => {
  it.live("put then get gives the record back; the file is private and no temp file is left", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        assert.strictEqual(yield* store.get("pvc-1"), undefined)
        assert.deepStrictEqual(yield* store.list, [])
        yield* store.put(record("pvc-1"))
        assert.deepStrictEqual(plain(yield* store.get("pvc-1")), asStored(record("pvc-1")))
        assert.deepStrictEqual(fs.readdirSync(dir), ["pvc-1.json"])
        assert.strictEqual(fs.statSync(path.join(dir, "pvc-1.json")).mode & 0o777, 0o600)
        assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700)
        yield* store.put(record("pvc-1", { publishedTargets: [] }))
        assert.deepStrictEqual((yield* store.get("pvc-1"))?.publishedTargets, [])
        assert.deepStrictEqual(fs.readdirSync(dir), ["pvc-1.json"])
      })))

  it.live("what put remembers is what a read of its file gives; a file replaced by hand since is read again", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        const full: StageRecord = {
          ...record("pvc-1"),
          keepAliveTmo: 5,
          selector: { nguid: "a3c5fa9cfd726d3e6d9d528055c24900" },
          device: { name: "nvme3n1", devT: "259:7", identity: { nsid: 1, uuid: "0b5e1b1c-0000-4000-8000-000000000001", wwid: "eui.x" } },
          bootId: "b-1",
          unstaging: true,
          supersededDevTs: ["259:1"]
        }
        const { fsType: _fsType, ...mounted } = record("pvc-2")
        const bare: StageRecord = { ...mounted, accessType: "Block", mountFlags: [], publishedTargets: [] }
        for (const r of [full, bare]) {
          yield* store.put(r)
          const remembered = yield* store.get(r.volumeId)
          // another store over the same directory has nothing in memory: it reads and decodes the file
          const read = yield* Effect.gen(function*() {
            return yield* (yield* StageStore).get(r.volumeId)
          }).pipe(
            Effect.provide(StageStoreLive.pipe(Layer.provide(Settings.layer(testSettings({ stateDir: dir })))))
          )
          assert.deepStrictEqual(remembered, read)
          assert.deepStrictEqual(plain(remembered), asStored(r))
        }
        // replaced behind the store's back (a person, another tool): the new file is what get answers
        const file = path.join(dir, "pvc-1.json")
        const edited = { ...JSON.parse(fs.readFileSync(file, "utf8")), port: 4421 }
        fs.writeFileSync(`${file}.new`, JSON.stringify(edited))
        fs.renameSync(`${file}.new`, file)
        assert.strictEqual((yield* store.get("pvc-1"))?.port, 4421)
      })))

  it.live("list returns every record; remove is idempotent", () =>
    withStore(() =>
      Effect.gen(function*() {
        const store = yield* StageStore
        for (const id of ["pvc-b", "pvc-a", "pvc-c"]) yield* store.put(record(id))
        yield* store.remove("pvc-b")
        yield* store.remove("pvc-b")
        assert.deepStrictEqual((yield* store.list).map((r) => r.volumeId), ["pvc-a", "pvc-c"])
      })))

  it.live("file names are derived safely: odd IDs stay inside the dir and apart, long ones are hashed", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        const ids = ["..", ".", "%41", "A", "a:b#c?d", ":".repeat(128)]
        for (const id of ids) yield* store.put(record(id))
        for (const id of ids) assert.strictEqual((yield* store.get(id))?.volumeId, id)
        assert.strictEqual(new Set(ids.map(fileNameFor)).size, ids.length)
        assert.match(fileNameFor(":".repeat(128)), /^sha256-[0-9a-f]{64}\.json$/)
        assert.isFalse(fs.readdirSync(dir).some((n) => n.startsWith(".")), "no hidden record files")
        assert.strictEqual(fs.readdirSync(dir).length, ids.length)
        assert.deepStrictEqual(fs.readdirSync(path.dirname(dir)), ["state"], "nothing written beside the state dir")
        assert.sameMembers((yield* store.list).map((r) => r.volumeId), ids)
      })))

  it.live("list moves garbage, schema-invalid and foreign files to quarantine/, logs them and returns the rest", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        for (const id of ["pvc-a", "pvc-z"]) yield* store.put(record(id))
        fs.writeFileSync(path.join(dir, "pvc-torn.json"), `{"version":1,"volumeId":"pvc-to`)
        fs.writeFileSync(path.join(dir, "pvc-old.json"), JSON.stringify({ ...record("pvc-old"), version: 2 }))
        fs.writeFileSync(path.join(dir, "pvc-x.json"), JSON.stringify(record("pvc-y")))
        fs.mkdirSync(path.join(dir, "pvc-dir.json"))
        const before = Date.now()
        const log = logSink()
        const listed = yield* store.list.pipe(Effect.provide(log.layer))
        assert.deepStrictEqual(listed.map((r) => r.volumeId), ["pvc-a", "pvc-z"])
        assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["pvc-a.json", "pvc-z.json", QUARANTINE])
        const moved = fs.readdirSync(path.join(dir, QUARANTINE)).sort()
        assert.deepStrictEqual(moved.map((n) => n.replace(/\.\d+$/, "")), ["pvc-dir.json", "pvc-old.json", "pvc-torn.json", "pvc-x.json"])
        for (const n of moved) assert.isAtLeast(Number(n.slice(n.lastIndexOf(".") + 1)), before, `${n} ends in the epoch-ms`)
        const torn = moved.find((n) => n.startsWith("pvc-torn.json."))!
        assert.strictEqual(fs.readFileSync(path.join(dir, QUARANTINE, torn), "utf8"), `{"version":1,"volumeId":"pvc-to`, "kept as it was")
        assert.strictEqual(log.lines.length, 4)
        for (const [name, why] of [["pvc-torn.json", "not JSON"], ["pvc-old.json", "not a stage record"], ["pvc-x.json", "holds the record of 'pvc-y'"], ["pvc-dir.json", "not a regular file"]] as const) {
          assert.isTrue(log.lines.some((l) => l.startsWith("Error:") && l.includes(path.join(dir, name)) && l.includes(why)), `${name} logged: ${log.lines.join("\n")}`)
        }
        assert.deepStrictEqual((yield* store.list).map((r) => r.volumeId), ["pvc-a", "pvc-z"], "the quarantine folder is not read")
      })))

  it.live("get of a bad record quarantines it and fails naming both places; the retry finds the volume not staged", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        yield* store.put(record("pvc-ok"))
        fs.writeFileSync(path.join(dir, "pvc-torn.json"), "")
        fs.writeFileSync(path.join(dir, "pvc-x.json"), JSON.stringify(record("pvc-y")))
        const log = logSink()
        const err = yield* Effect.flip(store.get("pvc-torn")).pipe(Effect.provide(log.layer))
        assert.strictEqual(log.lines.length, 1)
        assert.strictEqual(err.operation, "read")
        assert.strictEqual(err.volumeId, "pvc-torn")
        assert.include(err.detail, `${path.join(dir, "pvc-torn.json")}: not JSON`)
        assert.match(err.detail, new RegExp(`moved to ${path.join(dir, QUARANTINE, "pvc-torn\\.json\\.")}\\d+$`))
        assert.isFalse(fs.existsSync(path.join(dir, "pvc-torn.json")))
        assert.strictEqual(yield* store.get("pvc-torn"), undefined)
        assert.include((yield* Effect.flip(store.get("pvc-x")).pipe(Effect.provide(log.layer))).detail, "holds the record of 'pvc-y'")
        assert.strictEqual(yield* store.get("pvc-x"), undefined)
        assert.strictEqual((yield* store.get("pvc-ok"))?.volumeId, "pvc-ok")
        assert.strictEqual(fs.readdirSync(path.join(dir, QUARANTINE)).length, 2)
      })))

  it.live("a file replaced or removed after it was read is not moved to quarantine", () =>
    Effect.promise(async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage-"))
      try {
        const file = path.join(dir, "pvc-1.json")
        fs.writeFileSync(file, "{")
        const read = fs.statSync(file, { bigint: true }).ino
        fs.writeFileSync(path.join(dir, "new"), "{}")
        fs.renameSync(path.join(dir, "new"), file)
        assert.isFalse(await moveIfSame(file, read, path.join(dir, QUARANTINE, "pvc-1.json.1")))
        assert.strictEqual(fs.readFileSync(file, "utf8"), "{}")
        assert.isFalse(await moveIfSame(path.join(dir, "gone.json"), read, path.join(dir, QUARANTINE, "gone.json.1")))
        assert.isTrue(await moveIfSame(file, fs.statSync(file, { bigint: true }).ino, path.join(dir, QUARANTINE, "pvc-1.json.1")))
        assert.deepStrictEqual(fs.readdirSync(dir), [QUARANTINE])
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }))

  it.live("an I/O error that may pass moves nothing and fails list and get", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        yield* store.put(record("pvc-1"))
        // a symlink loop: stat fails with ELOOP, not a property of a record's content
        fs.symlinkSync("pvc-loop.json", path.join(dir, "pvc-loop.json"))
        const err = yield* Effect.flip(store.list)
        assert.strictEqual(err.operation, "list")
        assert.include(err.detail, "pvc-loop.json")
        assert.strictEqual((yield* Effect.flip(store.get("pvc-loop"))).operation, "read")
        assert.isTrue(fs.lstatSync(path.join(dir, "pvc-loop.json")).isSymbolicLink())
        assert.isFalse(fs.existsSync(path.join(dir, QUARANTINE)))
      })))

  it.live("a write that fails leaves the old record and no temp file; leftover temp files are ignored", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        yield* store.put(record("pvc-1"))
        // an invalid record is refused before anything touches the disk
        const bad = yield* Effect.flip(store.put({ ...record("pvc-1"), port: "4420" as unknown as number }))
        assert.strictEqual(bad.operation, "write")
        // the rename fails (the target name is taken by a non-empty directory)
        yield* store.put(record("pvc-2"))
        fs.rmSync(path.join(dir, "pvc-2.json"))
        fs.mkdirSync(path.join(dir, "pvc-2.json"))
        fs.writeFileSync(path.join(dir, "pvc-2.json", "x"), "")
        assert.strictEqual((yield* Effect.flip(store.put(record("pvc-2")))).operation, "write")
        assert.deepStrictEqual(fs.readdirSync(dir).filter((n) => n.endsWith(".tmp")), [])
        fs.rmSync(path.join(dir, "pvc-2.json"), { recursive: true })
        // a crash between write and rename leaves a dot-file: not a record
        fs.writeFileSync(path.join(dir, ".pvc-1.json.1-deadbeef.tmp"), "{")
        assert.deepStrictEqual((yield* store.list).map((r) => r.volumeId), ["pvc-1"])
        assert.strictEqual((yield* store.get("pvc-1"))?.port, 4420)
      })))
})

describe("writeAtomically's flushes", () => {
  it("a new record: its content, then the directory (its name survives a power loss); a replacement: its content only, before the rename", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage-flush-"))
    try {
      const flushed: Array<string> = []
      const flush = (fd: number, what: "file" | "directory") =>
        new Promise<void>((resolve, reject) => {
          const st = fs.fstatSync(fd)
          // the content flushed is the temp file's, while the record's name still holds the old one
          const atName = fs.existsSync(path.join(dir, "pvc-1.json")) ? fs.readFileSync(path.join(dir, "pvc-1.json"), "utf8") : "absent"
          flushed.push(`${what} ${st.isDirectory() ? "dir" : `file of ${st.size} bytes`}; pvc-1.json ${atName}`)
          fs.fsync(fd, (e) => (e === null ? resolve() : reject(e)))
        })
      await writeAtomically(dir, "pvc-1.json", "first", flush)
      await writeAtomically(dir, "pvc-1.json", "second!", flush)
      assert.deepStrictEqual(flushed, [
        "file file of 5 bytes; pvc-1.json absent",
        "directory dir; pvc-1.json first",
        "file file of 7 bytes; pvc-1.json first"
      ])
      assert.strictEqual(fs.readFileSync(path.join(dir, "pvc-1.json"), "utf8"), "second!")
      assert.deepStrictEqual(fs.readdirSync(dir), ["pvc-1.json"])
      // a flush that fails: the write fails, the old record stays, no temp file is left
      await writeAtomically(dir, "pvc-1.json", "third", () => Promise.reject(new Error("EIO: i/o error, fsync"))).then(
        () => assert.fail("the write must fail"),
        (e: Error) => assert.match(e.message, /EIO/)
      )
      assert.strictEqual(fs.readFileSync(path.join(dir, "pvc-1.json"), "utf8"), "second!")
      assert.deepStrictEqual(fs.readdirSync(dir), ["pvc-1.json"])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
