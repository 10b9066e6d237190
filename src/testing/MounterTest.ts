/**
 * Mounter over the kernel model: blkid, mkfs, mount, umount, resize, statfs, mountinfo, holders
 * and mount points as the tools and syscalls would report them, mapped onto MountError
 * (ETIMEDOUT → Timeout, EBUSY → Busy, EIO → Io, umount of nothing → NotMounted, the rest Failed).
 * Injected failures (KernelModel.failMount, injectBlkid) come first. Mount options go through
 * MountCommands.mountOptions, as the live layer's argv does. `layerWith` adds hooks: model changes
 * a test makes at an exact point of a tool call (e.g. a renumbering between probe and mkfs).
 *
 * May import: mount/Mounter, mount/MountCommands (pure), domain, testing/KernelModel.
 */
import { Effect, Layer } from "effect"
import type { FsType } from "../domain/Volume.ts"
import { mountOptions } from "../mount/MountCommands.ts"
import { MountError, Mounter, type MountOptions } from "../mount/Mounter.ts"
import * as Disk from "./KernelDisk.ts"
import { KernelModel, type MountFault, type MountOp } from "./KernelModel.ts"
import * as Mounts from "./KernelMounts.ts"
import type { KernelState } from "./KernelState.ts"
import { devTOf, entryOf } from "./KernelState.ts"
import type { KernelError } from "./KernelTypes.ts"

/** Model changes run at a chosen point of a tool call; a KernelError there is a test bug (a defect). */
export interface MounterHooks {
  /** Runs after every successful probe of `device`, before the probe's answer is returned. */
  readonly afterProbe?: ((device: string) => Effect.Effect<void, KernelError, KernelModel>) | undefined
}

// Exit codes of the tools: mount(8)/umount(8) 32 on failure, mkfs and the resizers 1.
const EXIT: Partial<Record<MountOp, number>> = { mount: 32, unmount: 32, mkfs: 1, resize: 1 }

const reasonOf = (op: MountOp, e: KernelError): MountError["reason"] => {
  switch (e.errno) {
    case "ETIMEDOUT":
      return "Timeout"
    case "EBUSY":
      return "Busy"
    case "EIO":
      return "Io"
    case "EINVAL":
      return op === "unmount" ? "NotMounted" : "Failed"
    default:
      return "Failed"
  }
}

/** Mounter acting on the KernelModel in context, with `hooks`. */
export const layerWith = (hooks: MounterHooks): Layer.Layer<Mounter, never, KernelModel> => Layer.effect(
  Mounter,
  Effect.gen(function*() {
    const k = yield* KernelModel

    // One tool call: the injected fault if any, else the model operation with its errno mapped.
    const call = <A>(op: MountOp, operation: string, target: string, f: (s: KernelState) => A): Effect.Effect<A, MountError> =>
      k.syscall((s) => {
        const fault = s.takeFault(`mount.${op}`) as MountFault | undefined
        if (fault !== undefined && op === "mkfs") Disk.recordMkfs(s, target, operation.slice("mkfs.".length), "failed", fault.detail ?? `injected ${fault.reason}`)
        return fault
      }).pipe(
        Effect.orDie,
        Effect.flatMap((fault) =>
          fault !== undefined
            ? Effect.fail(new MountError({ reason: fault.reason, operation, target, exitCode: fault.exitCode ?? EXIT[op], detail: fault.detail ?? `injected ${fault.reason}` }))
            : k.syscall(f).pipe(
              Effect.mapError((e) =>
                new MountError({ reason: reasonOf(op, e), operation, target, exitCode: e.errno === "ETIMEDOUT" ? undefined : EXIT[op], detail: e.detail })
              )
            )
        )
      )

    const afterProbe = (device: string): Effect.Effect<void> =>
      hooks.afterProbe === undefined ? Effect.void : hooks.afterProbe(device).pipe(Effect.provideService(KernelModel, k), Effect.orDie)

    return Mounter.of({
      probe: Effect.fn("Mounter.probe")(function*(device: string) {
        const out = yield* call("probe", "blkid", device, (s) => Disk.blkid(s, device))
        yield* afterProbe(device)
        return out
      }),
      mkfs: Effect.fn("Mounter.mkfs")(function*(device: string, fsType: FsType) {
        yield* call("mkfs", `mkfs.${fsType}`, device, (s) => Disk.mkfs(s, device, fsType))
      }),
      mount: Effect.fn("Mounter.mount")(function*(source: string, target: string, options: MountOptions) {
        yield* call("mount", "mount", target, (s) => Mounts.mount(s, source, target, mountOptions(options)))
      }),
      unmount: Effect.fn("Mounter.unmount")(function*(target: string, lazy: boolean) {
        yield* call("unmount", lazy ? "umount -l" : "umount", target, (s) => Mounts.unmount(s, target, lazy))
      }),
      resize: Effect.fn("Mounter.resize")(function*(device: string, fsType: FsType, mountPoint: string) {
        yield* call("resize", fsType === "xfs" ? "xfs_growfs" : "resize2fs", device, (s) => Disk.resize(s, device, fsType, mountPoint))
      }),
      mountinfo: call("mountinfo", "read", "/proc/self/mountinfo", (s) => s.mounts.map(entryOf)).pipe(Effect.withSpan("Mounter.mountinfo")),
      // The same read (and the same injected faults) as mountinfo, filtered.
      mountsAt: (points: ReadonlyArray<string>) =>
        call("mountinfo", "read", "/proc/self/mountinfo", (s) => s.mounts.map(entryOf).filter((e) => points.includes(e.mountPoint))).pipe(
          Effect.withSpan("Mounter.mountsAt")
        ),
      statfs: Effect.fn("Mounter.statfs")(function*(path: string) {
        return yield* call("statfs", "statfs", path, (s) => Disk.statfs(s, path))
      }),
      foreignMounts: Effect.fn("Mounter.foreignMounts")(function*(devTs: ReadonlySet<string>) {
        return yield* call("foreignMounts", "scan /proc/*/mountinfo", "/proc", (s) =>
          [...s.containers].flatMap(([pid, c]) =>
            c.mounts.filter((m) => devTs.has(devTOf(m.device))).map((m) => ({ pid, mountPoint: m.mountPoint, devT: devTOf(m.device), podUid: c.podUid }))))
      }),
      holders: Effect.fn("Mounter.holders")(function*(mountPoint: string) {
        return yield* call("holders", "scan /proc", mountPoint, (s) => Mounts.holdersOf(s, mountPoint))
      }),
      pathKind: Effect.fn("Mounter.pathKind")(function*(path: string) {
        return yield* call("pathKind", "lstat", path, (s) => Mounts.pathKind(s, path))
      }),
      deviceNumber: Effect.fn("Mounter.deviceNumber")(function*(path: string) {
        return yield* call("deviceNumber", "stat", path, (s) => Mounts.deviceNumber(s, path))
      }),
      fileSystemDevice: Effect.fn("Mounter.fileSystemDevice")(function*(path: string) {
        return yield* call("fileSystemDevice", "stat", path, (s) => Mounts.fileSystemDevice(s, path))
      }),
      makeDirectory: Effect.fn("Mounter.makeDirectory")(function*(path: string) {
        yield* call("makeDirectory", "mkdir", path, (s) => Mounts.makeDirectory(s, path))
      }),
      makeFile: Effect.fn("Mounter.makeFile")(function*(path: string) {
        yield* call("makeFile", "create", path, (s) => Mounts.makeFile(s, path))
      }),
      removePath: Effect.fn("Mounter.removePath")(function*(path: string) {
        yield* call("removePath", "remove", path, (s) => Mounts.removePath(s, path))
      }),
      deviceSize: Effect.fn("Mounter.deviceSize")(function*(device: string) {
        return yield* call("deviceSize", "blockdev --getsize64", device, (s) => Disk.deviceSize(s, device))
      }),
      missingTools: k.syscall((s) => s.missingTools).pipe(Effect.orDie)
    })
  })
)

/** Mounter acting on the KernelModel in context. */
export const layer: Layer.Layer<Mounter, never, KernelModel> = layerWith({})
