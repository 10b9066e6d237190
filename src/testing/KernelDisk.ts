/**
 * What the disk tools see through the kernel model: `blkid -p` reporting the namespace's real
 * content (or an injected misbehaviour), mkfs (which writes a signature and destroys the files:
 * every call is recorded), resize, statfs, the device size, and file reads and writes through a
 * mount (how tests check "data intact" and that a stale mount fails). Functions over KernelState.
 *
 * May import: testing/KernelState, testing/KernelTypes, testing/KernelNvme, testing/KernelMounts, contracts (types only).
 */
import * as Path from "node:path"
import type { FsStats, ProbeOutput } from "../mount/Mounter.ts"
import { targetNamespace } from "./KernelNvme.ts"
import { checkIo, containingMount, deviceAt, mountAt } from "./KernelMounts.ts"
import { type BlockDev, type KernelState, type TargetNamespace } from "./KernelState.ts"
import { KernelError, type MkfsRecord, type Signature } from "./KernelTypes.ts"

const GARBAGE = "\u0000\u0013\u00ffblkid: \u0007corrupted\nnot a key value line\n"

/** The device a tool is pointed at, present, with its namespace; ENOENT otherwise. */
const openDevice = (s: KernelState, device: string, syscall: string): { readonly dev: BlockDev; readonly ns: TargetNamespace } => {
  const dev = deviceAt(s, device)
  if (dev === undefined || !dev.present) throw new KernelError({ errno: "ENOENT", syscall, path: device, detail: "No such file or directory" })
  return { dev, ns: targetNamespace(s, dev.nqn, dev.nsid) }
}

const exportLines = (devname: string, sig: Signature): string => {
  switch (sig._tag) {
    case "Empty":
      return ""
    case "Filesystem":
      return [`DEVNAME=${devname}`, `UUID=${sig.uuid}`, ...(sig.fsType === "ext4" ? ["VERSION=1.0"] : []), "BLOCK_SIZE=4096", `TYPE=${sig.fsType}`, "USAGE=filesystem", ""].join("\n")
    case "PartitionTable":
      return [`DEVNAME=${devname}`, `PTUUID=${sig.uuid}`, `PTTYPE=${sig.ptType}`, ""].join("\n")
  }
}

/** `blkid -p -o export <device>`; an injected fault first, else the truth. Throws ETIMEDOUT when it would hang. */
export const blkid = (s: KernelState, device: string): ProbeOutput => {
  const injected = s.blkidFaults[0]
  if (injected !== undefined) {
    if (Number.isFinite(injected.remaining) && --injected.remaining <= 0) s.blkidFaults.shift()
    s.log("fault", `blkid ${device}`, `injected ${injected.fault._tag}`)
    const f = injected.fault
    switch (f._tag) {
      case "Timeout":
        throw new KernelError({ errno: "ETIMEDOUT", syscall: "blkid", path: device, detail: "blkid did not answer (injected)" })
      case "Garbage":
        return { exitCode: 0, stdout: GARBAGE, stderr: "" }
      case "Exit":
        return { exitCode: f.exitCode, stdout: f.stdout, stderr: f.stderr }
    }
  }
  const dev = deviceAt(s, device)
  // blkid exits 2 both for "nothing found" and for a device it cannot open; only stderr tells them apart.
  if (dev === undefined) return { exitCode: 2, stdout: "", stderr: `error: ${device}: No such file or directory\n` }
  if (!dev.present) return { exitCode: 2, stdout: "", stderr: `error: ${device}: No such device or address\n` }
  checkIo(dev, "blkid", device)
  const sig = targetNamespace(s, dev.nqn, dev.nsid).signature
  return { exitCode: sig._tag === "Empty" ? 2 : 0, stdout: exportLines(`/dev/${dev.name}`, sig), stderr: "" }
}

/** Appends an mkfs call to the mkfs log. */
export const recordMkfs = (s: KernelState, device: string, fsType: string, outcome: MkfsRecord["outcome"], detail: string, ns?: { readonly dev: BlockDev; readonly ns: TargetNamespace }): void => {
  s.mkfsRecords.push({
    seq: s.entries.length + 1,
    device,
    fsType,
    outcome,
    detail,
    nqn: ns?.dev.nqn,
    nsid: ns?.dev.nsid,
    previous: ns?.ns.signature,
    filesLost: outcome === "formatted" ? (ns?.ns.files.size ?? 0) : 0
  })
}

const doMkfs = (s: KernelState, device: string, fsType: string): void => {
  const { dev, ns } = openDevice(s, device, "mkfs")
  if (s.mounts.some((m) => m.device === dev)) {
    throw new KernelError({ errno: "EBUSY", syscall: "mkfs", path: device, detail: `${device} is mounted; will not make a filesystem here!` })
  }
  checkIo(dev, "mkfs", device)
  recordMkfs(s, `/dev/${dev.name}`, fsType, "formatted", "", { dev, ns })
  s.log("mkfs", `/dev/${dev.name}`, `${fsType} over ${ns.signature._tag}${ns.files.size > 0 ? `, ${ns.files.size} file(s) destroyed` : ""}`)
  ns.signature = { _tag: "Filesystem", fsType, uuid: s.nextUuid(), sizeBytes: ns.sizeBytes }
  ns.files.clear()
}

/** mkfs (forced, as the live layer runs it): a new signature, and every file gone. Refuses a mounted device. Every call is logged. */
export const mkfs = (s: KernelState, device: string, fsType: string): void => {
  try {
    doMkfs(s, device, fsType)
  } catch (e) {
    if (e instanceof KernelError) {
      const dev = deviceAt(s, device)
      const reached = dev === undefined || !dev.present ? undefined : { dev, ns: targetNamespace(s, dev.nqn, dev.nsid) }
      recordMkfs(s, device, fsType, "failed", e.detail, reached)
    }
    throw e
  }
}

/** Grows the file system mounted at `mountPoint` from `device` to the namespace's size. */
export const resize = (s: KernelState, device: string, fsType: string, mountPoint: string): void => {
  const { dev, ns } = openDevice(s, device, "resize")
  const m = mountAt(s, mountPoint)
  if (m === undefined || m.device !== dev || m.fsType !== fsType) {
    throw new KernelError({ errno: "EINVAL", syscall: "resize", path: mountPoint, detail: `${device} is not mounted there as ${fsType}` })
  }
  checkIo(dev, "resize", device)
  if (ns.signature._tag === "Filesystem" && ns.signature.sizeBytes !== ns.sizeBytes) {
    s.log("namespace", `${dev.nqn}/${dev.nsid}`, `file system grown ${ns.signature.sizeBytes} -> ${ns.sizeBytes}`)
    ns.signature = { ...ns.signature, sizeBytes: ns.sizeBytes }
  }
}

/** BLKGETSIZE64 of a present device. */
export const deviceSize = (s: KernelState, device: string): number => openDevice(s, device, "ioctl BLKGETSIZE64").ns.sizeBytes

const ROOT_FS: FsStats = { totalBytes: 100 * 2 ** 30, availableBytes: 60 * 2 ** 30, usedBytes: 40 * 2 ** 30, totalInodes: 6_553_600, freeInodes: 6_000_000, usedInodes: 553_600 }
const DEVTMPFS: FsStats = { totalBytes: 4 * 2 ** 20, availableBytes: 4 * 2 ** 20, usedBytes: 0, totalInodes: 500_000, freeInodes: 499_500, usedInodes: 500 }

/**
 * statfs: figures from the namespace (file system size, file bytes), or an override. Served from
 * the superblock in memory, as ext4 and xfs do: it answers even on a stale or blocked mount.
 */
export const statfs = (s: KernelState, path: string): FsStats => {
  if (!s.paths.has(path) && mountAt(s, path) === undefined) throw new KernelError({ errno: "ENOENT", syscall: "statfs", path, detail: "No such file or directory" })
  const m = containingMount(s, path)
  const override = s.statfsOverrides.get(m.mountPoint)
  if (override !== undefined) return override
  if (m.rawBlock) return DEVTMPFS
  if (m.device === undefined) return m.fsType === "devtmpfs" ? DEVTMPFS : ROOT_FS
  const ns = targetNamespace(s, m.device.nqn, m.device.nsid)
  const total = ns.signature._tag === "Filesystem" ? ns.signature.sizeBytes : ns.sizeBytes
  const used = Math.min(total, [...ns.files.values()].reduce((n, c) => n + Math.ceil(Buffer.byteLength(c) / 4096) * 4096, 0))
  const totalInodes = Math.max(16, Math.floor(total / 16384))
  const usedInodes = Math.min(totalInodes, 11 + ns.files.size)
  return { totalBytes: total, availableBytes: total - used, usedBytes: used, totalInodes, freeInodes: totalInodes - usedInodes, usedInodes }
}

/** The namespace and in-file-system path a file under a mount lives at; I/O errors as the kernel gives them. */
const fileOn = (s: KernelState, path: string, syscall: string) => {
  const m = containingMount(s, path)
  if (m.device === undefined || m.rawBlock) throw new KernelError({ errno: "ENOENT", syscall, path, detail: "not on a modelled NVMe file system" })
  checkIo(m.device, syscall, path)
  const ns = targetNamespace(s, m.device.nqn, m.device.nsid)
  if (ns.signature._tag !== "Filesystem") throw new KernelError({ errno: "EIO", syscall, path, detail: "the file system is gone from the device" })
  return { m, ns, key: Path.posix.join(m.root, Path.posix.relative(m.mountPoint, path)) }
}

/** Reads a file through the mount table (EIO on a stale mount, ETIMEDOUT while no path is live). */
export const readFile = (s: KernelState, path: string): string => {
  const { ns, key } = fileOn(s, path, "read")
  const content = ns.files.get(key)
  if (content === undefined) throw new KernelError({ errno: "ENOENT", syscall: "read", path, detail: "No such file or directory" })
  return content
}

/** Writes a file through the mount table (EROFS on a read-only mount). */
export const writeFile = (s: KernelState, path: string, content: string): void => {
  const { m, ns, key } = fileOn(s, path, "write")
  if (m.mountOptions.includes("ro") || m.superOptions.includes("ro")) throw new KernelError({ errno: "EROFS", syscall: "write", path, detail: "Read-only file system" })
  ns.files.set(key, content)
}
