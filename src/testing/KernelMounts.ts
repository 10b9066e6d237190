/**
 * The mount half of the kernel model: directories and files (mount points), `/dev` nodes, the
 * mount table as /proc/self/mountinfo shows it, mount(2) of a file system, bind mounts (a
 * directory onto a directory; a block device node onto a regular file for raw block publish),
 * read-only mounts (ext4 `noload` and xfs `norecovery` accepted; xfs refuses `norecovery`
 * read-write, as the kernel does), umount normal vs lazy (MNT_DETACH), and holders. Functions over
 * KernelState that throw KernelError like the failing syscall.
 *
 * Raw block binds are modelled as the kernel shows them: the mountinfo row is devtmpfs's
 * (its dev_t, root `/<device name>`), and only stat of the target (deviceNumber) gives the
 * device's dev_t, which it keeps after the device is removed.
 *
 * May import: testing/KernelState, testing/KernelTypes, testing/KernelNvme, contracts (types only).
 */
import * as Path from "node:path"
import type { MountOptions, PathKind } from "../mount/Mounter.ts"
import { targetNamespace } from "./KernelNvme.ts"
import { type BlockDev, type Controller, devTOf, type KernelState, type Mount } from "./KernelState.ts"
import { KernelError } from "./KernelTypes.ts"

const under = (path: string, dir: string): boolean => path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`)

/** The mount that `path` is on: the longest mount point above it, the latest one when stacked. */
export const containingMount = (s: KernelState, path: string): Mount => {
  let best: Mount | undefined
  for (const m of s.mounts) if (under(path, m.mountPoint) && (best === undefined || m.mountPoint.length >= best.mountPoint.length)) best = m
  return best!
}

/** The topmost mount exactly at `path`, if any. */
export const mountAt = (s: KernelState, path: string): Mount | undefined => s.mounts.findLast((m) => m.mountPoint === path)

/** The block device a path names: `/dev/<name>` while present, or a raw-block bind target (present or not). */
export const deviceAt = (s: KernelState, path: string): BlockDev | undefined => {
  const bound = mountAt(s, path)
  if (bound?.rawBlock === true) return bound.device
  const name = path.startsWith("/dev/") ? path.slice(5) : path.includes("/") ? undefined : path
  return name === undefined ? undefined : s.presentDevice(name)
}

/** Whether I/O to `dev` would complete now: `gone` (EIO), `blocked` (queued: no live path), or `ok`. */
export const ioState = (dev: BlockDev): "ok" | "blocked" | "gone" => {
  if (!dev.present) return "gone"
  const paths: ReadonlyArray<Controller> = dev.kind === "head"
    ? [...dev.head.paths.keys()]
    : [...dev.head.paths].filter(([, d]) => d === dev).map(([c]) => c)
  return paths.some((c) => c.state === "live") ? "ok" : "blocked"
}

/** Throws what an I/O to `dev` gets now: EIO when the device is gone, ETIMEDOUT for a command that would hang. */
export const checkIo = (dev: BlockDev, syscall: string, path: string): void => {
  const st = ioState(dev)
  if (st === "gone") throw new KernelError({ errno: "EIO", syscall, path, detail: `I/O error: ${dev.name} (${devTOf(dev)}) has been removed` })
  if (st === "blocked") {
    throw new KernelError({ errno: "ETIMEDOUT", syscall, path, detail: `I/O to ${dev.name} queued: no live path (the command would hang until the link returns)` })
  }
}

/** lstat, mount-aware: a raw-block bind target is a block device, a mounted directory a directory. */
export const pathKind = (s: KernelState, path: string): PathKind => {
  const m = mountAt(s, path)
  if (m !== undefined && m.mountPoint !== "/") return m.rawBlock ? "blockDevice" : (s.paths.get(path) ?? "directory")
  if (path.startsWith("/dev/") && s.presentDevice(path.slice(5)) !== undefined) return "blockDevice"
  return s.paths.get(path) ?? "missing"
}

/** `mkdir -p`. */
export const makeDirectory = (s: KernelState, path: string): void => {
  const parts = path.split("/").filter((p) => p.length > 0)
  let cur = ""
  for (const part of parts) {
    cur = `${cur}/${part}`
    const kind = pathKind(s, cur)
    if (kind === "missing") {
      s.paths.set(cur, "directory")
      s.log("path", cur, "directory created")
    } else if (kind !== "directory") {
      throw new KernelError({ errno: cur === path ? "EEXIST" : "ENOTDIR", syscall: "mkdir", path: cur, detail: `exists as ${kind}` })
    }
  }
}

/** Creates an empty regular file (parents included); an existing file is fine. */
export const makeFile = (s: KernelState, path: string): void => {
  makeDirectory(s, Path.posix.dirname(path))
  const kind = pathKind(s, path)
  if (kind === "file" || kind === "blockDevice") return
  if (kind !== "missing") throw new KernelError({ errno: "EISDIR", syscall: "open", path, detail: `exists as ${kind}` })
  s.paths.set(path, "file")
  s.log("path", path, "file created")
}

/** rmdir / unlink: missing is fine; a mount point is EBUSY; a directory with entries ENOTEMPTY. */
export const removePath = (s: KernelState, path: string): void => {
  if (!s.paths.has(path)) return
  if (s.mounts.some((m) => m.mountPoint === path)) throw new KernelError({ errno: "EBUSY", syscall: "rmdir", path, detail: "is a mount point" })
  if ([...s.paths.keys()].some((p) => p !== path && under(p, path))) throw new KernelError({ errno: "ENOTEMPTY", syscall: "rmdir", path, detail: "directory not empty" })
  s.paths.delete(path)
  s.log("path", path, "removed")
}

const VFS_FLAGS = ["nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime"]

const flagsOf = (o: MountOptions) => {
  const ro = o.readOnly || o.options.includes("ro")
  const vfs = VFS_FLAGS.filter((f) => o.options.includes(f))
  if (!vfs.some((f) => f === "noatime" || f === "strictatime" || f === "relatime")) vfs.push("relatime")
  const fsSpecific = o.options.filter((f) => f !== "ro" && f !== "rw" && f !== "bind" && !VFS_FLAGS.includes(f))
  return { ro, mountOptions: [ro ? "ro" : "rw", ...vfs], fsSpecific }
}

const wrongFs = (source: string, target: string) =>
  new KernelError({ errno: "EINVAL", syscall: "mount", path: target, detail: `wrong fs type, bad option, bad superblock on ${source}, missing codepage or helper program, or other error` })

/** xfs: "no-recovery mounts must be read-only" (EINVAL); ext4 takes `noload` either way. */
const checkNoReplay = (fsType: string, ro: boolean, fsSpecific: ReadonlyArray<string>, source: string, target: string): void => {
  if (fsType === "xfs" && !ro && fsSpecific.includes("norecovery")) throw wrongFs(source, target)
}

/** mount(8): a file system from a block device, or a bind mount. */
export const mount = (s: KernelState, source: string, target: string, o: MountOptions): Mount => {
  const targetKind = pathKind(s, target)
  if (targetKind === "missing") throw new KernelError({ errno: "ENOENT", syscall: "mount", path: target, detail: "mount point does not exist" })
  const { ro, mountOptions, fsSpecific } = flagsOf(o)
  const parentId = containingMount(s, target).mountId
  let fields: Omit<Mount, "mountId" | "parentId" | "mountPoint" | "mountOptions">
  if (!o.bind) {
    const dev = deviceAt(s, source)
    if (dev === undefined || !dev.present) throw new KernelError({ errno: "ENOENT", syscall: "mount", path: target, detail: `special device ${source} does not exist` })
    if (targetKind !== "directory") throw new KernelError({ errno: "ENOTDIR", syscall: "mount", path: target, detail: "mount point is not a directory" })
    checkIo(dev, "mount", target)
    const sig = targetNamespace(s, dev.nqn, dev.nsid).signature
    if (sig._tag !== "Filesystem" || (o.fsType !== undefined && o.fsType !== sig.fsType)) throw wrongFs(source, target)
    checkNoReplay(sig.fsType, ro, fsSpecific, source, target)
    fields = { devT: devTOf(dev), root: "/", fsType: sig.fsType, source: `/dev/${dev.name}`, superOptions: [ro ? "ro" : "rw", ...fsSpecific], device: dev, rawBlock: false }
  } else {
    const sourceKind = pathKind(s, source)
    if (sourceKind === "missing") throw new KernelError({ errno: "ENOENT", syscall: "mount", path: target, detail: `bind source ${source} does not exist` })
    const wantDir = sourceKind === "directory"
    if (wantDir !== (targetKind === "directory")) {
      throw new KernelError({ errno: "ENOTDIR", syscall: "mount", path: target, detail: `cannot bind a ${sourceKind} onto a ${targetKind}` })
    }
    const from = mountAt(s, source)
    if (sourceKind === "blockDevice") {
      const dev = deviceAt(s, source)!
      const base = from?.rawBlock === true ? from : containingMount(s, "/dev")
      fields = { devT: base.devT, root: from?.rawBlock === true ? from.root : `/${dev.name}`, fsType: base.fsType, source: base.source, superOptions: base.superOptions, device: dev, rawBlock: true }
    } else {
      const m = containingMount(s, source)
      const root = Path.posix.join(m.root, Path.posix.relative(m.mountPoint, source) || ".")
      fields = { devT: m.devT, root: root === "." ? "/" : root, fsType: m.fsType, source: m.source, superOptions: m.superOptions, device: m.device, rawBlock: false }
    }
  }
  const created: Mount = { mountId: s.mountIda.alloc(), parentId, mountPoint: target, mountOptions, ...fields }
  s.mounts.push(created)
  s.log("mount", target, `mounted ${o.bind ? "bind " : ""}${source} (${created.devT}${created.device === undefined ? "" : ` ${created.device.name}`}) ${created.fsType} ${mountOptions.join(",")}`)
  return created
}

/** Holders (PIDs) of `mountPoint` or anything under it. */
export const holdersOf = (s: KernelState, mountPoint: string): ReadonlyArray<number> =>
  [...s.holders].filter(([p]) => under(p, mountPoint)).flatMap(([, pids]) => pids)

/** umount2: EINVAL when nothing is mounted there; EBUSY when held or with sub-mounts, unless lazy. */
export const unmount = (s: KernelState, target: string, lazy: boolean): void => {
  const m = mountAt(s, target)
  if (m === undefined || m.mountPoint === "/") throw new KernelError({ errno: "EINVAL", syscall: "umount2", path: target, detail: "not mounted" })
  const subtree = (id: number): Array<Mount> => s.mounts.filter((x) => x.parentId === id).flatMap((x) => [x, ...subtree(x.mountId)])
  const children = subtree(m.mountId)
  const held = holdersOf(s, target)
  if (!lazy && (children.length > 0 || held.length > 0)) {
    throw new KernelError({ errno: "EBUSY", syscall: "umount2", path: target, detail: `target is busy${held.length > 0 ? ` (pids ${held.join(", ")})` : " (sub-mounts)"}` })
  }
  for (const x of [m, ...children]) {
    s.mounts.splice(s.mounts.indexOf(x), 1)
    s.mountIda.free(x.mountId)
    // Processes still using a lazily detached mount keep its file system, and so its device, alive.
    if (held.length > 0 && x.device !== undefined) s.detached.push({ mountPoint: x.mountPoint, device: x.device })
    s.log("mount", x.mountPoint, lazy ? `detached (lazy)${held.length > 0 ? `, still held by ${held.join(", ")}` : ""}` : "unmounted")
  }
  s.collect()
}

/** Sets the PIDs holding `path`; clearing them releases lazily detached mounts there. */
export const setHolders = (s: KernelState, path: string, pids: ReadonlyArray<number>): void => {
  if (pids.length === 0) {
    s.holders.delete(path)
    for (const d of [...s.detached]) {
      if (holdersOf(s, d.mountPoint).length === 0) s.detached.splice(s.detached.indexOf(d), 1)
    }
    s.collect()
  } else {
    s.holders.set(path, pids)
  }
}

/** stat st_dev: the dev_t of the file system `path` is on (the topmost mount's), undefined when nothing is there. */
export const fileSystemDevice = (s: KernelState, path: string): string | undefined =>
  pathKind(s, path) === "missing" ? undefined : containingMount(s, path).devT

/** stat rdev: the device's dev_t for `/dev/<name>` or a raw-block bind target (kept after removal). */
export const deviceNumber = (s: KernelState, path: string): string | undefined => {
  const dev = deviceAt(s, path)
  return dev === undefined ? undefined : devTOf(dev)
}
