/**
 * Errors shared by every layer: the ones a caller of the node use cases can get back no
 * matter which service failed underneath. Pure; imports nothing but effect.
 *
 * Each is mapped to exactly one gRPC code in csi/GrpcStatus.ts.
 */
import { Data } from "effect"

/** A request field broke a rule. `field` is the request's own name for it (e.g. `volume_context.nqn`). */
export class InvalidArgument extends Data.TaggedError("InvalidArgument")<{
  readonly field: string
  readonly rule: string
}> {
  override get message(): string {
    return `${this.field}: ${this.rule}`
  }
}

/** The volume is not known to this node (stats, expand of a volume that is not staged here). */
export class VolumeNotFound extends Data.TaggedError("VolumeNotFound")<{
  readonly volumeId: string
  readonly detail: string
}> {
  override get message(): string {
    return `volume ${this.volumeId}: ${this.detail}`
  }
}

/** The operation needs a step that has not happened (publish before stage). */
export class FailedPrecondition extends Data.TaggedError("FailedPrecondition")<{
  readonly volumeId: string
  readonly detail: string
}> {
  override get message(): string {
    return `volume ${this.volumeId}: ${this.detail}`
  }
}

/** The work was already done with different, incompatible arguments (CSI: ALREADY_EXISTS). */
export class IncompatibleRequest extends Data.TaggedError("IncompatibleRequest")<{
  readonly volumeId: string
  readonly detail: string
}> {
  override get message(): string {
    return `volume ${this.volumeId}: ${this.detail}`
  }
}

/** Another operation holds this volume (CSI: ABORTED; the CO retries). */
export class VolumeBusy extends Data.TaggedError("VolumeBusy")<{
  readonly volumeId: string
  readonly heldBy: string
}> {
  override get message(): string {
    return `volume ${this.volumeId}: an operation is already in progress (${this.heldBy})`
  }
}

/** A safety rule refused the work: formatting a device that is not proven empty, touching an unmanaged NQN. */
export class SafetyRefusal extends Data.TaggedError("SafetyRefusal")<{
  readonly volumeId: string
  readonly detail: string
}> {
  override get message(): string {
    return `volume ${this.volumeId}: refused: ${this.detail}`
  }
}

/** A capacity range the plugin cannot honour (CSI: OUT_OF_RANGE). */
export class CapacityOutOfRange extends Data.TaggedError("CapacityOutOfRange")<{
  readonly field: string
  readonly rule: string
}> {
  override get message(): string {
    return `${this.field}: ${this.rule}`
  }
}

/** The storage has no room for the volume (CSI: RESOURCE_EXHAUSTED). */
export class NoSpace extends Data.TaggedError("NoSpace")<{
  readonly volumeId: string
  readonly detail: string
}> {
  override get message(): string {
    return `volume ${this.volumeId}: not enough space on the storage: ${this.detail}`
  }
}

/** The node named in a request is not one this driver can serve (CSI: NOT_FOUND). */
export class NodeNotFound extends Data.TaggedError("NodeNotFound")<{
  readonly nodeId: string
  readonly detail: string
}> {
  override get message(): string {
    return `node ${this.nodeId}: ${this.detail}`
  }
}
