/**
 * NodeStageVolume and NodeUnstageVolume as CSI-agnostic use cases: attach the NVMe/TCP volume,
 * make sure it carries the requested file system (formatting only a device proven empty),
 * mount it at the staging path, and remember all of it in the StageStore; and the reverse.
 *
 * May import: domain, nvme, mount, kube (EventPoster contract), node, Settings.
 */
import { Clock, Effect } from "effect"
import { FailedPrecondition, IncompatibleRequest, SafetyRefusal } from "../domain/Errors.ts"
import { isManaged, type Nqn } from "../domain/Ids.ts"
import { EventPoster } from "../kube/EventPoster.ts"
import { ensureFilesystem } from "../mount/Format.ts"
import { Mounter } from "../mount/Mounter.ts"
import { identityOf } from "../nvme/DeviceResolver.ts"
import { NvmeTransport } from "../nvme/NvmeTransport.ts"
import { Sysfs } from "../nvme/Sysfs.ts"
import { Settings } from "../Settings.ts"
import { devicePath, entryAt, reachedDevice, unmountSafely } from "./MountOps.ts"
import { checkStale, recover } from "./Recovery.ts"
import type { StageRequest, UnstageRequest } from "./Requests.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"

const describeCapability = (r: { readonly accessType: string; readonly fsType?: string | undefined }) =>
  r.accessType === "Block" ? "raw block" : `${r.fsType ?? "ext4"} file system`

/** Stages the volume; OK at once when it is already staged identically and healthy. */
export const stage = Effect.fn("NodeVolumes.stage")(function*(req: StageRequest) {
  const settings = yield* Settings
  const store = yield* StageStore
  const transport = yield* NvmeTransport
  const sysfs = yield* Sysfs
  const mounter = yield* Mounter
  const events = yield* EventPoster
  const { target, capability } = req
  const block = capability.accessType._tag === "Block"
  const fsType = capability.accessType._tag === "Mount" ? capability.accessType.fsType : undefined

  if (settings.managedNqnPrefix !== undefined && !isManaged(target.nqn, settings.managedNqnPrefix)) {
    return yield* new SafetyRefusal({
      volumeId: req.volumeId,
      detail: `NQN ${target.nqn} is outside the managed prefix '${settings.managedNqnPrefix}'; this node does not touch it`
    })
  }

  const existing = yield* store.get(req.volumeId)
  if (existing !== undefined) {
    // CSI: "If the volume corresponding to the volume_id has already been staged to the
    // staging_target_path, and is identical to the specified volume_capability the Plugin
    // MUST reply 0 OK." Anything else staged under this ID is ALREADY_EXISTS.
    const same = existing.stagingPath === req.stagingPath &&
      existing.accessType === capability.accessType._tag &&
      (block || existing.fsType === fsType) &&
      existing.nqn === target.nqn
    if (!same) {
      return yield* new IncompatibleRequest({
        volumeId: req.volumeId,
        detail: `already staged at ${existing.stagingPath} as ${describeCapability(existing)} from ${existing.nqn}`
      })
    }
    if (existing.complete) {
      const check = yield* checkStale(existing)
      if (!check.stale) return
      // Staged before, and its mounts reach an old device (lost controller, renumbering): recover.
      yield* recover(existing)
      return
    }
    // Recorded but never finished (a failure or a restart midway): finish the stage below.
  }

  const address = `${target.address}:${target.port}`
  const preexisting = existing === undefined && (yield* sysfs.snapshot).controllers.some((c) => c.subsysnqn === target.nqn)
  const attached = yield* transport.attach(target, (_, e) => events.postConnectionFailure(req.volumeId, address, e.message))
  if (attached.failedAttempts > 0) yield* events.postConnectionRecovery(req.volumeId, address, attached.failedAttempts + 1)
  const device = attached.device
  const readOnly = capability.accessMode === "SINGLE_NODE_READER_ONLY" || capability.accessMode === "MULTI_NODE_READER_ONLY"
  const mountFlags = capability.accessType._tag === "Mount" ? capability.accessType.mountFlags : []

  const record: StageRecord = {
    version: 1,
    volumeId: req.volumeId,
    stagingPath: req.stagingPath,
    nqn: target.nqn,
    address: target.address,
    port: target.port,
    ctrlLossTmo: target.ctrlLossTmo,
    reconnectDelay: target.reconnectDelay,
    ...(target.keepAliveTmo === undefined ? {} : { keepAliveTmo: target.keepAliveTmo }),
    selector: {
      ...(target.namespace.nsid === undefined ? {} : { nsid: target.namespace.nsid }),
      ...(target.namespace.nguid === undefined ? {} : { nguid: target.namespace.nguid }),
      ...(target.namespace.uuid === undefined ? {} : { uuid: target.namespace.uuid })
    },
    device: { name: device.name, devT: device.devT, identity: identityOf(device) },
    accessType: capability.accessType._tag,
    ...(fsType === undefined ? {} : { fsType }),
    mountFlags: [...mountFlags],
    readOnly,
    connectedByPlugin: existing?.connectedByPlugin ?? !preexisting,
    complete: false,
    publishedTargets: [],
    stagedAt: new Date(yield* Clock.currentTimeMillis).toISOString()
  }
  // Written before mounting: a plugin killed midway still knows the connection is this volume's.
  yield* store.put(record)
  if (block || fsType === undefined) {
    yield* store.put({ ...record, complete: true })
    return
  }

  const mountStep = Effect.gen(function*() {
    yield* mounter.makeDirectory(req.stagingPath)
    const present = entryAt(yield* mounter.mountinfo, req.stagingPath)
    if (present !== undefined && present.devT === device.devT) return
    if (present !== undefined) yield* unmountSafely(req.stagingPath, false)
    if (!readOnly) yield* ensureFilesystem(devicePath(device.name), fsType)
    yield* mounter.mount(devicePath(device.name), req.stagingPath, {
      fsType,
      options: mountFlags.filter((f) => f !== "ro" && f !== "rw"),
      bind: false,
      readOnly
    })
  })
  yield* mountStep.pipe(Effect.tapError((e) => events.postMountFailure(req.volumeId, e.message)))
  yield* store.put({ ...record, complete: true })
})

/** Unstages the volume; OK when it is not staged (CSI: "MUST reply 0 OK"). */
export const unstage = Effect.fn("NodeVolumes.unstage")(function*(req: UnstageRequest) {
  const settings = yield* Settings
  const store = yield* StageStore
  const transport = yield* NvmeTransport
  const sysfs = yield* Sysfs
  const mounter = yield* Mounter
  const record = yield* store.get(req.volumeId)

  if (record === undefined) {
    // CSI: "If the volume corresponding to the volume_id is not staged to the
    // staging_target_path, the Plugin MUST reply 0 OK." A mount left at the path kubelet gave
    // us is still ours to remove.
    yield* unmountSafely(req.stagingPath, false)
    return
  }
  if (record.stagingPath !== req.stagingPath) {
    return yield* new FailedPrecondition({ volumeId: req.volumeId, detail: `staged at ${record.stagingPath}, not at ${req.stagingPath}` })
  }
  const block = record.accessType === "Block"
  const stillPublished: Array<string> = []
  for (const t of record.publishedTargets) {
    if ((yield* reachedDevice(t.path, block)) !== undefined) stillPublished.push(t.path)
  }
  if (stillPublished.length > 0) {
    return yield* new FailedPrecondition({ volumeId: req.volumeId, detail: `still published at ${stillPublished.join(", ")}; unpublish first` })
  }
  const snapshot = yield* sysfs.snapshot
  if (!block) {
    const staging = entryAt(yield* mounter.mountinfo, req.stagingPath)
    const deviceGone = staging !== undefined && !snapshot.namespaces.some((n) => n.devT === staging.devT)
    yield* unmountSafely(req.stagingPath, deviceGone)
  }

  const others = (yield* store.list).filter((r) => r.volumeId !== record.volumeId && r.nqn === record.nqn)
  const mayDisconnect = isManaged(record.nqn as Nqn, settings.managedNqnPrefix) || record.connectedByPlugin
  if (others.length === 0 && mayDisconnect) {
    yield* transport.detach(record.nqn as Nqn)
  } else {
    yield* Effect.logInfo(
      others.length > 0
        ? `keeping ${record.nqn} connected: used by ${others.map((r) => r.volumeId).join(", ")}`
        : `keeping ${record.nqn} connected: it existed before this volume and is outside the managed prefix`
    )
  }
  yield* store.remove(record.volumeId)
})
