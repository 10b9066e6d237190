/**
 * The emulator's RouterOS shell as a pure function: what each command prints, its exit
 * status, the next state and the backend actions it asks for.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ExecContext, execute, type Outcome } from "../../src/emulator/Interpreter.ts"
import { type EmulatorState, freeBytes, initialState } from "../../src/emulator/Model.ts"

const T0 = Date.UTC(2025, 0, 1)
const GiB = 2 ** 30
const ctx: ExecContext = { now: T0, bootedAt: T0 - 90_061_000, flags: false }

const addCmd = (slot: string, size = "10G", extra = "") =>
  `/disk add type=file file-path=/storage-pool/k8s/${slot}.img file-size=${size} slot=${slot} nvme-tcp-export=yes ` +
  `nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:${slot}${extra}`

/** Runs commands in order; returns every outcome and the last state. */
const session = (lines: ReadonlyArray<string>, start: EmulatorState = initialState(100 * GiB, T0), c = ctx) => {
  let state = start
  const outcomes: Array<Outcome> = []
  for (const line of lines) {
    const o = execute(state, line, c)
    outcomes.push(o)
    state = o.state
  }
  return { outcomes, state, last: outcomes[outcomes.length - 1]! }
}

describe("/disk add", () => {
  it("creates the directories, the file and the disk, and asks for the export; prints nothing", () => {
    const { last, state } = session([addCmd("pvc-1")])
    assert.deepStrictEqual([last.output, last.exitCode], ["", 0])
    assert.deepStrictEqual(last.actions.map((a) => a._tag), ["CreateDirectory", "CreateFile", "Export"])
    assert.deepStrictEqual(state.files.map((f) => [f.name, f.type, f.size]), [
      ["storage-pool", "directory", 0],
      ["storage-pool/k8s", "directory", 0],
      ["storage-pool/k8s/pvc-1.img", "file", 10 * GiB]
    ])
    assert.strictEqual(freeBytes(state), 90 * GiB)
    assert.deepStrictEqual(state.disks[0], {
      id: 1,
      slot: "pvc-1",
      filePath: "/storage-pool/k8s/pvc-1.img",
      nvmeTcpExport: true,
      nvmeTcpServerPort: 4420,
      nvmeTcpServerNqn: "nqn.2000-02.com.mikrotik:pvc-1",
      allowHostName: ""
    })
  })

  it("refuses what RouterOS refuses, changing nothing", () => {
    const { outcomes, state } = session([
      addCmd("pvc-1"),
      addCmd("pvc-1"),
      "/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=1G slot=other",
      addCmd("big", "91G"),
      addCmd("odd", "1000"),
      addCmd("bad", "10X"),
      "/disk add type=file file-path=/etc/passwd file-size=1G slot=x",
      "/disk add type=file file-path=/storage-pool/../x.img file-size=1G slot=x",
      "/disk add type=nvme file-path=/storage-pool/x.img file-size=1G",
      "/disk add type=file file-path=/storage-pool/x.img file-size=1G nvme-tcp-export=maybe",
      "/disk add type=file file-path=/storage-pool/x.img file-size=1G nvme-tcp-server-port=70000",
      "/disk add type=file file-path=/storage-pool/x.img slot=x",
      "/disk add type=file file-size=1G slot=x"
    ])
    assert.deepStrictEqual(outcomes.slice(1).map((o) => [o.output, o.exitCode]), [
      ["failure: item with such name already exists\n", 1],
      ["failure: item with such name already exists\n", 1],
      ["failure: not enough space\n", 1],
      ["invalid value for argument file-size\n", 1],
      ["invalid value for argument file-size\n", 1],
      ["invalid value for argument file-path\n", 1],
      ["invalid value for argument file-path\n", 1],
      ["invalid value for argument type\n", 1],
      ["invalid value for argument nvme-tcp-export\n", 1],
      ["invalid value for argument nvme-tcp-server-port\n", 1],
      ["failure: file-size must be specified\n", 1],
      ["failure: file-path must be specified\n", 1]
    ])
    assert.isTrue(outcomes.slice(1).every((o) => o.actions.length === 0))
    assert.strictEqual(state.disks.length, 1)
  })

  it("fills the pool exactly: the last byte fits, one more does not", () => {
    const { outcomes } = session([addCmd("a", "60G"), addCmd("b", "40G"), addCmd("c", "512")])
    assert.deepStrictEqual(outcomes.map((o) => o.exitCode), [0, 0, 1])
  })

  it("file-size units: plain bytes, K/M/G/T (binary), GiB", () => {
    const { state } = session([addCmd("a", "1048576"), addCmd("b", "512M"), addCmd("c", "2GiB"), addCmd("d", "4k")])
    assert.deepStrictEqual(state.files.filter((f) => f.type === "file").map((f) => f.size), [2 ** 20, 512 * 2 ** 20, 2 * GiB, 4096])
  })
})

describe("/disk print detail", () => {
  it("a missing slot prints nothing; `~` lists indexed, the pool excluded; no `where` lists the pool first", () => {
    const { outcomes } = session([
      addCmd("pvc-1"),
      addCmd("pvc-2"),
      "/disk print detail where slot=nope",
      "/disk print detail where slot~\"pvc-\"",
      "/disk print detail",
      "/disk print detail where slot~\"^pvc-2$\""
    ])
    const [, , none, tilde, all, one] = outcomes
    assert.deepStrictEqual([none!.output, none!.exitCode], ["", 0])
    assert.match(tilde!.output, /^ 0 {2}type=file slot="pvc-1"[^]*\n\n 1 {2}type=file slot="pvc-2"/)
    assert.notInclude(tilde!.output, "storage-pool type=directory")
    assert.match(all!.output, /^ 0 {2}name=\/storage-pool type=directory[^]*\n\n 1 {2}type=file slot="pvc-1"/)
    assert.match(one!.output, /^ 0 {2}type=file slot="pvc-2"/)
  })

  it("with the flags switch: RouterOS-7 style header and letters, always indexed", () => {
    const { last } = session([addCmd("pvc-1"), "/disk print detail where slot=pvc-1"], undefined, { ...ctx, flags: true })
    assert.match(last.output, /^Flags: X - disabled; t - nvme-tcp-export\n 0 t {2}type=file slot="pvc-1"/)
  })

  it("print without detail is refused, a bad regular expression too", () => {
    const { outcomes } = session(["/disk print", "/disk print detail where slot~\"(\""])
    assert.deepStrictEqual(outcomes.map((o) => o.exitCode), [1, 1])
    assert.strictEqual(outcomes[1]!.output, "invalid regular expression (line 1 column 26)\n")
  })
})

describe("/disk set", () => {
  it("grows the file (and asks the backend to revalidate an exported disk)", () => {
    const { last, state } = session([addCmd("pvc-1"), "/disk set [find slot=pvc-1] file-size=15G"])
    assert.deepStrictEqual([last.output, last.exitCode], ["", 0])
    assert.deepStrictEqual(last.actions.map((a) => a._tag), ["ResizeFile", "Revalidate"])
    assert.strictEqual(state.files.find((f) => f.name.endsWith("pvc-1.img"))!.size, 15 * GiB)
    assert.include(execute(state, "/disk print detail where slot=pvc-1", ctx).output, "size=16 106 127 360")
  })

  it("refuses to shrink, to grow beyond the free space; the same size is a no-op success", () => {
    const { outcomes } = session([
      addCmd("pvc-1"),
      "/disk set [find slot=pvc-1] file-size=5G",
      "/disk set [find slot=pvc-1] file-size=101G",
      "/disk set [find slot=pvc-1] file-size=10G"
    ])
    assert.deepStrictEqual(outcomes.slice(1).map((o) => [o.output, o.exitCode, o.actions.length]), [
      ["failure: can not shrink file\n", 1, 0],
      ["failure: not enough space\n", 1, 0],
      ["", 0, 0]
    ])
  })

  it("allowed host and export switch: Export with the new host, Unexport, Export again", () => {
    const { outcomes, state } = session([
      addCmd("pvc-1"),
      "/disk set [find slot=pvc-1] nvme-tcp-server-allow-host-name=nqn.2014-08.org.nvmexpress:uuid:h1",
      "/disk set [find slot=pvc-1] nvme-tcp-export=no",
      "/disk set [find slot=pvc-1] nvme-tcp-export=yes"
    ])
    assert.deepStrictEqual(outcomes.slice(1).map((o) => o.actions.map((a) => a._tag)), [["Export"], ["Unexport"], ["Export"]])
    const a = outcomes[1]!.actions[0]!
    assert.strictEqual(a._tag === "Export" ? a.disk.allowHostName : "", "nqn.2014-08.org.nvmexpress:uuid:h1")
    assert.include(execute(state, "/disk print detail where slot=pvc-1", ctx).output, "nvme-tcp-server-allow-host-name=\"nqn.2014-08.org.nvmexpress:uuid:h1\"")
  })

  it("[find] matching nothing is a silent success; a number naming nothing is `no such item`", () => {
    const { outcomes } = session(["/disk set [find slot=nope] file-size=1G", "/disk set 5 file-size=1G"])
    assert.deepStrictEqual(outcomes.map((o) => [o.output, o.exitCode]), [["", 0], ["no such item\n", 1]])
  })
})

describe("/disk remove and /file remove", () => {
  it("disk remove unexports and keeps the file; file remove then deletes it; both idempotent with [find]", () => {
    const { outcomes, state } = session([
      addCmd("pvc-1"),
      "/file remove [find name=\"storage-pool/k8s/pvc-1.img\"]",
      "/disk remove [find slot=pvc-1]",
      "/disk remove [find slot=pvc-1]",
      "/file print detail where name~\"storage-pool/k8s/\"",
      "/file remove [find name=\"storage-pool/k8s/pvc-1.img\"]",
      "/file remove [find name=\"storage-pool/k8s/pvc-1.img\"]"
    ])
    assert.deepStrictEqual(outcomes.slice(1).map((o) => [o.exitCode, o.actions.map((a) => a._tag)]), [
      [1, []],
      [0, ["Unexport"]],
      [0, []],
      [0, []],
      [0, ["RemoveFile"]],
      [0, []]
    ])
    assert.strictEqual(outcomes[1]!.output, "failure: file is in use\n")
    assert.strictEqual(
      outcomes[4]!.output,
      " 0  name=storage-pool/k8s/pvc-1.img type=file size=10 737 418 240\n               creation-time=jan/01/2025 00:00:00\n"
    )
    assert.deepStrictEqual(state.files.map((f) => f.name), ["storage-pool", "storage-pool/k8s"])
    assert.strictEqual(freeBytes(state), 100 * GiB)
  })

  it("numbers: index in the full listing (the pool is 0); beyond it, `no such item`", () => {
    const { outcomes, state } = session([addCmd("pvc-1"), "/disk remove numbers=7", "/disk remove 0", "/disk remove 1"])
    assert.deepStrictEqual(outcomes.slice(1).map((o) => [o.output, o.exitCode]), [
      ["no such item\n", 1],
      ["failure: can not change storage pool\n", 1],
      ["", 0]
    ])
    assert.strictEqual(state.disks.length, 0)
  })

  it("directories: not while they hold files; the pool root never", () => {
    const { outcomes } = session([
      addCmd("pvc-1"),
      "/disk remove [find slot=pvc-1]",
      "/file remove [find name=\"storage-pool/k8s\"]",
      "/file remove [find name=\"storage-pool\"]",
      "/file remove [find name~\"^storage-pool/k8s\"]"
    ])
    assert.deepStrictEqual(outcomes.slice(2).map((o) => [o.output, o.exitCode]), [
      ["failure: directory is not empty\n", 1],
      ["failure: can not remove storage pool\n", 1],
      ["", 0]
    ])
    assert.deepStrictEqual(outcomes[4]!.actions, [
      { _tag: "RemoveFile", path: "/storage-pool/k8s/pvc-1.img" },
      { _tag: "RemoveDirectory", path: "/storage-pool/k8s" }
    ])
  })
})

describe("other commands", () => {
  it("/system resource print: RouterOS's aligned `key: value` item, uptime since start", () => {
    const { last } = session(["/system resource print"])
    assert.match(last.output, /^ +uptime: 1d1h1m1s\n +version: 7\.\d+/)
    assert.include(last.output, "       platform: MikroTik\n")
    assert.include(last.output, "     board-name: RDS2216\n")
  })

  it("parse errors exit 1 with RouterOS's text and change nothing", () => {
    const { last } = session(["/disk frobnicate"])
    assert.deepStrictEqual([last.output, last.exitCode], ["bad command name frobnicate (line 1 column 7)\n", 1])
  })
})
