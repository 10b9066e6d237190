/**
 * RouterOsParser: the output of RouterOS `print detail` → records of key=value pairs, and those
 * records → the controller's Disk, PoolSpace and BackingFile. Pure. Tolerant of every shape the
 * reference captured from a real RDS (reference/routeros/README.md): a `Flags:` header, record
 * indices (` 0  `, with flag letters after them), `;;;` comments (alone or after the index),
 * records wrapped onto indented continuation lines, quoted values with escapes (`\XX` bytes
 * decoded as UTF-8), byte counts printed with digit groups separated by spaces
 * (`size=53 687 091 200`), values with spaces (`creation-time=jan/01/2025 00:00:00`), file names
 * with or without a leading `/`, blank lines between records.
 *
 * May import: effect.
 */
import { Data, Result } from "effect"

/** One printed item: its properties in the order printed (a later duplicate key wins). */
export type RosRecord = ReadonlyMap<string, string>

/** Output that is not what a `print detail` prints. */
export class RosParseError extends Data.TaggedError("RosParseError")<{
  readonly detail: string
  readonly output: string
}> {
  override get message(): string {
    return `unexpected RouterOS output: ${this.detail}`
  }
}

// An index line: at most 4 spaces of indentation, the item's number, then optional flag letters
// (`X`, `t`, `D`, `*`; as many as the item has: /disk has more than ten flags) before the first
// key. Continuation lines are indented deeper (15 in the captures), so a wrapped digit group
// ("   687 091 200") is never mistaken for an index.
const INDEX_LINE = /^ {0,4}(\d+)((?:\s+[A-Za-z*]+(?=\s))*)\s+(.*)$/
const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

const ESCAPES: Readonly<Record<string, string>> = {
  "\"": "\"",
  "\\": "\\",
  n: "\n",
  r: "\r",
  t: "\t",
  $: "$",
  "?": "?",
  _: " ",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v"
}

const UTF8 = new TextDecoder("utf-8", { fatal: true })

/** Bytes printed as `\XX` escapes: UTF-8 when they are (RouterOS escapes each byte of a non-ASCII character), else one character per byte. */
const decodeBytes = (bytes: ReadonlyArray<number>): string => {
  try {
    return UTF8.decode(new Uint8Array(bytes))
  } catch {
    return String.fromCharCode(...bytes)
  }
}

/** Reads a quoted value starting at `text[at] === '"'`; returns the value and the index after the closing quote. */
const readQuoted = (text: string, at: number): { readonly value: string; readonly end: number } | undefined => {
  let value = ""
  let bytes: Array<number> = []
  const flushBytes = () => {
    if (bytes.length > 0) value += decodeBytes(bytes)
    bytes = []
  }
  for (let i = at + 1; i < text.length; i++) {
    const c = text[i]!
    if (c !== "\\") {
      flushBytes()
      if (c === "\"") return { value, end: i + 1 }
      value += c
      continue
    }
    const next = text[i + 1]
    if (next === undefined) return undefined
    // The manual: "\XX: character from hex value; hex numbers should use capital letters", so
    // `\ab` is BEL then `b`, not 0xAB.
    const hex = /^[0-9A-F]{2}$/.test(text.slice(i + 1, i + 3)) ? text.slice(i + 1, i + 3) : undefined
    if (hex !== undefined) {
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else {
      flushBytes()
      value += ESCAPES[next] ?? next
      i += 1
    }
  }
  return undefined
}

/** The key=value pairs of one logical record (its lines joined with single spaces). */
const pairsOf = (text: string, output: string): Result.Result<Map<string, string>, RosParseError> => {
  const record = new Map<string, string>()
  let last: string | undefined
  let i = 0
  while (i < text.length) {
    while (text[i] === " " || text[i] === "\t") i++
    if (i >= text.length) break
    const start = i
    while (i < text.length && text[i] !== " " && text[i] !== "\t" && text[i] !== "=" && text[i] !== "\"") i++
    const word = text.slice(start, i)
    if (text[i] === "=" && KEY.test(word)) {
      i++
      let value: string
      if (text[i] === "\"") {
        const quoted = readQuoted(text, i)
        if (quoted === undefined) return Result.fail(new RosParseError({ detail: `unterminated quote in ${word}=`, output }))
        value = quoted.value
        i = quoted.end
      } else {
        const from = i
        while (i < text.length && text[i] !== " " && text[i] !== "\t") i++
        value = text.slice(from, i)
      }
      record.set(word, value)
      last = word
      continue
    }
    // A token without '=': the previous value goes on (digit groups, a time after a date).
    while (i < text.length && text[i] !== " " && text[i] !== "\t") i++
    const token = text.slice(start, i)
    if (last === undefined) return Result.fail(new RosParseError({ detail: `'${token}' before any key=value`, output }))
    record.set(last, `${record.get(last)} ${token}`)
  }
  return Result.succeed(record)
}

/**
 * Every record in a `print detail` output, in order. Empty output is no record (RouterOS prints
 * nothing when `where` matches nothing).
 */
export const parseRecords = (output: string): Result.Result<ReadonlyArray<RosRecord>, RosParseError> => {
  const logical: Array<string> = []
  let current: Array<string> = []
  let inHeader = false
  const flush = () => {
    if (current.length > 0) logical.push(current.join(" "))
    current = []
  }
  for (const raw of output.replace(/\r/g, "").split("\n")) {
    const line = raw.replace(/\s+$/, "")
    if (line.trim() === "") {
      flush()
      inHeader = false
      continue
    }
    const trimmed = line.trimStart()
    if (/^(Flags|Columns):/.test(trimmed)) {
      flush()
      inHeader = true
      continue
    }
    const index = INDEX_LINE.exec(line)
    // A header wraps onto indented lines without key=value pairs.
    if (inHeader && index === null && /^\s/.test(line) && !trimmed.includes("=")) continue
    inHeader = false
    if (trimmed.startsWith(";;;")) continue // an item's comment
    // ` 0 X  ;;; comment`: the item's properties follow on the next, indented lines.
    if (index !== null && (index[3] ?? "").startsWith(";;;")) {
      flush()
      continue
    }
    if (index !== null && (index[3] ?? "").includes("=")) {
      flush()
      current.push(index[3]!)
      continue
    }
    if (!/^\s/.test(line) && current.length > 0) flush() // an unindexed item starts at column 0
    current.push(trimmed)
  }
  flush()
  const records: Array<RosRecord> = []
  for (const text of logical) {
    const pairs = pairsOf(text, output)
    if (Result.isFailure(pairs)) return Result.fail(pairs.failure)
    if (pairs.success.size > 0) records.push(pairs.success)
  }
  return Result.succeed(records)
}

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  B: 1,
  K: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TIB: 1024 ** 4
}

/** A byte count as RouterOS prints it: `53 687 091 200`, `53687091200`, or with a unit (`50.0GiB`, `512M`). */
export const bytesOf = (value: string): number | undefined => {
  const v = value.trim()
  if (/^\d{1,3}( \d{3})+$/.test(v) || /^\d+$/.test(v)) {
    const n = Number(v.replaceAll(" ", ""))
    return Number.isSafeInteger(n) ? n : undefined
  }
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i.exec(v)
  if (m === null) return undefined
  const unit = UNITS[(m[2] ?? "").toUpperCase()]
  if (unit === undefined) return undefined
  const n = Math.round(Number(m[1]) * unit)
  return Number.isSafeInteger(n) ? n : undefined
}

const yes = (value: string | undefined): boolean => value === "yes" || value === "true"

/** A file-backed disk as the controller needs it. */
export interface Disk {
  readonly slot: string
  readonly type: string
  /** Absolute (`/storage-pool/k8s/pvc-1.img`), whatever the RDS printed. */
  readonly filePath: string | undefined
  /** The disk's size in bytes (`size=`, else `file-size=`). */
  readonly sizeBytes: number
  readonly nvmeExport: boolean
  readonly nvmePort: number | undefined
  readonly nqn: string | undefined
  /** The host NQN allowed to connect; "" = any host. */
  readonly allowHost: string
}

const absolute = (path: string): string => path.startsWith("/") ? path : `/${path}`

/** A disk record → Disk; undefined when it lacks a slot or a readable size. */
export const diskOf = (record: RosRecord): Disk | undefined => {
  const slot = record.get("slot")
  const size = bytesOf(record.get("size") ?? "") ?? bytesOf(record.get("file-size") ?? "")
  if (slot === undefined || slot === "" || size === undefined) return undefined
  const port = record.get("nvme-tcp-server-port")
  const filePath = record.get("file-path")
  const nqn = record.get("nvme-tcp-server-nqn")
  return {
    slot,
    type: record.get("type") ?? "",
    filePath: filePath === undefined || filePath === "" ? undefined : absolute(filePath),
    sizeBytes: size,
    nvmeExport: yes(record.get("nvme-tcp-export")),
    nvmePort: port !== undefined && /^\d+$/.test(port) ? Number(port) : undefined,
    nqn: nqn === undefined || nqn === "" ? undefined : nqn,
    allowHost: record.get("nvme-tcp-server-allow-host-name") ?? ""
  }
}

/** The pool's file system (`/disk print detail where mount-point=…`). */
export interface PoolSpace {
  readonly name: string
  readonly sizeBytes: number
  readonly freeBytes: number
}

export const poolOf = (record: RosRecord): PoolSpace | undefined => {
  const size = bytesOf(record.get("size") ?? "")
  const free = bytesOf(record.get("free") ?? "")
  if (size === undefined || free === undefined) return undefined
  return { name: absolute(record.get("name") ?? record.get("mount-point") ?? ""), sizeBytes: size, freeBytes: free }
}

/** A file (`/file print detail`); `path` is absolute. */
export interface BackingFile {
  readonly path: string
  readonly type: string
  readonly sizeBytes: number | undefined
}

export const fileOf = (record: RosRecord): BackingFile | undefined => {
  const name = record.get("name")
  if (name === undefined || name === "") return undefined
  return { path: absolute(name), type: record.get("type") ?? "", sizeBytes: bytesOf(record.get("size") ?? "") }
}
