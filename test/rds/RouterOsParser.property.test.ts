/**
 * Property: any disk, pool or file record, printed the way RouterOS prints it, parses back to
 * every field. Printing uses the emulator's renderer (src/emulator/Render.ts: renderDetail with
 * and without an index, a `Flags:` header and flag letters, random widths, random forced breaks),
 * then a local variant adds the captured shapes the renderer never prints (see `roughen`): tabs
 * and other continuation indentations, CRLF, trailing spaces, a byte count wrapped between its
 * digit groups, `;;;` comments, a `Flags:` header wrapped onto a second line, lists without blank
 * lines between records.
 *
 * Seed and runs: see ./seed.ts (RDS_PROP_SEED replays a run; the seed is printed after the run
 * and in every failure).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Arbitrary, Result, Schema } from "effect"
import {
  bytes,
  formatSize,
  groupDigits,
  plain,
  quoted,
  type RenderFlags,
  type RenderRecord,
  type RenderValue,
  renderDetail,
  verbatim
} from "../../src/emulator/Render.ts"
import { type BackingFile, type Disk, diskOf, fileOf, parseRecords, poolOf, type PoolSpace } from "../../src/rds/RouterOsParser.ts"
import { replay, RUNS, SEED } from "./seed.ts"


// ---- Generators --------------------------------------------------------------------------------

const int = (minimum: number, maximum: number) => Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
const bool = Arbitrary.schema(Schema.Boolean)
const pick = <A extends string>(values: ReadonlyArray<A>) => Arbitrary.schema(Schema.Literals(values as [A, ...Array<A>]))
const oneOf = <A>(...arbs: ReadonlyArray<Arbitrary.Arbitrary<A>>): Arbitrary.Arbitrary<A> =>
  Arbitrary.flatMap(int(0, arbs.length - 1), (i) => arbs[i]!)
const text = (chars: ReadonlyArray<string>, minLength: number, maxLength: number) =>
  Arbitrary.array(pick(chars), { minLength, maxLength }).pipe(Arbitrary.map((cs) => cs.join("")))

const SAFE = [..."ABCXYZabcxyz0123456789._-"]
// Characters that make RouterOS quote and escape a value. No letters: so no `size=`/`free=` can
// appear inside a quoted value (the digit-group wrap below only touches real byte counts).
const NASTY = [" ", "\"", "\\", "$", "=", ";", "[", "]", "\t", "\n", "é", "#", "?", "_"]

/** 0 … 2^50, spread over every magnitude (not only small numbers). */
const size = Arbitrary.flatMap(int(0, 50), (bits) => int(0, 2 ** bits))
const slot = text(SAFE, 1, 40)
const segment = oneOf(text(SAFE, 1, 12), text([...SAFE, ...NASTY], 1, 12))
const relPath = Arbitrary.array(segment, { minLength: 1, maxLength: 4 }).pipe(Arbitrary.map((s) => s.join("/")))
const nqn = text([...SAFE, ":"], 1, 60).pipe(Arbitrary.map((s) => `nqn.2000-02.com.mikrotik:${s}`))
const hostNqn = oneOf(Arbitrary.Constant(""), text([...SAFE, ":"], 1, 60).pipe(Arbitrary.map((s) => `nqn.2014-08.org.nvmexpress:uuid:${s}`)))
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] as const
const two = (n: number) => String(n).padStart(2, "0")
const time = Arbitrary.all([pick(MONTHS), int(1, 28), int(2020, 2030), int(0, 23), int(0, 59), int(0, 59)]).pipe(
  Arbitrary.map(([m, d, y, h, mi, s]) => `${m}/${two(d)}/${y} ${two(h)}:${two(mi)}:${two(s)}`)
)

interface DiskSpec {
  readonly _tag: "Disk"
  readonly slot: string
  readonly filePath: string
  readonly size: number
  readonly exported: boolean
  readonly port: number
  readonly nqn: string
  readonly allowHost: string
  /** The single-disk capture's 25 fields, or the list capture's few. */
  readonly full: boolean
}
interface PoolSpec {
  readonly _tag: "Pool"
  readonly name: string
  readonly size: number
  readonly free: number
  readonly created: string
}
interface FileSpec {
  readonly _tag: "File"
  readonly name: string
  readonly directory: boolean
  readonly size: number
  readonly created: string
}
type Spec = DiskSpec | PoolSpec | FileSpec

const disk: Arbitrary.Arbitrary<DiskSpec> = Arbitrary.all({
  slot,
  filePath: relPath.pipe(Arbitrary.map((p) => `/${p}`)),
  size,
  exported: bool,
  port: int(1, 65535),
  nqn,
  allowHost: hostNqn,
  full: bool
}).pipe(Arbitrary.map((d) => ({ _tag: "Disk" as const, ...d })))

const pool: Arbitrary.Arbitrary<PoolSpec> = Arbitrary.all({ name: text(SAFE, 1, 20), size, free: size, created: time }).pipe(
  Arbitrary.map((p) => ({ _tag: "Pool" as const, ...p, name: `/${p.name}` }))
)

const file: Arbitrary.Arbitrary<FileSpec> = Arbitrary.all({ name: relPath, directory: bool, size, created: time }).pipe(
  Arbitrary.map((f) => ({ _tag: "File" as const, ...f }))
)

// ---- Printing (the emulator's renderer) ----------------------------------------------------------

const yesNo = (b: boolean) => plain(b ? "yes" : "no")

// Markers the local variant turns into shapes the renderer does not print. Never in generated
// values (and the renderer would escape them inside quotes anyway).
const WRAP = "\u0001" // a digit-group space that becomes a line break
const COMMENT = "\u0002" // before a record's first key: a `;;;` comment goes there

/** A byte count, sometimes with one group boundary marked for wrapping. */
const byteValue = (n: number, wrapAt: number | undefined): RenderValue => {
  const grouped = groupDigits(n)
  const spaces = grouped.split(" ").length - 1
  if (wrapAt === undefined || spaces === 0) return bytes(n)
  let k = wrapAt % spaces
  return verbatim(grouped.replace(/ /g, (s) => (k-- === 0 ? WRAP : s)))
}

const recordOf = (spec: Spec, wrapAt: number | undefined): RenderRecord => {
  switch (spec._tag) {
    case "Disk": {
      const all: ReadonlyArray<readonly [string, RenderValue]> = [
        ["type", plain("file")],
        ["slot", quoted(spec.slot)],
        ["slot-default", quoted("")],
        ["parent", quoted("")],
        ["fs", plain("-")],
        ["model", quoted(spec.filePath)],
        ["size", byteValue(spec.size, wrapAt)],
        ["mount-filesystem", plain("yes")],
        ["mount-read-only", plain("no")],
        ["compress", plain("no")],
        ["sector-size", plain("512")],
        ["raid-master", plain("none")],
        ["nvme-tcp-export", yesNo(spec.exported)],
        ["nvme-tcp-server-port", plain(String(spec.port))],
        ["nvme-tcp-server-nqn", quoted(spec.nqn)],
        ["nvme-tcp-server-allow-host-name", quoted(spec.allowHost)],
        ["iscsi-export", plain("no")],
        ["nfs-sharing", plain("no")],
        ["smb-sharing", plain("no")],
        ["media-sharing", plain("no")],
        ["media-interface", plain("none")],
        ["swap", plain("no")],
        ["file-path", plain(spec.filePath)],
        ["file-size", verbatim(formatSize(spec.size))],
        ["file-offset", plain("0")]
      ]
      // The list capture's fields (plus the allowed host, which the controller reads).
      const LIST = ["type", "slot", "size", "file-path", "file-size", "nvme-tcp-export", "nvme-tcp-server-port", "nvme-tcp-server-nqn", "nvme-tcp-server-allow-host-name"]
      return spec.full ? all : LIST.map((k) => all.find(([key]) => key === k)!)
    }
    case "Pool":
      return [
        ["name", plain(spec.name)],
        ["type", plain("directory")],
        ["size", byteValue(spec.size, wrapAt)],
        ["free", byteValue(spec.free, wrapAt === undefined ? undefined : wrapAt + 1)],
        ["use", verbatim(`${spec.size === 0 ? 0 : Math.round(((spec.size - spec.free) / spec.size) * 100)}%`)],
        ["creation-time", verbatim(spec.created)]
      ]
    case "File":
      return [
        ["name", plain(spec.name)],
        ["type", plain(spec.directory ? "directory" : "file")],
        ...(spec.directory ? [] : [["size", byteValue(spec.size, wrapAt)] as const]),
        ["creation-time", verbatim(spec.created)]
      ]
  }
}

/** What the parser must give back for a record: every key, values unquoted, byte counts grouped. */
const expectedRecord = (record: RenderRecord): Record<string, string> =>
  Object.fromEntries(record.map(([k, v]) => {
    switch (v._tag) {
      case "Bytes":
        return [k, groupDigits(v.bytes)]
      default:
        return [k, v.text.replaceAll(WRAP, " ")]
    }
  }))

const expectedDisk = (d: DiskSpec): Disk => ({
  slot: d.slot,
  type: "file",
  filePath: d.filePath,
  sizeBytes: d.size,
  nvmeExport: d.exported,
  nvmePort: d.port,
  nqn: d.nqn,
  allowHost: d.allowHost
})
const expectedPool = (p: PoolSpec): PoolSpace => ({ name: p.name, sizeBytes: p.size, freeBytes: p.free })
const expectedFile = (f: FileSpec): BackingFile => ({
  path: `/${f.name}`,
  type: f.directory ? "directory" : "file",
  sizeBytes: f.directory ? undefined : f.size
})

// ---- The local variant: shapes the renderer cannot print ------------------------------------------

/** mulberry32: the per-line choices of `roughen`, reproducible from the generated salt. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Rough {
  readonly salt: number
  readonly tabs: boolean
  readonly crlf: boolean
  readonly trailingSpace: boolean
  readonly comments: boolean
  readonly wrapHeader: boolean
  readonly dropBlankLines: boolean
}

const INDENTS = ["\t", "\t\t", "      ", "        ", " ".repeat(15), " \t"]
const COMMENT_CHARS = [..."abc XYZ=:,;\"-"]

/**
 * The renderer's output → the same records as RouterOS might also print them. Comments go on the
 * index line in lists (` 0 t  ;;; text`, the properties on the next line) and on a line of their
 * own at column 0 before an unindexed record.
 */
const roughen = (output: string, indexed: boolean, r: Rough): string => {
  const rand = prng(r.salt)
  const pickOf = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rand() * xs.length)]!
  const comment = () => ";;; " + Array.from({ length: 1 + Math.floor(rand() * 20) }, () => pickOf(COMMENT_CHARS)).join("")
  let lines = output.replace(/\n$/, "").split("\n")
  if (r.wrapHeader && lines[0]?.startsWith("Flags: ") === true && lines[0].includes("; ")) {
    const at = lines[0].indexOf("; ")
    lines = [lines[0].slice(0, at + 1), "       " + lines[0].slice(at + 2), ...lines.slice(1)]
  }
  const out: Array<string> = []
  for (let line of lines) {
    if (line === "" && indexed && r.dropBlankLines) continue
    const at = line.indexOf(COMMENT)
    if (at >= 0) {
      const withComment = r.comments && rand() < 0.7
      if (!withComment) line = line.replace(COMMENT, "")
      else if (indexed) {
        out.push(line.slice(0, at) + comment())
        line = " ".repeat(15) + line.slice(at + 1)
      } else {
        out.push(comment())
        line = line.slice(at + 1)
      }
    }
    // A byte count wrapped between two digit groups: the rest goes on a continuation line.
    const parts = line.split(WRAP)
    out.push(parts[0]!, ...parts.slice(1).map((p) => " ".repeat(15) + p))
  }
  return out
    .map((line) => (r.tabs && line.startsWith(" ".repeat(15)) ? pickOf(INDENTS) + line.slice(15) : line))
    .map((line) => (r.trailingSpace && line !== "" ? line + " " : line))
    .join(r.crlf ? "\r\n" : "\n") + (r.crlf ? "\r\n" : "\n")
}

// ---- The case: records, how they are printed, how roughly --------------------------------------

const LEGEND: RenderFlags["legend"] = [["X", "disabled"], ["t", "nvme-tcp-export"], ["B", "block-device"], ["M", "mounted"], ["s", "smb-sharing"], ["n", "nfs-sharing"]]

interface Case {
  readonly specs: ReadonlyArray<Spec>
  readonly indexed: boolean
  readonly firstIndex: number
  /** Legend size (0: no Flags header) and, per record, which legend letters it shows (a bit mask). */
  readonly legendSize: number
  readonly letterMasks: ReadonlyArray<number>
  readonly width: number
  readonly breakMask: number
  readonly wraps: ReadonlyArray<number | undefined>
  readonly commentFirstKey: boolean
  readonly rough: Rough | undefined
}

const rough: Arbitrary.Arbitrary<Rough> = Arbitrary.all({
  salt: int(0, 2 ** 31 - 1),
  tabs: bool,
  crlf: bool,
  trailingSpace: bool,
  comments: bool,
  wrapHeader: bool,
  dropBlankLines: bool
})

const caseOf = (specs: Arbitrary.Arbitrary<Array<Spec>>): Arbitrary.Arbitrary<Case> =>
  Arbitrary.all({
    specs,
    indexed: bool,
    firstIndex: oneOf(Arbitrary.Constant(0), int(0, 120)),
    legendSize: int(0, LEGEND.length),
    letterMasks: Arbitrary.array(int(0, 63), { minLength: 12, maxLength: 12 }),
    width: oneOf(Arbitrary.Constant(78), int(10, 200)),
    breakMask: int(0, 2 ** 25 - 1),
    wraps: Arbitrary.array(oneOf<number | undefined>(Arbitrary.Constant(undefined), int(0, 10)), { minLength: 12, maxLength: 12 }),
    commentFirstKey: bool,
    rough: oneOf<Rough | undefined>(Arbitrary.Constant(undefined), rough)
  })

const print = (c: Case): { readonly output: string; readonly records: ReadonlyArray<RenderRecord> } => {
  const records = c.specs.map((s, i) => recordOf(s, c.rough === undefined ? undefined : c.wraps[i]))
  const marked = c.rough !== undefined && c.commentFirstKey
    ? records.map(([first, ...rest]) => [[COMMENT + first![0], first![1]] as const, ...rest])
    : records
  const legend = LEGEND.slice(0, c.legendSize)
  const flags: RenderFlags | undefined = c.legendSize === 0 ? undefined : {
    legend,
    letters: c.specs.map((_, i) => legend.filter((_, j) => ((c.letterMasks[i] ?? 0) >> j) & 1).map(([l]) => l).join(""))
  }
  const keys = [...new Set(records.flatMap((r) => r.map(([k]) => k)))]
  const output = renderDetail(marked, {
    indexed: c.indexed,
    firstIndex: c.firstIndex,
    ...(flags === undefined ? {} : { flags }),
    width: c.width,
    breakBefore: (key) => ((c.breakMask >> keys.indexOf(key.replace(COMMENT, ""))) & 1) === 1
  })
  return { output: c.rough === undefined ? output : roughen(output, c.indexed, c.rough), records }
}

/** How often each shape came up, printed after the run so a generator that stopped producing one shows. */
const seen = new Map<string, number>()
const SHAPES: ReadonlyArray<readonly [string, (output: string) => boolean]> = [
  ["records", () => true],
  ["flags header", (o) => o.startsWith("Flags:")],
  ["wrapped header", (o) => /^Flags:[^\n]*\r?\n {7}\S/.test(o)],
  [">4 flag letters", (o) => /^ *\d+ [A-Za-z]{5,} /m.test(o)],
  ["index >= 10", (o) => /^ *\d{2,} /m.test(o)],
  ["tab indent", (o) => /\n\t/.test(o)],
  ["crlf", (o) => o.includes("\r\n")],
  ["index-line comment", (o) => /^ *\d+ [^\n]*;;;/m.test(o)],
  ["column-0 comment", (o) => /^;;;/m.test(o)],
  ["wrapped digit group", (o) => /^\s+\d{3}( |\r?$)/m.test(o)],
  ["escaped quote", (o) => o.includes("\\\"")],
  ["hex escape", (o) => /\\0[9A]/.test(o)],
  ["empty output", (o) => o === ""]
]

/** Parses and checks every record and its typed view; failures name the seed and show the output. */
const roundTrip = (c: Case): void => {
  const { output, records } = print(c)
  for (const [name, test] of SHAPES) if (test(output)) seen.set(name, (seen.get(name) ?? 0) + 1)
  const context = `${replay}; output:\n${JSON.stringify(output)}`
  const parsed = parseRecords(output)
  if (Result.isFailure(parsed)) assert.fail(`${parsed.failure.detail}; ${context}`)
  assert.deepStrictEqual(parsed.success.map((r) => Object.fromEntries(r)), records.map(expectedRecord), context)
  parsed.success.forEach((record, i) => {
    const spec = c.specs[i]!
    switch (spec._tag) {
      case "Disk":
        assert.deepStrictEqual(diskOf(record), expectedDisk(spec), context)
        assert.isUndefined(poolOf(record), context)
        break
      case "Pool":
        assert.deepStrictEqual(poolOf(record), expectedPool(spec), context)
        assert.isUndefined(diskOf(record), context)
        break
      case "File":
        assert.deepStrictEqual(fileOf(record), expectedFile(spec), context)
        assert.isUndefined(diskOf(record), context)
        break
    }
  })
}

const options = { timeout: 120_000, arbitrary: { runs: RUNS, seed: SEED } }

describe("RouterOsParser round trip (property)", () => {
  afterAll(() => {
    console.log(`RouterOsParser property: ${replay}, ${RUNS} runs per property; shapes seen ${JSON.stringify(Object.fromEntries(seen))}`)
  })

  it.prop("one disk, printed unindexed or as a one-item list", [caseOf(Arbitrary.array(disk, { minLength: 1, maxLength: 1 }))], ([c]) => roundTrip(c), options)

  it.prop("disk lists, with the pool first as /disk prints it", [
    caseOf(Arbitrary.all([pool, Arbitrary.array(disk, { maxLength: 11 }), bool]).pipe(
      Arbitrary.map(([p, disks, withPool]): Array<Spec> => (withPool ? [p, ...disks] : disks))
    ))
  ], ([c]) => roundTrip(c), options)

  it.prop("the pool's capacity", [caseOf(Arbitrary.array(pool, { minLength: 1, maxLength: 1 }))], ([c]) => roundTrip(c), options)

  it.prop("file lists (names without a leading '/')", [caseOf(Arbitrary.array(file, { maxLength: 12 }))], ([c]) => roundTrip(c), options)
})
