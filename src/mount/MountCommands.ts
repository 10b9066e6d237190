/**
 * The mount commands' pure side, kept apart from the layer that runs them: the options a mount is
 * made with (read-only file systems without journal replay), argv builders for mount, mkfs and
 * the resize tools; what a finished mount/umount means (tested against real
 * util-linux output, test/fixtures/mount); mkfs's longer timeout; the tools we need on PATH;
 * dev_t splitting; and the synchronous /proc holder scan and PATH lookup (plain fs reads, no
 * Effect). MounterLive.ts spawns and wraps them.
 *
 * May import: effect, node:fs, node:os, domain, mount/Mounter (types), mount/Mountinfo, process/Command (types),
 * process/SpawnHelper (types).
 */
import { Duration, Result } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import type { FsType } from "../domain/Volume.ts"
import type { CommandOutput } from "../process/Command.ts"
import type { HelperCall } from "../process/SpawnHelper.ts"
import type { ForeignMount, MountError, MountOptions } from "./Mounter.ts"
import { parseMountinfo } from "./Mountinfo.ts"

/** mkfs of a large volume discards and writes metadata: far longer than a mount. */
export const mkfsTimeout = (commandTimeout: Duration.Duration): Duration.Duration =>
  Duration.max(Duration.times(commandTimeout, 10), Duration.minutes(5))
export const TOOLS = ["mount", "umount", "blkid", "mkfs.ext4", "mkfs.xfs", "resize2fs", "xfs_growfs"] as const

/** A MountError sub-kind, as the classifiers below return it. */
export type Reason = MountError["reason"]

/** True when the mount will be read-only: asked for, or `ro` among the options (ro always wins). */
export const isReadOnly = (o: MountOptions): boolean => o.readOnly || o.options.includes("ro")

/**
 * The file-system option that keeps a mount from replaying the journal (ext4 `noload`) or log
 * (xfs `norecovery`): a replay writes to the device, which a read-only access mode must not do.
 */
export const NO_REPLAY: Readonly<Record<FsType, string>> = { ext4: "noload", xfs: "norecovery" }

/** The options a mount is made with: a read-only file-system mount (not a bind) adds NO_REPLAY. */
export const mountOptions = (o: MountOptions): MountOptions => {
  if (o.bind || o.fsType === undefined || !isReadOnly(o)) return o
  const noReplay = NO_REPLAY[o.fsType]
  return o.options.includes(noReplay) ? o : { ...o, options: [...o.options, noReplay] }
}

/** `mount` argv: a file system with -t/-o, or a bind (`-o bind,ro` makes libmount remount it read-only). */
export const mountArgv = (source: string, target: string, options: MountOptions): ReadonlyArray<string> => {
  const o = mountOptions(options)
  const ro = isReadOnly(o)
  const rest = o.options.filter((x) => x !== "bind" && x !== "ro" && !(ro && x === "rw"))
  const opts = [...(o.bind ? ["bind"] : []), ...rest, ...(ro ? ["ro"] : [])]
  return [
    ...(!o.bind && o.fsType !== undefined ? ["-t", o.fsType] : []),
    ...(opts.length > 0 ? ["-o", opts.join(",")] : []),
    source,
    target
  ]
}

export const mkfsArgv = (device: string, fsType: FsType): readonly [string, ReadonlyArray<string>] =>
  fsType === "xfs" ? ["mkfs.xfs", ["-f", "-q", device]] : ["mkfs.ext4", ["-F", "-q", device]]

export const resizeArgv = (device: string, fsType: FsType, mountPoint: string): readonly [string, ReadonlyArray<string>] =>
  fsType === "xfs" ? ["xfs_growfs", [mountPoint]] : ["resize2fs", [device]]

/** Pure: what a finished `umount` means (util-linux 2.38 messages, exit 32 for all of them). */
export const classifyUmount = (out: CommandOutput): Reason | "Ok" => {
  if (out.exitCode === 0) return "Ok"
  if (/not mounted|no mount point specified/i.test(out.stderr)) return "NotMounted"
  if (/target is busy|device is busy/i.test(out.stderr)) return "Busy"
  return "Failed"
}

/** Pure: what a finished `mount` means. */
export const classifyMount = (out: CommandOutput): Reason | "Ok" => {
  if (out.exitCode === 0) return "Ok"
  if (/already mounted|is busy/i.test(out.stderr)) return "Busy"
  return "Failed"
}

/** mount(2) flags (include/uapi/linux/mount.h) and umount2(2)'s MNT_DETACH. */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  SYNCHRONOUS: 16,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24
} as const
export const MNT_DETACH = 2

/**
 * A bind with nothing but `ro`/`rw` (and `bind`) among its options: what mount(2) alone can make,
 * a bind and, read-only, one remount. Any other option is left to mount(8), which knows them all.
 */
export const isPlainBind = (o: MountOptions): boolean => o.bind && o.options.every((x) => x === "bind" || x === "ro" || x === "rw")

/**
 * The flags that remount a bind read-only and keep every other per-mount flag it has (mountinfo's
 * field 6): a bind remount sets nosuid, nodev, noexec and nosymfollow to exactly the ones given,
 * so a bind of a `nosuid,nodev` source remounted with MS_RDONLY alone would lose them. The atime
 * flags are left out: a remount that names none keeps the mount's own.
 */
export const readOnlyRemountFlags = (mountOptions: ReadonlyArray<string>): number => {
  const kept: Partial<Record<string, number>> = { nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, nosymfollow: MS.NOSYMFOLLOW }
  let flags = MS.REMOUNT | MS.BIND | MS.RDONLY
  for (const o of mountOptions) flags |= kept[o] ?? 0
  return flags
}

/** The options mount(8) turns into mount(2) flags (a subset: the ones a CSI mount flag may be). */
const VFS_FLAGS: Partial<Record<string, number>> = {
  ro: MS.RDONLY,
  rw: 0,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  sync: MS.SYNCHRONOUS,
  dirsync: MS.DIRSYNC,
  noatime: MS.NOATIME,
  nodiratime: MS.NODIRATIME,
  relatime: MS.RELATIME,
  strictatime: MS.STRICTATIME
}

/** File-system options passed to the kernel as they are (mount(2)'s data), as mount(8) passes them. */
const DATA_OPTIONS: ReadonlySet<string> = new Set(["noload", "norecovery", "discard", "nodiscard"])

/**
 * A file-system mount (not a bind) as mount(2) makes it, the way mount(8) would: the VFS options
 * as flags (`ro` always wins, as in mountArgv), the file system's own known ones as its data
 * (read-only adds NO_REPLAY, mountOptions). Undefined when any option is one this list does not
 * know (`defaults`, `x-*`, `context=`, a size...): mount(8) makes those, as it always has.
 */
export const fsMountCall = (options: MountOptions): { readonly fsType: FsType; readonly flags: number; readonly data: string } | undefined => {
  const o = mountOptions(options)
  if (o.bind || o.fsType === undefined) return undefined
  let flags = isReadOnly(o) ? MS.RDONLY : 0
  const data: Array<string> = []
  for (const x of o.options) {
    const f = VFS_FLAGS[x]
    if (f !== undefined) flags |= f
    else if (DATA_OPTIONS.has(x)) data.push(x)
    else return undefined
  }
  return { fsType: o.fsType, flags, data: data.join(",") }
}

/** Pure: what a mount(2) bind's errno means, as classifyMount reads mount(8)'s messages. */
export const classifyMountErrno = (errno: number): Reason | "Ok" => errno === 0 ? "Ok" : errno === os.constants.errno.EBUSY ? "Busy" : "Failed"

/**
 * Pure: what umount2(2)'s errno means, as classifyUmount reads umount(8)'s: EINVAL is "not a
 * mount point", ENOENT a path that is not there (umount(8): "no mount point specified").
 */
export const classifyUmountErrno = (errno: number): Reason | "Ok" => {
  if (errno === 0) return "Ok"
  if (errno === os.constants.errno.EINVAL || errno === os.constants.errno.ENOENT) return "NotMounted"
  if (errno === os.constants.errno.EBUSY) return "Busy"
  return "Failed"
}

/**
 * Pure: what a failed mount(2)/umount2(2) says, with the call's source, type and data, and
 * mount(8)'s own words where the kernel's errno says less (EINVAL, ENODEV for a file system).
 */
export const callFailureDetail = (c: HelperCall, errno: number, text: string): string => {
  const what = c.name === "mount" ? ` of ${c.source}${c.fsType === "" ? "" : ` (${[c.fsType, c.data].filter((x) => x !== "").join(", ")})`}` : ""
  const hint = c.name !== "mount" || c.fsType === ""
    ? ""
    : errno === os.constants.errno.EINVAL
    ? "; wrong fs type, bad option or bad superblock: the kernel's log says which"
    : errno === os.constants.errno.ENODEV
    ? `; this kernel has no ${c.fsType} driver loaded`
    : ""
  return `${c.name}(2)${what} failed: ${text.trim() || `errno ${errno}`} (errno ${errno})${hint}`
}

/** `major:minor` of a dev_t as glibc's gnu_dev_major/minor split it. */
export const devTOf = (rdev: bigint): string => {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n)
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n)
  return `${major}:${minor}`
}

/** PIDs under `procRoot` with cwd, root or an open file at or below `mountPoint` (no lsof, no maps). */
export const scanHolders = (procRoot: string, mountPoint: string): ReadonlyArray<number> => {
  const mp = mountPoint.length > 1 ? mountPoint.replace(/\/+$/, "") : mountPoint
  const inside = (p: string) => p === mp || p.startsWith(mp === "/" ? "/" : mp + "/")
  const link = (p: string): string | undefined => {
    try {
      return fs.readlinkSync(p)
    } catch {
      return undefined // the process exited, or is not ours to look at
    }
  }
  const out: Array<number> = []
  for (const pid of fs.readdirSync(procRoot)) {
    if (!/^\d+$/.test(pid)) continue
    const base = `${procRoot}/${pid}`
    let held = [link(`${base}/cwd`), link(`${base}/root`)].some((l) => l !== undefined && l !== "/" && inside(l))
    if (!held) {
      let fds: ReadonlyArray<string> = []
      try {
        fds = fs.readdirSync(`${base}/fd`)
      } catch {
        continue
      }
      held = fds.some((fd) => {
        const l = link(`${base}/fd/${fd}`)
        return l !== undefined && l.startsWith("/") && inside(l.replace(/ \(deleted\)$/, ""))
      })
    }
    if (held) out.push(Number(pid))
  }
  return out
}

/** The pod UID in a /proc/<pid>/cgroup text (cgroup v1 or v2, systemd or cgroupfs driver). */
export const podUidOfCgroup = (text: string): string | undefined => {
  const m = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(text)
  return m === null ? undefined : m[1]!.replaceAll("_", "-")
}

/**
 * Mounts of `devTs` in every mount namespace but this process's own, one process per namespace
 * (see Mounter.foreignMounts). Unreadable processes (gone, not ours) are skipped.
 */
export const scanForeignMounts = (procRoot: string, devTs: ReadonlySet<string>): ReadonlyArray<ForeignMount> => {
  if (devTs.size === 0) return []
  const read = (p: string, f: (p: string) => string): string | undefined => {
    try {
      return f(p)
    } catch {
      return undefined
    }
  }
  const seen = new Set<string>()
  const own = read("/proc/self/ns/mnt", fs.readlinkSync)
  if (own !== undefined) seen.add(own)
  const out: Array<ForeignMount> = []
  for (const pid of fs.readdirSync(procRoot)) {
    if (!/^\d+$/.test(pid)) continue
    const ns = read(`${procRoot}/${pid}/ns/mnt`, fs.readlinkSync)
    if (ns === undefined || seen.has(ns)) continue
    seen.add(ns)
    const text = read(`${procRoot}/${pid}/mountinfo`, (p) => fs.readFileSync(p, "utf8"))
    if (text === undefined) continue
    const parsed = parseMountinfo(text)
    if (Result.isFailure(parsed)) continue
    const hits = parsed.success.filter((e) => devTs.has(e.devT))
    if (hits.length === 0) continue
    const podUid = podUidOfCgroup(read(`${procRoot}/${pid}/cgroup`, (p) => fs.readFileSync(p, "utf8")) ?? "")
    for (const e of hits) out.push({ pid: Number(pid), mountPoint: e.mountPoint, devT: e.devT, podUid })
  }
  return out
}
