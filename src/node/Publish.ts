/**
 * NodePublishVolume and NodeUnpublishVolume as CSI-agnostic use cases: bind the staged volume
 * at a pod's target path (a directory for file systems, a file for raw block) and remove it.
 * Publish checks the staging mount for staleness first and recovers it (SPEC §4.3).
 *
 * May import: domain, nvme, mount, node.
 */
import { Effect } from "effect"
import { FailedPrecondition, IncompatibleRequest, SafetyRefusal } from "../domain/Errors.ts"
import { isReadOnlyMode } from "../domain/Volume.ts"
import { Mounter } from "../mount/Mounter.ts"
import { inactiveReason, isThisBoot, mountPointsOf } from "./Lifecycle.ts"
import { bindTarget, entryAt, openedDevice, reachedDevice, reachedDeviceIn, unmountSafely } from "./MountOps.ts"
import { checkStale, recover } from "./Recovery.ts"
import type { PublishRequest, UnpublishRequest } from "./Requests.ts"
import { StageStore } from "./StageStore.ts"

/** Publishes the staged volume at the target path; OK when it is already published there. */
export const publish = Effect.fn("NodeVolumes.publish")(function*(req: PublishRequest) {
  const store = yield* StageStore
  const mounter = yield* Mounter
  let record = yield* store.get(req.volumeId)
  if (record === undefined) {
    return yield* new FailedPrecondition({ volumeId: req.volumeId, detail: "not staged on this node; NodeStageVolume must come first" })
  }
  const inactive = inactiveReason(record, yield* isThisBoot(record))
  if (inactive !== undefined) return yield* new FailedPrecondition({ volumeId: req.volumeId, detail: inactive })
  if (record.stagingPath !== req.stagingPath) {
    return yield* new FailedPrecondition({ volumeId: req.volumeId, detail: `staged at ${record.stagingPath}, not at ${req.stagingPath}` })
  }
  const block = req.capability.accessType._tag === "Block"
  if (block !== (record.accessType === "Block")) {
    return yield* new IncompatibleRequest({
      volumeId: req.volumeId,
      detail: `staged as ${record.accessType === "Block" ? "raw block" : "a file system"}, publish asks for ${block ? "raw block" : "a file system"}`
    })
  }
  const readOnly = req.readOnly || isReadOnlyMode(req.capability.accessMode)
  const known = record.publishedTargets.find((t) => t.path === req.targetPath)
  if (known !== undefined && known.readOnly !== readOnly) {
    // CSI: a volume published at target_path with an incompatible capability → ALREADY_EXISTS.
    return yield* new IncompatibleRequest({
      volumeId: req.volumeId,
      detail: `already published at ${req.targetPath} ${known.readOnly ? "read-only" : "read-write"}`
    })
  }

  // One read of the mount table for the staleness check and the target (a recovery changes it:
  // read again then), parsed only at the volume's own mount points.
  const mounts = yield* mounter.mountsAt(mountPointsOf(record, req.targetPath))
  const check = yield* checkStale(record, mounts)
  if (check.stale) record = yield* recover(record)
  const devT = record.device.devT

  // CSI: "If the volume corresponding to the volume_id has already been published at the
  // specified target_path, and is compatible with the specified volume_capability and readonly
  // flag, the Plugin MUST reply 0 OK."
  const reached = check.stale ? yield* reachedDevice(req.targetPath, block) : yield* reachedDeviceIn(mounts, req.targetPath, block)
  if (reached !== devT) {
    if (reached !== undefined) yield* unmountSafely(req.targetPath, true)
    const mountFlags = req.capability.accessType._tag === "Mount" ? req.capability.accessType.mountFlags : []
    yield* bindTarget({ block, stagingPath: record.stagingPath, device: record.device.name, target: req.targetPath, readOnly, mountFlags })
    // The name was checked against the volume's identity a moment ago; what got bound is checked
    // by number, as the pod will open it: a renumbering in between must never hand the pod
    // another volume's disk.
    const bound = yield* openedDevice(req.targetPath, block)
    if (bound !== devT) {
      yield* unmountSafely(req.targetPath, true)
      return yield* new SafetyRefusal({
        volumeId: req.volumeId,
        detail: `${req.targetPath} reached ${bound ?? "nothing"} after binding /dev/${record.device.name}, not the volume's ${devT} (renumbered meanwhile); unbound, retry`
      })
    }
  }
  if (known === undefined) {
    yield* store.put({ ...record, publishedTargets: [...record.publishedTargets, { path: req.targetPath, readOnly }] })
  }
})

/** Unpublishes the target path and deletes it; OK when nothing is published there. */
export const unpublish = Effect.fn("NodeVolumes.unpublish")(function*(req: UnpublishRequest) {
  const store = yield* StageStore
  const mounter = yield* Mounter
  const record = yield* store.get(req.volumeId)
  // A stale target (its device replaced or gone) can only fail I/O: it may be detached lazily.
  const mounts = yield* mounter.mountsAt(record === undefined ? [req.targetPath] : mountPointsOf(record, req.targetPath))
  const mounted = entryAt(mounts, req.targetPath)
  if (mounted !== undefined) {
    const stale = record !== undefined && (yield* checkStale(record, mounts)).stale
    yield* unmountSafely(req.targetPath, stale, mounts)
  }
  // CSI: "The SP MUST delete the file or directory it created at this path."
  yield* mounter.removePath(req.targetPath)
  if (record !== undefined && record.publishedTargets.some((t) => t.path === req.targetPath)) {
    yield* store.put({ ...record, publishedTargets: record.publishedTargets.filter((t) => t.path !== req.targetPath) })
  }
})
