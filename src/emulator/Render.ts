/**
 * RouterOS `print detail` output, for the RDS emulator. Pure. The shapes are the ones captured
 * from a real RDS (/work/shared/reference/routeros/README.md):
 *
 * - a record is `key=value` pairs separated by one space; the first line starts at column 0
 *   (or after the list index), continuation lines are indented with 15 spaces;
 * - a line holds pairs while it stays within 78 characters (the samples wrap a 79-character
 *   line and keep a 78-character one: an 80-column terminal less RouterOS's trailing space),
 *   and never breaks inside a pair (byte counts contain spaces: `size=53 687 091 200`);
 * - `breakBefore` names keys that always start a new line: the captured disk record does so
 *   before `size`, `file-path` and `file-size` although they would fit (RouterOS groups
 *   properties), the pool record in the same listing does not;
 * - in a list each record starts with its index right-aligned in 2 columns and 2 spaces
 *   (` 0  `), records are separated by one empty line; with `flags`, a `Flags: ...` header
 *   comes first and each index is followed by one space, the record's flag letters padded to
 *   the legend's length, and one space (` 0 t  ` with a 2-letter legend).
 *
 * The output ends with a newline unless it is empty.
 *
 * May import: effect.
 */

/** How a value prints. RouterOS quotes by the property's type, not only by content. */
export type RenderValue =
  /** quoted only when empty or containing anything outside [A-Za-z0-9._/-] (`fs=-`, `file-path=/storage-pool/a.img`) */
  | { readonly _tag: "Plain"; readonly text: string }
  /** always quoted: RouterOS string properties (`slot="pvc-1"`, `slot-default=""`, `model="/storage-pool/a.img"`) */
  | { readonly _tag: "Quoted"; readonly text: string }
  /** printed as is, never quoted (`creation-time=jan/01/2025 00:00:00`, `use=27%`) */
  | { readonly _tag: "Verbatim"; readonly text: string }
  /** a byte count with digit groups separated by spaces (`53 687 091 200`) */
  | { readonly _tag: "Bytes"; readonly bytes: number }

export const plain = (text: string): RenderValue => ({ _tag: "Plain", text })
export const quoted = (text: string): RenderValue => ({ _tag: "Quoted", text })
export const verbatim = (text: string): RenderValue => ({ _tag: "Verbatim", text })
export const bytes = (n: number): RenderValue => ({ _tag: "Bytes", bytes: n })

export type Field = readonly [key: string, value: RenderValue]
export type RenderRecord = ReadonlyArray<Field>

export interface RenderFlags {
  /** The header's entries, e.g. `[["X", "disabled"], ["t", "nvme-tcp-export"]]`. */
  readonly legend: ReadonlyArray<readonly [letter: string, name: string]>
  /** Each record's flag letters (`""` for none), by record position. */
  readonly letters: ReadonlyArray<string>
}

export interface RenderOptions {
  /** List form: each record prefixed with its index. Otherwise records print one after another unprefixed. */
  readonly indexed: boolean
  /** The index of the first record (default 0). */
  readonly firstIndex?: number
  /** Only with `indexed`: a `Flags:` header and a flag column. */
  readonly flags?: RenderFlags
  /** Whether `key` of record number `record` (0-based position) always starts a continuation line. */
  readonly breakBefore?: (key: string, record: number) => boolean
  /** The longest line that may hold more than one pair (default 78). */
  readonly width?: number
}

export const CONTINUATION_INDENT = 15
export const DEFAULT_WIDTH = 78

/** `53687091200` → `53 687 091 200`. */
export const groupDigits = (n: number): string => {
  const s = String(Math.trunc(n))
  const neg = s.startsWith("-")
  const digits = neg ? s.slice(1) : s
  return (neg ? "-" : "") + digits.replace(/\B(?=(\d{3})+(?!\d))/g, " ")
}

const UNITS = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const

/**
 * A size as RouterOS prints `file-size`, `free-memory`: one decimal in the largest binary unit of
 * which the value holds at least 10 (`50.0GiB`, `512.0MiB`, `1024.0MiB` for 1 GiB, `1924.1KiB`:
 * RouterOS's own outputs), truncated, not rounded up; below 10 KiB, bytes (`4096B`).
 */
export const formatSize = (n: number): string => {
  for (const [unit, size] of UNITS) {
    if (n >= 10 * size) return `${(Math.floor((n / size) * 10) / 10).toFixed(1)}${unit}`
  }
  return `${n}B`
}

const BARE = /^[A-Za-z0-9._/-]+$/

/** A string between double quotes, with RouterOS's escapes (`\"`, `\\`, `\$`, `\XX` for control bytes). */
export const quote = (text: string): string => {
  let out = "\""
  for (const c of text) {
    const code = c.charCodeAt(0)
    if (c === "\"" || c === "\\" || c === "$") out += `\\${c}`
    else if (code < 0x20 || code === 0x7f) out += `\\${code.toString(16).toUpperCase().padStart(2, "0")}`
    else out += c
  }
  return out + "\""
}

export const formatValue = (v: RenderValue): string => {
  switch (v._tag) {
    case "Plain":
      return BARE.test(v.text) ? v.text : quote(v.text)
    case "Quoted":
      return quote(v.text)
    case "Verbatim":
      return v.text
    case "Bytes":
      return groupDigits(v.bytes)
  }
}

/** The lines of one record; the first starts with `prefix`. */
const recordLines = (record: RenderRecord, position: number, prefix: string, options: RenderOptions): Array<string> => {
  const width = options.width ?? DEFAULT_WIDTH
  const indent = " ".repeat(CONTINUATION_INDENT)
  const lines: Array<string> = []
  let line = prefix
  let empty = true
  for (const [key, value] of record) {
    const pair = `${key}=${formatValue(value)}`
    if (empty) {
      line += pair
      empty = false
    } else if (options.breakBefore?.(key, position) === true || line.length + 1 + pair.length > width) {
      lines.push(line)
      line = indent + pair
    } else {
      line += " " + pair
    }
  }
  lines.push(line)
  return lines
}

/** Records as `print detail` prints them (see the module header); `""` when there are none. */
export const renderDetail = (records: ReadonlyArray<RenderRecord>, options: RenderOptions): string => {
  const flags = options.indexed ? options.flags : undefined
  const out: Array<string> = []
  if (flags !== undefined) out.push(`Flags: ${flags.legend.map(([l, n]) => `${l} - ${n}`).join("; ")}`)
  const flagWidth = flags === undefined ? 0 : Math.max(1, flags.legend.length)
  records.forEach((record, i) => {
    if (options.indexed && i > 0) out.push("")
    const index = String((options.firstIndex ?? 0) + i).padStart(2)
    const prefix = !options.indexed
      ? ""
      : flags === undefined
      ? `${index}  `
      : `${index} ${(flags.letters[i] ?? "").padEnd(flagWidth)} `
    out.push(...recordLines(record, i, prefix, options))
  })
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

/** A single-item menu as RouterOS prints it (`/system resource print`): keys right-aligned, `key: value`. */
export const renderItem = (fields: ReadonlyArray<readonly [key: string, value: string]>): string => {
  const width = Math.max(0, ...fields.map(([k]) => k.length)) + 2
  return fields.map(([k, v]) => `${k.padStart(width)}: ${v}`).join("\n") + "\n"
}
