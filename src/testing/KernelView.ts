/**
 * Read-only copies of the kernel model's state for assertions: portals, target namespaces with
 * their content, subsystems, controllers, block devices (present or held), mounts (with the
 * device under each and whether it is stale), paths. Nothing returned aliases the live state.
 *
 * May import: testing/KernelState, testing/KernelTypes, contracts (types only).
 */
import type { MountEntry } from "../mount/Mounter.ts"
import { devTOf, entryOf, type KernelState, type TargetNamespace } from "./KernelState.ts"
import type { ControllerView, DeviceView, NamespaceView, PortalView, SubsystemView } from "./KernelTypes.ts"

export interface MountView extends MountEntry {
  /** Kernel name of the NVMe device under the mount (file system or raw-block bind). */
  readonly device: string | undefined
  /** That device's dev_t (for a raw-block bind it differs from `devT`, which is devtmpfs's). */
  readonly deviceDevT: string | undefined
  /** The device under it has been removed: reads and writes fail with EIO. */
  readonly stale: boolean
  readonly rawBlock: boolean
}

export interface KernelView {
  readonly portals: ReadonlyArray<PortalView>
  readonly namespaces: ReadonlyArray<NamespaceView>
  readonly subsystems: ReadonlyArray<SubsystemView>
  readonly controllers: ReadonlyArray<ControllerView>
  readonly devices: ReadonlyArray<DeviceView>
  readonly mounts: ReadonlyArray<MountView>
  readonly paths: ReadonlyArray<{ readonly path: string; readonly kind: "directory" | "file" }>
}

/** A copy of one target namespace and its content. */
export const namespaceView = (nqn: string, ns: TargetNamespace): NamespaceView => ({
  nqn,
  nsid: ns.nsid,
  nguid: ns.nguid,
  uuid: ns.uuid,
  sizeBytes: ns.sizeBytes,
  signature: ns.signature,
  files: Object.fromEntries(ns.files)
})

/** Everything, copied. */
export const viewOf = (s: KernelState): KernelView => {
  const held = s.heldDevices()
  return {
    portals: [...s.portals.values()].map((p) => ({ address: p.address, port: p.port, linkUp: p.linkUp, exports: [...p.exports] })),
    namespaces: [...s.targetSubsystems.values()].flatMap((t) => [...t.namespaces.values()].map((ns) => namespaceView(t.nqn, ns))),
    subsystems: s.subsystems.map((sub) => ({
      name: `nvme-subsys${sub.instance}`,
      nqn: sub.nqn,
      instance: sub.instance,
      controllers: [...sub.controllers].map((c) => c.name),
      heads: [...sub.heads].flatMap((h) => h.device === undefined ? [] : [h.device.name])
    })),
    controllers: s.controllers.map((c) => ({
      name: c.name,
      instance: c.instance,
      state: c.state,
      nqn: c.nqn,
      address: c.address,
      port: c.port,
      ctrlLossTmo: c.ctrlLossTmo,
      reconnectDelay: c.reconnectDelay,
      subsystem: `nvme-subsys${c.subsystem.instance}`
    })),
    devices: s.devices.map((d) => ({ name: d.name, devT: devTOf(d), kind: d.kind, nqn: d.nqn, nsid: d.nsid, present: d.present, heldBy: held.get(d) ?? [] })),
    mounts: s.mounts.map((m) => ({
      ...entryOf(m),
      device: m.device?.name,
      deviceDevT: m.device === undefined ? undefined : devTOf(m.device),
      stale: m.device !== undefined && !m.device.present,
      rawBlock: m.rawBlock
    })),
    paths: [...s.paths].map(([path, kind]) => ({ path, kind }))
  }
}
