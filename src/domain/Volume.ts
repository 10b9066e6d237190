/**
 * What a volume is and how it is used: file-system type, mount flags, access type and mode,
 * and the volume context (SPEC §3 keys, compatible with the Go driver). Pure.
 */
import { Result } from "effect"
import { InvalidArgument } from "./Errors.ts"
import { type Nqn, nqn } from "./Ids.ts"
import { type Port, type TargetAddress, port, targetAddress } from "./Target.ts"

export const FS_TYPES = ["ext4", "xfs"] as const
export type FsType = (typeof FS_TYPES)[number]
export const DEFAULT_FS_TYPE: FsType = "ext4"

/** An empty fsType means the default (CSI leaves it to the plugin). */
export const fsType = (value: string, field: string): Result.Result<FsType, InvalidArgument> => {
  if (value === "") return Result.succeed(DEFAULT_FS_TYPE)
  return (FS_TYPES as ReadonlyArray<string>).includes(value)
    ? Result.succeed(value as FsType)
    : Result.fail(new InvalidArgument({ field, rule: `must be one of ${FS_TYPES.join(", ")} (got '${value}')` }))
}

// Flags a workload may ask for. Anything that changes what is mounted or where (bind, remount,
// move, X-mount.*, loop, offset) or loosens host security beyond the mode (suid/dev/exec on
// their own are the defaults) is not on the list.
const PLAIN_FLAGS = new Set([
  "ro", "rw", "noatime", "nodiratime", "relatime", "strictatime", "lazytime", "nolazytime",
  "nodev", "nosuid", "noexec", "sync", "async", "dirsync", "discard", "nodiscard",
  "barrier", "nobarrier", "nouuid", "inode64", "inode32", "largeio", "nolargeio",
  "uquota", "gquota", "pquota", "prjquota", "usrquota", "grpquota", "noquota",
  "user_xattr", "nouser_xattr", "acl", "noacl", "journal_checksum", "nojournal_checksum",
  "delalloc", "nodelalloc", "auto_da_alloc", "noauto_da_alloc", "noinit_itable", "init_itable",
  "block_validity", "noblock_validity", "dax"
])
const VALUED_FLAGS: ReadonlyArray<readonly [string, RegExp]> = [
  ["data", /^(journal|ordered|writeback)$/],
  ["errors", /^(continue|remount-ro|panic)$/],
  ["commit", /^\d{1,5}$/],
  ["stripe", /^\d{1,9}$/],
  ["logbufs", /^\d{1,2}$/],
  ["logbsize", /^\d{1,6}[kKmM]?$/],
  ["allocsize", /^\d{1,9}[kKmMgG]?$/],
  ["sunit", /^\d{1,9}$/],
  ["swidth", /^\d{1,9}$/],
  ["inode_readahead_blks", /^\d{1,5}$/],
  ["max_batch_time", /^\d{1,9}$/],
  ["min_batch_time", /^\d{1,9}$/],
  ["init_itable", /^\d{1,3}$/]
]

/** Mount flags from the allowlist; a flag may come as `a,b` in one entry (kubelet passes them either way). */
export const mountFlags = (values: ReadonlyArray<string>, field: string): Result.Result<ReadonlyArray<string>, InvalidArgument> => {
  const out: Array<string> = []
  for (const entry of values) {
    for (const flag of entry.split(",").map((f) => f.trim()).filter((f) => f.length > 0)) {
      const eq = flag.indexOf("=")
      if (eq < 0) {
        if (!PLAIN_FLAGS.has(flag)) return Result.fail(new InvalidArgument({ field, rule: `mount flag '${flag}' is not allowed` }))
      } else {
        const key = flag.slice(0, eq)
        const rule = VALUED_FLAGS.find(([k]) => k === key)
        if (rule === undefined) return Result.fail(new InvalidArgument({ field, rule: `mount flag '${key}=' is not allowed` }))
        if (!rule[1].test(flag.slice(eq + 1))) {
          return Result.fail(new InvalidArgument({ field, rule: `mount flag '${flag}' has a value outside ${rule[1].source}` }))
        }
      }
      if (!out.includes(flag)) out.push(flag)
    }
  }
  return Result.succeed(out)
}

export const ACCESS_MODES = [
  "SINGLE_NODE_WRITER",
  "SINGLE_NODE_READER_ONLY",
  "MULTI_NODE_READER_ONLY",
  "MULTI_NODE_SINGLE_WRITER",
  "MULTI_NODE_MULTI_WRITER",
  "SINGLE_NODE_SINGLE_WRITER",
  "SINGLE_NODE_MULTI_WRITER"
] as const
export type AccessMode = (typeof ACCESS_MODES)[number]

export type AccessType =
  | { readonly _tag: "Mount"; readonly fsType: FsType; readonly mountFlags: ReadonlyArray<string> }
  | { readonly _tag: "Block" }

export interface VolumeCapability {
  readonly accessType: AccessType
  readonly accessMode: AccessMode
}

/** Read-only by mode: every reader-only mode. (Per-publish `readonly` is separate.) */
export const isReadOnlyMode = (mode: AccessMode): boolean =>
  mode === "SINGLE_NODE_READER_ONLY" || mode === "MULTI_NODE_READER_ONLY"

/**
 * Which access type may use which mode. A file system mounted on two nodes at once would be
 * corrupted unless both only read; raw block may be shared by several writers (KubeVirt live
 * migration coordinates them itself).
 */
export const checkCapability = (cap: VolumeCapability, field: string): Result.Result<VolumeCapability, InvalidArgument> => {
  switch (cap.accessMode) {
    case "SINGLE_NODE_WRITER":
    case "SINGLE_NODE_READER_ONLY":
    case "SINGLE_NODE_SINGLE_WRITER":
    case "SINGLE_NODE_MULTI_WRITER":
      return Result.succeed(cap)
    case "MULTI_NODE_READER_ONLY":
      return Result.succeed(cap)
    case "MULTI_NODE_MULTI_WRITER":
      return cap.accessType._tag === "Block"
        ? Result.succeed(cap)
        : Result.fail(new InvalidArgument({ field: `${field}.access_mode`, rule: "MULTI_NODE_MULTI_WRITER is only supported for raw block volumes" }))
    case "MULTI_NODE_SINGLE_WRITER":
      return Result.fail(new InvalidArgument({ field: `${field}.access_mode`, rule: "MULTI_NODE_SINGLE_WRITER is not supported" }))
  }
}

/** How to reach the volume and which namespace is it. */
export interface VolumeTarget {
  readonly nqn: Nqn
  readonly address: TargetAddress
  readonly port: Port
  /** Seconds before the kernel gives up reconnecting and deletes the controller; -1 = never. */
  readonly ctrlLossTmo: number
  /** Seconds between reconnect attempts. */
  readonly reconnectDelay: number
  /** Keep-alive timeout in seconds; undefined = the kernel's default. */
  readonly keepAliveTmo: number | undefined
  readonly namespace: NamespaceSelector
}

/** Pins the namespace when a subsystem exports several, or to detect a swapped volume. */
export interface NamespaceSelector {
  readonly nsid: number | undefined
  readonly nguid: string | undefined
  readonly uuid: string | undefined
}

const intIn = (raw: string | undefined, field: string, min: number, max: number, fallback: number | undefined): Result.Result<number | undefined, InvalidArgument> => {
  if (raw === undefined || raw === "") return Result.succeed(fallback)
  if (!/^-?\d{1,10}$/.test(raw)) return Result.fail(new InvalidArgument({ field, rule: `must be an integer ${min}..${max}` }))
  const n = Number(raw)
  if (n < min || n > max) return Result.fail(new InvalidArgument({ field, rule: `must be between ${min} and ${max}` }))
  return Result.succeed(n)
}

const NGUID = /^[0-9a-f]{32}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Reads the volume context (a string map set by the controller or a static PV). Keys follow the
 * Go driver: `nqn`, `nvmeAddress` (or `rdsAddress`; an IP literal), `nvmePort`, `ctrlLossTmo`
 * (default -1), `reconnectDelay` (default 5), `keepAliveTmo`, and optional `nsid`/`nguid`/`uuid`.
 * The NQN and the address reach the kernel's connect option string, so both are option-safe.
 */
export const volumeTarget = (ctx: Readonly<Record<string, string>>): Result.Result<VolumeTarget, InvalidArgument> =>
  Result.gen(function*() {
    const f = (k: string) => `volume_context.${k}`
    const theNqn = yield* nqn(ctx["nqn"] ?? "", f("nqn"))
    const rawAddress = ctx["nvmeAddress"] ?? ctx["rdsAddress"]
    if (rawAddress === undefined) return yield* Result.fail(new InvalidArgument({ field: f("nvmeAddress"), rule: "is required" }))
    const address = yield* targetAddress(rawAddress, ctx["nvmeAddress"] !== undefined ? f("nvmeAddress") : f("rdsAddress"))
    const thePort = yield* port(ctx["nvmePort"] ?? "", f("nvmePort"))
    const ctrlLossTmo = (yield* intIn(ctx["ctrlLossTmo"], f("ctrlLossTmo"), -1, 86400 * 365, -1)) ?? -1
    const reconnectDelay = (yield* intIn(ctx["reconnectDelay"], f("reconnectDelay"), 1, 3600, 5)) ?? 5
    const keepAliveTmo = yield* intIn(ctx["keepAliveTmo"], f("keepAliveTmo"), 1, 3600, undefined)
    const nsid = yield* intIn(ctx["nsid"], f("nsid"), 1, 0xfffffffe, undefined)
    const nguid = ctx["nguid"]?.toLowerCase().replaceAll("-", "")
    if (nguid !== undefined && !NGUID.test(nguid)) return yield* Result.fail(new InvalidArgument({ field: f("nguid"), rule: "must be 32 hex digits" }))
    const uuid = ctx["uuid"]?.toLowerCase()
    if (uuid !== undefined && !UUID.test(uuid)) return yield* Result.fail(new InvalidArgument({ field: f("uuid"), rule: "must be a UUID (8-4-4-4-12 hex digits)" }))
    return { nqn: theNqn, address, port: thePort, ctrlLossTmo, reconnectDelay, keepAliveTmo, namespace: { nsid, nguid, uuid } }
  })
