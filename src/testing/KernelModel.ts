/**
 * KernelModel: a deterministic in-memory model of what the Linux kernel does for NVMe/TCP and
 * mounts (targets, controllers and their states, native multipath heads and renumbering, dev_t,
 * the mount table, blkid and mkfs), shared by the test layers of NvmeCli, Sysfs and Mounter.
 * Faults are explicit operations (no timers), so property tests are reproducible. Tests drive
 * it (export, link down/up, controller loss, injected tool failures) and read it back (views,
 * the change log, the mkfs log). `layer` makes a fresh model; take it from context to share it.
 *
 * May import: domain, contracts of nvme/ and mount/, testing/Kernel*.
 */
import { Context, Effect, Layer } from "effect"
import type { FsStats, MountError } from "../mount/Mounter.ts"
import type { NvmeCliError } from "../nvme/NvmeCli.ts"
import type { ControllerState } from "../nvme/Sysfs.ts"
import * as Disk from "./KernelDisk.ts"
import * as Mounts from "./KernelMounts.ts"
import * as Nvme from "./KernelNvme.ts"
import { KernelState } from "./KernelState.ts"
import {
  type BlkidFault,
  type DeviceView,
  KernelError,
  type KernelOptions,
  type LogEntry,
  type MkfsRecord,
  type NamespaceSpec,
  type NamespaceView,
  type Signature
} from "./KernelTypes.ts"
import { type KernelView, namespaceView, viewOf } from "./KernelView.ts"

export type NvmeOp = "connect" | "disconnect" | "disconnectController" | "listSubsystems" | "version"
export type MountOp =
  | "probe" | "mkfs" | "mount" | "unmount" | "resize" | "mountinfo" | "statfs" | "holders" | "pathKind"
  | "deviceNumber" | "fileSystemDevice" | "makeDirectory" | "makeFile" | "removePath" | "deviceSize" | "foreignMounts"

/** An injected nvme-cli failure (the NvmeCliError the test layer returns). */
export interface NvmeFault {
  readonly reason: NvmeCliError["reason"]
  readonly detail?: string | undefined
  readonly exitCode?: number | undefined
}

/** An injected mount-tool failure (the MountError the test layer returns). */
export interface MountFault {
  readonly reason: MountError["reason"]
  readonly detail?: string | undefined
  readonly exitCode?: number | undefined
}

/** How many calls a fault hits: a count, or every call until cleared. */
export type Times = number | "always"

export interface ExportSpec {
  readonly address: string
  readonly port: number
  readonly nqn: string
  readonly namespaces?: ReadonlyArray<NamespaceSpec> | undefined
}

export interface KernelModelShape {
  /** Exports `nqn` (namespaces created the first time it is seen) on address:port; the portal is created link-up. */
  readonly exportSubsystem: (spec: ExportSpec) => Effect.Effect<void, KernelError>
  /** "Target gone": the portal stops exporting `nqn`; its controllers reconnect in vain until lost. */
  readonly unexportSubsystem: (address: string, port: number, nqn: string) => Effect.Effect<void, KernelError>
  /** The link to a portal drops: live controllers → connecting, same names, I/O blocks. */
  readonly linkDown: (address: string, port: number) => Effect.Effect<void, KernelError>
  /** The link returns: connecting controllers of exported NQNs → live, same names and devices. */
  readonly linkUp: (address: string, port: number) => Effect.Effect<void, KernelError>
  /** The outage outlasted ctrl_loss_tmo: every controller of `nqn` is deleted; returns how many. */
  readonly loseControllers: (nqn: string) => Effect.Effect<number>
  /** Forces a controller's state (e.g. `resetting`); `removed` deletes it. */
  readonly setControllerState: (name: string, state: ControllerState | "removed") => Effect.Effect<void, KernelError>
  /** Changes a namespace's size on the target (volume expansion). */
  readonly resizeNamespace: (nqn: string, nsid: number, sizeBytes: number) => Effect.Effect<void, KernelError>
  /** Replaces a namespace's content directly on the target (signature and/or files). */
  readonly setNamespaceContent: (nqn: string, nsid: number, content: { readonly signature?: Signature; readonly files?: Readonly<Record<string, string>> }) => Effect.Effect<void, KernelError>
  /** Reads a file through the mount table: EIO on a stale mount, ETIMEDOUT while no path is live. */
  readonly readFile: (path: string) => Effect.Effect<string, KernelError>
  /** Writes a file through the mount table (EROFS on a read-only mount). */
  readonly writeFile: (path: string, content: string) => Effect.Effect<void, KernelError>
  /** The next `times` blkid probes (or all) misbehave this way; faults queue in order. */
  readonly injectBlkid: (fault: BlkidFault, times?: Times) => Effect.Effect<void>
  /** The next `times` calls of an NvmeCli method fail with this error. */
  readonly failNvme: (op: NvmeOp, fault: NvmeFault, times?: Times) => Effect.Effect<void>
  /** The next `times` calls of a Mounter method fail with this error. */
  readonly failMount: (op: MountOp, fault: MountFault, times?: Times) => Effect.Effect<void>
  /** The next `times` sysfs snapshots fail with SysfsError. */
  readonly failSysfs: (detail: string, times?: Times) => Effect.Effect<void>
  /** Removes every injected fault (blkid, nvme-cli, mount tools, sysfs). */
  readonly clearFaults: Effect.Effect<void>
  /** PIDs holding `path` (in-use check); an empty list releases lazily detached mounts there. */
  readonly setHolders: (path: string, pids: ReadonlyArray<number>) => Effect.Effect<void>
  /** Fixed statfs figures for a mount point; undefined returns to figures computed from content. */
  readonly setStatfs: (mountPoint: string, stats: FsStats | undefined) => Effect.Effect<void>
  /** Host capabilities the readiness probe checks: fabrics module, nvme-cli (installed, its version), mount tools. */
  readonly setHost: (host: {
    readonly fabricsAvailable?: boolean
    readonly nvmeInstalled?: boolean
    readonly nvmeVersion?: string
    readonly missingTools?: ReadonlyArray<string>
  }) => Effect.Effect<void>
  /** Everything, copied: portals, namespaces, subsystems, controllers, devices, mounts, paths. */
  /**
   * A container (process `pid` of pod `podUid`) starts with a PRIVATE copy of the mount at
   * `hostPath` (what a runtime does by default): it keeps the device it saw, whatever the host
   * does later.
   */
  readonly startContainer: (pid: number, podUid: string, hostPath: string) => Effect.Effect<void, KernelError>
  /** The container exits (its copies and the devices they held are released). */
  readonly stopContainer: (pid: number) => Effect.Effect<void>
  /** The node reboots: connections, devices and mounts gone, numbering restarts, a new boot id; files stay. */
  readonly reboot: Effect.Effect<void>
  /** Removes a directory tree that holds no mount (a pod's directory deleted while the plugin was away). */
  readonly removeTree: (path: string) => Effect.Effect<void, KernelError>
  readonly view: Effect.Effect<KernelView>
  /** Every state change so far, in order. */
  readonly log: Effect.Effect<ReadonlyArray<LogEntry>>
  /** Every mkfs call so far, failed ones too (a `formatted` one with `filesLost` or a non-Empty `previous` destroyed data). */
  readonly mkfsLog: Effect.Effect<ReadonlyArray<MkfsRecord>>
  /** A target namespace and its content. */
  readonly namespace: (nqn: string, nsid?: number) => Effect.Effect<NamespaceView, KernelError>
  /** The device user space would use for the namespace now (head, or nvmeXnY without multipath). */
  readonly deviceOf: (nqn: string, nsid?: number) => Effect.Effect<DeviceView | undefined>
  /** Runs a model operation on the raw state; what the test layers are built on (a KernelError is a failed syscall). */
  readonly syscall: <A>(f: (state: KernelState) => A) => Effect.Effect<A, KernelError>
}

const run = <A>(s: KernelState, f: (state: KernelState) => A): Effect.Effect<A, KernelError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f(s))
    } catch (e) {
      if (e instanceof KernelError) return Effect.fail(e)
      throw e
    }
  })

const count = (times: Times | undefined): number => times === "always" ? Number.POSITIVE_INFINITY : Math.max(1, times ?? 1)

/** A fresh model with its operations. */
export const makeKernelModel = (options: KernelOptions): KernelModelShape => {
  const s = new KernelState(options)
  const queue = (op: string, value: unknown, times: Times | undefined) =>
    Effect.sync(() => {
      s.faults.set(op, [...(s.faults.get(op) ?? []), { value, remaining: count(times) }])
      s.log("fault", op, `armed for ${times === "always" ? "every call" : `${count(times)} call(s)`}`)
    })
  return {
    exportSubsystem: (spec) => run(s, () => Nvme.exportSubsystem(s, spec.address, spec.port, spec.nqn, spec.namespaces ?? [])),
    unexportSubsystem: (address, port, nqn) => run(s, () => Nvme.unexportSubsystem(s, address, port, nqn)),
    linkDown: (address, port) => run(s, () => Nvme.linkDown(s, address, port)),
    linkUp: (address, port) => run(s, () => Nvme.linkUp(s, address, port)),
    loseControllers: (nqn) => Effect.sync(() => Nvme.loseControllers(s, nqn)),
    setControllerState: (name, state) => run(s, () => Nvme.setControllerState(s, name, state)),
    resizeNamespace: (nqn, nsid, sizeBytes) =>
      run(s, () => {
        Nvme.targetNamespace(s, nqn, nsid).sizeBytes = sizeBytes
        s.log("namespace", `${nqn}/${nsid}`, `resized to ${sizeBytes}`)
      }),
    setNamespaceContent: (nqn, nsid, content) =>
      run(s, () => {
        const ns = Nvme.targetNamespace(s, nqn, nsid)
        if (content.signature !== undefined) ns.signature = content.signature
        if (content.files !== undefined) {
          ns.files.clear()
          for (const [k, v] of Object.entries(content.files)) ns.files.set(k, v)
        }
        s.log("namespace", `${nqn}/${nsid}`, `content set (${ns.signature._tag}, ${ns.files.size} file(s))`)
      }),
    readFile: (path) => run(s, () => Disk.readFile(s, path)),
    writeFile: (path, content) => run(s, () => Disk.writeFile(s, path, content)),
    injectBlkid: (fault, times) =>
      Effect.sync(() => {
        s.blkidFaults.push({ fault, remaining: count(times) })
        s.log("fault", "blkid", `${fault._tag} armed for ${times === "always" ? "every probe" : `${count(times)} probe(s)`}`)
      }),
    failNvme: (op, fault, times) => queue(`nvme.${op}`, fault, times),
    failMount: (op, fault, times) => queue(`mount.${op}`, fault, times),
    failSysfs: (detail, times) => queue("sysfs.snapshot", detail, times),
    clearFaults: Effect.sync(() => {
      s.faults.clear()
      s.blkidFaults.length = 0
      s.log("fault", "all", "cleared")
    }),
    setHolders: (path, pids) => Effect.sync(() => Mounts.setHolders(s, path, pids)),
    setStatfs: (mountPoint, stats) => Effect.sync(() => void (stats === undefined ? s.statfsOverrides.delete(mountPoint) : s.statfsOverrides.set(mountPoint, stats))),
    setHost: (host) =>
      Effect.sync(() => {
        if (host.fabricsAvailable !== undefined) s.fabricsAvailable = host.fabricsAvailable
        if (host.nvmeVersion !== undefined) s.nvmeVersion = host.nvmeVersion
        if (host.nvmeInstalled !== undefined) s.nvmeInstalled = host.nvmeInstalled
        if (host.missingTools !== undefined) s.missingTools = host.missingTools
      }),
    startContainer: (pid, podUid, hostPath) =>
      run(s, () => {
        let top: (typeof s.mounts)[number] | undefined
        for (const m of s.mounts) if (m.mountPoint === hostPath) top = m
        if (top?.device === undefined) throw new KernelError({ errno: "EINVAL", syscall: "mount", path: hostPath, detail: "no NVMe mount there to copy" })
        s.containers.set(pid, { podUid, mounts: [{ mountPoint: "/data", device: top.device }] })
        s.log("mount", hostPath, `copied privately into pid ${pid}'s namespace`)
      }),
    stopContainer: (pid) =>
      Effect.sync(() => {
        s.containers.delete(pid)
        s.collect()
        s.log("mount", `pid ${pid}`, "namespace gone")
      }),
    reboot: Effect.sync(() => s.reboot()),
    removeTree: (path) =>
      run(s, () => {
        const inside = (p: string) => p === path || p.startsWith(`${path}/`)
        const mounted = s.mounts.find((m) => inside(m.mountPoint))
        if (mounted !== undefined) throw new KernelError({ errno: "EBUSY", syscall: "rmdir", path: mounted.mountPoint, detail: "a mount point" })
        for (const p of [...s.paths.keys()]) if (inside(p)) s.paths.delete(p)
        s.log("path", path, "removed (tree)")
      }),
    view: Effect.sync(() => viewOf(s)),
    log: Effect.sync(() => [...s.entries]),
    mkfsLog: Effect.sync(() => [...s.mkfsRecords]),
    namespace: (nqn, nsid = 1) => run(s, () => namespaceView(nqn, Nvme.targetNamespace(s, nqn, nsid))),
    deviceOf: (nqn, nsid = 1) =>
      Effect.sync(() => {
        const name = Nvme.snapshot(s).namespaces.find((n) => n.subsysnqn === nqn && n.nsid === nsid)?.name
        return viewOf(s).devices.find((d) => d.name === name && d.present && d.kind !== "path")
      }),
    syscall: (f) => run(s, f)
  }
}

export class KernelModel extends Context.Service<KernelModel, KernelModelShape>()("rds-csi/testing/KernelModel") {
  /** A fresh model with native multipath on (the distribution kernels' default). */
  static readonly layer: Layer.Layer<KernelModel> = Layer.sync(KernelModel, () => KernelModel.of(makeKernelModel({ multipath: true })))
  /** A fresh model with the given options (e.g. `{ multipath: false }`: devices are `nvme<ctrl>n<nsid>`). */
  static readonly layerWith = (options: KernelOptions): Layer.Layer<KernelModel> => Layer.sync(KernelModel, () => KernelModel.of(makeKernelModel(options)))
}
