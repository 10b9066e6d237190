/**
 * The kernel model's mutable state and its bookkeeping: lowest-free number allocators (like the
 * kernel's IDA), the target side (portals, exported subsystems, namespace content), the host side
 * (controllers, subsystems, namespace heads, block devices with dev_t), the mount table, the change
 * log, and the reference counting that decides when a removed device's numbers are freed (a mount
 * keeps a deleted namespace head, its minor and its subsystem alive: that is why a reconnect after
 * a controller loss yields `nvme0n2`, not `nvme0n1`). Synchronous and deterministic: no clock.
 *
 * May import: domain, testing/KernelTypes, contracts (types only).
 */
import { canonicalAddress } from "../domain/Target.ts"
import type { FsStats, MountEntry } from "../mount/Mounter.ts"
import { type BlkidFault, type KernelOptions, type LogEntry, type MkfsRecord, type ModelControllerState, type Signature } from "./KernelTypes.ts"

/** Lowest-free integer allocator, like the kernel's `ida_alloc_min`. */
export class Ida {
  readonly min: number
  readonly used = new Set<number>()
  constructor(min: number) {
    this.min = min
  }
  /** The lowest free number ≥ min, now taken. */
  alloc(): number {
    let n = this.min
    while (this.used.has(n)) n++
    this.used.add(n)
    return n
  }
  /** Gives `n` back. */
  free(n: number): void {
    this.used.delete(n)
  }
}

export interface TargetNamespace {
  readonly nsid: number
  readonly nguid: string | undefined
  readonly uuid: string | undefined
  sizeBytes: number
  signature: Signature
  readonly files: Map<string, string>
}

export interface TargetSubsystem {
  readonly nqn: string
  readonly namespaces: Map<number, TargetNamespace>
}

export interface Portal {
  readonly address: string
  readonly port: number
  linkUp: boolean
  readonly exports: Set<string>
}

export interface HostSubsystem {
  readonly instance: number
  readonly nqn: string
  readonly controllers: Set<Controller>
  readonly heads: Set<Head>
  /** Namespace head instances (`n<N>`), from 1, per subsystem. */
  readonly headIda: Ida
}

export interface Head {
  readonly instance: number
  readonly nsid: number
  readonly subsystem: HostSubsystem
  /** The multipath head device `nvme<subsys>n<head>`; undefined with multipath off. */
  device: BlockDev | undefined
  /** Per-controller devices currently attached (hidden `nvmeXcYnZ`, or `nvmeYnZ` without multipath). */
  readonly paths: Map<Controller, BlockDev>
}

export interface BlockDev {
  readonly name: string
  readonly minor: number
  readonly kind: "head" | "path" | "namespace"
  readonly nqn: string
  readonly nsid: number
  readonly head: Head
  present: boolean
}

export interface Controller {
  readonly instance: number
  readonly name: string
  state: ModelControllerState
  readonly nqn: string
  readonly address: string
  readonly port: number
  ctrlLossTmo: number
  readonly reconnectDelay: number
  readonly keepAliveTmo: number | undefined
  readonly subsystem: HostSubsystem
}

export interface Mount {
  readonly mountId: number
  readonly parentId: number
  readonly devT: string
  readonly root: string
  readonly mountPoint: string
  readonly mountOptions: ReadonlyArray<string>
  readonly fsType: string
  readonly source: string
  readonly superOptions: ReadonlyArray<string>
  /** The NVMe block device under it (a file system on it, or a raw-block bind of its node). */
  readonly device: BlockDev | undefined
  readonly rawBlock: boolean
}

export const BLOCK_MAJOR = 259
export const devTOf = (d: BlockDev): string => `${BLOCK_MAJOR}:${d.minor}`
/** A network endpoint: two spellings of one IPv6 address reach the same portal. */
export const portalKey = (address: string, port: number): string => `${canonicalAddress(address)}:${port}`

export class KernelState {
  readonly options: KernelOptions
  readonly portals = new Map<string, Portal>()
  readonly targetSubsystems = new Map<string, TargetSubsystem>()
  /** Controller and subsystem instances share one allocator, as in the kernel. */
  readonly instanceIda = new Ida(0)
  readonly minorIda = new Ida(0)
  readonly controllers: Array<Controller> = []
  readonly subsystems: Array<HostSubsystem> = []
  /** Every block device whose numbers are still allocated (present, or held by a mount). */
  readonly devices: Array<BlockDev> = []
  readonly mountIda = new Ida(30)
  readonly mounts: Array<Mount> = []
  /** Lazily detached mounts that holders keep alive (and with them their device). */
  readonly detached: Array<{ readonly mountPoint: string; readonly device: BlockDev }> = []
  readonly paths = new Map<string, "directory" | "file">()
  readonly holders = new Map<string, ReadonlyArray<number>>()
  readonly statfsOverrides = new Map<string, FsStats>()
  /**
   * Containers holding private copies of mounts (CRI's default propagation): a copy keeps its
   * device — the superblock — alive after the host unmounts or replaces it, and never sees later
   * changes. `rslave` ones follow the host's table and need no entry here.
   */
  readonly containers = new Map<number, { readonly podUid: string; readonly mounts: Array<{ readonly mountPoint: string; readonly device: BlockDev }> }>()
  readonly faults = new Map<string, Array<{ readonly value: unknown; remaining: number }>>()
  readonly blkidFaults: Array<{ readonly fault: BlkidFault; remaining: number }> = []
  readonly entries: Array<LogEntry> = []
  readonly mkfsRecords: Array<MkfsRecord> = []
  fabricsAvailable = true
  /** /proc/sys/kernel/random/boot_id; a reboot (KernelModel.reboot) changes it. */
  bootId = "00000000-0000-4000-8000-b0070000001"
  nvmeVersion = "nvme version 2.3"
  /** `nvme` is on PATH (NvmeCli.installed); false = not installed at all. */
  nvmeInstalled = true
  missingTools: ReadonlyArray<string> = []
  private uuidCounter = 0

  constructor(options: KernelOptions) {
    this.options = options
    for (const p of ["/", "/dev", "/proc", "/sys", "/var", "/var/lib", "/var/lib/kubelet"]) this.paths.set(p, "directory")
    this.mounts.push(
      { mountId: 22, parentId: 1, devT: "8:1", root: "/", mountPoint: "/", mountOptions: ["rw", "relatime"], fsType: "ext4", source: "/dev/sda1", superOptions: ["rw"], device: undefined, rawBlock: false },
      { mountId: 23, parentId: 22, devT: "0:5", root: "/", mountPoint: "/dev", mountOptions: ["rw", "nosuid", "relatime"], fsType: "devtmpfs", source: "udev", superOptions: ["rw", "size=4096k", "mode=755"], device: undefined, rawBlock: false }
    )
  }

  /** Appends to the change log. */
  log(what: LogEntry["what"], subject: string, change: string): void {
    this.entries.push({ seq: this.entries.length + 1, what, subject, change })
  }

  /** A fresh, deterministic UUID (mkfs and partition tables need one). */
  nextUuid(): string {
    this.uuidCounter++
    return `00000000-0000-4000-8000-${this.uuidCounter.toString(16).padStart(12, "0")}`
  }

  /** Takes one pending injected fault for `op`, if any. */
  takeFault(op: string): unknown {
    const queue = this.faults.get(op)
    const head = queue?.[0]
    if (queue === undefined || head === undefined) return undefined
    if (Number.isFinite(head.remaining)) {
      head.remaining--
      if (head.remaining <= 0) queue.shift()
    }
    this.log("fault", op, "injected failure")
    return head.value
  }

  /** The present device that user space sees for `name` (what `/dev/<name>` is). */
  presentDevice(name: string): BlockDev | undefined {
    return this.devices.find((d) => d.present && d.name === name && d.kind !== "path")
  }

  /** Sets a controller state and logs the transition. */
  setState(c: Controller, state: ModelControllerState): void {
    if (c.state === state) return
    this.log("controller", c.name, `${c.state} -> ${state}`)
    c.state = state
  }

  /** Devices kept alive by mounts (attached or lazily detached with holders). */
  heldDevices(): Map<BlockDev, Array<string>> {
    const held = new Map<BlockDev, Array<string>>()
    const add = (d: BlockDev, by: string) => held.set(d, [...(held.get(d) ?? []), by])
    for (const m of this.mounts) if (m.device !== undefined) add(m.device, m.mountPoint)
    for (const m of this.detached) add(m.device, `${m.mountPoint} (detached)`)
    for (const [pid, c] of this.containers) for (const m of c.mounts) add(m.device, `${m.mountPoint} in pid ${pid}'s namespace`)
    return held
  }

  /**
   * Frees what nothing references any more, in the kernel's order: removed devices no mount
   * holds (their minors), heads with no path and no device left (their instance), subsystems with
   * no controller and no head (their instance).
   */
  collect(): void {
    const held = this.heldDevices()
    for (const d of [...this.devices]) {
      if (!d.present && !held.has(d)) {
        this.devices.splice(this.devices.indexOf(d), 1)
        this.minorIda.free(d.minor)
        this.log("device", d.name, `freed (${devTOf(d)} released)`)
      }
    }
    for (const sub of [...this.subsystems]) {
      for (const h of [...sub.heads]) {
        if (h.paths.size === 0 && !this.devices.some((d) => d.head === h)) {
          sub.heads.delete(h)
          sub.headIda.free(h.instance)
        }
      }
      if (sub.controllers.size === 0 && sub.heads.size === 0) {
        this.subsystems.splice(this.subsystems.indexOf(sub), 1)
        this.instanceIda.free(sub.instance)
        this.log("subsystem", `nvme-subsys${sub.instance}`, "freed")
      }
    }
  }

  /**
   * A node reboot: every controller, block device and mount is gone, numbers start again, and
   * the boot id changes; what is on disk (directories, the plugin's state dir) and on the
   * targets stays.
   */
  reboot(): void {
    this.controllers.length = 0
    this.subsystems.length = 0
    this.devices.length = 0
    this.detached.length = 0
    this.holders.clear()
    this.containers.clear()
    this.mounts.splice(2) // the root file system and /dev, as the constructor made them
    for (const ida of [this.instanceIda, this.minorIda, this.mountIda]) ida.used.clear()
    const n = Number.parseInt(this.bootId.slice(-7), 16) + 1
    this.bootId = `00000000-0000-4000-8000-b007${n.toString(16).padStart(7, "0")}`
    this.log("host", "kernel", `rebooted (boot id ${this.bootId})`)
  }
}

/** A mount table row as /proc/self/mountinfo shows it. */
export const entryOf = (m: Mount): MountEntry => ({
  mountId: m.mountId,
  parentId: m.parentId,
  devT: m.devT,
  root: m.root,
  mountPoint: m.mountPoint,
  mountOptions: m.mountOptions,
  optionalFields: [],
  fsType: m.fsType,
  source: m.source,
  superOptions: m.superOptions
})
