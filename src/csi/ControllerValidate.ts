/**
 * CSI Controller request messages → the controller use cases' requests (controller/Volumes.ts).
 * Every failure names the field as the spec writes it (`name`, `volume_capabilities[0].access_mode`,
 * `parameters.volumePath`, `capacity_range.required_bytes`, `node_id`). StorageClass parameters
 * take the Go driver's keys so existing classes keep working. Pure.
 *
 * May import: domain, rds/Commands, controller (types), csi/Validate, csi/Messages (types).
 */
import { Data, Result } from "effect"
import type { ClassDefaults } from "../controller/ControllerSettings.ts"
import type { CreateRequest, ExpandRequest, PublishRequest } from "../controller/Volumes.ts"
import { CapacityOutOfRange, InvalidArgument } from "../domain/Errors.ts"
import { type NodeIdentity, parseNodeId, volumeId } from "../domain/Ids.ts"
import { targetAddress } from "../domain/Target.ts"
import { type VolumeCapability } from "../domain/Volume.ts"
import { type RosPath, rosPath, type Slot, slot } from "../rds/Commands.ts"
import type {
  CapacityRangeMessage,
  ControllerExpandVolumeRequest,
  ControllerPublishVolumeRequest,
  ControllerUnpublishVolumeRequest,
  CreateVolumeRequest,
  GetCapacityRequest,
  ListVolumesRequest,
  ValidateVolumeCapabilitiesRequest,
  VolumeCapabilityMessage
} from "./Messages.ts"
import { bytes, capability } from "./Validate.ts"

const invalid = (field: string, rule: string) => Result.fail(new InvalidArgument({ field, rule }))

/** The StorageClass keys we read; `csi.storage.k8s.io/*` belong to the sidecars and are ignored. */
export const CLASS_PARAMETERS = ["volumePath", "nvmeAddress", "rdsAddress", "nvmePort", "ctrlLossTmo", "reconnectDelay", "keepAliveTmo"] as const

const intIn = (raw: string, field: string, min: number, max: number): Result.Result<number, InvalidArgument> =>
  /^-?\d{1,10}$/.test(raw) && Number(raw) >= min && Number(raw) <= max ? Result.succeed(Number(raw)) : invalid(field, `must be an integer between ${min} and ${max}`)

/** The controller's defaults with a StorageClass's parameters applied; unknown keys are refused. */
export const classParameters = (parameters: Readonly<Record<string, string>> | undefined, defaults: ClassDefaults): Result.Result<ClassDefaults, InvalidArgument> =>
  Result.gen(function*() {
    const p = parameters ?? {}
    for (const key of Object.keys(p)) {
      if (key.startsWith("csi.storage.k8s.io/") || (CLASS_PARAMETERS as ReadonlyArray<string>).includes(key)) continue
      return yield* invalid(`parameters.${key}`, `is not a parameter of this driver (known: ${CLASS_PARAMETERS.join(", ")})`)
    }
    const f = (k: string) => `parameters.${k}`
    const volumePath: RosPath = p["volumePath"] === undefined ? defaults.volumePath : yield* rosPath(p["volumePath"], f("volumePath"))
    const rawAddress = p["nvmeAddress"] ?? p["rdsAddress"]
    const nvmeAddress = rawAddress === undefined ? defaults.nvmeAddress : yield* targetAddress(rawAddress, f(p["nvmeAddress"] !== undefined ? "nvmeAddress" : "rdsAddress"))
    const nvmePort = p["nvmePort"] === undefined ? defaults.nvmePort : yield* intIn(p["nvmePort"], f("nvmePort"), 1, 65535)
    const ctrlLossTmo = p["ctrlLossTmo"] === undefined ? defaults.ctrlLossTmo : yield* intIn(p["ctrlLossTmo"], f("ctrlLossTmo"), -1, 86400 * 365)
    const reconnectDelay = p["reconnectDelay"] === undefined ? defaults.reconnectDelay : yield* intIn(p["reconnectDelay"], f("reconnectDelay"), 1, 3600)
    const keepAliveTmo = p["keepAliveTmo"] === undefined ? defaults.keepAliveTmo : yield* intIn(p["keepAliveTmo"], f("keepAliveTmo"), 1, 3600)
    return { volumePath, nvmeAddress, nvmePort, ctrlLossTmo, reconnectDelay, keepAliveTmo }
  })

export interface Range {
  readonly requiredBytes: number | undefined
  readonly limitBytes: number | undefined
}

export const capacityRange = (range: CapacityRangeMessage | null | undefined): Result.Result<Range, InvalidArgument | CapacityOutOfRange> =>
  Result.gen(function*() {
    if (range === null || range === undefined) return { requiredBytes: undefined, limitBytes: undefined }
    const requiredBytes = yield* bytes(range.required_bytes, "capacity_range.required_bytes")
    const limitBytes = yield* bytes(range.limit_bytes, "capacity_range.limit_bytes")
    if (requiredBytes !== undefined && limitBytes !== undefined && limitBytes < requiredBytes) {
      return yield* Result.fail(new CapacityOutOfRange({ field: "capacity_range.limit_bytes", rule: "must not be smaller than required_bytes" }))
    }
    return { requiredBytes, limitBytes }
  })

/** A non-empty list of capabilities, each valid. */
export const capabilities = (
  list: ReadonlyArray<VolumeCapabilityMessage> | undefined,
  field = "volume_capabilities"
): Result.Result<ReadonlyArray<VolumeCapability>, InvalidArgument> =>
  Result.gen(function*() {
    if (list === undefined || list.length === 0) return yield* invalid(field, "at least one volume capability is required")
    const out: Array<VolumeCapability> = []
    for (const [i, cap] of list.entries()) out.push(yield* capability(cap, `${field}[${i}]`))
    return out
  })

export const volumeIdOf = (value: string | undefined): Result.Result<Slot, InvalidArgument> => slot(value ?? "", "volume_id")

/** CreateVolume: name, capabilities, range, parameters; content sources are refused (no snapshots or clones). */
export const create = (req: CreateVolumeRequest, defaults: ClassDefaults): Result.Result<CreateRequest, InvalidArgument | CapacityOutOfRange> =>
  Result.gen(function*() {
    const name = yield* slot(req.name ?? "", "name")
    yield* capabilities(req.volume_capabilities)
    const range = yield* capacityRange(req.capacity_range)
    const params = yield* classParameters(req.parameters, defaults)
    const source = req.volume_content_source
    if (source !== null && source !== undefined && (source["snapshot"] !== undefined && source["snapshot"] !== null || source["volume"] !== undefined && source["volume"] !== null)) {
      return yield* invalid("volume_content_source", "is not supported: this driver creates empty volumes only (no snapshots, no clones)")
    }
    return { name, requiredBytes: range.requiredBytes, limitBytes: range.limitBytes, params }
  })

const isSingleNode = (cap: VolumeCapability): boolean => cap.accessMode.startsWith("SINGLE_NODE_")

const nodeOf = (value: string | undefined): Result.Result<NodeIdentity, InvalidArgument> => parseNodeId(value ?? "", "node_id")

/**
 * A handle ControllerPublish/Unpublish may get: any the node plugin accepts (static PVs for any
 * NVMe/TCP target pass here too, attachRequired being per driver), and the controller name it
 * is, when it can be one.
 */
const handleOf = (value: string | undefined): Result.Result<{ readonly id: string; readonly slot: Slot | undefined }, InvalidArgument> =>
  Result.map(volumeId(value ?? "", "volume_id"), (id) => {
    const asSlot = slot(id, "volume_id")
    return { id, slot: Result.isSuccess(asSlot) ? asSlot.success : undefined }
  })

export const publish = (req: ControllerPublishVolumeRequest): Result.Result<PublishRequest, InvalidArgument> =>
  Result.gen(function*() {
    const handle = yield* handleOf(req.volume_id)
    const node = yield* nodeOf(req.node_id)
    const cap = yield* capability(req.volume_capability)
    const contextNqn = req.volume_context?.["nqn"]
    return { ...handle, node, singleNode: isSingleNode(cap), contextNqn: contextNqn === undefined || contextNqn === "" ? undefined : contextNqn }
  })

export const unpublish = (req: ControllerUnpublishVolumeRequest): Result.Result<{ readonly id: string; readonly node: NodeIdentity | undefined }, InvalidArgument> =>
  Result.gen(function*() {
    const { id } = yield* handleOf(req.volume_id)
    // "If the value is not set, the SP MUST unpublish the volume from all nodes it is published to."
    const node = req.node_id === undefined || req.node_id === "" ? undefined : yield* nodeOf(req.node_id)
    return { id, node }
  })

export const expand = (req: ControllerExpandVolumeRequest): Result.Result<ExpandRequest & { readonly block: boolean }, InvalidArgument | CapacityOutOfRange> =>
  Result.gen(function*() {
    const id = yield* volumeIdOf(req.volume_id)
    if (req.capacity_range === null || req.capacity_range === undefined) return yield* invalid("capacity_range", "is required")
    const range = yield* capacityRange(req.capacity_range)
    if (range.requiredBytes === undefined) return yield* invalid("capacity_range.required_bytes", "is required and must be positive")
    const cap = req.volume_capability === null || req.volume_capability === undefined ? undefined : yield* capability(req.volume_capability)
    return { id, requiredBytes: range.requiredBytes, limitBytes: range.limitBytes, block: cap?.accessType._tag === "Block" }
  })

export const validateCapabilities = (req: ValidateVolumeCapabilitiesRequest): Result.Result<{ readonly id: Slot }, InvalidArgument> =>
  Result.gen(function*() {
    const id = yield* volumeIdOf(req.volume_id)
    yield* capabilities(req.volume_capabilities)
    return { id }
  })

export const getCapacity = (req: GetCapacityRequest, defaults: ClassDefaults): Result.Result<ClassDefaults, InvalidArgument> =>
  Result.gen(function*() {
    if (req.volume_capabilities !== undefined && req.volume_capabilities.length > 0) yield* capabilities(req.volume_capabilities)
    return yield* classParameters(req.parameters, defaults)
  })

/** A starting_token this controller did not hand out (CSI: ABORTED, "Invalid starting_token"). */
export class BadPageToken extends Data.TaggedError("BadPageToken")<{ readonly token: string }> {
  override get message(): string {
    return `starting_token: '${this.token.slice(0, 64)}' is not a token this controller returned`
  }
}

/** Page tokens are `v1.` + the hex of the last name returned; anything else is not ours. */
export const pageToken = (last: string): string => `v1.${Buffer.from(last, "utf8").toString("hex")}`

export const listVolumes = (req: ListVolumesRequest): Result.Result<{ readonly max: number | undefined; readonly after: string | undefined }, InvalidArgument | BadPageToken> => {
  const max = req.max_entries ?? 0
  if (!Number.isInteger(max) || max < 0) return invalid("max_entries", "must not be negative")
  const token = req.starting_token ?? ""
  if (token === "") return Result.succeed({ max: max === 0 ? undefined : max, after: undefined })
  const m = /^v1\.((?:[0-9a-f]{2})+)$/.exec(token)
  const after = m === null ? undefined : Buffer.from(m[1]!, "hex").toString("utf8")
  if (after === undefined || Result.isFailure(slot(after))) return Result.fail(new BadPageToken({ token }))
  return Result.succeed({ max: max === 0 ? undefined : max, after })
}
