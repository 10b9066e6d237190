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
import { isReadOnlyMode } from "../domain/Volume.ts"
import { EventPoster } from "../kube/EventPoster.ts"
import { ensureFilesystem } from "../mount/Format.ts"
import { Mounter } from "../mount/Mounter.ts"
import { identityOf, sameIdentity } from "../nvme/DeviceResolver.ts"
import { NvmeTransport } from "../nvme/NvmeTransport.ts"
import { type NvmeSnapshot, Sysfs } from "../nvme/Sysfs.ts"
import { Settings } from "../Settings.ts"
import { devicePath, entryAt, reachedDevice, unmountSafely } from "./MountOps.ts"
import { isThisBoot, mountPointsOf, stagedThisBoot } from "./Lifecycle.ts"
import { checkStale, recover } from "./Recovery.ts"
import type { StageRequest, UnstageRequest } from "./Requests.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"
import { VolumeLocks } from "./VolumeLocks.ts"

const describeCapability = (r: { readonly accessType: string; readonly fsType?: string | undefined }) =>
  r.accessType === "Block" ? "raw block" : `${r.fsType ?? "ext4"} file system`

/**
 * Why an existing record of this boot is not what `req` asks for (CSI: ALREADY_EXISTS), or
 * undefined when it is the same staging: path, access type, file system, access mode's
 * read-only-ness, mount flags, and the target (NQN, address, port).
 */
export const incompatibility = (
  existing: StageRecord,
  req: StageRequest,
  readOnly: boolean,
  mountFlags: ReadonlyArray<string>
): string | undefined => {
  const { target, capability } = req
  const fsType = capability.accessType._tag === "Mount" ? capability.accessType.fsType : undefined
  const differences = [
    existing.stagingPath !== req.stagingPath ? `staging path ${existing.stagingPath}` : undefined,
    existing.accessType !== capability.accessType._tag || (capability.accessType._tag === "Mount" && existing.fsType !== fsType)
      ? `capability ${describeCapability(existing)}`
      : undefined,
    existing.readOnly !== readOnly ? (existing.readOnly ? "read-only" : "read-write") : undefined,
    [...existing.mountFlags].sort().join(",") !== [...mountFlags].sort().join(",") ? `mount flags [${existing.mountFlags.join(", ")}]` : undefined,
    existing.nqn !== target.nqn || existing.address !== target.address || existing.port !== target.port
      ? `target ${existing.nqn} at ${existing.address}:${existing.port}`
      : undefined
  ].filter((d) => d !== undefined)
  return differences.length === 0 ? undefined : `already staged with ${differences.join(", ")}`
}

/**
 * ReadWriteOnce promises one node. The controller fences the volumes it created to the node
 * they are published to (ControllerPublish, attachRequired: true), so a second node cannot even
 * connect; a static PV outside the managed NQN prefix is not fenced by anyone, and Kubernetes
 * alone does not stop a second node from staging it read-write (a rolling update, a node that
 * came back): say so where an operator looks.
 */
const warnUnfenced = (req: StageRequest, managedPrefix: string | undefined) =>
  req.capability.accessType._tag === "Mount" && !isManaged(req.target.nqn, managedPrefix) &&
    (req.capability.accessMode === "SINGLE_NODE_WRITER" || req.capability.accessMode === "SINGLE_NODE_MULTI_WRITER")
    ? Effect.logWarning(
      `${req.capability.accessMode} file system outside the managed NQN prefix: nothing fences it at the target, so a second node ` +
        "could mount it read-write too (e.g. during a rolling update); use ReadWriteOncePod where a single writer matters"
    )
    : Effect.void

/** Stages the volume; OK at once when it is already staged identically and healthy. */
export const stage = Effect.fn("NodeVolumes.stage")(function*(req: StageRequest) {
  const settings = yield* Settings
  const store = yield* StageStore
  const transport = yield* NvmeTransport
  const sysfs = yield* Sysfs
  const mounter = yield* Mounter
  const events = yield* EventPoster
  const locks = yield* VolumeLocks
  const { target, capability } = req
  const block = capability.accessType._tag === "Block"
  const fsType = capability.accessType._tag === "Mount" ? capability.accessType.fsType : undefined
  const readOnly = isReadOnlyMode(capability.accessMode)
  const mountFlags = capability.accessType._tag === "Mount" ? capability.accessType.mountFlags : []

  if (settings.managedNqnPrefix !== undefined && !isManaged(target.nqn, settings.managedNqnPrefix)) {
    return yield* new SafetyRefusal({
      volumeId: req.volumeId,
      detail: `NQN ${target.nqn} is outside the managed prefix '${settings.managedNqnPrefix}'; this node does not touch it`
    })
  }

  const bootId = yield* sysfs.bootId
  const existing = yield* store.get(req.volumeId)
  // A record of this boot that is not being unstaged is the volume as staged now; any other
  // (an earlier boot's, or one whose unstage did not finish) is only a note of the connection.
  const current = existing !== undefined && existing.unstaging !== true && (yield* isThisBoot(existing)) ? existing : undefined
  if (current !== undefined) {
    // CSI: "If the volume corresponding to the volume_id has already been staged to the
    // staging_target_path, and is identical to the specified volume_capability the Plugin
    // MUST reply 0 OK." Anything else staged under this ID is ALREADY_EXISTS.
    const mismatch = incompatibility(current, req, readOnly, mountFlags)
    if (mismatch !== undefined) return yield* new IncompatibleRequest({ volumeId: req.volumeId, detail: mismatch })
    if (current.complete) {
      const check = yield* checkStale(current)
      if (!check.stale) return
      // Staged before, and its mounts reach an old device (lost controller, renumbering): recover.
      yield* recover(current)
      return
    }
    // Recorded but never finished (a failure or a restart midway): finish the stage below.
  } else if (existing !== undefined) {
    yield* Effect.logInfo(existing.unstaging === true
      ? "staging again a volume whose unstage did not finish"
      : "staging again a volume staged before the node restarted; its earlier publications are forgotten (kubelet publishes again)")
  }
  yield* warnUnfenced(req, settings.managedNqnPrefix)

  const address = `${target.address}:${target.port}`
  // Connect and record under the subsystem's lock: a sibling volume's unstage or failed stage
  // decides whether to disconnect under the same lock, and then sees this record.
  const record = yield* locks.withConnection(target.nqn, Effect.gen(function*() {
    const attached = yield* transport.attach(target, (_, e) => events.postConnectionFailure(req.volumeId, address, e.message))
    if (attached.failedAttempts > 0) yield* events.postConnectionRecovery(req.volumeId, address, attached.failedAttempts + 1)
    const device = attached.device
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
      // A connection this plugin made earlier in this boot (for an unfinished stage or unstage) is still its own.
      connectedByPlugin: (current ?? (existing?.bootId === bootId ? existing : undefined))?.connectedByPlugin === true || !attached.subsystemWasConnected,
      complete: false,
      bootId,
      publishedTargets: [],
      stagedAt: new Date(yield* Clock.currentTimeMillis).toISOString()
    }
    // Written before mounting: a plugin killed midway still knows the connection is this volume's.
    yield* store.put(record)
    return record
  }))
  if (block || fsType === undefined) {
    yield* store.put({ ...record, complete: true })
    return
  }

  const device = record.device
  const mountStep = Effect.gen(function*() {
    yield* mounter.makeDirectory(req.stagingPath)
    const present = entryAt(yield* mounter.mountsAt([req.stagingPath]), req.stagingPath)
    if (present !== undefined && present.devT === device.devT) return
    if (present !== undefined) yield* unmountSafely(req.stagingPath, false)
    if (!readOnly) {
      // The name must still be this volume's namespace (by identity) before anything may be
      // written to it; the format step then holds the node to this dev_t up to mkfs itself.
      const now = (yield* sysfs.snapshotOf(record.nqn)).namespaces.find((n) => n.devT === device.devT && n.name === device.name)
      if (now === undefined || now.subsysnqn !== record.nqn || !sameIdentity(identityOf(now), device.identity)) {
        return yield* new SafetyRefusal({
          volumeId: req.volumeId,
          detail: `${devicePath(device.name)} (${device.devT}) is no longer this volume's namespace; not formatting, retry`
        })
      }
      yield* ensureFilesystem(devicePath(device.name), fsType, device.devT)
    }
    yield* mounter.mount(devicePath(device.name), req.stagingPath, {
      fsType,
      options: mountFlags.filter((f) => f !== "ro" && f !== "rw"),
      bind: false,
      readOnly
    })
  })
  yield* mountStep.pipe(
    Effect.tapError((e) => events.postMountFailure(req.volumeId, e.message)),
    // A stage that failed leaves nothing behind: kubelet never unstages a volume whose stage did
    // not succeed, and an unfinished record would shield the connection from orphan cleanup.
    Effect.tapError(() => abandon(record))
  )
  yield* store.put({ ...record, complete: true })
})

/**
 * Disconnects the volume's subsystem unless another volume's record uses it (or it is not ours
 * to drop), then forgets the record. Runs under the subsystem's lock.
 */
const releaseConnection = Effect.fn("NodeVolumes.releaseConnection")(function*(record: StageRecord) {
  const settings = yield* Settings
  const store = yield* StageStore
  const transport = yield* NvmeTransport
  const locks = yield* VolumeLocks
  const sysfs = yield* Sysfs
  const mounter = yield* Mounter
  yield* locks.withConnection(record.nqn, Effect.gen(function*() {
    // Only a volume of this boot uses a connection (a sibling mid-stage included: it recorded
    // itself under this lock); an earlier boot's record describes one that went with the reboot.
    const bootId = yield* sysfs.bootId
    const siblings = (yield* store.list).filter((r) => r.volumeId !== record.volumeId && r.nqn === record.nqn)
    // The mount table and sysfs tell only for a record without a boot id (an older plugin's).
    const undated = siblings.filter((r) => r.bootId === undefined)
    const mounts = undated.length === 0 ? [] : yield* mounter.mountsAt(undated.flatMap((r) => mountPointsOf(r)))
    const snapshot = undated.length === 0 ? { controllers: [], namespaces: [] } : yield* sysfs.snapshotOf(record.nqn)
    const others = siblings.filter((r) => stagedThisBoot(r, bootId, mounts, snapshot))
    const mayDisconnect = isManaged(record.nqn as Nqn, settings.managedNqnPrefix) || record.connectedByPlugin
    if (others.length === 0 && mayDisconnect) {
      yield* transport.detach(record.nqn as Nqn)
    } else {
      yield* Effect.logInfo(
        others.length > 0
          ? `keeping ${record.nqn} connected: used by ${others.map((r) => r.volumeId).join(", ")}`
          : `keeping ${record.nqn} connected: it existed before this volume and is outside the managed prefix!`
      )
    }
    yield* store.remove(record.volumeId)
  }))
})

/** Best effort after a failed stage: what it connected and recorded goes; the stage's own error stands. */
const abandon = (record: StageRecord) =>
  releaseConnection(record).pipe(
    Effect.catch((e) => Effect.logWarning(`cleanup after the failed stage did not finish (kubelet's retry will): ${e.message}`))
  )

/** Unstages the volume; OK when it is not staged (CSI: "MUST reply 0 OK"). */
export const unstage = Effect.fn("NodeVolumes.unstage")(function*(req: UnstageRequest) {
  const store = yield* StageStore
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
  // Durably "unstaging" before anything is undone: if this fails or the plugin dies midway, the
  // monitor must not remount what kubelet is tearing down.
  if (record.unstaging !== true) yield* store.put({ ...record, unstaging: true })
  if (!block) {
    const mounts = yield* mounter.mountsAt([req.stagingPath])
    const staging = entryAt(mounts, req.stagingPath)
    const holds = (snapshot: NvmeSnapshot) => snapshot.namespaces.some((n) => n.devT === staging?.devT)
    // Gone: no namespace has the mounted device any more. The volume's own subsystem first (a
    // few files); every controller on the node only when it is not there (a hundred volumes
    // are hundreds of files).
    const deviceGone = staging !== undefined && !holds(yield* sysfs.snapshotOf(record.nqn)) && !holds(yield* sysfs.snapshot)
    yield* unmountSafely(req.stagingPath, deviceGone, mounts)
  }
  yield* releaseConnection(record)
})
