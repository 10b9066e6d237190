/**
 * What the emulator's menus list, as RouterOS prints each item, and `where` matching. Pure.
 *
 * `/disk` lists the pool first (the record the README shows for `where mount-point=...`:
 * `name=/storage-pool type=directory size= free= use= creation-time=`), then one record per
 * disk with exactly the captured single-disk field set and order (CommandLine.DISK_FIELDS).
 * `/file` lists files and directories, names without the leading `/`.
 *
 * A `where` compares against the printed values (unquoted; byte counts as plain digits) plus
 * `mount-point`, which no record prints (`storage-pool` for the pool, `""` for file disks).
 *
 * May import: effect, ./CommandLine, ./Model, ./Render.
 */
import { Result } from "effect"
import { type Condition, DISK_FIELDS } from "./CommandLine.ts"
import { diskSize, type DiskEntry, type EmulatorState, type FileEntry, formatTime, freeBytes, POOL } from "./Model.ts"
import { bytes, formatSize, plain, quoted, type RenderFlags, type RenderRecord, type RenderValue, verbatim } from "./Render.ts"

export type ItemRef =
  | { readonly _tag: "Pool" }
  | { readonly _tag: "Disk"; readonly id: number }
  | { readonly _tag: "File"; readonly name: string }

export interface Item {
  readonly ref: ItemRef
  readonly record: RenderRecord
  /** The flag letters a flagged list shows (`t`: exported over NVMe/TCP). */
  readonly flags: string
  /** Hidden properties a `where` may test. */
  readonly hidden: Readonly<Record<string, string>>
}

export const DISK_FLAGS: RenderFlags["legend"] = [["X", "disabled"], ["t", "nvme-tcp-export"]]

/** The captured disk record wraps before these even when they would fit. */
export const DISK_BREAK_BEFORE: ReadonlySet<string> = new Set(["size", "file-path", "file-size"])

const yesNo = (b: boolean) => plain(b ? "yes" : "no")

/** One disk as `/disk print detail` shows it: the README sample's fields, in its order. */
export const diskRecord = (state: EmulatorState, d: DiskEntry): RenderRecord => {
  const size = diskSize(state, d)
  const values: Readonly<Record<(typeof DISK_FIELDS)[number], RenderValue>> = {
    "type": plain("file"),
    "slot": quoted(d.slot),
    "slot-default": quoted(""),
    "parent": quoted(""),
    "fs": plain("-"),
    "model": quoted(d.filePath),
    "size": bytes(size),
    "mount-filesystem": plain("yes"),
    "mount-read-only": plain("no"),
    "compress": plain("no"),
    "sector-size": plain("512"),
    "raid-master": plain("none"),
    "nvme-tcp-export": yesNo(d.nvmeTcpExport),
    "nvme-tcp-server-port": plain(String(d.nvmeTcpServerPort)),
    "nvme-tcp-server-nqn": quoted(d.nvmeTcpServerNqn),
    "nvme-tcp-server-allow-host-name": quoted(d.allowHostName),
    "iscsi-export": plain("no"),
    "nfs-sharing": plain("no"),
    "smb-sharing": plain("no"),
    "media-sharing": plain("no"),
    "media-interface": plain("none"),
    "swap": plain("no"),
    "file-path": plain(d.filePath),
    "file-size": verbatim(formatSize(size)),
    "file-offset": plain("0")
  }
  return DISK_FIELDS.map((k) => [k, values[k]] as const)
}

/** The pool as the README's capacity sample shows it. */
export const poolRecord = (state: EmulatorState): RenderRecord => {
  const free = freeBytes(state)
  const use = state.pool.size === 0 ? 0 : Math.round(((state.pool.size - free) / state.pool.size) * 100)
  return [
    ["name", plain(`/${POOL}`)],
    ["type", plain("directory")],
    ["size", bytes(state.pool.size)],
    ["free", bytes(free)],
    ["use", verbatim(`${use}%`)],
    ["creation-time", verbatim(formatTime(state.pool.created))]
  ]
}

export const fileRecord = (f: FileEntry): RenderRecord => [
  ["name", plain(f.name)],
  ["type", plain(f.type)],
  ...(f.type === "file" ? [["size", bytes(f.size)] as const] : []),
  ["creation-time", verbatim(formatTime(f.created))]
]

/** `/disk`: the pool, then the disks in creation order. */
export const diskItems = (state: EmulatorState): ReadonlyArray<Item> => [
  { ref: { _tag: "Pool" }, record: poolRecord(state), flags: "", hidden: { "mount-point": POOL } },
  ...state.disks.map((d): Item => ({
    ref: { _tag: "Disk", id: d.id },
    record: diskRecord(state, d),
    flags: d.nvmeTcpExport ? "t" : "",
    hidden: { "mount-point": "" }
  }))
]

/** `/file`: files and directories in creation order. */
export const fileItems = (state: EmulatorState): ReadonlyArray<Item> =>
  state.files.map((f): Item => ({ ref: { _tag: "File", name: f.name }, record: fileRecord(f), flags: "", hidden: {} }))

const rawValue = (v: RenderValue): string => (v._tag === "Bytes" ? String(v.bytes) : v.text)

const valueOf = (item: Item, key: string): string | undefined => {
  const field = item.record.find(([k]) => k === key)
  return field !== undefined ? rawValue(field[1]) : item.hidden[key]
}

/** Items matching every condition; `Failure` with RouterOS's text for a bad regular expression. */
export const filterItems = (
  items: ReadonlyArray<Item>,
  where: ReadonlyArray<Condition>
): Result.Result<ReadonlyArray<Item>, string> => {
  const tests: Array<(item: Item) => boolean> = []
  for (const c of where) {
    if (c.op === "~") {
      let re: RegExp
      try {
        re = new RegExp(c.value)
      } catch {
        return Result.fail(`invalid regular expression (line 1 column ${c.column})`)
      }
      tests.push((item) => {
        const v = valueOf(item, c.key)
        return v !== undefined && re.test(v)
      })
    } else {
      const want = c.op === "="
      tests.push((item) => (valueOf(item, c.key) === c.value) === want)
    }
  }
  return Result.succeed(items.filter((item) => tests.every((t) => t(item))))
}
