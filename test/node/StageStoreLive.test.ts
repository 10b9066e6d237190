import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StageRecord, StageStore } from "../../src/node/StageStore.ts"
import { fileNameFor, StageStoreLive } from "../../src/node/StageStoreLive.ts"
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

  it.live("a corrupt or foreign file is reported by list and get, never skipped silently", () =>
    withStore((dir) =>
      Effect.gen(function*() {
        const store = yield* StageStore
        yield* store.put(record("pvc-ok"))
        fs.writeFileSync(path.join(dir, "pvc-torn.json"), `{"version":1,"volumeId":"pvc-to`)
        fs.writeFileSync(path.join(dir, "pvc-old.json"), JSON.stringify({ ...record("pvc-old"), version: 2 }))
        fs.writeFileSync(path.join(dir, "pvc-x.json"), JSON.stringify(record("pvc-y")))
        const err = yield* Effect.flip(store.list)
        assert.strictEqual(err.operation, "list")
        assert.include(err.detail, "3 unreadable record(s)")
        assert.include(err.detail, "pvc-torn.json: not JSON")
        assert.include(err.detail, "pvc-old.json: not a stage record")
        assert.include(err.detail, "pvc-x.json: holds the record of 'pvc-y'")
        assert.include(err.detail, "(1 readable)")
        assert.strictEqual((yield* Effect.flip(store.get("pvc-torn"))).operation, "read")
        assert.include((yield* Effect.flip(store.get("pvc-x"))).detail, "holds the record of 'pvc-y'")
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
