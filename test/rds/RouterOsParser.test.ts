/**
 * RouterOsParser against every sample the reference captured from a real RDS
 * (/work/shared/reference/routeros/README.md, copied byte for byte below and checked against
 * test/fixtures/routeros), and against the other shapes RouterOS prints: a `Flags:` header, flag
 * letters, `;;;` comments, tabs, CRLF, wrapped digit groups, quoted values with escapes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import {
  bytesOf,
  diskOf,
  fileOf,
  parseRecords,
  poolOf,
  type RosRecord
} from "../../src/rds/RouterOsParser.ts"
import { fixtureText } from "../fixtures/fixtures.ts"

const records = (output: string): ReadonlyArray<Record<string, string>> => {
  const parsed = parseRecords(output)
  if (Result.isFailure(parsed)) assert.fail(`parse failed: ${parsed.failure.detail}`)
  return parsed.success.map((r) => Object.fromEntries(r))
}

const one = (output: string): RosRecord => {
  const parsed = Result.getOrThrow(parseRecords(output))
  assert.strictEqual(parsed.length, 1)
  return parsed[0]!
}

const parseError = (output: string): string => {
  const parsed = parseRecords(output)
  if (Result.isSuccess(parsed)) return assert.fail(`expected a RosParseError, got ${JSON.stringify(parsed.success.map((r) => [...r]))}`)
  assert.strictEqual(parsed.failure._tag, "RosParseError")
  assert.strictEqual(parsed.failure.output, output)
  return parsed.failure.detail
}

// ---- The reference's samples, byte for byte -------------------------------------------------

const ONE_DISK = `type=file slot="pvc-test-123" slot-default="" parent="" fs=-
               model="/storage-pool/test.img"
               size=53 687 091 200 mount-filesystem=yes mount-read-only=no
               compress=no sector-size=512 raid-master=none
               nvme-tcp-export=yes nvme-tcp-server-port=4420
               nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-test-123"
               nvme-tcp-server-allow-host-name="" iscsi-export=no
               nfs-sharing=no smb-sharing=no media-sharing=no
               media-interface=none swap=no
               file-path=/storage-pool/test.img
               file-size=50.0GiB file-offset=0
`

const DISK_LIST = ` 0  type=file slot="pvc-test-1" size=53 687 091 200
               file-path=/storage-pool/test1.img file-size=50.0GiB
               nvme-tcp-export=yes nvme-tcp-server-port=4420
               nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-test-1"

 1  type=file slot="pvc-test-2" size=107 374 182 400
               file-path=/storage-pool/test2.img file-size=100.0GiB
               nvme-tcp-export=yes nvme-tcp-server-port=4420
               nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-test-2"
`

const POOL = `name=/storage-pool type=directory size=7 681 574 174 720
               free=5 632 440 000 000 use=27%
               creation-time=jan/01/2025 00:00:00
`

const FILE_LINE = "name=storage-pool/metal-csi/test.img type=file size=53 687 091 200"
const FILE_LINE_QUOTED = "name=\"storage-pool/metal-csi/test.img\" type=file size=53 687 091 200"

const ONE_DISK_RECORD = {
  "type": "file",
  "slot": "pvc-test-123",
  "slot-default": "",
  "parent": "",
  "fs": "-",
  "model": "/storage-pool/test.img",
  "size": "53 687 091 200",
  "mount-filesystem": "yes",
  "mount-read-only": "no",
  "compress": "no",
  "sector-size": "512",
  "raid-master": "none",
  "nvme-tcp-export": "yes",
  "nvme-tcp-server-port": "4420",
  "nvme-tcp-server-nqn": "nqn.2000-02.com.mikrotik:pvc-test-123",
  "nvme-tcp-server-allow-host-name": "",
  "iscsi-export": "no",
  "nfs-sharing": "no",
  "smb-sharing": "no",
  "media-sharing": "no",
  "media-interface": "none",
  "swap": "no",
  "file-path": "/storage-pool/test.img",
  "file-size": "50.0GiB",
  "file-offset": "0"
}

const listRecord = (n: 1 | 2, size: string, fileSize: string) => ({
  "type": "file",
  "slot": `pvc-test-${n}`,
  "size": size,
  "file-path": `/storage-pool/test${n}.img`,
  "file-size": fileSize,
  "nvme-tcp-export": "yes",
  "nvme-tcp-server-port": "4420",
  "nvme-tcp-server-nqn": `nqn.2000-02.com.mikrotik:pvc-test-${n}`
})

const TEST_1 = listRecord(1, "53 687 091 200", "50.0GiB")
const TEST_2 = listRecord(2, "107 374 182 400", "100.0GiB")

describe("RouterOsParser: the reference's captured samples", () => {
  it("the inline samples are the fixture files (both copied from the reference)", () => {
    assert.strictEqual(ONE_DISK, fixtureText("routeros/disk-detail.txt"))
    assert.strictEqual(DISK_LIST, fixtureText("routeros/disk-list.txt"))
    assert.strictEqual(POOL, fixtureText("routeros/pool-detail.txt"))
  })

  it("one disk: every field, in the order printed", () => {
    const [record] = records(ONE_DISK)
    assert.deepStrictEqual(record, ONE_DISK_RECORD)
    assert.deepStrictEqual([...one(ONE_DISK).keys()], Object.keys(ONE_DISK_RECORD))
  })

  it("one disk → Disk", () => {
    assert.deepStrictEqual(diskOf(one(ONE_DISK)), {
      slot: "pvc-test-123",
      type: "file",
      filePath: "/storage-pool/test.img",
      sizeBytes: 53_687_091_200,
      nvmeExport: true,
      nvmePort: 4420,
      nqn: "nqn.2000-02.com.mikrotik:pvc-test-123",
      allowHost: ""
    })
  })

  it("the indexed list: two records", () => {
    assert.deepStrictEqual(records(DISK_LIST), [TEST_1, TEST_2])
  })

  it("the indexed list → Disks", () => {
    const disks = Result.getOrThrow(parseRecords(DISK_LIST)).map(diskOf)
    assert.deepStrictEqual(disks, [
      {
        slot: "pvc-test-1",
        type: "file",
        filePath: "/storage-pool/test1.img",
        sizeBytes: 53_687_091_200,
        nvmeExport: true,
        nvmePort: 4420,
        nqn: "nqn.2000-02.com.mikrotik:pvc-test-1",
        allowHost: ""
      },
      {
        slot: "pvc-test-2",
        type: "file",
        filePath: "/storage-pool/test2.img",
        sizeBytes: 107_374_182_400,
        nvmeExport: true,
        nvmePort: 4420,
        nqn: "nqn.2000-02.com.mikrotik:pvc-test-2",
        allowHost: ""
      }
    ])
  })

  it("the pool's capacity: a value with a space (creation-time), digit groups → PoolSpace", () => {
    assert.deepStrictEqual(records(POOL), [{
      "name": "/storage-pool",
      "type": "directory",
      "size": "7 681 574 174 720",
      "free": "5 632 440 000 000",
      "use": "27%",
      "creation-time": "jan/01/2025 00:00:00"
    }])
    assert.deepStrictEqual(poolOf(one(POOL)), { name: "/storage-pool", sizeBytes: 7_681_574_174_720, freeBytes: 5_632_440_000_000 })
    // The pool is not a disk: no slot.
    assert.isUndefined(diskOf(one(POOL)))
  })

  it("the file line, unquoted and quoted: the name becomes an absolute path", () => {
    for (const line of [FILE_LINE, FILE_LINE_QUOTED, FILE_LINE + "\n", FILE_LINE_QUOTED + "\n"]) {
      assert.deepStrictEqual(records(line), [{ name: "storage-pool/metal-csi/test.img", type: "file", size: "53 687 091 200" }])
      assert.deepStrictEqual(fileOf(one(line)), { path: "/storage-pool/metal-csi/test.img", type: "file", sizeBytes: 53_687_091_200 })
    }
  })

  it("the file line wrapped as print detail wraps it", () => {
    const wrapped = "name=storage-pool/metal-csi/test.img type=file\n               size=53 687 091 200\n"
    assert.deepStrictEqual(fileOf(one(wrapped)), { path: "/storage-pool/metal-csi/test.img", type: "file", sizeBytes: 53_687_091_200 })
  })
})

describe("RouterOsParser: other shapes RouterOS prints", () => {
  it("empty output (a `where` that matched nothing) is no record", () => {
    assert.deepStrictEqual(records(""), [])
    assert.deepStrictEqual(records("\n"), [])
    assert.deepStrictEqual(records("\r\n  \r\n"), [])
  })

  it("a Flags: header before indexed records with flag letters after the index", () => {
    const out = `Flags: X - disabled; t - nvme-tcp-export
 0 t type=file slot="pvc-a" size=1 073 741 824
               nvme-tcp-export=yes

 1 X  type=file slot="pvc-b" size=2 147 483 648
               nvme-tcp-export=no

 2    type=file slot="pvc-c" size=4096
`
    assert.deepStrictEqual(records(out), [
      { "type": "file", "slot": "pvc-a", "size": "1 073 741 824", "nvme-tcp-export": "yes" },
      { "type": "file", "slot": "pvc-b", "size": "2 147 483 648", "nvme-tcp-export": "no" },
      { "type": "file", "slot": "pvc-c", "size": "4096" }
    ])
  })

  it("more than four flag letters (/disk has more than ten flags)", () => {
    const out = "Flags: X - disabled; B - block-device; M - mounted; t - nvme-tcp-export; s - smb-sharing; n - nfs-sharing\n 0  BMtsn slot=\"a\" size=1\n 1 X     slot=\"b\" size=2\n"
    assert.deepStrictEqual(records(out), [{ slot: "a", size: "1" }, { slot: "b", size: "2" }])
  })

  it("a Flags: header wrapped onto an indented second line", () => {
    const out = `Flags: X - disabled, E - empty, B - block-device; M - mounted;
       t - nvme-tcp-export, i - iscsi-export
 0 Mt type=file slot="pvc-a" size=512
 1 X  type=file slot="pvc-b" size=1024
`
    assert.deepStrictEqual(records(out), [
      { type: "file", slot: "pvc-a", size: "512" },
      { type: "file", slot: "pvc-b", size: "1024" }
    ])
  })

  it("a Columns: header is skipped too", () => {
    const out = "Flags: t - nvme-tcp-export\nColumns: SLOT, SIZE\n 0 t slot=\"a\" size=1\n"
    assert.deepStrictEqual(records(out), [{ slot: "a", size: "1" }])
  })

  it("two-digit indices", () => {
    const out = Array.from({ length: 12 }, (_, i) => `${String(i).padStart(2)}  slot="pvc-${i}" size=${i}`).join("\n\n") + "\n"
    const parsed = records(out)
    assert.strictEqual(parsed.length, 12)
    assert.deepStrictEqual(parsed[10], { slot: "pvc-10", size: "10" })
    assert.deepStrictEqual(parsed[11], { slot: "pvc-11", size: "11" })
    // Two-digit indices with flags, records not separated by blank lines.
    assert.deepStrictEqual(records("Flags: X - disabled\n10 X slot=\"a\"\n               size=1\n11   slot=\"b\"\n"), [
      { slot: "a", size: "1" },
      { slot: "b" }
    ])
  })

  it(";;; comment lines are not properties", () => {
    // Unindexed: the comment comes first, at column 0.
    assert.deepStrictEqual(records(";;; managed by rds-csi\ntype=file slot=\"pvc-a\"\n               size=1\n"), [
      { type: "file", slot: "pvc-a", size: "1" }
    ])
    // On its own indented line inside an indexed list.
    assert.deepStrictEqual(records(" 0  slot=\"a\" size=1\n     ;;; note\n     file-size=1G\n\n 1  slot=\"b\"\n"), [
      { "slot": "a", "size": "1", "file-size": "1G" },
      { slot: "b" }
    ])
  })

  it(";;; comments on the index line (RouterOS's own shape: ` 0    ;;; comment` then the properties)", () => {
    const out = `Flags: X - disabled, I - invalid; D - dynamic
 0  D ;;; special dummy rule
      chain=forward action=passthrough

 1    ;;; defconf: accept established=yes, related
      chain=input action=accept
 2 X  ;;; off
      chain=output
`
    assert.deepStrictEqual(records(out), [
      { chain: "forward", action: "passthrough" },
      { chain: "input", action: "accept" },
      { chain: "output" }
    ])
    // A comment record without a header or a blank line before the next comment.
    assert.deepStrictEqual(records(" 0   ;;; a\n      slot=\"a\" size=1\n 1   ;;; b=c\n      slot=\"b\"\n"), [
      { slot: "a", size: "1" },
      { slot: "b" }
    ])
  })

  it("tabs as continuation indentation and as separators", () => {
    const out = "type=file slot=\"pvc-a\"\n\tsize=53 687 091 200\tmount-filesystem=yes\n\t\tfile-path=/storage-pool/a.img\n"
    assert.deepStrictEqual(records(out), [{
      "type": "file",
      "slot": "pvc-a",
      "size": "53 687 091 200",
      "mount-filesystem": "yes",
      "file-path": "/storage-pool/a.img"
    }])
    assert.strictEqual(diskOf(one(out))?.sizeBytes, 53_687_091_200)
  })

  it("CRLF line endings (and RouterOS's trailing spaces)", () => {
    assert.deepStrictEqual(records(ONE_DISK.replaceAll("\n", "\r\n")), [ONE_DISK_RECORD])
    assert.deepStrictEqual(records(DISK_LIST.replaceAll("\n", " \r\n")), [TEST_1, TEST_2])
    assert.deepStrictEqual(records(POOL.replaceAll("\n", "  \r\n")), records(POOL))
  })

  it("a digit group wrapped onto the next continuation line", () => {
    const out = `type=file slot="pvc-a" slot-default="" parent="" fs=- size=53 687
               091 200 mount-filesystem=yes
               file-path=/storage-pool/a.img
`
    assert.strictEqual(one(out).get("size"), "53 687 091 200")
    assert.strictEqual(one(out).get("mount-filesystem"), "yes")
    assert.strictEqual(diskOf(one(out))?.sizeBytes, 53_687_091_200)
    // In a list, the wrapped group on a continuation line is not taken for an index.
    const list = ` 0  slot="a" size=7 681
               574 174 720

 1  slot="b" size=1 000
               000
`
    assert.deepStrictEqual(records(list), [{ slot: "a", size: "7 681 574 174 720" }, { slot: "b", size: "1 000 000" }])
  })

  it("quoted values: spaces, '=', escapes \\\" \\\\ \\_ \\$ \\? \\n \\t and \\XX hex", () => {
    const r = one(
      String.raw`a="x y=z" b="say \"hi\"" c="back\\slash" d="under\_score" e="\$HOME\?" f="1\n2\t3" g="\48\45\4C\4C\4F" h="" i="\07\1B\7F"`
    )
    assert.deepStrictEqual(Object.fromEntries(r), {
      a: "x y=z",
      b: "say \"hi\"",
      c: "back\\slash",
      d: "under score",
      e: "$HOME?",
      f: "1\n2\t3",
      g: "HELLO",
      h: "",
      i: "\x07\x1b\x7f"
    })
  })

  it("hex escapes are capital letters (the manual); \\a \\b \\f before a hex letter are BEL, BS, FF", () => {
    assert.strictEqual(one(String.raw`x="\ab\be\fe\v"`).get("x"), "\x07b\be\fe\v")
    assert.strictEqual(one(String.raw`x="\AB"`).get("x"), "\xab")
  })

  it("\\XX escapes are bytes: a UTF-8 sequence decodes to its character", () => {
    // RouterOS prints non-ASCII bytes escaped (`comment="\D0\9F\D1\80"` for "Пр").
    assert.strictEqual(one(String.raw`comment="\D0\9F\D1\80\D0\B8 x \C3\A9"`).get("comment"), "При x é")
    // Bytes that are not UTF-8 stay one character each.
    assert.strictEqual(one(String.raw`x="\FF\41"`).get("x"), "\xffA")
  })

  it("a quoted file name with a space and a leading '/' is taken as is", () => {
    assert.deepStrictEqual(fileOf(one("name=\"/storage-pool/a b.img\" type=file size=0")), {
      path: "/storage-pool/a b.img",
      type: "file",
      sizeBytes: 0
    })
  })

  it("an unterminated quote is a RosParseError", () => {
    assert.include(parseError("slot=\"pvc-a size=1\n"), "unterminated quote in slot=")
    assert.include(parseError("slot=\"pvc-a\\\"\n"), "unterminated quote")
    assert.include(parseError("slot=\"ends with a backslash\\"), "unterminated quote")
  })

  it("text before any key=value is a RosParseError", () => {
    assert.include(parseError("bad command name disk (line 1 column 2)\n"), "before any key=value")
  })

  it("a later duplicate key wins", () => {
    assert.strictEqual(one("a=1 a=2").get("a"), "2")
  })
})

describe("bytesOf", () => {
  const cases: ReadonlyArray<readonly [string, number | undefined]> = [
    ["53 687 091 200", 53_687_091_200],
    ["53687091200", 53_687_091_200],
    ["0", 0],
    ["999", 999],
    ["1 000", 1000],
    [" 7 681 574 174 720 ", 7_681_574_174_720],
    ["50.0GiB", 50 * 2 ** 30],
    ["100.0GiB", 100 * 2 ** 30],
    ["1024.0MiB", 2 ** 30],
    ["512M", 512 * 2 ** 20],
    ["1G", 2 ** 30],
    ["2T", 2 * 2 ** 40],
    ["1924.1KiB", Math.round(1924.1 * 1024)],
    ["4096B", 4096],
    ["9 007 199 254 740 991", Number.MAX_SAFE_INTEGER],
    ["9 007 199 254 740 993", undefined],
    ["", undefined],
    ["-", undefined],
    ["none", undefined],
    ["53 68 091", undefined],
    ["1 0000", undefined],
    ["12P", undefined],
    ["27%", undefined]
  ]
  for (const [text, expected] of cases) {
    it(`'${text}' → ${expected}`, () => assert.strictEqual(bytesOf(text), expected))
  }
})

describe("diskOf, poolOf, fileOf", () => {
  const rec = (entries: Record<string, string>): RosRecord => new Map(Object.entries(entries))

  it("diskOf: no slot, an empty slot or no readable size → undefined", () => {
    assert.isUndefined(diskOf(rec({ size: "1" })))
    assert.isUndefined(diskOf(rec({ slot: "", size: "1" })))
    assert.isUndefined(diskOf(rec({ slot: "a" })))
    assert.isUndefined(diskOf(rec({ slot: "a", size: "lots" })))
  })

  it("diskOf: file-size when there is no size; a relative file-path becomes absolute; empty nqn is none", () => {
    assert.deepStrictEqual(
      diskOf(rec({ "slot": "a", "file-size": "50.0GiB", "file-path": "storage-pool/a.img", "nvme-tcp-server-nqn": "", "nvme-tcp-export": "no" })),
      { slot: "a", type: "", filePath: "/storage-pool/a.img", sizeBytes: 50 * 2 ** 30, nvmeExport: false, nvmePort: undefined, nqn: undefined, allowHost: "" }
    )
  })

  it("diskOf: port must be digits; allow-host is kept", () => {
    const d = diskOf(rec({ "slot": "a", "size": "1", "nvme-tcp-server-port": "auto", "nvme-tcp-server-allow-host-name": "nqn.2014-08.org.nvmexpress:uuid:1" }))
    assert.strictEqual(d?.nvmePort, undefined)
    assert.strictEqual(d?.allowHost, "nqn.2014-08.org.nvmexpress:uuid:1")
    assert.strictEqual(d?.filePath, undefined)
  })

  it("poolOf: needs size and free; a name without '/' becomes absolute; mount-point when no name", () => {
    assert.isUndefined(poolOf(rec({ name: "/storage-pool", size: "1" })))
    assert.deepStrictEqual(poolOf(rec({ name: "storage-pool", size: "10", free: "4" })), { name: "/storage-pool", sizeBytes: 10, freeBytes: 4 })
    assert.deepStrictEqual(poolOf(rec({ "mount-point": "storage-pool", "size": "10", "free": "4" })), { name: "/storage-pool", sizeBytes: 10, freeBytes: 4 })
  })

  it("fileOf: needs a name; a directory has no size", () => {
    assert.isUndefined(fileOf(rec({ type: "file" })))
    assert.isUndefined(fileOf(rec({ name: "" })))
    assert.deepStrictEqual(fileOf(rec({ name: "storage-pool/k8s", type: "directory", "creation-time": "jan/01/2025 00:00:00" })), {
      path: "/storage-pool/k8s",
      type: "directory",
      sizeBytes: undefined
    })
  })
})
