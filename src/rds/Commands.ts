/**
 * The RouterOS commands the controller runs, built only from values that passed strict
 * character sets (SPEC §9: nothing reaches a command from an unvalidated string). Each command
 * carries a name (a metrics label) and whether it may be retried: prints, removes and sets to a
 * fixed value are idempotent; `add` is not (the caller makes it so by reading first). Pure.
 *
 * May import: domain, effect.
 */
import { Brand, Result } from "effect"
import { InvalidArgument } from "../domain/Errors.ts"

export type Slot = string & Brand.Brand<"Slot">
export type RosPath = string & Brand.Brand<"RosPath">
export type RosNqn = string & Brand.Brand<"RosNqn">

const MiB = 1024 ** 2
const GiB = 1024 ** 3

// A CSI volume name becomes the disk's slot, the NQN's suffix and the backing file's name: letters,
// digits, '.', '_' and '-', starting with a letter or digit (csi-sanity's names carry upper case).
const SLOT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
// /pool/dir/... with the same characters per segment; no '.' or '..' segments.
const PATH = /^(\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127})+$/
// NQNs as RouterOS and the kernel both take them unquoted: no quotes, spaces, '$', '[' or '\'.
const NQN = /^nqn\.[A-Za-z0-9.:_-]{1,219}$/

/** A volume name usable as slot, NQN suffix and file name. */
export const slot = (value: string, field = "name"): Result.Result<Slot, InvalidArgument> => {
  if (value === "") return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  return SLOT.test(value) && !value.includes("..")
    ? Result.succeed(value as Slot)
    : Result.fail(new InvalidArgument({ field, rule: "must be 1-128 of A-Z a-z 0-9 . _ - (starting with a letter or digit)" }))
}

/** An absolute RDS path such as `/storage-pool/k8s`: at least the pool, segments of A-Z a-z 0-9 . _ -. */
export const rosPath = (value: string, field: string): Result.Result<RosPath, InvalidArgument> => {
  const segments = value.split("/").slice(1)
  return PATH.test(value) && segments.every((s) => s !== "." && s !== "..")
    ? Result.succeed(value as RosPath)
    : Result.fail(new InvalidArgument({ field, rule: "must be an absolute RDS path like /storage-pool/k8s (segments of A-Z a-z 0-9 . _ -)" }))
}

/** An NQN for a RouterOS command (subsystem or allowed host). */
export const rosNqn = (value: string, field: string): Result.Result<RosNqn, InvalidArgument> =>
  NQN.test(value)
    ? Result.succeed(value as RosNqn)
    : Result.fail(new InvalidArgument({ field, rule: "must be 'nqn.' followed by at most 219 of A-Z a-z 0-9 . : _ -" }))

/** The pool a path lies on: `/storage-pool/k8s` → `storage-pool`. */
export const poolOfPath = (path: RosPath): string => path.split("/")[1]!

/** Bytes rounded up to what the RDS takes: whole MiB. */
export const roundUpToMiB = (bytes: number): number => Math.ceil(bytes / MiB) * MiB

/** A whole-MiB size as RouterOS reads it: `50G` when whole GiB, else `512M`. */
export const sizeArg = (bytes: number): string => bytes % GiB === 0 ? `${bytes / GiB}G` : `${Math.ceil(bytes / MiB)}M`

export type CommandName =
  | "disk.print"
  | "disk.list"
  | "disk.add"
  | "disk.grow"
  | "disk.allow-host"
  | "disk.remove"
  | "file.print"
  | "file.remove"
  | "pool.print"
  | "system.print"

export interface RosCommand {
  readonly name: CommandName
  readonly text: string
  /** Safe to run again when its outcome is unknown (a dropped connection, a timeout). */
  readonly idempotent: boolean
}

const cmd = (name: CommandName, text: string, idempotent = true): RosCommand => ({ name, text, idempotent })

/** The file's name as `/file` prints it: no leading `/`. */
const fileName = (path: RosPath): string => path.slice(1)

export const printDisk = (s: Slot): RosCommand => cmd("disk.print", `/disk print detail where slot="${s}"`)

/** Every disk: the caller keeps the ones whose NQN has its prefix (one command, no regex quoting). */
export const listDisks = (): RosCommand => cmd("disk.list", "/disk print detail")

export interface AddDisk {
  readonly slot: Slot
  readonly filePath: RosPath
  readonly sizeBytes: number
  readonly port: number
  readonly nqn: RosNqn
}

export const addDisk = (d: AddDisk): RosCommand =>
  cmd(
    "disk.add",
    `/disk add type=file file-path=${d.filePath} file-size=${sizeArg(d.sizeBytes)} slot="${d.slot}" nvme-tcp-export=yes ` +
      `nvme-tcp-server-port=${d.port} nvme-tcp-server-nqn=${d.nqn}`,
    false
  )

/** Setting an absolute size is idempotent. */
export const growDisk = (s: Slot, sizeBytes: number): RosCommand =>
  cmd("disk.grow", `/disk set [find slot="${s}"] file-size=${sizeArg(sizeBytes)}`)

/** Only `host` may connect ("" = any host). Idempotent. */
export const allowHost = (s: Slot, host: RosNqn | ""): RosCommand =>
  cmd("disk.allow-host", `/disk set [find slot="${s}"] nvme-tcp-server-allow-host-name="${host}"`)

/** Removes the disk entry, not its file ("removing the disk item does not delete the file"). */
export const removeDisk = (s: Slot): RosCommand => cmd("disk.remove", `/disk remove [find slot="${s}"]`)

export const printFile = (path: RosPath): RosCommand => cmd("file.print", `/file print detail where name="${fileName(path)}"`)

export const removeFile = (path: RosPath): RosCommand => cmd("file.remove", `/file remove [find name="${fileName(path)}"]`)

/** The pool's size and free bytes (the reference's capture). */
export const printPool = (pool: string): RosCommand => cmd("pool.print", `/disk print detail where mount-point="${pool}"`)

/** A harmless print for health checks. */
export const printSystem = (): RosCommand => cmd("system.print", "/system resource print")
