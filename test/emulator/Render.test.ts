/**
 * The emulator's `print detail` renderer against the outputs captured from a real RDS
 * (test/fixtures/routeros, copied from the reference README): byte for byte.
 */
import { assert, describe, it } from "@effect/vitest"
import { execute } from "../../src/emulator/Interpreter.ts"
import type { EmulatorState } from "../../src/emulator/Model.ts"
import { diskRecord, poolRecord } from "../../src/emulator/Records.ts"
import {
  bytes,
  formatSize,
  groupDigits,
  plain,
  quote,
  quoted,
  type RenderRecord,
  renderDetail,
  renderItem,
  verbatim
} from "../../src/emulator/Render.ts"
import { fixtureText } from "../fixtures/fixtures.ts"

const JAN_1_2025 = Date.UTC(2025, 0, 1)
const GiB = 2 ** 30
const ctx = { now: JAN_1_2025, bootedAt: JAN_1_2025, flags: false }

/** The README's disk: /storage-pool/test.img, 50 GiB, exported, any host. */
const readmeState = (poolSize: number, extraUsed = 0): EmulatorState => ({
  version: 1,
  pool: { size: poolSize, created: JAN_1_2025 },
  nextId: 2,
  disks: [{
    id: 1,
    slot: "pvc-test-123",
    filePath: "/storage-pool/test.img",
    nvmeTcpExport: true,
    nvmeTcpServerPort: 4420,
    nvmeTcpServerNqn: "nqn.2000-02.com.mikrotik:pvc-test-123",
    allowHostName: ""
  }],
  files: [
    { name: "storage-pool", type: "directory", size: 0, created: JAN_1_2025 },
    { name: "storage-pool/test.img", type: "file", size: 50 * GiB, created: JAN_1_2025 },
    ...(extraUsed > 0 ? [{ name: "storage-pool/other.img", type: "file" as const, size: extraUsed, created: JAN_1_2025 }] : [])
  ]
})

describe("the captured samples, byte for byte", () => {
  it("one disk (`/disk print detail where slot=...`): no index, 15-space continuation lines, the README's wrapping", () => {
    const want = fixtureText("routeros/disk-detail.txt")
    const s = readmeState(100 * GiB)
    assert.strictEqual(renderDetail([diskRecord(s, s.disks[0]!)], { indexed: false, breakBefore: (k) => ["size", "file-path", "file-size"].includes(k) }), want)
    assert.strictEqual(execute(s, "/disk print detail where slot=pvc-test-123", ctx).output, want)
    assert.strictEqual(execute(s, "/disk print detail where slot=\"pvc-test-123\"", ctx).output, want)
  })

  it("the pool (`where mount-point=\"storage-pool\"`): size, free, use rounded, creation-time", () => {
    const want = fixtureText("routeros/pool-detail.txt")
    // 7 681 574 174 720 bytes, 5 632 440 000 000 free: the 50 GiB disk plus 1 995 447 271 424 more in use
    const s = readmeState(7_681_574_174_720, 7_681_574_174_720 - 5_632_440_000_000 - 50 * GiB)
    assert.strictEqual(renderDetail([poolRecord(s)], { indexed: false }), want)
    assert.strictEqual(execute(s, "/disk print detail where mount-point=\"storage-pool\"", ctx).output, want)
    assert.strictEqual(execute(s, "/disk print detail where mount-point=storage-pool", ctx).output, want)
  })

  it("a list: ` 0  ` indexes, records separated by an empty line (the sample's records are abbreviated)", () => {
    const rec = (n: number, size: number): RenderRecord => [
      ["type", plain("file")],
      ["slot", quoted(`pvc-test-${n}`)],
      ["size", bytes(size)],
      ["file-path", plain(`/storage-pool/test${n}.img`)],
      ["file-size", verbatim(formatSize(size))],
      ["nvme-tcp-export", plain("yes")],
      ["nvme-tcp-server-port", plain("4420")],
      ["nvme-tcp-server-nqn", quoted(`nqn.2000-02.com.mikrotik:pvc-test-${n}`)]
    ]
    assert.strictEqual(renderDetail([rec(1, 50 * GiB), rec(2, 100 * GiB)], { indexed: true }), fixtureText("routeros/disk-list.txt"))
  })
})

describe("values", () => {
  it("byte counts in groups of three digits", () => {
    assert.deepStrictEqual([0, 512, 1000, 53_687_091_200, 7_681_574_174_720].map(groupDigits), [
      "0", "512", "1 000", "53 687 091 200", "7 681 574 174 720"
    ])
  })

  it("sizes: one decimal in the largest unit holding at least 10 of it, as RouterOS prints them", () => {
    assert.deepStrictEqual(
      [50 * GiB, 100 * GiB, 512 * 2 ** 20, GiB, 1.5 * GiB, 10 * GiB, 2 ** 40, 10 * 2 ** 40, 1_970_279, 4096].map(formatSize),
      ["50.0GiB", "100.0GiB", "512.0MiB", "1024.0MiB", "1536.0MiB", "10.0GiB", "1024.0GiB", "10.0TiB", "1924.1KiB", "4096B"]
    )
  })

  it("quoting: Plain only when needed, Quoted always, Verbatim never; RouterOS escapes", () => {
    const r = renderDetail([[
      ["a", plain("/storage-pool/x.img")],
      ["b", plain("")],
      ["c", plain("has space")],
      ["d", quoted("x")],
      ["e", verbatim("jan/01/2025 00:00:00")],
      ["f", plain("nqn.2000-02.com.mikrotik:x")]
    ]], { indexed: false })
    assert.strictEqual(r, "a=/storage-pool/x.img b=\"\" c=\"has space\" d=\"x\" e=jan/01/2025 00:00:00\n               f=\"nqn.2000-02.com.mikrotik:x\"\n")
    assert.strictEqual(quote("a\"b\\c$d\ne"), "\"a\\\"b\\\\c\\$d\\0Ae\"")
  })

  it("no records: nothing at all", () => {
    assert.strictEqual(renderDetail([], { indexed: true }), "")
    assert.strictEqual(renderDetail([], { indexed: false }), "")
  })

  it("flags: a header, then the letters after the index in a column as wide as the legend", () => {
    const r = renderDetail([[["slot", quoted("a")]], [["slot", quoted("b")]]], {
      indexed: true,
      flags: { legend: [["X", "disabled"], ["t", "nvme-tcp-export"]], letters: ["t", ""] }
    })
    assert.strictEqual(r, "Flags: X - disabled; t - nvme-tcp-export\n 0 t  slot=\"a\"\n\n 1    slot=\"b\"\n")
  })

  it("a single-item menu: keys right-aligned, `key: value`", () => {
    assert.strictEqual(renderItem([["uptime", "1d"], ["board-name", "RDS2216"]]), "      uptime: 1d\n  board-name: RDS2216\n")
  })
})

describe("wrapping, over random records", () => {
  // a small deterministic generator: the same cases on every run
  let seed = 42
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const word = () => Array.from({ length: 1 + rand(30) }, () => "abcdefghij-./: \"xyz0123456789"[rand(29)]).join("")
  const value = () => {
    const k = rand(4)
    return k === 0 ? plain(word()) : k === 1 ? quoted(word()) : k === 2 ? bytes(rand(2 ** 31) * rand(5000)) : verbatim(word().replace(/[ "]/g, "_"))
  }

  it("no line holding two pairs is longer than 78; every pair is whole on one line, in order", () => {
    for (let n = 0; n < 300; n++) {
      const records = Array.from({ length: 1 + rand(3) }, () =>
        Array.from({ length: 1 + rand(12) }, (_, i) => [`k${i}-${word().replace(/[^a-z]/g, "")}`, value()] as const))
      const out = renderDetail(records, { indexed: rand(2) === 0 })
      for (const line of out.split("\n")) {
        const pairs = line.trim().replace(/^\d+ {2}/, "").match(/ k\d+-/g) ?? []
        if (pairs.length > 0) assert.isAtMost(line.length, 78, line)
      }
      const flat = out.replace(/\n {15}/g, " ")
      for (const record of records) {
        let at = 0
        for (const [k] of record) {
          const i = flat.indexOf(`${k}=`, at)
          assert.isAtLeast(i, at, `${k} missing or out of order in\n${out}`)
          at = i
        }
      }
    }
  })
})
