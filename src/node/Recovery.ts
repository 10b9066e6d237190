/**
 * Stale-mount detection and recovery (SPEC §4.3). A staged volume is stale when the device its
 * mounts reach is not the device sysfs now shows for its NQN (the kernel deleted the controller
 * and the namespace came back under another name and dev_t), or that device is gone.
 * Recovery: make sure the controller is connected, check the new device is the same namespace,
 * remount the staging path on it, re-bind every published target, verify. Never formats.
 *
 * May import: domain, nvme, mount, kube (EventPoster contract), observability/Metrics (a leaf), node.
 */
import { Effect, Metric, Schedule } from "effect"
import { SafetyRefusal } from "../domain/Errors.ts"
import type { Nqn } from "../domain/Ids.ts"
import type { Port, TargetAddress } from "../domain/Target.ts"
import type { VolumeTarget } from "../domain/Volume.ts"
import { EventPoster } from "../kube/EventPoster.ts"
import * as Metrics from "../observability/Metrics.ts"
import { type MountEntry, Mounter } from "../mount/Mounter.ts"
import { identityOf, sameIdentity } from "../nvme/DeviceResolver.ts"
import { NvmeTransport } from "../nvme/NvmeTransport.ts"
import type { NamespaceDevice, NvmeSnapshot } from "../nvme/Sysfs.ts"
import { subsystemIn, Sysfs } from "../nvme/Sysfs.ts"
import { Settings } from "../Settings.ts"
import { bindTarget, devicePath, entryAt, reachedDevice, unmountSafely } from "./MountOps.ts"
import { isActive, isThisBoot, mountPointsOf } from "./Lifecycle.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"

const parentOf = (path: string): string => path.slice(0, Math.max(1, path.lastIndexOf("/")))

/** The volume target a record was staged with. */
export const targetOf = (r: StageRecord): VolumeTarget => ({
  nqn: r.nqn as Nqn,
  address: r.address as TargetAddress,
  port: r.port as Port,
  ctrlLossTmo: r.ctrlLossTmo,
  reconnectDelay: r.reconnectDelay,
  keepAliveTmo: r.keepAliveTmo,
  namespace: { nsid: r.selector.nsid, nguid: r.selector.nguid, uuid: r.selector.uuid }
})

export const deviceLabel = (name: string, devT: string): string => `${devicePath(name)} (${devT})`

/** Where each mount of the volume points now, against the device sysfs shows for it. */
export interface StaleCheck {
  readonly stale: boolean
  /** The staging mount's (or first target's) device, as mounted. */
  readonly mountedDevT: string | undefined
  /** The device sysfs resolves for the volume now; undefined when there is none. */
  readonly current: NamespaceDevice | undefined
  readonly why: string
}

/**
 * Compares what the volume's mounts reach with what sysfs shows now; `mounts`: a mount table the
 * caller has just read (at least its entries at mountPointsOf(record)). Reads only (no process).
 */
export const checkStale = Effect.fn("Recovery.checkStale")(function*(record: StageRecord, mounts?: ReadonlyArray<MountEntry>) {
  const sysfs = yield* Sysfs
  return yield* staleIn(record, yield* sysfs.snapshotOf(record.nqn), mounts ?? (yield* (yield* Mounter).mountsAt(mountPointsOf(record))))
})

/**
 * checkStale over an already-read snapshot and mount table (the health monitor reads them once
 * per tick). Untraced: the monitor runs it for every volume on every pass (a span and a captured
 * call site each, which no tracer reads); checkStale, its RPC-side caller, keeps its span.
 */
export const staleIn = Effect.fnUntraced(function*(record: StageRecord, snapshot: NvmeSnapshot, mounts: ReadonlyArray<MountEntry>) {
  const candidates = subsystemIn(snapshot, record.nqn).namespaces.filter((n) => sameIdentity(identityOf(n), record.device.identity))
  const current = candidates.length === 1 ? candidates[0] : undefined
  const block = record.accessType === "Block"
  const mounter = yield* Mounter
  const reached: Array<readonly [string, string | undefined]> = []
  if (!block) reached.push([record.stagingPath, entryAt(mounts, record.stagingPath)?.devT])
  for (const t of record.publishedTargets) {
    const entry = entryAt(mounts, t.path)
    reached.push([t.path, entry === undefined ? undefined : block ? yield* mounter.deviceNumber(t.path) : entry.devT])
  }
  const mountedDevT = reached.find(([, d]) => d !== undefined)?.[1]
  if (current === undefined) {
    return { stale: true, mountedDevT, current, why: `no device for ${record.nqn} (was ${deviceLabel(record.device.name, record.device.devT)})` } satisfies StaleCheck
  }
  const wrong = reached.filter(([, d]) => d !== current.devT)
  // The record names the device every later use goes through (publish's bind, stats, expand): a
  // renumbered one is stale even with nothing mounted (a raw-block volume not published yet).
  const renamed = record.device.devT !== current.devT || record.device.name !== current.name
  if (wrong.length === 0 && !renamed) return { stale: false, mountedDevT, current, why: "" } satisfies StaleCheck
  const why = [
    ...wrong.map(([p, d]) => `${p} reaches ${d ?? "nothing"}`),
    ...(renamed ? [`recorded device ${deviceLabel(record.device.name, record.device.devT)} is now ${deviceLabel(current.name, current.devT)}`] : [])
  ].join("; ")
  return { stale: true, mountedDevT, current, why: `${why}; current device is ${deviceLabel(current.name, current.devT)}` } satisfies StaleCheck
})

/**
 * Recovers a stale volume; returns the updated record (saved). Bounded attempts with backoff;
 * after the last one posts RecoveryFailed and fails with the last error.
 */
export const recover = Effect.fn("Recovery.recover")(function*(record: StageRecord, options: RecoverOptions = { connectionEvents: true }) {
  const settings = yield* Settings
  const events = yield* EventPoster
  let attempts = 0
  return yield* Effect.suspend(() => {
    attempts++
    return recoverOnce(record, options)
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential(settings.connectBackoff).pipe(
        Schedule.jittered,
        Schedule.upTo({ times: Math.max(0, settings.recoveryAttempts - 1) })
      ),
      while: (e) => e._tag !== "SafetyRefusal"
    }),
    Effect.tapError((e) => events.postRecoveryFailed(record.volumeId, attempts, e.message)),
    Effect.withSpan("Recovery.recover", { attributes: { volume: record.volumeId } }),
    Effect.annotateLogs({ volume: record.volumeId, nqn: record.nqn })
  )
})

/**
 * Recovers the volume as its stage record says now. Run it under the volume's lock: the record
 * is read there, so a volume unstaged since the caller last looked is left alone (undefined)
 * instead of being reconnected, remounted and recorded again.
 */
export const recoverCurrent = Effect.fn("Recovery.recoverCurrent")(function*(volumeId: string, options: RecoverOptions = { connectionEvents: true }) {
  const record = yield* (yield* StageStore).get(volumeId)
  if (record === undefined || !isActive(record)) return undefined
  // A record of an earlier boot is never reconnected by the plugin on its own (the volume may be
  // attached elsewhere by now): only kubelet's NodeStageVolume does that.
  if (!(yield* isThisBoot(record))) return undefined
  return yield* recover(record, options)
})

export interface RecoverOptions {
  /**
   * Post ConnectionFailure/ConnectionRecovery for the reconnect attempts. The health monitor
   * says no: it reports the connection's transitions itself, once each.
   */
  readonly connectionEvents: boolean
}

const recoverOnce = Effect.fn("Recovery.recoverOnce")(function*(record: StageRecord, options: RecoverOptions) {
  const transport = yield* NvmeTransport
  const mounter = yield* Mounter
  const sysfs = yield* Sysfs
  const store = yield* StageStore
  const events = yield* EventPoster
  const address = `${record.address}:${record.port}`

  const attached = yield* transport.attach(
    targetOf(record),
    (_, e) => options.connectionEvents ? events.postConnectionFailure(record.volumeId, address, e.message) : Effect.void
  )
  if (options.connectionEvents && attached.failedAttempts > 0) {
    yield* events.postConnectionRecovery(record.volumeId, address, attached.failedAttempts + 1)
  }
  const device = attached.device
  if (!sameIdentity(record.device.identity, identityOf(device))) {
    return yield* new SafetyRefusal({
      volumeId: record.volumeId,
      detail: `${device.name} on ${record.nqn} is not the namespace this volume was staged on (${JSON.stringify(record.device.identity)})`
    })
  }
  const liveDevTs = new Set((yield* sysfs.snapshot).namespaces.map((n) => n.devT))
  const block = record.accessType === "Block"
  const mounts = yield* mounter.mountinfo
  const staging = entryAt(mounts, record.stagingPath)
  const before = staging?.devT ?? record.device.devT

  if (before !== device.devT) {
    yield* events.postStaleMountDetected(record.volumeId, deviceLabel(record.device.name, before), deviceLabel(device.name, device.devT))
    // Counted where it is reported, whoever found it (monitor, publish, stats) and however (a
    // renumbered device, or a controller the kernel deleted): metric and events agree.
    yield* Metric.update(Metrics.staleMountsDetected, 1)
    yield* Effect.logWarning("stale mount detected, recovering").pipe(
      Effect.annotateLogs({ old: before, new: `${device.name} ${device.devT}` })
    )
  }
  if (!block && staging?.devT !== device.devT) {
    if (staging !== undefined) yield* unmountSafely(record.stagingPath, !liveDevTs.has(staging.devT))
    yield* mounter.makeDirectory(record.stagingPath)
    yield* mounter.mount(devicePath(device.name), record.stagingPath, {
      fsType: record.fsType,
      options: record.mountFlags.filter((f) => f !== "ro" && f !== "rw"),
      bind: false,
      readOnly: record.readOnly
    })
  }
  const kept: Array<StageRecord["publishedTargets"][number]> = []
  for (const t of record.publishedTargets) {
    const reached = yield* reachedDevice(t.path, block)
    if (reached === device.devT) {
      kept.push(t)
      continue
    }
    if (reached !== undefined) yield* unmountSafely(t.path, true)
    // kubelet creates the pod's volume directory; when it is gone the pod is gone: never recreate it.
    if ((yield* mounter.pathKind(parentOf(t.path))) === "missing") {
      yield* Effect.logInfo(`not re-binding ${t.path}: its pod's directory no longer exists`)
      continue
    }
    yield* bindTarget({ block, stagingPath: record.stagingPath, device: device.name, target: t.path, readOnly: t.readOnly, mountFlags: record.mountFlags })
    kept.push(t)
  }
  // The old device lives on in any container holding a private copy of the old mount: watch it.
  const superseded = before !== device.devT && record.accessType === "Mount"
    ? [...new Set([...(record.supersededDevTs ?? []), before])]
    : record.supersededDevTs
  const updated: StageRecord = {
    ...record,
    device: { name: device.name, devT: device.devT, identity: record.device.identity },
    publishedTargets: kept,
    ...(superseded === undefined ? {} : { supersededDevTs: superseded })
  }
  const check = yield* checkStale(updated)
  if (check.stale) {
    return yield* new SafetyRefusal({ volumeId: record.volumeId, detail: `recovery did not take: ${check.why}` })
  }
  yield* store.put(updated)
  yield* Effect.logInfo("stale mount recovered").pipe(
    Effect.annotateLogs({ volume: record.volumeId, device: `${device.name} ${device.devT}`, targets: record.publishedTargets.length })
  )
  return updated
})
