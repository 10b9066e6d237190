/**
 * Volumes: the controller's use cases on the RDS, CSI-agnostic (SPEC §9). Create, delete,
 * publish (fence to one host), unpublish, expand, capacity, list and get, each under the
 * volume's lock (a second operation on the same volume gets VolumeBusy → ABORTED), each
 * idempotent by reading the RDS first, with as few RouterOS commands as that allows
 * (create: print + add; delete: print + remove disk + remove file).
 *
 * Ownership: a disk is ours only when its NQN is prefix + its slot. Nothing else is ever
 * changed or removed, whatever volume_id a caller sends.
 *
 * May import: domain, rds/*, node/VolumeLocks, observability/ControllerMetrics, controller/*, effect.
 */
import { Context, Effect, Layer, Metric, Result } from "effect"
import { CapacityOutOfRange, FailedPrecondition, IncompatibleRequest, NodeNotFound, NoSpace, SafetyRefusal, VolumeNotFound } from "../domain/Errors.ts"
import type { NodeIdentity } from "../domain/Ids.ts"
import { VolumeLocks } from "../node/VolumeLocks.ts"
import { measured, rdsVolumes } from "../observability/ControllerMetrics.ts"
import * as Cmd from "../rds/Commands.ts"
import type { RosPath, Slot } from "../rds/Commands.ts"
import { RdsClient, type RdsError } from "../rds/RdsClient.ts"
import { type Disk, diskOf, fileOf, parseRecords, poolOf, type RosParseError } from "../rds/RouterOsParser.ts"
import { type ClassDefaults, ControllerConfig } from "./ControllerSettings.ts"
import type { CreateRequest, ExpandRequest, PublishRequest, VolumeInfo, VolumeState } from "./Requests.ts"

export type { ControllerError, CreateRequest, ExpandRequest, PublishRequest, VolumeInfo, VolumeState } from "./Requests.ts"

const MiB = 1024 ** 2

const records = (output: string) => Effect.fromResult(parseRecords(output))

export const make = Effect.gen(function*() {
  const rds = yield* RdsClient
  const settings = yield* ControllerConfig
  const locks = yield* VolumeLocks
  const nqnOf = (id: string) => `${settings.nqnPrefix}${id}`
  const filePathOf = (volumePath: RosPath, id: Slot) => `${volumePath}/${id}.img` as RosPath
  const isOurs = (disk: Disk) => disk.nqn === nqnOf(disk.slot)

  const getDisk = (id: Slot): Effect.Effect<Disk | undefined, RdsError | RosParseError> =>
    rds.run(Cmd.printDisk(id)).pipe(
      Effect.flatMap(records),
      Effect.map((rs) => rs.map(diskOf).find((d) => d !== undefined && d.slot === id))
    )

  const ownedDisk = (id: Slot): Effect.Effect<Disk, VolumeNotFound | SafetyRefusal | RdsError | RosParseError> =>
    Effect.flatMap(getDisk(id), (disk): Effect.Effect<Disk, VolumeNotFound | SafetyRefusal> => {
      if (disk === undefined) return Effect.fail(new VolumeNotFound({ volumeId: id, detail: "no disk with this slot on the RDS" }))
      if (!isOurs(disk)) {
        return Effect.fail(new SafetyRefusal({ volumeId: id, detail: `the disk in slot ${id} exports ${disk.nqn ?? "no NQN"}, not ${nqnOf(id)}: it is not managed by this driver` }))
      }
      return Effect.succeed(disk)
    })

  const contextOf = (disk: Disk, params: ClassDefaults): Record<string, string> => {
    const context: Record<string, string> = {
      nqn: disk.nqn ?? nqnOf(disk.slot),
      nvmeAddress: params.nvmeAddress,
      nvmePort: String(disk.nvmePort ?? params.nvmePort)
    }
    if (params.ctrlLossTmo !== undefined) context["ctrlLossTmo"] = String(params.ctrlLossTmo)
    if (params.reconnectDelay !== undefined) context["reconnectDelay"] = String(params.reconnectDelay)
    if (params.keepAliveTmo !== undefined) context["keepAliveTmo"] = String(params.keepAliveTmo)
    return context
  }

  /** Capacity: required (else the default, capped by the limit) rounded up to whole MiB, never above the limit. */
  const sizeFor = (id: Slot, required: number | undefined, limit: number | undefined) => {
    const wanted = required ?? (limit !== undefined ? Math.min(settings.defaultVolumeBytes, limit) : settings.defaultVolumeBytes)
    const size = Cmd.roundUpToMiB(Math.max(wanted, MiB))
    if (limit !== undefined && size > limit) {
      return Result.fail(new CapacityOutOfRange({
        field: "capacity_range.limit_bytes",
        rule: `volume ${id}: the RDS allocates whole MiB; ${wanted} bytes round up to ${size}, above the limit of ${limit}`
      }))
    }
    return Result.succeed(size)
  }

  /** The existing disk answers this create when it is ours, at the class's path and port, and its size fits the range. */
  const compatible = (disk: Disk, req: CreateRequest): Effect.Effect<VolumeInfo, IncompatibleRequest | SafetyRefusal> => {
    const problems: Array<string> = []
    if (!isOurs(disk)) problems.push(`it exports ${disk.nqn ?? "no NQN"}, not ${nqnOf(req.name)}`)
    if (disk.filePath !== filePathOf(req.params.volumePath, req.name)) problems.push(`its file is ${disk.filePath ?? "none"}, not ${filePathOf(req.params.volumePath, req.name)}`)
    if (disk.nvmePort !== req.params.nvmePort) problems.push(`it listens on port ${disk.nvmePort ?? "none"}, not ${req.params.nvmePort}`)
    if (req.requiredBytes !== undefined && disk.sizeBytes < req.requiredBytes) problems.push(`its ${disk.sizeBytes} bytes are below required_bytes ${req.requiredBytes}`)
    if (req.limitBytes !== undefined && disk.sizeBytes > req.limitBytes) problems.push(`its ${disk.sizeBytes} bytes are above limit_bytes ${req.limitBytes}`)
    if (problems.length === 0) return Effect.succeed({ id: req.name, capacityBytes: disk.sizeBytes, context: contextOf(disk, req.params) })
    return Effect.fail(new IncompatibleRequest({ volumeId: req.name, detail: `a volume with this name exists and does not match: ${problems.join("; ")}` }))
  }

  /**
   * "If a volume corresponding to the specified volume name already exists, is accessible from
   * accessibility_requirements, and is compatible with the specified capacity_range,
   * volume_capabilities, parameters and mutable_parameters fields in the CreateVolumeRequest, the
   * Plugin MUST reply 0 OK with the corresponding CreateVolumeResponse."
   */
  const create = (req: CreateRequest) =>
    locks.withLock(req.name, "CreateVolume", Effect.gen(function*() {
      const size = yield* Effect.fromResult(sizeFor(req.name, req.requiredBytes, req.limitBytes))
      const existing = yield* getDisk(req.name)
      if (existing !== undefined) return yield* compatible(existing, req)
      const filePath = filePathOf(req.params.volumePath, req.name)
      const nqn = yield* Effect.fromResult(Cmd.rosNqn(nqnOf(req.name), "name"))
      /** The volume just added, as the RDS now has it (no need to print it again). */
      const justAdded = (): VolumeInfo => ({
        id: req.name,
        capacityBytes: size,
        context: contextOf({ slot: req.name, type: "file", filePath, sizeBytes: size, nvmeExport: true, nvmePort: req.params.nvmePort, nqn, allowHost: "" }, req.params)
      })
      const added = yield* rds.run(Cmd.addDisk({ slot: req.name, filePath, sizeBytes: size, port: req.params.nvmePort, nqn })).pipe(Effect.result)
      if (Result.isSuccess(added)) {
        yield* Effect.logInfo("volume created").pipe(Effect.annotateLogs({ volume: req.name, bytes: size, file: filePath }))
        return justAdded()
      }
      const error = added.failure
      if (error._tag === "RdsCommandFailed" && error.reason === "NoSpace") {
        return yield* new NoSpace({ volumeId: req.name, detail: `${size} bytes requested on ${Cmd.poolOfPath(req.params.volumePath)}: ${error.output.trim()}` })
      }
      // The add's outcome is unknown (connection lost, timeout) or it collided: what is there now decides.
      const after = yield* getDisk(req.name).pipe(Effect.orElseSucceed(() => undefined))
      if (after !== undefined) return yield* compatible(after, req)
      if (error._tag === "RdsCommandFailed" && error.reason === "AlreadyExists") {
        // No disk, yet the RDS says the item exists: the backing file at this volume's own path
        // was left by a delete or a create of this very name that stopped halfway (names are
        // unique per volume: pvc-<uuid>). No disk exports it, so nothing can be using it: remove
        // it and add the disk once more.
        const files = yield* rds.run(Cmd.printFile(filePath)).pipe(Effect.flatMap(records))
        if (files.map(fileOf).some((f) => f?.path === filePath)) {
          yield* Effect.logWarning("removing a backing file left without its disk before creating the volume").pipe(Effect.annotateLogs({ volume: req.name, file: filePath }))
          yield* rds.run(Cmd.removeFile(filePath))
          yield* rds.run(Cmd.addDisk({ slot: req.name, filePath, sizeBytes: size, port: req.params.nvmePort, nqn }))
          return justAdded()
        }
        return yield* new IncompatibleRequest({ volumeId: req.name, detail: `the RDS refused the disk: ${error.output.trim()}` })
      }
      return yield* error
    }))

  /**
   * "If a volume corresponding to the specified volume_id does not exist or the artifacts
   * associated with the volume do not exist anymore, the Plugin MUST reply 0 OK." The disk entry
   * goes first, then its backing file (removing the disk does not delete the file).
   */
  const remove = (id: Slot) =>
    locks.withLock(id, "DeleteVolume", Effect.gen(function*() {
      const disk = yield* getDisk(id)
      if (disk !== undefined && !isOurs(disk)) {
        return yield* new SafetyRefusal({ volumeId: id, detail: `the disk in slot ${id} exports ${disk.nqn ?? "no NQN"}, not ${nqnOf(id)}: not deleting a disk this driver does not manage` })
      }
      const filePath = disk?.filePath !== undefined ? disk.filePath as RosPath : filePathOf(settings.defaults.volumePath, id)
      if (!filePath.endsWith(`/${id}.img`)) {
        return yield* new SafetyRefusal({ volumeId: id, detail: `the disk's file ${filePath} is not named after the volume: not removing it` })
      }
      if (disk !== undefined) yield* rds.run(Cmd.removeDisk(id)).pipe(Effect.catchIf((e) => e._tag === "RdsCommandFailed" && e.reason === "NotFound", () => Effect.void))
      yield* rds.run(Cmd.removeFile(filePath)).pipe(Effect.catchIf((e) => e._tag === "RdsCommandFailed" && e.reason === "NotFound", () => Effect.void))
      yield* Effect.logInfo(disk === undefined ? "volume already gone; its file removed if it was left" : "volume deleted").pipe(Effect.annotateLogs({ volume: id, file: filePath }))
    }))

  /**
   * "If the volume corresponding to the volume_id has already been published at the node
   * corresponding to the node_id, and is compatible with the specified volume_capability and
   * readonly flag, the Plugin MUST reply 0 OK." A single-node volume published elsewhere is
   * FAILED_PRECONDITION ("Volume published to another node").
   */
  const publish = (req: PublishRequest) =>
    locks.withLock(req.id, "ControllerPublishVolume", Effect.gen(function*() {
      // attachRequired is per driver, so static PVs (any NVMe/TCP target, SPEC §3) come here too:
      // a volume this controller did not create is published as it is, never fenced or changed.
      const unmanaged = (why: string) =>
        Effect.logInfo(`volume not managed by this controller (${why}): published without fencing`).pipe(
          Effect.annotateLogs({ volume: req.id, node: req.node.name }),
          Effect.as({})
        )
      if (req.slot === undefined) return yield* unmanaged("its handle is not a name this controller creates")
      if (req.contextNqn !== undefined && req.contextNqn !== nqnOf(req.slot)) return yield* unmanaged(`its volume_context.nqn is ${req.contextNqn}`)
      const id = req.slot
      const disk = yield* getDisk(id)
      if (disk === undefined) return yield* new VolumeNotFound({ volumeId: id, detail: "no disk with this slot on the RDS" })
      if (!isOurs(disk)) return yield* unmanaged(`the disk in slot ${id} exports ${disk.nqn ?? "no NQN"}`)
      const host = req.node.hostNqn
      if (disk.allowHost !== "" && disk.allowHost !== host) {
        return yield* new FailedPrecondition({
          volumeId: id,
          detail: `published to another node (the target admits only host ${disk.allowHost}); a volume with a single-node access mode is published to one node at a time`
        })
      }
      if (!req.singleNode || disk.allowHost === host) return {}
      if (host === undefined) {
        return yield* new NodeNotFound({
          nodeId: req.node.name,
          detail: "its node_id carries no host NQN, so the volume cannot be fenced to it: run the node plugin with --host-nqn or an /etc/nvme/hostnqn (NodeGetInfo reports 'name,hostnqn')"
        })
      }
      const allowed = yield* Effect.fromResult(Cmd.rosNqn(host, "node_id"))
      yield* rds.run(Cmd.allowHost(id, allowed))
      yield* Effect.logInfo("volume fenced to node").pipe(Effect.annotateLogs({ volume: id, node: req.node.name, host_nqn: host }))
      return {}
    }))

  /**
   * "If the volume corresponding to the volume_id or the node corresponding to node_id cannot be
   * found by the Plugin and the volume can be safely regarded as ControllerUnpublished from the
   * node, the plugin SHOULD return 0 OK." The fence opens only when it names this node's host.
   */
  const unpublish = (handle: string, node: NodeIdentity | undefined) =>
    locks.withLock(handle, "ControllerUnpublishVolume", Effect.gen(function*() {
      const checked = Cmd.slot(handle)
      if (Result.isFailure(checked)) return // a static volume's handle: nothing was fenced
      const id = checked.success
      const disk = yield* getDisk(id)
      if (disk === undefined || !isOurs(disk) || disk.allowHost === "") return
      // No node: "the SP MUST unpublish the volume from all nodes it is published to."
      if (node !== undefined && disk.allowHost !== node.hostNqn) return
      yield* rds.run(Cmd.allowHost(id, ""))
      yield* Effect.logInfo("volume unfenced").pipe(Effect.annotateLogs({ volume: id, node: node?.name ?? "all" }))
    }))

  /**
   * Grow only. "If a volume corresponding to the specified volume ID is already larger than or
   * equal to the target capacity of the expansion request, the plugin SHOULD reply 0 OK."
   */
  const expand = (req: ExpandRequest) =>
    locks.withLock(req.id, "ControllerExpandVolume", Effect.gen(function*() {
      const target = yield* Effect.fromResult(sizeFor(req.id, req.requiredBytes, req.limitBytes))
      const disk = yield* ownedDisk(req.id)
      if (disk.sizeBytes >= req.requiredBytes) return disk.sizeBytes
      yield* rds.run(Cmd.growDisk(req.id, target)).pipe(
        Effect.catchIf((e) => e._tag === "RdsCommandFailed" && e.reason === "NoSpace", (e) =>
          Effect.fail(new NoSpace({ volumeId: req.id, detail: `growing to ${target} bytes: ${e._tag === "RdsCommandFailed" ? e.output.trim() : ""}` })))
      )
      const grown = yield* ownedDisk(req.id)
      if (grown.sizeBytes < req.requiredBytes) {
        return yield* new FailedPrecondition({ volumeId: req.id, detail: `the RDS reports ${grown.sizeBytes} bytes after growing to ${target}` })
      }
      yield* Effect.logInfo("volume grown").pipe(Effect.annotateLogs({ volume: req.id, from: disk.sizeBytes, to: grown.sizeBytes }))
      return grown.sizeBytes
    }))

  /** Free bytes of the pool the volume path lies on. */
  const capacity = (volumePath: RosPath) =>
    Effect.gen(function*() {
      const pool = Cmd.poolOfPath(volumePath)
      const rs = yield* rds.run(Cmd.printPool(pool)).pipe(Effect.flatMap(records))
      const space = rs.map(poolOf).find((p) => p !== undefined)
      if (space === undefined) return yield* new FailedPrecondition({ volumeId: "-", detail: `the RDS printed no file system for pool ${pool}` })
      return space
    })

  const stateOf = (disk: Disk): VolumeState => {
    const volume = { id: disk.slot as Slot, capacityBytes: disk.sizeBytes, context: contextOf(disk, settings.defaults) }
    const abnormal = !disk.nvmeExport
    return {
      volume,
      allowedHost: disk.allowHost,
      abnormal,
      message: abnormal ? "the disk exists but is not exported over NVMe/TCP (nvme-tcp-export=no)" : disk.allowHost === "" ? "exported; any host may connect" : `exported; fenced to host ${disk.allowHost}`
    }
  }

  /** Every volume of this driver on the RDS, by name; the volumes-by-state gauge is set from it. */
  const list = rds.run(Cmd.listDisks()).pipe(
    Effect.flatMap(records),
    Effect.map((rs) => rs.map(diskOf).filter((d): d is Disk => d !== undefined && isOurs(d)).sort((a, b) => a.slot < b.slot ? -1 : a.slot > b.slot ? 1 : 0).map(stateOf)),
    Effect.tap((states) => {
      const count = (state: string) =>
        states.filter((s) => (s.abnormal ? "unexported" : s.allowedHost === "" ? "exported" : "published") === state).length
      return Effect.forEach(["exported", "published", "unexported"], (state) => Metric.update(Metric.withAttributes(rdsVolumes, { state }), count(state)), { discard: true })
    })
  )

  /** One volume and its condition: NOT_FOUND when its disk is gone, abnormal when its export is. */
  const get = (id: Slot) => Effect.map(ownedDisk(id), stateOf)

  return {
    create: (req: CreateRequest) => measured("create", create(req)),
    remove: (id: Slot) => measured("delete", remove(id)),
    publish: (req: PublishRequest) => measured("publish", publish(req)),
    unpublish: (handle: string, node: NodeIdentity | undefined) => measured("unpublish", unpublish(handle, node)),
    expand: (req: ExpandRequest) => measured("expand", expand(req)),
    capacity: (volumePath: RosPath) => measured("capacity", capacity(volumePath)),
    list: measured("list", list),
    get: (id: Slot) => measured("get", get(id))
  }
})

type VolumesApi = Effect.Success<typeof make>

export class Volumes extends Context.Service<Volumes, VolumesApi>()("rds-csi/controller/Volumes") {
  static readonly layer: Layer.Layer<Volumes, never, RdsClient | ControllerConfig | VolumeLocks> = Layer.effect(Volumes, make)
}
