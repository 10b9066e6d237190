/**
 * The RDS emulator's state: one storage pool (`/storage-pool`), its files and directories, and
 * the file-backed disks on them. Plain immutable data with a Schema, persisted as one JSON file
 * by the daemon (StateFile.ts). Pure helpers for what RouterOS derives from it (free space,
 * sizes given with units, file paths).
 *
 * Capacity: a file counts with its full size whether or not it is sparse (a reservation), so
 * `free = pool size - sum of file sizes`.
 *
 * May import: effect.
 */
import { Schema } from "effect"

export const POOL = "storage-pool"

export const FileEntry = Schema.Struct({
  /** RouterOS's file name: no leading `/` (`storage-pool/k8s/pvc-1.img`). */
  name: Schema.String,
  type: Schema.Literals(["file", "directory"]),
  /** Bytes; 0 for directories. */
  size: Schema.Number,
  /** Epoch milliseconds. */
  created: Schema.Number
})
export type FileEntry = typeof FileEntry.Type

export const DiskEntry = Schema.Struct({
  /** Internal id (RouterOS's `*1`, `*2`, ...). */
  id: Schema.Number,
  slot: Schema.String,
  /** With the leading `/` (`/storage-pool/k8s/pvc-1.img`), as given to `/disk add`. */
  filePath: Schema.String,
  nvmeTcpExport: Schema.Boolean,
  nvmeTcpServerPort: Schema.Number,
  nvmeTcpServerNqn: Schema.String,
  /** `""`: any host may connect; else the one host NQN allowed. */
  allowHostName: Schema.String
})
export type DiskEntry = typeof DiskEntry.Type

export const EmulatorState = Schema.Struct({
  version: Schema.Literal(1),
  pool: Schema.Struct({ size: Schema.Number, created: Schema.Number }),
  nextId: Schema.Number,
  disks: Schema.Array(DiskEntry),
  files: Schema.Array(FileEntry)
})
export type EmulatorState = typeof EmulatorState.Type

/** A fresh pool holding only its root directory. */
export const initialState = (poolSize: number, now: number): EmulatorState => ({
  version: 1,
  pool: { size: poolSize, created: now },
  nextId: 1,
  disks: [],
  files: [{ name: POOL, type: "directory", size: 0, created: now }]
})

export const usedBytes = (s: EmulatorState): number => s.files.reduce((sum, f) => sum + (f.type === "file" ? f.size : 0), 0)
export const freeBytes = (s: EmulatorState): number => Math.max(0, s.pool.size - usedBytes(s))

/** The size of a disk: its backing file's. */
export const diskSize = (s: EmulatorState, d: DiskEntry): number => s.files.find((f) => f.name === fileName(d.filePath))?.size ?? 0

const UNIT: Readonly<Record<string, number>> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

/**
 * `file-size` as RouterOS takes it: plain bytes or an integer with a binary unit (`50G`,
 * `512M`, `1T`, also `50GiB`); must be a positive multiple of 512. `undefined`: invalid.
 */
export const parseSize = (text: string): number | undefined => {
  const m = /^(\d+)(?:([kKmMgGtT])(?:iB)?)?$/.exec(text)
  if (m === null) return undefined
  const n = Number(m[1]) * UNIT[(m[2] ?? "").toLowerCase()]!
  return Number.isSafeInteger(n) && n > 0 && n % 512 === 0 ? n : undefined
}

/** A `--pool-size` flag: like parseSize without the 512 rule, any positive size. */
export const parsePoolSize = (text: string): number | undefined => {
  const m = /^(\d+)(?:([kKmMgGtT])(?:iB)?)?$/.exec(text)
  if (m === null) return undefined
  const n = Number(m[1]) * UNIT[(m[2] ?? "").toLowerCase()]!
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/**
 * A `file-path` (`/storage-pool/k8s/a.img` or `storage-pool/k8s/a.img`) → RouterOS's file name
 * (`storage-pool/k8s/a.img`), or `undefined` when it is not a file inside the pool (empty
 * segments, `.`/`..`, the pool itself).
 */
export const normalizeFilePath = (path: string): string | undefined => {
  const name = path.replace(/^\/+/, "")
  const parts = name.split("/")
  if (parts.length < 2 || parts[0] !== POOL) return undefined
  if (parts.some((p) => p === "" || p === "." || p === "..")) return undefined
  return name
}

/** `/storage-pool/k8s/a.img` → `storage-pool/k8s/a.img`. */
export const fileName = (filePath: string): string => filePath.replace(/^\/+/, "")

/** The directories that must exist for a file: `storage-pool/a/b.img` → [`storage-pool/a`] (the pool root always exists). */
export const parentDirectories = (name: string): ReadonlyArray<string> => {
  const parts = name.split("/")
  const out: Array<string> = []
  for (let i = 2; i < parts.length; i++) out.push(parts.slice(0, i).join("/"))
  return out
}

/**
 * `state` with these directories (RouterOS names: `storage-pool/k8s`) and their parents; the
 * same object when nothing is missing. Names outside the pool are ignored.
 */
export const withDirectories = (state: EmulatorState, names: ReadonlyArray<string>, now: number): EmulatorState => {
  const wanted = names.flatMap((n) => {
    const name = normalizeFilePath(`${n.replace(/\/+$/, "")}/_`)
    return name === undefined ? [] : parentDirectories(name)
  })
  const missing = [...new Set(wanted)].filter((d) => !state.files.some((f) => f.name === d))
  return missing.length === 0
    ? state
    : { ...state, files: [...state.files, ...missing.map((name): FileEntry => ({ name, type: "directory", size: 0, created: now }))] }
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
const two = (n: number) => String(n).padStart(2, "0")

/** RouterOS's (pre-7.10) date-time in UTC: `jan/01/2025 00:00:00`. */
export const formatTime = (epochMs: number): string => {
  const d = new Date(epochMs)
  return `${MONTHS[d.getUTCMonth()]}/${two(d.getUTCDate())}/${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
}

/** RouterOS's uptime: `1w2d3h4m5s`, zero parts left out (`0s` at start). */
export const formatUptime = (ms: number): string => {
  let s = Math.max(0, Math.floor(ms / 1000))
  const parts: Array<string> = []
  for (const [unit, size] of [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60]] as const) {
    const n = Math.floor(s / size)
    s -= n * size
    if (n > 0) parts.push(`${n}${unit}`)
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`)
  return parts.join("")
}
