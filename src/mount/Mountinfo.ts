/**
 * /proc/self/mountinfo, parsed (proc(5)): one mount per line,
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7...)  (-)  (8)    (9)         (10)
 *
 * any number of optional fields (7) up to the lone `-`; the kernel escapes space, tab, newline
 * and backslash (and, in options, `,` and `=`) as `\ooo` octal. `render` is the kernel's side,
 * used by the round-trip property test. Pure.
 *
 * May import: effect, mount/Mounter (types).
 */
import { Result } from "effect"
import type { MountEntry } from "./Mounter.ts"

export interface MalformedLine {
  readonly lineNumber: number
  readonly line: string
  readonly why: string
}

/** `\040` → space, `\011` → tab, `\012` → newline, `\134` → backslash, any `\ooo`. */
export const unescape = (s: string): string =>
  s.includes("\\") ? s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))) : s

const escapeWith = (chars: RegExp) => (s: string): string =>
  s.replace(chars, (c) => "\\" + c.charCodeAt(0).toString(8).padStart(3, "0"))

/** What the kernel escapes in paths, sources and types (seq_escape with " \t\n\\"). */
export const escapeField = escapeWith(/[ \t\n\\]/g)
const escapeOption = escapeWith(/[ \t\n\\,]/g)

const DEV_T = /^\d+:\d+$/
const ID = /^\d+$/

const options = (field: string): ReadonlyArray<string> =>
  field === "" ? [] : field.split(",").map(unescape)

/** One line (without its newline), or why it is not a mountinfo line. */
export const parseLine = (line: string): Result.Result<MountEntry, string> => {
  const f = line.split(" ")
  const sep = f.indexOf("-", 6)
  if (f.length < 10 || sep < 0) return Result.fail(`expected at least 10 fields with a '-' separator, got ${f.length}`)
  if (f.length - sep !== 4) return Result.fail(`expected 3 fields after '-', got ${f.length - sep - 1}`)
  const [mountId, parentId, devT, root, mountPoint, mountOptions] = f as [string, string, string, string, string, string]
  if (!ID.test(mountId) || !ID.test(parentId)) return Result.fail("mount and parent IDs must be numbers")
  if (!DEV_T.test(devT)) return Result.fail(`'${devT}' is not major:minor`)
  return Result.succeed({
    mountId: Number(mountId),
    parentId: Number(parentId),
    devT,
    root: unescape(root),
    mountPoint: unescape(mountPoint),
    mountOptions: options(mountOptions),
    optionalFields: f.slice(6, sep),
    fsType: unescape(f[sep + 1]!),
    source: unescape(f[sep + 2]!),
    superOptions: options(f[sep + 3]!)
  })
}

/** The whole table; a single malformed line fails it (a mount we cannot read could be the one that matters). */
export const parseMountinfo = (text: string): Result.Result<ReadonlyArray<MountEntry>, MalformedLine> => {
  const out: Array<MountEntry> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line === "") continue
    const r = parseLine(line)
    if (Result.isFailure(r)) return Result.fail({ lineNumber: i + 1, line, why: r.failure })
    out.push(r.success)
  }
  return Result.succeed(out)
}

/**
 * parseMountinfo's entries mounted at one of `mountPoints`, in table order, without parsing the
 * other lines: publish, unpublish and stats look at two or three mount points, and a node with
 * a hundred volumes has hundreds of mounts (each line parsed cost ~0.1 ms under the VM's
 * emulation). A line is parsed when the kernel's escaped form of a wanted mount point stands in
 * it between spaces, as its fifth field does; a malformed one of those fails the table as in
 * parseMountinfo (with its line number), one that cannot be at a wanted point is not read.
 */
export const parseMountinfoAt = (text: string, mountPoints: ReadonlyArray<string>): Result.Result<ReadonlyArray<MountEntry>, MalformedLine> => {
  const starts = new Set<number>()
  for (const point of mountPoints) {
    const needle = ` ${escapeField(point)} `
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) starts.add(text.lastIndexOf("\n", i) + 1)
  }
  const wanted = new Set(mountPoints)
  const out: Array<MountEntry> = []
  for (const start of [...starts].sort((a, b) => a - b)) {
    const end = text.indexOf("\n", start)
    const line = end < 0 ? text.slice(start) : text.slice(start, end)
    const r = parseLine(line)
    if (Result.isFailure(r)) {
      let lineNumber = 1
      for (let i = text.indexOf("\n"); i >= 0 && i < start; i = text.indexOf("\n", i + 1)) lineNumber++
      return Result.fail({ lineNumber, line, why: r.failure })
    }
    if (wanted.has(r.success.mountPoint)) out.push(r.success)
  }
  return Result.succeed(out)
}

/** The kernel's rendering of an entry (show_mountinfo), for tests and tools. */
export const renderLine = (e: MountEntry): string =>
  [
    String(e.mountId),
    String(e.parentId),
    e.devT,
    escapeField(e.root),
    escapeField(e.mountPoint),
    e.mountOptions.map(escapeOption).join(","),
    ...e.optionalFields,
    "-",
    escapeField(e.fsType),
    escapeField(e.source),
    e.superOptions.map(escapeOption).join(",")
  ].join(" ")

export const renderMountinfo = (entries: ReadonlyArray<MountEntry>): string => entries.map((e) => renderLine(e) + "\n").join("")

/** The entry mounted last at `mountPoint` (the one a path lookup sees), if any. */
export const topMountAt = (entries: ReadonlyArray<MountEntry>, mountPoint: string): MountEntry | undefined =>
  entries.findLast((e) => e.mountPoint === mountPoint)
