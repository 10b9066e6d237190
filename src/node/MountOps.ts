/**
 * Mount steps shared by the use cases and recovery: find what is mounted where, unmount by the
 * rules of SPEC §4.2 (normal first; lazy only when nothing holds the mount or its device is
 * gone), and publish a staged volume at a target (bind of the staging mount, or of the device
 * node onto a file for raw block).
 *
 * May import: domain, mount.
 */
import { Effect } from "effect"
import { MountError, type MountEntry, Mounter } from "../mount/Mounter.ts"

/** The mount visible at `path` (the last one wins when mounts are stacked). */
export const entryAt = (mounts: ReadonlyArray<MountEntry>, path: string): MountEntry | undefined => {
  let found: MountEntry | undefined
  for (const m of mounts) if (m.mountPoint === path) found = m
  return found
}

export const devicePath = (name: string): string => `/dev/${name}`

/**
 * Unmounts everything stacked at `path`. A busy mount is detached lazily only when nobody holds
 * it (per the host's /proc) or `deviceGone` (its I/O can only fail anyway); otherwise Busy.
 * `mounts`: a mount table the caller has just read (used for the first look only).
 */
export const unmountSafely = Effect.fn("MountOps.unmountSafely")(function*(path: string, deviceGone: boolean, mounts?: ReadonlyArray<MountEntry>) {
  const mounter = yield* Mounter
  for (let layer = 0; layer < 8; layer++) {
    const mounted = entryAt(layer === 0 && mounts !== undefined ? mounts : yield* mounter.mountsAt([path]), path)
    if (mounted === undefined) return
    const normal = yield* Effect.result(mounter.unmount(path, false))
    if (normal._tag === "Success") continue
    const err = normal.failure
    if (err.reason === "NotMounted") return
    const holders = yield* mounter.holders(path)
    if (holders.length > 0 && !deviceGone) {
      return yield* new MountError({
        reason: "Busy",
        operation: "umount",
        target: path,
        exitCode: err.exitCode,
        detail: `in use by pid ${holders.slice(0, 10).join(", ")}${holders.length > 10 ? ", ..." : ""}; not detaching lazily`
      })
    }
    yield* mounter.unmount(path, true).pipe(
      Effect.catchIf((e) => e.reason === "NotMounted", () => Effect.void)
    )
  }
  return yield* new MountError({ reason: "Failed", operation: "umount", target: path, exitCode: undefined, detail: "still mounted after 8 unmounts" })
})

/** Binds the staged volume at `target`: the staging mount for file systems, the device node for raw block. */
export const bindTarget = Effect.fn("MountOps.bindTarget")(function*(options: {
  readonly block: boolean
  readonly stagingPath: string
  readonly device: string
  readonly target: string
  readonly readOnly: boolean
  readonly mountFlags: ReadonlyArray<string>
}) {
  const mounter = yield* Mounter
  if (options.block) {
    yield* mounter.makeFile(options.target)
    yield* mounter.mount(devicePath(options.device), options.target, { fsType: undefined, options: [], bind: true, readOnly: options.readOnly })
  } else {
    yield* mounter.makeDirectory(options.target)
    yield* mounter.mount(options.stagingPath, options.target, {
      fsType: undefined,
      options: options.mountFlags.filter((f) => f !== "ro" && f !== "rw"),
      bind: true,
      readOnly: options.readOnly
    })
  }
})

/**
 * The `major:minor` a published target reaches now: the mount's device for file systems, the
 * bound node's rdev for raw block (mountinfo shows devtmpfs there, not the disk).
 */
export const reachedDevice = Effect.fn("MountOps.reachedDevice")(function*(target: string, block: boolean) {
  return yield* reachedDeviceIn(yield* (yield* Mounter).mountsAt([target]), target, block)
})

/**
 * The `major:minor` a process opening `target` reaches, by one stat and no mount table: the bound
 * node's rdev for raw block, the file system's st_dev otherwise (whatever is mounted there, or
 * the file system the path is on when nothing is). What publish checks right after binding.
 */
export const openedDevice = Effect.fnUntraced(function*(target: string, block: boolean) {
  const mounter = yield* Mounter
  return block ? yield* mounter.deviceNumber(target) : yield* mounter.fileSystemDevice(target)
})

/** reachedDevice over a mount table already read. */
export const reachedDeviceIn = Effect.fnUntraced(function*(mounts: ReadonlyArray<MountEntry>, target: string, block: boolean) {
  const mounted = entryAt(mounts, target)
  if (mounted === undefined) return undefined
  return block ? yield* (yield* Mounter).deviceNumber(target) : mounted.devT
})
