/**
 * The start-up snapshot's code cache (scripts/snapshot.mjs): found in Node's blob layout, trimmed
 * to a set of built-ins with the rest of the blob byte for byte the same, refused for any other
 * layout; and the build's dist/node.blob holds the cache of what a start compiles, not all 388.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { codeCacheMode, codeCacheOf as parse, compiledBuiltins, trimCodeCache as trim } from "../../scripts/snapshot.mjs"

const ROOT = path.resolve(import.meta.dirname, "../..")
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b }
const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b }
const str = (s: string) => Buffer.concat([u64(s.length), Buffer.from(s, "latin1")])

/** A blob in Node 24's layout: V8 data and records that look like anything, then the code cache. */
const blob = (options: { version?: string; flags?: number; magic?: number; cache: ReadonlyArray<readonly [string, number]> }) => {
  const v8 = Buffer.alloc(4096)
  // Bytes that could pass for a count and an id if the search did not insist on reaching the end.
  v8.set(Buffer.concat([u64(1), str("internal/fake")]), 100)
  const records = Buffer.concat([u64(2), str("env"), u64(3), Buffer.from([1, 2, 3]), u64(7)])
  return Buffer.concat([
    u32(options.magic ?? 0x0143da19), Buffer.from([1]),
    str(options.version ?? process.version.slice(1)), str(process.arch), str(process.platform), u32(options.flags ?? 0),
    i32(v8.length), v8, records,
    u64(options.cache.length),
    ...options.cache.map(([id, size]) => Buffer.concat([str(id), u64(size), Buffer.alloc(size, id.length)]))
  ])
}

describe("the start-up snapshot's code cache (scripts/snapshot.mjs)", () => {
  const cache = [["wasi", 30], ["internal/http2/core", 500], ["tls", 120], ["internal/quic/quic", 900]] as const

  it("is found where Node's layout ends the blob, every entry with its id and size", () => {
    const b = blob({ cache })
    const found = parse(b)
    assert.deepStrictEqual(found.entries.map((e) => [e.id, e.size]), cache.map(([id, size]) => [id, size]))
    assert.strictEqual(found.withoutCodeCache, false)
    assert.strictEqual(found.entries.at(-1)!.end, b.length)
    assert.strictEqual(parse(blob({ cache: [], flags: 1 })).withoutCodeCache, true)
    assert.deepStrictEqual(parse(blob({ cache: [], flags: 1 })).entries, [])
  })

  it("trimmed to a set of built-ins, the rest of the blob byte for byte the same", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-blob-"))
    const file = path.join(dir, "node.blob")
    const before = blob({ cache })
    fs.writeFileSync(file, before)
    const { kept, dropped } = trim(file, new Set(["internal/http2/core", "tls", "not/in/the/cache"]))
    assert.deepStrictEqual(kept.map((e) => e.id), ["internal/http2/core", "tls"])
    assert.deepStrictEqual(dropped.map((e) => e.id), ["wasi", "internal/quic/quic"])
    const after = fs.readFileSync(file)
    assert.deepStrictEqual(after, blob({ cache: [["internal/http2/core", 500], ["tls", 120]] }))
    const start = parse(before).start
    assert.deepStrictEqual(after.subarray(0, start), before.subarray(0, start))
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("refuses what is not a blob of this Node, naming what did not match, and a blob built without a cache", () => {
    assert.throws(() => parse(blob({ cache, magic: 0x12345678 })), /bad magic/)
    assert.throws(() => parse(blob({ cache, version: "22.0.0" })), new RegExp(`made by Node 22\\.0\\.0 .* read by ${process.version.replace(/\./g, "\\.")}`))
    assert.throws(() => parse(Buffer.concat([blob({ cache }), Buffer.from([0])])), /no code cache ends the file/)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-blob-"))
    fs.writeFileSync(path.join(dir, "node.blob"), blob({ cache: [], flags: 1 }))
    assert.throws(() => trim(path.join(dir, "node.blob"), new Set(["tls"])), /built without a code cache/)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("RDS_CSI_SNAPSHOT_CODE_CACHE: trim by default, all or none; anything else (round 6's '1') is refused by name", () => {
    assert.strictEqual(codeCacheMode(undefined), "trim")
    assert.strictEqual(codeCacheMode(""), "trim")
    assert.strictEqual(codeCacheMode("none"), "none")
    assert.strictEqual(codeCacheMode("all"), "all")
    assert.throws(() => codeCacheMode("1"), "RDS_CSI_SNAPSHOT_CODE_CACHE: must be trim, all or none (got '1')")
  })

  it("the built-ins a process compiled, from Node's CODE_CACHE debug lines", () => {
    const out = [
      "Compiling http2 with code cache lazily", "Code cache of http2 (BufferNotOwned) is accepted",
      "Compiling internal/http2/core without code cache lazily", "{\"message\":\"Compiling nothing\"}", "Compiling tls with code cache lazily"
    ].join("\n")
    assert.deepStrictEqual([...compiledBuiltins(out)], ["http2", "internal/http2/core", "tls"])
  })

  it("the build's dist/node.blob keeps the cache of what a start compiles (http2, tls, child_process), not every built-in nor those evaluated into it (net, crypto)", () => {
    const found = parse(fs.readFileSync(path.join(ROOT, "dist/node.blob")))
    const ids = found.entries.map((e) => e.id)
    for (const id of ["http2", "internal/http2/core", "tls", "internal/tls/wrap", "child_process", "internal/child_process"]) assert.include(ids, id)
    for (const id of ["wasi", "internal/quic/quic", "internal/deps/acorn/acorn/dist/acorn", "repl", "net", "crypto", "internal/crypto/keys"]) assert.notInclude(ids, id)
    assert.isBelow(found.entries.reduce((n, e) => n + e.size, 0), 1_000_000)
  })
})
