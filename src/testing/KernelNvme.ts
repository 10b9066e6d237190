/**
 * The NVMe/TCP half of the kernel model: what targets export, what `/dev/nvme-fabrics` does on a
 * connect (duplicate check, then the network, then a controller and its namespaces), controller
 * deletion, the explicit faults (link down/up, target gone, controller loss after ctrl_loss_tmo)
 * and the sysfs view. Functions over KernelState; they throw KernelError like a failing syscall
 * and never leave half-made state behind (they check before they change).
 *
 * May import: domain, testing/KernelState, testing/KernelTypes, contracts (types only).
 */
import { isIP } from "node:net"
import type { Nqn } from "../domain/Ids.ts"
import { canonicalAddress } from "../domain/Target.ts"
import type { ConnectArgs, SubsystemListing } from "../nvme/NvmeCli.ts"
import type { ControllerState, NamespaceDevice, NvmeSnapshot } from "../nvme/Sysfs.ts"
import { type BlockDev, type Controller, devTOf, type Head, type HostSubsystem, Ida, type KernelState, type Portal, portalKey, type TargetNamespace } from "./KernelState.ts"
import { KernelError, type NamespaceSpec, Signature } from "./KernelTypes.ts"

const isGoing = (c: Controller) => c.state === "deleting" || c.state === "deleting (no IO)" || c.state === "dead" || c.state === "removed"

/** Whether `c` talks to that endpoint (the network's view: any spelling of the address). */
const reaches = (c: Controller, address: string, port: number): boolean => portalKey(c.address, c.port) === portalKey(address, port)

const portalOf = (s: KernelState, address: string, port: number): Portal => {
  const p = s.portals.get(portalKey(address, port))
  if (p === undefined) throw new KernelError({ errno: "ENOENT", syscall: "model", path: portalKey(address, port), detail: "no such target portal in the model" })
  return p
}

/** The namespace a target exports (content included); throws when unknown. */
export const targetNamespace = (s: KernelState, nqn: string, nsid: number): TargetNamespace => {
  const ns = s.targetSubsystems.get(nqn)?.namespaces.get(nsid)
  if (ns === undefined) throw new KernelError({ errno: "ENOENT", syscall: "model", path: `${nqn}/${nsid}`, detail: "no such namespace on any target" })
  return ns
}

/** Exports `nqn` on a portal (created link-up if new); namespaces are created the first time the NQN is seen. */
export const exportSubsystem = (s: KernelState, address: string, port: number, nqn: string, namespaces: ReadonlyArray<NamespaceSpec>): void => {
  const key = portalKey(address, port)
  let portal = s.portals.get(key)
  if (portal === undefined) {
    portal = { address, port, linkUp: true, exports: new Set() }
    s.portals.set(key, portal)
    s.log("target", key, "listening")
  }
  if (!s.targetSubsystems.has(nqn)) {
    const map = new Map<number, TargetNamespace>()
    for (const n of namespaces) {
      const signature = n.signature ?? Signature.empty
      map.set(n.nsid, {
        nsid: n.nsid,
        nguid: n.nguid,
        uuid: n.uuid,
        sizeBytes: n.sizeBytes,
        signature: signature._tag === "Filesystem" && signature.sizeBytes === 0 ? { ...signature, sizeBytes: n.sizeBytes } : signature,
        files: new Map(Object.entries(n.files ?? {}))
      })
    }
    s.targetSubsystems.set(nqn, { nqn, namespaces: map })
  }
  portal.exports.add(nqn)
  s.log("target", key, `exports ${nqn}`)
  reconnectPortal(s, portal)
}

/** The target stops exporting `nqn` on that portal: its live controllers start reconnecting (and keep failing). */
export const unexportSubsystem = (s: KernelState, address: string, port: number, nqn: string): void => {
  const portal = portalOf(s, address, port)
  portal.exports.delete(nqn)
  s.log("target", portalKey(address, port), `no longer exports ${nqn}`)
  for (const c of s.controllers) if (c.nqn === nqn && reaches(c, address, port)) interrupt(s, c)
}

const interrupt = (s: KernelState, c: Controller): void => {
  if (c.state === "live" || c.state === "new") s.setState(c, "resetting")
  if (c.state === "resetting") s.setState(c, "connecting")
}

/** The network to a portal drops: its live controllers go resetting → connecting; names and devices stay. */
export const linkDown = (s: KernelState, address: string, port: number): void => {
  const portal = portalOf(s, address, port)
  if (!portal.linkUp) return
  portal.linkUp = false
  s.log("link", portalKey(address, port), "down")
  for (const c of s.controllers) if (reaches(c, address, port)) interrupt(s, c)
}

/** The network comes back: reconnecting controllers whose NQN is still exported go live under the same names. */
export const linkUp = (s: KernelState, address: string, port: number): void => {
  const portal = portalOf(s, address, port)
  if (portal.linkUp) return
  portal.linkUp = true
  s.log("link", portalKey(address, port), "up")
  reconnectPortal(s, portal)
}

const reconnectPortal = (s: KernelState, portal: Portal): void => {
  if (!portal.linkUp) return
  for (const c of s.controllers) {
    if (reaches(c, portal.address, portal.port) && c.state === "connecting" && portal.exports.has(c.nqn)) s.setState(c, "live")
  }
}

/**
 * `nvme connect` as the kernel sees it: EINVAL for a traddr that is not an IP literal (the model
 * resolves no names), EALREADY for a duplicate (the kernel compares traddr strings), the
 * network's errno, or a new live controller that keeps traddr as given.
 */
export const connect = (s: KernelState, args: ConnectArgs): Controller => {
  const where = portalKey(args.address, args.port)
  if (isIP(args.address) === 0) {
    throw new KernelError({ errno: "EINVAL", syscall: "write /dev/nvme-fabrics", path: where, detail: `malformed address passed: ${args.address}:${args.port}` })
  }
  const duplicate = s.controllers.find((c) => c.nqn === args.nqn && c.address === args.address && c.port === args.port && !isGoing(c))
  if (duplicate !== undefined) {
    throw new KernelError({ errno: "EALREADY", syscall: "write /dev/nvme-fabrics", path: where, detail: `already connected as ${duplicate.name}` })
  }
  const portal = s.portals.get(where)
  if (portal === undefined) {
    throw new KernelError({ errno: "ECONNREFUSED", syscall: "write /dev/nvme-fabrics", path: where, detail: "failed to connect socket: -111" })
  }
  if (!portal.linkUp) {
    throw new KernelError({ errno: "ETIMEDOUT", syscall: "write /dev/nvme-fabrics", path: where, detail: "failed to connect socket: -110" })
  }
  if (!portal.exports.has(args.nqn)) {
    throw new KernelError({ errno: "EIO", syscall: "write /dev/nvme-fabrics", path: where, detail: `Connect Invalid Data Parameter, subsysnqn "${args.nqn}"` })
  }
  const instance = s.instanceIda.alloc()
  let subsystem = s.subsystems.find((x) => x.nqn === args.nqn)
  if (subsystem === undefined) {
    // The kernel names a new subsystem after its first controller's instance and keeps that number while it lives.
    subsystem = { instance, nqn: args.nqn, controllers: new Set(), heads: new Set(), headIda: new Ida(1) }
    s.subsystems.push(subsystem)
    s.log("subsystem", `nvme-subsys${instance}`, `created for ${args.nqn}`)
  }
  const c: Controller = {
    instance,
    name: `nvme${instance}`,
    state: "live",
    nqn: args.nqn,
    address: args.address,
    port: args.port,
    ctrlLossTmo: args.ctrlLossTmo,
    reconnectDelay: args.reconnectDelay,
    keepAliveTmo: args.keepAliveTmo,
    subsystem
  }
  s.controllers.push(c)
  subsystem.controllers.add(c)
  s.log("controller", c.name, `created -> live (${args.nqn} at ${where})`)
  attachNamespaces(s, c)
  return c
}

const newDevice = (s: KernelState, name: string, kind: BlockDev["kind"], head: Head): BlockDev => {
  const d: BlockDev = { name, minor: s.minorIda.alloc(), kind, nqn: head.subsystem.nqn, nsid: head.nsid, head, present: true }
  s.devices.push(d)
  s.log("device", name, `appeared as ${devTOf(d)}${kind === "path" ? " (hidden path)" : ""}`)
  return d
}

const attachNamespaces = (s: KernelState, c: Controller): void => {
  const sub = c.subsystem
  const namespaces = [...(s.targetSubsystems.get(c.nqn)?.namespaces.values() ?? [])].sort((a, b) => a.nsid - b.nsid)
  for (const ns of namespaces) {
    // Only a head that still has a path can be found again; a removed one (held by a stale mount) is not reused.
    let head = [...sub.heads].find((h) => h.nsid === ns.nsid && h.paths.size > 0)
    const fresh = head === undefined
    if (head === undefined) {
      head = { instance: sub.headIda.alloc(), nsid: ns.nsid, subsystem: sub, device: undefined, paths: new Map() }
      sub.heads.add(head)
    }
    if (s.options.multipath) {
      head.paths.set(c, newDevice(s, `nvme${sub.instance}c${c.instance}n${head.instance}`, "path", head))
      // The head disk is added after its first path goes live, so its minor comes second.
      if (fresh) head.device = newDevice(s, `nvme${sub.instance}n${head.instance}`, "head", head)
    } else {
      head.paths.set(c, newDevice(s, `nvme${c.instance}n${ns.nsid}`, "namespace", head))
    }
  }
}

/** Deletes a controller: deleting → removed, its devices vanish (freed unless a mount holds them). */
export const deleteController = (s: KernelState, c: Controller): void => {
  if (c.state !== "deleting" && c.state !== "deleting (no IO)") s.setState(c, "deleting")
  for (const head of c.subsystem.heads) {
    const path = head.paths.get(c)
    if (path === undefined) continue
    path.present = false
    head.paths.delete(c)
    s.log("device", path.name, "removed")
    if (head.paths.size === 0 && head.device !== undefined && head.device.present) {
      head.device.present = false
      s.log("device", head.device.name, "removed (last path gone)")
    }
  }
  s.setState(c, "removed")
  s.controllers.splice(s.controllers.indexOf(c), 1)
  c.subsystem.controllers.delete(c)
  if (c.instance !== c.subsystem.instance) s.instanceIda.free(c.instance)
  s.collect()
}

/** What happens when an outage outlasts ctrl_loss_tmo: every controller of `nqn` is deleted. */
export const loseControllers = (s: KernelState, nqn: string): number => {
  const victims = s.controllers.filter((c) => c.nqn === nqn)
  for (const c of victims) deleteController(s, c)
  return victims.length
}

/** `nvme disconnect -n`: deletes every controller of `nqn`; returns how many. */
export const disconnectNqn = (s: KernelState, nqn: Nqn): number => loseControllers(s, nqn)

/** `nvme disconnect -d`: deletes one controller; ENODEV when there is none by that name. */
export const disconnectController = (s: KernelState, name: string): void => {
  const c = s.controllers.find((x) => x.name === name)
  if (c === undefined) throw new KernelError({ errno: "ENODEV", syscall: "write delete_controller", path: `/sys/class/nvme/${name}`, detail: "no such controller" })
  deleteController(s, c)
}

/** Forces a controller state (for transients the explicit faults do not produce, e.g. `resetting`). */
export const setControllerState = (s: KernelState, name: string, state: ControllerState | "removed"): void => {
  const c = s.controllers.find((x) => x.name === name)
  if (c === undefined) throw new KernelError({ errno: "ENODEV", syscall: "model", path: name, detail: "no such controller" })
  if (state === "removed") deleteController(s, c)
  else s.setState(c, state)
}

const wwidOf = (ns: TargetNamespace | undefined, nqn: string, nsid: number): string =>
  ns?.nguid !== undefined ? `eui.${ns.nguid}` : ns?.uuid !== undefined ? `uuid.${ns.uuid}` : `nvme.0000-${Buffer.from(nqn).toString("hex").slice(0, 16)}-${nsid}`

const deviceView = (s: KernelState, d: BlockDev, controllers: ReadonlyArray<Controller>): NamespaceDevice => {
  const ns = s.targetSubsystems.get(d.nqn)?.namespaces.get(d.nsid)
  return {
    name: d.name,
    devT: devTOf(d),
    subsysnqn: d.nqn,
    nsid: d.nsid,
    nguid: ns?.nguid,
    uuid: ns?.uuid,
    wwid: wwidOf(ns, d.nqn, d.nsid),
    sizeBytes: ns?.sizeBytes ?? 0,
    controllers: controllers.map((c) => c.name)
  }
}

/** What `/sys/class/nvme` and `/sys/block` show now. */
export const snapshot = (s: KernelState): NvmeSnapshot => {
  const namespaces: Array<NamespaceDevice> = []
  for (const sub of s.subsystems) {
    for (const head of [...sub.heads].sort((a, b) => a.instance - b.instance)) {
      if (head.device !== undefined) {
        if (head.device.present) namespaces.push(deviceView(s, head.device, [...head.paths.keys()]))
      } else {
        for (const [c, d] of head.paths) if (d.present) namespaces.push(deviceView(s, d, [c]))
      }
    }
  }
  return {
    controllers: s.controllers.filter((c) => c.state !== "removed").map((c) => ({
      name: c.name,
      state: c.state as ControllerState,
      subsysnqn: c.nqn,
      transport: "tcp",
      // The kernel echoes traddr as given; SysfsLive hands it on in canonical form.
      traddr: canonicalAddress(c.address),
      trsvcid: String(c.port),
      ctrlLossTmo: c.ctrlLossTmo,
      subsystem: `nvme-subsys${c.subsystem.instance}`
    })),
    namespaces
  }
}

/** `nvme list-subsys -o json`, decoded: every subsystem the kernel still has, with its paths. */
export const listSubsystems = (s: KernelState): ReadonlyArray<SubsystemListing> =>
  [...s.subsystems].sort((a, b) => a.instance - b.instance).map((sub: HostSubsystem) => ({
    nqn: sub.nqn,
    name: `nvme-subsys${sub.instance}`,
    paths: [...sub.controllers].sort((a, b) => a.instance - b.instance).map((c) => ({
      name: c.name,
      transport: "tcp",
      address: `traddr=${c.address},trsvcid=${c.port}`,
      state: c.state
    }))
  }))
