/**
 * Sysfs: the kernel's own view of NVMe controllers, subsystems and namespace block devices,
 * read from files (`/sys/class/nvme`, `/sys/class/nvme-subsystem`, `/sys/block`) under a
 * configurable root. Reading is cheap (no process), so callers take a fresh snapshot whenever
 * they need the truth; nothing here is cached.
 *
 * May import: domain. The live layer is in SysfsLive.ts; the in-memory one in src/testing.
 */
import { Context, Data, type Duration, type Effect, type Scope } from "effect"

/** Controller states as the kernel prints them in `/sys/class/nvme/<ctrl>/state`. */
export type ControllerState =
  | "new"
  | "live"
  | "resetting"
  | "connecting"
  | "deleting"
  | "deleting (no IO)"
  | "dead"

export interface Controller {
  /** Kernel name, e.g. `nvme0`. Renumbered after the kernel deletes and recreates it. */
  readonly name: string
  readonly state: ControllerState
  readonly subsysnqn: string
  readonly transport: string
  /** `traddr` (IPv6 in canonicalAddress form, as volume targets are), `trsvcid` from the `address` attribute. */
  readonly traddr: string | undefined
  readonly trsvcid: string | undefined
  /** Seconds; undefined where the attribute does not exist (PCIe controllers). */
  readonly ctrlLossTmo: number | undefined
  /** `nvme-subsys<N>` this controller belongs to. */
  readonly subsystem: string | undefined
}

/** A namespace block device user space should use: the multipath head or, without multipath, `nvme<ctrl>n<ns>`. */
export interface NamespaceDevice {
  /** e.g. `nvme0n1` (the /dev node name). */
  readonly name: string
  /** `major:minor` from `/sys/block/<name>/dev`. */
  readonly devT: string
  readonly subsysnqn: string
  readonly nsid: number
  readonly nguid: string | undefined
  readonly uuid: string | undefined
  readonly wwid: string | undefined
  readonly sizeBytes: number
  /** Controllers that serve this namespace (one per path). */
  readonly controllers: ReadonlyArray<string>
}

export interface NvmeSnapshot {
  readonly controllers: ReadonlyArray<Controller>
  readonly namespaces: ReadonlyArray<NamespaceDevice>
}

/** A watched controller's `state` attribute, or `gone` when the kernel deleted (or is deleting) the controller. */
export type WatchedState = ControllerState | "gone"

/** Re-reads controllers' `state` attributes cheaply (the health monitor's watch between full passes). */
export interface StateReader {
  /**
   * The state of each named controller now. Controllers no longer named are let go (their files
   * closed); a state file that exists but cannot be read is left out (the next snapshot reports it).
   */
  readonly read: (names: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, WatchedState>>
}

/** Tells whether the device nodes changed between two looks (Sysfs.deviceWatch). */
export interface DeviceWatch {
  /**
   * A value that moves (compares unequal) whenever a device node was added or removed since the
   * last one; undefined when that cannot be told (the watch failed): take nothing for unchanged.
   */
  readonly version: Effect.Effect<string | undefined>
}

export class SysfsError extends Data.TaggedError("SysfsError")<{
  readonly path: string
  readonly detail: string
}> {
  override get message(): string {
    return `sysfs ${this.path}: ${this.detail}`
  }
}

export class Sysfs extends Context.Service<Sysfs, {
  /** Every NVMe controller and namespace block device right now. Missing `/sys/class/nvme` = none. */
  readonly snapshot: Effect.Effect<NvmeSnapshot, SysfsError>
  /**
   * The snapshot of one subsystem: exactly `snapshot`'s controllers and namespaces whose
   * subsysnqn is `nqn`, reading every other controller and subsystem only as far as its
   * subsysnqn (one file each instead of a dozen): the volume RPCs' view, cheap with 100 volumes.
   */
  readonly snapshotOf: (nqn: string) => Effect.Effect<NvmeSnapshot, SysfsError>
  /** `major:minor` of a block device by kernel name, or undefined when it does not exist. */
  readonly blockDevT: (name: string) => Effect.Effect<string | undefined, SysfsError>
  /** True when the NVMe/TCP fabrics interface is present (`/sys/class/nvme-fabrics`): the readiness probe. */
  readonly fabricsAvailable: Effect.Effect<boolean>
  /**
   * This boot of the kernel (`/proc/sys/kernel/random/boot_id`): stage records carry it, so a
   * record written before a reboot is never mistaken for a connection that merely dropped.
   */
  readonly bootId: Effect.Effect<string, SysfsError>
  /**
   * Completes at the next change of the device nodes (a namespace's /dev node added or removed:
   * inotify on /dev), or after `within`, whichever is first: device waits sleep on it instead of
   * polling sysfs. Where /dev cannot be watched it is a plain sleep of `within`.
   */
  readonly deviceChange: (within: Duration.Duration) => Effect.Effect<void>
  /**
   * Watches the device nodes for the scope (inotify on /dev: the kernel adds or removes a node
   * with every controller and namespace). While its version stays the same, a snapshot taken at
   * that version still lists every controller and namespace there is (their states aside).
   */
  readonly deviceWatch: Effect.Effect<DeviceWatch, never, Scope.Scope>
  /** A StateReader that keeps each watched controller's `state` file open between reads; they close with the scope. */
  readonly stateReader: Effect.Effect<StateReader, never, Scope.Scope>
}>()("rds-csi/nvme/Sysfs") {}

export const isDeleting = (c: Controller): boolean => c.state === "deleting" || c.state === "deleting (no IO)" || c.state === "dead"

/** `snapshot` restricted to subsystem `nqn`: what Sysfs.snapshotOf(nqn) returns. */
export const onlySubsystem = (snapshot: NvmeSnapshot, nqn: string): NvmeSnapshot => ({
  controllers: snapshot.controllers.filter((c) => c.subsysnqn === nqn),
  namespaces: snapshot.namespaces.filter((n) => n.subsysnqn === nqn)
})

const EMPTY: NvmeSnapshot = { controllers: [], namespaces: [] }
const indexed = new WeakMap<NvmeSnapshot, ReadonlyMap<string, NvmeSnapshot>>()

/**
 * `onlySubsystem` from an index built once per snapshot (kept while the snapshot is): a health
 * pass asks it for every volume, and filtering a hundred controllers a hundred times over was
 * a tenth of the plugin's time at rest under emulation.
 */
export const subsystemIn = (snapshot: NvmeSnapshot, nqn: string): NvmeSnapshot => {
  let index = indexed.get(snapshot)
  if (index === undefined) {
    const built = new Map<string, { controllers: Array<Controller>; namespaces: Array<NamespaceDevice> }>()
    const entry = (k: string) => {
      let e = built.get(k)
      if (e === undefined) built.set(k, e = { controllers: [], namespaces: [] })
      return e
    }
    for (const c of snapshot.controllers) entry(c.subsysnqn).controllers.push(c)
    for (const n of snapshot.namespaces) entry(n.subsysnqn).namespaces.push(n)
    index = built
    indexed.set(snapshot, index)
  }
  return index.get(nqn) ?? EMPTY
}

/**
 * Device names in the kernel's order: nvme2 before nvme10, nvme3c3n1 before nvme3n1 (numbers
 * compared as numbers, the rest as text). The same order as `localeCompare(b, "en", { numeric:
 * true })` gives these names, without the ICU collator that call builds each time (a snapshot
 * sorts every controller and namespace: with a hundred volumes, an eighth of the idle plugin's
 * CPU under emulation went to building collators).
 */
export const byDeviceName = (a: string, b: string): number => {
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i)
    const cb = b.charCodeAt(j)
    const da = ca >= 48 && ca <= 57
    const db = cb >= 48 && cb <= 57
    if (da && db) {
      let ei = i
      let ej = j
      while (ei < a.length && a.charCodeAt(ei) >= 48 && a.charCodeAt(ei) <= 57) ei++
      while (ej < b.length && b.charCodeAt(ej) >= 48 && b.charCodeAt(ej) <= 57) ej++
      const na = Number(a.slice(i, ei))
      const nb = Number(b.slice(j, ej))
      if (na !== nb) return na - nb
      i = ei
      j = ej
      continue
    }
    // A number sorts before a letter, as in the collator.
    if (da !== db) return da ? -1 : 1
    if (ca !== cb) return ca - cb
    i++
    j++
  }
  return (a.length - i) - (b.length - j)
}
