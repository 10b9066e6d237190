/**
 * What the kernel changes under sysfs and /dev, watched cheaply between the full snapshots
 * SysfsLive reads: the staged controllers' `state` files kept open and re-read in place, and
 * inotify on /dev for a namespace's device node appearing or going.
 *
 * May import: effect, node:fs, nvme/Sysfs.
 */
import { Duration, Effect, type Scope } from "effect"
import * as fs from "node:fs"
import type { ControllerState, DeviceWatch, WatchedState } from "./Sysfs.ts"

const STATES: ReadonlyArray<ControllerState> = ["new", "live", "resetting", "connecting", "deleting", "deleting (no IO)", "dead"]
export const CONTROLLER = /^nvme\d+$/

/** Unknown future states count as "new": present, not usable, not being deleted. */
export const parseState = (value: string): ControllerState =>
  (STATES as ReadonlyArray<string>).includes(value) ? value as ControllerState : "new"

// Errors that mean "this object is gone (or going)": the kernel removed the directory, or the
// device behind an attribute is being torn down.
const VANISHED = new Set(["ENOENT", "ENODEV", "ENXIO", "ESTALE", "ENOTDIR"])
export const isVanished = (e: unknown): boolean => VANISHED.has((e as NodeJS.ErrnoException)?.code ?? "")


const SYSFS_MAGIC = 0x62656572

/** True when `root` is a mounted sysfs (statfs's f_type), not a directory standing in for one. */
export const isSysfs = (root: string): boolean => {
  try {
    return fs.statfsSync(root).type === SYSFS_MAGIC
  } catch {
    return false
  }
}

/** A synchronous StateReader and its release; Effect-free so the unit tests can drive it directly. */
export interface OpenStateFiles {
  readonly read: (names: ReadonlyArray<string>) => ReadonlyMap<string, WatchedState>
  /** Names whose state file is open now. */
  readonly open: () => ReadonlyArray<string>
  readonly closeAll: () => void
}

/**
 * Watched `state` files, one fd each, re-read with a positional read at offset 0 (sysfs sends no
 * inotify events for them). The kernel answers ENODEV on an fd whose controller it deleted; a
 * regular file standing in for sysfs keeps its content when deleted, so no link left means gone
 * too. A gone controller's fd is closed and its path opened again on the next read: the kernel
 * may give its name to a new controller.
 */
export const openStateFiles = (root: string): OpenStateFiles => {
  const fds = new Map<string, number>()
  // "deleting (no IO)" is the longest state the kernel prints.
  const buf = Buffer.alloc(64)
  // sysfs answers a read of a removed attribute with ENODEV, so there one read per controller
  // tells "gone" too; a plain directory standing in for it (the tests' trees) keeps an unlinked
  // file readable, and only its link count says it is gone. That fstat was ~40 % of the watch's
  // time in a profile (1,000 reads a second with a hundred volumes at the 100 ms interval).
  const kernfs = isSysfs(root)
  const close = (name: string): void => {
    const fd = fds.get(name)
    fds.delete(name)
    if (fd !== undefined) fs.closeSync(fd)
  }
  const readOne = (name: string): WatchedState | undefined => {
    let fd = fds.get(name)
    if (fd === undefined) {
      if (!CONTROLLER.test(name)) return undefined
      try {
        fd = fs.openSync(`${root}/class/nvme/${name}/state`, "r")
      } catch (e) {
        return isVanished(e) ? "gone" : undefined
      }
      fds.set(name, fd)
    }
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, 0)
      if (!kernfs && fs.fstatSync(fd).nlink === 0) {
        close(name)
        return "gone"
      }
      const text = buf.toString("utf8", 0, n).trim()
      return text === "" ? undefined : parseState(text)
    } catch (e) {
      close(name)
      return isVanished(e) ? "gone" : undefined
    }
  }
  return {
    read: (names) => {
      const wanted = new Set(names)
      for (const name of [...fds.keys()]) if (!wanted.has(name)) close(name)
      const out = new Map<string, WatchedState>()
      for (const name of wanted) {
        const state = readOne(name)
        if (state !== undefined) out.set(name, state)
      }
      return out
    },
    open: () => [...fds.keys()].sort(),
    closeAll: () => {
      for (const name of [...fds.keys()]) close(name)
    }
  }
}

/**
 * Counts inotify events on `dir` (device nodes created, removed, renamed) for the scope; the
 * version is undefined from the first watch error on (events may have been lost), and where
 * `dir` cannot be watched at all.
 */
export const watchDevices = (dir: string): Effect.Effect<DeviceWatch, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const w = { events: 0, broken: false, watcher: undefined as fs.FSWatcher | undefined }
        try {
          w.watcher = fs.watch(dir, { persistent: false }, () => {
            w.events++
          })
          w.watcher.on("error", () => {
            w.broken = true
          })
        } catch {
          w.broken = true
        }
        return w
      }),
      (w) => Effect.sync(() => w.watcher?.close())
    ),
    (w): DeviceWatch => ({ version: Effect.sync(() => w.broken ? undefined : String(w.events)) })
  )

/**
 * The next inotify event on `dir` (a device node created or removed) or `within`, whichever is
 * first. The watch is set up per wait: an event between the caller's check and the watch is
 * caught by the timeout, never lost for longer.
 */
export const deviceChange = (dir: string, within: Duration.Duration): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    let watcher: fs.FSWatcher | undefined
    const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(within))
    try {
      watcher = fs.watch(dir, { persistent: false }, () => resume(Effect.void))
      watcher.on("error", () => undefined)
    } catch {
      // not watchable here: the timeout alone
    }
    return Effect.sync(() => {
      clearTimeout(timer)
      watcher?.close()
    })
  })

