/**
 * The emulator's RouterOS command-line parser: every command form the controller sends,
 * quoting and escapes, and RouterOS's error texts with their columns.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { type Parsed, parseCommandLine } from "../../src/emulator/CommandLine.ts"

const ok = (line: string): Parsed => {
  const r = parseCommandLine(line)
  if (Result.isFailure(r)) throw new Error(`${line}: ${r.failure.message}`)
  return r.success
}
const err = (line: string): string => {
  const r = parseCommandLine(line)
  if (Result.isSuccess(r)) throw new Error(`${line}: parsed, expected an error`)
  return r.failure.message
}

describe("parseCommandLine", () => {
  it("/disk add with every key the controller uses, values bare or quoted", () => {
    const p = ok(
      "/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=50G slot=pvc-1 nvme-tcp-export=yes " +
        "nvme-tcp-server-port=4420 nvme-tcp-server-nqn=\"nqn.2000-02.com.mikrotik:pvc-1\" nvme-tcp-server-allow-host-name=\"\""
    )
    assert.strictEqual(p._tag, "Add")
    if (p._tag !== "Add") return
    assert.deepStrictEqual(p.args.map((a) => [a.key, a.value]), [
      ["type", "file"],
      ["file-path", "/storage-pool/k8s/pvc-1.img"],
      ["file-size", "50G"],
      ["slot", "pvc-1"],
      ["nvme-tcp-export", "yes"],
      ["nvme-tcp-server-port", "4420"],
      ["nvme-tcp-server-nqn", "nqn.2000-02.com.mikrotik:pvc-1"],
      ["nvme-tcp-server-allow-host-name", ""]
    ])
    assert.strictEqual(p.args[0]!.column, 11)
  })

  it("print detail, with where: = and ~, quoted or not, several conditions with or without `and`", () => {
    assert.deepStrictEqual(ok("/disk print detail"), { _tag: "Print", menu: "disk", detail: true, where: [] })
    const one = ok("/disk print detail where slot=pvc-1")
    assert.deepStrictEqual(one, { _tag: "Print", menu: "disk", detail: true, where: [{ key: "slot", op: "=", value: "pvc-1", column: 26 }] })
    const re = ok("/disk print detail where slot~\"pvc-\"")
    assert.deepStrictEqual(re._tag === "Print" ? re.where.map((c) => [c.key, c.op, c.value]) : [], [["slot", "~", "pvc-"]])
    const pool = ok("/disk print detail where mount-point=\"storage-pool\"")
    assert.deepStrictEqual(pool._tag === "Print" ? pool.where.map((c) => c.value) : [], ["storage-pool"])
    const both = ok("/disk print detail where slot~\"pvc-\" and nvme-tcp-export=yes type!=directory")
    assert.deepStrictEqual(both._tag === "Print" ? both.where.map((c) => `${c.key}${c.op}${c.value}`) : [], [
      "slot~pvc-",
      "nvme-tcp-export=yes",
      "type!=directory"
    ])
    const file = ok("/file print detail where name~\"storage-pool/k8s/\"")
    assert.deepStrictEqual(file._tag === "Print" ? [file.menu, file.where[0]!.value] : [], ["file", "storage-pool/k8s/"])
  })

  it("menus by slashes or spaces, leading slash optional, without-paging ignored", () => {
    const expected: Parsed = { _tag: "Print", menu: "disk", detail: true, where: [] }
    assert.deepStrictEqual(ok("/disk/print detail"), expected)
    assert.deepStrictEqual(ok("disk print detail"), expected)
    assert.deepStrictEqual(ok("  /disk  print  detail  without-paging "), expected)
    assert.deepStrictEqual(ok("/system resource print"), { _tag: "Print", menu: "system/resource", detail: false, where: [] })
    assert.deepStrictEqual(ok("/system/resource/print"), { _tag: "Print", menu: "system/resource", detail: false, where: [] })
    assert.deepStrictEqual(ok(""), { _tag: "Empty" })
    assert.deepStrictEqual(ok("/disk"), { _tag: "Empty" })
  })

  it("set and remove take [find ...] (with or without `where`), item numbers, or numbers=", () => {
    assert.deepStrictEqual(ok("/disk set [find slot=pvc-1] file-size=60G"), {
      _tag: "Set",
      menu: "disk",
      target: { _tag: "Find", where: [{ key: "slot", op: "=", value: "pvc-1", column: 17 }] },
      args: [{ key: "file-size", value: "60G", column: 29 }]
    })
    const w = ok("/disk remove [ find where slot=\"pvc-1\" ]")
    assert.deepStrictEqual(w._tag === "Remove" && w.target._tag === "Find" ? w.target.where.map((c) => c.value) : [], ["pvc-1"])
    const f = ok("/file remove [find name=\"storage-pool/k8s/pvc-1.img\"]")
    assert.deepStrictEqual(f._tag === "Remove" ? [f.menu, f.target._tag] : [], ["file", "Find"])
    const n = ok("/disk remove numbers=7")
    assert.deepStrictEqual(n._tag === "Remove" && n.target._tag === "Numbers" ? n.target.items : [], ["7"])
    const list = ok("/disk remove 1,2,*1A")
    assert.deepStrictEqual(list._tag === "Remove" && list.target._tag === "Numbers" ? list.target.items : [], ["1", "2", "*1A"])
    const s = ok("/disk set [find slot=a] nvme-tcp-server-allow-host-name=nqn.2014-08.org.nvmexpress:uuid:1 nvme-tcp-export=no")
    assert.deepStrictEqual(s._tag === "Set" ? s.args.map((a) => a.key) : [], ["nvme-tcp-server-allow-host-name", "nvme-tcp-export"])
  })

  it("quoted values: \\\" \\\\ and the other RouterOS escapes; spaces and ] kept inside quotes", () => {
    const p = ok("/disk add slot=\"a \\\"b\\\" c\\\\d\\_e\\41]\" type=file")
    assert.deepStrictEqual(p._tag === "Add" ? p.args.map((a) => a.value) : [], ["a \"b\" c\\d eA]", "file"])
    const empty = ok("/disk print detail where slot=\"\"")
    assert.deepStrictEqual(empty._tag === "Print" ? empty.where[0]!.value : "x", "")
  })

  it("errors print RouterOS's texts with 1-based columns", () => {
    assert.strictEqual(err("/disk foo"), "bad command name foo (line 1 column 7)")
    assert.strictEqual(err("/disks print"), "bad command name disks (line 1 column 2)")
    assert.strictEqual(err("/disk print detail where slot=\"abc"), "syntax error (line 1 column 35)")
    assert.strictEqual(err("/disk add type=file foo=bar"), "expected end of command (line 1 column 21)")
    assert.strictEqual(err("/disk set [find slot=a] file-path=/x"), "expected end of command (line 1 column 25)")
    assert.strictEqual(err("/disk print detail where bogus=1"), "expected end of command (line 1 column 26)")
    assert.strictEqual(err("/disk print detail where"), "syntax error (line 1 column 25)")
    assert.strictEqual(err("/disk print terse"), "expected end of command (line 1 column 13)")
    assert.strictEqual(err("/disk remove [find slot=a"), "syntax error (line 1 column 26)")
    assert.strictEqual(err("/disk remove [foo slot=a]"), "bad command name foo (line 1 column 15)")
    assert.strictEqual(err("/disk remove [find slot=a] extra"), "expected end of command (line 1 column 28)")
    assert.strictEqual(err("/disk add slot=\"a\\q\""), "syntax error (line 1 column 18)")
    assert.strictEqual(err("/disk add slot=\"a\"b"), "syntax error (line 1 column 19)")
    assert.strictEqual(err("/disk add slot"), "syntax error (line 1 column 15)")
    assert.strictEqual(err("/file add name=x"), "bad command name add (line 1 column 7)")
  })
})
