/**
 * Mounter: everything that touches mounts and file systems on the host: blkid, mkfs, mount,
 * umount, resize, statfs, mountinfo, the in-use check through the host's /proc, and the mount
 * points themselves. Decisions (is it safe to format? is this mount stale?) live elsewhere
 * (Format.ts, node/); this service only does and reports.
 *
 * May import: domain. The live layer is in MounterLive.ts; the in-memory one in src/testing.
 */
import { Context, Data, type Effect } from "effect"
import type { FsType } from "../domain/Volume.ts"

/** Raw result of `blkid -p -o export <device>`: interpreted only by Format.classifyProbe. */
export interface ProbeOutput {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** One line of /proc/self/mountinfo (see Mountinfo.ts for the parser). */
export interface MountEntry {
  readonly mountId: number
  readonly parentId: number
  /** `major:minor` of the mounted device (the stale-mount check compares it). */
  readonly devT: string
  /** Path inside the source file system that is mounted (a bind of a file has its path here). */
  readonly root: string
  readonly mountPoint: string
  readonly mountOptions: ReadonlyArray<string>
  readonly optionalFields: ReadonlyArray<string>
  readonly fsType: string
  readonly source: string
  readonly superOptions: ReadonlyArray<string>
}

export interface FsStats {
  readonly totalBytes: number
  readonly availableBytes: number
  readonly usedBytes: number
  readonly totalInodes: number
  readonly freeInodes: number
  readonly usedInodes: number
}

export interface MountOptions {
  readonly fsType: FsType | undefined
  readonly options: ReadonlyArray<string>
  readonly bind: boolean
  readonly readOnly: boolean
}

export type PathKind = "missing" | "directory" | "file" | "blockDevice" | "other"

export class MountError extends Data.TaggedError("MountError")<{
  readonly reason: "Timeout" | "Failed" | "NotInstalled" | "Busy" | "NotMounted" | "Io"
  readonly operation: string
  readonly target: string
  readonly exitCode: number | undefined
  readonly detail: string
}> {
  override get message(): string {
    return `${this.operation} ${this.target}: ${this.detail}`
  }
}

/** A mount seen in another mount namespace (see Mounter.foreignMounts). */
export interface ForeignMount {
  readonly pid: number
  /** Where the namespace has it (inside the container, e.g. /data). */
  readonly mountPoint: string
  readonly devT: string
  /** The pod the process belongs to, from its cgroup path (kubepods…pod<uid>…), when it says. */
  readonly podUid: string | undefined
}

export class Mounter extends Context.Service<Mounter, {
  /** Low-level probe of the device (`blkid -p`), bypassing the blkid cache. */
  readonly probe: (device: string) => Effect.Effect<ProbeOutput, MountError>
  /** Creates a file system. Only Format.safeFormat may call this. */
  readonly mkfs: (device: string, fsType: FsType) => Effect.Effect<void, MountError>
  readonly mount: (source: string, target: string, options: MountOptions) => Effect.Effect<void, MountError>
  /** Normal unmount, or lazy (MNT_DETACH) when asked; NotMounted when nothing is mounted there. */
  readonly unmount: (target: string, lazy: boolean) => Effect.Effect<void, MountError>
  /** Grows the file system mounted at `mountPoint` on `device` to the device's size. */
  readonly resize: (device: string, fsType: FsType, mountPoint: string) => Effect.Effect<void, MountError>
  /** This process's mount table, parsed. */
  readonly mountinfo: Effect.Effect<ReadonlyArray<MountEntry>, MountError>
  /** The entries of this process's mount table at any of `mountPoints`, in table order: `mountinfo` filtered, read once, only those lines parsed. */
  readonly mountsAt: (mountPoints: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<MountEntry>, MountError>
  readonly statfs: (path: string) => Effect.Effect<FsStats, MountError>
  /** PIDs (from the host's /proc) that have a file open under `mountPoint` or their cwd/root in it. */
  readonly holders: (mountPoint: string) => Effect.Effect<ReadonlyArray<number>, MountError>
  /**
   * Mounts in OTHER mount namespaces (containers, the host) whose device is one of `devTs`: a
   * container with private propagation keeps its own copy of a mount after the host replaced it.
   * One read of /proc/<pid>/mountinfo per distinct namespace; the pod is told by the process's
   * cgroup when it names one.
   */
  readonly foreignMounts: (devTs: ReadonlySet<string>) => Effect.Effect<ReadonlyArray<ForeignMount>, MountError>
  /** What is at `path` (lstat, no following of the final link for mounts' sake). */
  readonly pathKind: (path: string) => Effect.Effect<PathKind, MountError>
  /** `major:minor` of a block device node (stat rdev), undefined when `path` is not one. */
  readonly deviceNumber: (path: string) => Effect.Effect<string | undefined, MountError>
  /**
   * `major:minor` of the file system `path` is on, as a process opening it would reach it (stat
   * st_dev: the topmost mount's); undefined when nothing is at `path`. One stat, no mount table.
   */
  readonly fileSystemDevice: (path: string) => Effect.Effect<string | undefined, MountError>
  readonly makeDirectory: (path: string) => Effect.Effect<void, MountError>
  /** Creates an empty regular file (the bind target of a raw block publish), parents included. */
  readonly makeFile: (path: string) => Effect.Effect<void, MountError>
  /** Removes an empty directory or a file; missing is success. Never recursive. */
  readonly removePath: (path: string) => Effect.Effect<void, MountError>
  /** Size of a block device in bytes. */
  readonly deviceSize: (device: string) => Effect.Effect<number, MountError>
  /** The mount tools that cannot be found (mount, umount, blkid, mkfs.ext4, mkfs.xfs, ...); empty = all there. */
  readonly missingTools: Effect.Effect<ReadonlyArray<string>>
}>()("rds-csi/mount/Mounter") {}
