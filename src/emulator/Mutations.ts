/**
 * The emulator's changing commands (`/disk add|set|remove`, `/file remove`), pure: each returns
 * the next state and the backend Actions, or the one line RouterOS prints when it refuses.
 * Values are checked first (`invalid value for argument X`), then required arguments, then
 * conflicts (`failure: item with such name already exists`), then space (`failure: not enough
 * space`), so a refused command changes nothing.
 *
 * `/disk add` creates the missing parent directories of its file (RouterOS's real behaviour
 * there is not captured; the controller's `/storage-pool/k8s/` need not be prepared by hand).
 * `/disk remove` keeps the file (the manual says so); `/file remove` refuses a file a disk uses.
 *
 * May import: effect, ./Backend (types), ./CommandLine (types), ./Model, ./Records (types).
 */
import { Result } from "effect"
import type { Action } from "./Backend.ts"
import type { Arg } from "./CommandLine.ts"
import {
  diskSize,
  type DiskEntry,
  type EmulatorState,
  type FileEntry,
  fileName,
  freeBytes,
  normalizeFilePath,
  parentDirectories,
  parseSize,
  POOL
} from "./Model.ts"
import type { Item } from "./Records.ts"

export type Change = Result.Result<{ readonly state: EmulatorState; readonly actions: ReadonlyArray<Action> }, string>

export const NQN_PREFIX = "nqn.2000-02.com.mikrotik:"

const invalid = (key: string) => `invalid value for argument ${key}`
const argMap = (args: ReadonlyArray<Arg>): ReadonlyMap<string, string> => new Map(args.map((a) => [a.key, a.value]))
/** A name nvmet and RouterOS can both hold: non-empty, at most 223 bytes, no `/`, no white space. */
const isName = (s: string) => s.length > 0 && s.length <= 223 && !/[/\s]/.test(s)

const yesNo = (key: string, v: string | undefined): Result.Result<boolean | undefined, string> =>
  v === undefined ? Result.succeed(undefined) : v === "yes" ? Result.succeed(true) : v === "no" ? Result.succeed(false) : Result.fail(invalid(key))

const size = (v: string | undefined): Result.Result<number | undefined, string> => {
  if (v === undefined) return Result.succeed(undefined)
  const n = parseSize(v)
  return n === undefined ? Result.fail(invalid("file-size")) : Result.succeed(n)
}

const hostName = (v: string | undefined): Result.Result<string | undefined, string> =>
  v === undefined || v === "" || isName(v) ? Result.succeed(v) : Result.fail(invalid("nvme-tcp-server-allow-host-name"))

/** `/disk add`: a file disk and its (new) backing file. */
export const addDisk = (state: EmulatorState, args: ReadonlyArray<Arg>, now: number): Change => {
  const a = argMap(args)
  const type = a.get("type")
  if (type !== undefined && type !== "file") return Result.fail(invalid("type"))
  const rawPath = a.get("file-path")
  const name = rawPath === undefined ? undefined : normalizeFilePath(rawPath)
  if (rawPath !== undefined && name === undefined) return Result.fail(invalid("file-path"))
  const bytes = size(a.get("file-size"))
  if (Result.isFailure(bytes)) return Result.fail(bytes.failure)
  const slotArg = a.get("slot")
  if (slotArg !== undefined && !isName(slotArg)) return Result.fail(invalid("slot"))
  const exported = yesNo("nvme-tcp-export", a.get("nvme-tcp-export"))
  if (Result.isFailure(exported)) return Result.fail(exported.failure)
  const portArg = a.get("nvme-tcp-server-port")
  const port = portArg === undefined ? 4420 : /^\d{1,5}$/.test(portArg) ? Number(portArg) : 0
  if (port < 1 || port > 65535) return Result.fail(invalid("nvme-tcp-server-port"))
  const nqnArg = a.get("nvme-tcp-server-nqn")
  if (nqnArg !== undefined && !isName(nqnArg)) return Result.fail(invalid("nvme-tcp-server-nqn"))
  const allow = hostName(a.get("nvme-tcp-server-allow-host-name"))
  if (Result.isFailure(allow)) return Result.fail(allow.failure)

  if (type === undefined) return Result.fail("failure: type must be specified")
  if (name === undefined) return Result.fail("failure: file-path must be specified")
  if (bytes.success === undefined) return Result.fail("failure: file-size must be specified")
  const id = state.nextId
  const slot = slotArg ?? `file${id}`
  const nqn = nqnArg ?? `${NQN_PREFIX}${slot}`
  const taken = state.disks.some((d) =>
    d.slot === slot || fileName(d.filePath) === name || (exported.success === true && d.nvmeTcpExport && d.nvmeTcpServerNqn === nqn)
  )
  if (taken || state.files.some((f) => f.name === name)) return Result.fail("failure: item with such name already exists")
  if (state.files.some((f) => f.type === "file" && parentDirectories(name).includes(f.name))) {
    return Result.fail(invalid("file-path"))
  }
  if (bytes.success > freeBytes(state)) return Result.fail("failure: not enough space")

  const newDirs = parentDirectories(name).filter((dir) => !state.files.some((f) => f.name === dir))
  const disk: DiskEntry = {
    id,
    slot,
    filePath: `/${name}`,
    nvmeTcpExport: exported.success ?? false,
    nvmeTcpServerPort: port,
    nvmeTcpServerNqn: nqn,
    allowHostName: allow.success ?? ""
  }
  const files: Array<FileEntry> = [
    ...newDirs.map((dir): FileEntry => ({ name: dir, type: "directory", size: 0, created: now })),
    { name, type: "file", size: bytes.success, created: now }
  ]
  return Result.succeed({
    state: { ...state, nextId: id + 1, disks: [...state.disks, disk], files: [...state.files, ...files] },
    actions: [
      ...newDirs.map((dir): Action => ({ _tag: "CreateDirectory", path: `/${dir}` })),
      { _tag: "CreateFile", path: disk.filePath, size: bytes.success },
      ...(disk.nvmeTcpExport ? [{ _tag: "Export", disk } as const] : [])
    ]
  })
}

const disksOf = (state: EmulatorState, items: ReadonlyArray<Item>): Result.Result<ReadonlyArray<DiskEntry>, string> => {
  const out: Array<DiskEntry> = []
  for (const i of items) {
    if (i.ref._tag === "Pool") return Result.fail("failure: can not change storage pool")
    const id = i.ref._tag === "Disk" ? i.ref.id : -1
    const d = state.disks.find((x) => x.id === id)
    if (d !== undefined) out.push(d)
  }
  return Result.succeed(out)
}

/** `/disk set`: grow the file, change the allowed host, export or stop exporting. Never shrinks. */
export const setDisks = (state: EmulatorState, items: ReadonlyArray<Item>, args: ReadonlyArray<Arg>): Change => {
  const a = argMap(args)
  const newSize = size(a.get("file-size"))
  if (Result.isFailure(newSize)) return Result.fail(newSize.failure)
  const allow = hostName(a.get("nvme-tcp-server-allow-host-name"))
  if (Result.isFailure(allow)) return Result.fail(allow.failure)
  const exported = yesNo("nvme-tcp-export", a.get("nvme-tcp-export"))
  if (Result.isFailure(exported)) return Result.fail(exported.failure)
  const disks = disksOf(state, items)
  if (Result.isFailure(disks)) return Result.fail(disks.failure)

  let growth = 0
  const sizes = new Map<string, number>()
  for (const d of disks.success) {
    const current = diskSize(state, d)
    const target = newSize.success ?? current
    if (target < current) return Result.fail("failure: can not shrink file")
    growth += target - current
    if (target > current) sizes.set(fileName(d.filePath), target)
  }
  if (growth > freeBytes(state)) return Result.fail("failure: not enough space")

  const actions: Array<Action> = []
  const changed = new Map<number, DiskEntry>()
  for (const d of disks.success) {
    const next: DiskEntry = { ...d, nvmeTcpExport: exported.success ?? d.nvmeTcpExport, allowHostName: allow.success ?? d.allowHostName }
    const grown = sizes.get(fileName(d.filePath))
    if (grown !== undefined) actions.push({ _tag: "ResizeFile", path: d.filePath, size: grown })
    if (d.nvmeTcpExport && !next.nvmeTcpExport) actions.push({ _tag: "Unexport", disk: d })
    else if (next.nvmeTcpExport && (!d.nvmeTcpExport || next.allowHostName !== d.allowHostName)) actions.push({ _tag: "Export", disk: next })
    if (grown !== undefined && d.nvmeTcpExport && next.nvmeTcpExport) actions.push({ _tag: "Revalidate", disk: next })
    changed.set(d.id, next)
  }
  return Result.succeed({
    state: {
      ...state,
      disks: state.disks.map((d) => changed.get(d.id) ?? d),
      files: state.files.map((f) => ({ ...f, size: sizes.get(f.name) ?? f.size }))
    },
    actions
  })
}

/** `/disk remove`: the disk entries (and their exports) go; their files stay. */
export const removeDisks = (state: EmulatorState, items: ReadonlyArray<Item>): Change => {
  const disks = disksOf(state, items)
  if (Result.isFailure(disks)) return Result.fail(disks.failure)
  const gone = new Set(disks.success.map((d) => d.id))
  return Result.succeed({
    state: { ...state, disks: state.disks.filter((d) => !gone.has(d.id)) },
    actions: disks.success.filter((d) => d.nvmeTcpExport).map((disk): Action => ({ _tag: "Unexport", disk }))
  })
}

/** `/file remove`: files no disk uses, directories that would be left empty. */
export const removeFiles = (state: EmulatorState, items: ReadonlyArray<Item>): Change => {
  const names = new Set(items.flatMap((i) => (i.ref._tag === "File" ? [i.ref.name] : [])))
  const entries = state.files.filter((f) => names.has(f.name))
  for (const f of entries) {
    if (f.name === POOL) return Result.fail("failure: can not remove storage pool")
    if (state.disks.some((d) => fileName(d.filePath) === f.name)) return Result.fail("failure: file is in use")
    if (f.type === "directory" && state.files.some((x) => x.name.startsWith(`${f.name}/`) && !names.has(x.name))) {
      return Result.fail("failure: directory is not empty")
    }
  }
  const deepestFirst = [...entries].sort((x, y) => y.name.length - x.name.length)
  return Result.succeed({
    state: { ...state, files: state.files.filter((f) => !names.has(f.name)) },
    actions: deepestFirst.map((f): Action => ({ _tag: f.type === "file" ? "RemoveFile" : "RemoveDirectory", path: `/${f.name}` }))
  })
}
