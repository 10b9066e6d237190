/**
 * The one place where failures become gRPC status codes. Every NodeError tag (and the edge's
 * own CapacityOutOfRange) is matched exhaustively: adding a tag to NodeError without a case here
 * fails to compile. Messages are the errors' own `message`; a defect (a bug) is never shown to
 * the CO, only a generic text, and the caller logs its cause.
 *
 * May import: domain, node (types), csi/StatusCode, csi/Validate (edge errors).
 */
import { Cause, Exit, Result } from "effect"
import type { ControllerError } from "../controller/Volumes.ts"
import type { NodeError } from "../node/NodeVolumes.ts"
import type { BadPageToken } from "./ControllerValidate.ts"
import { status, statusName } from "./StatusCode.ts"
import type { CapacityOutOfRange } from "./Validate.ts"

/** Everything an RPC handler may fail with. */
export type CsiError = NodeError | CapacityOutOfRange | ControllerError | BadPageToken

export interface GrpcStatus {
  readonly code: status
  readonly message: string
}

const of = (code: status, error: { readonly message: string }): GrpcStatus => ({ code, message: error.message })

/** The status for a typed failure. */
export const statusOf = (error: CsiError): GrpcStatus => {
  switch (error._tag) {
    case "InvalidArgument":
      return of(status.INVALID_ARGUMENT, error)
    case "VolumeNotFound":
      return of(status.NOT_FOUND, error)
    // Publish before stage, a staging path kubelet did not send: "Caller MUST make sure call to
    // NodeStageVolume is made and returns success before retrying".
    case "FailedPrecondition":
      return of(status.FAILED_PRECONDITION, error)
    // "Volume published but is incompatible | 6 ALREADY_EXISTS".
    case "IncompatibleRequest":
      return of(status.ALREADY_EXISTS, error)
    // "Operation pending for volume | 10 ABORTED": the CO retries with back-off.
    case "VolumeBusy":
      return of(status.ABORTED, error)
    // The device changed under the format (renumbered between probe and mkfs): nothing was
    // written, and the CO's retry finds the volume's device anew.
    case "FormatRefused":
      return of(error.reason === "DeviceChanged" ? status.ABORTED : status.FAILED_PRECONDITION, error)
    // A safety rule refused the work; retrying will not change that until a person looks.
    case "SafetyRefusal":
      return of(status.FAILED_PRECONDITION, error)
    // The target or the path to it is down: transient, the CO retries.
    case "ConnectFailed":
      return of(status.UNAVAILABLE, error)
    // UNAVAILABLE, not NOT_FOUND: the namespace device is missing because the controller is not
    // (yet) live or the target does not export it now. CSI's NOT_FOUND says "the volume does not
    // exist" and asks the CO to verify the volume ID, which is not what happened.
    case "DeviceNotFound":
      return of(status.UNAVAILABLE, error)
    case "NvmeCliError":
    case "MountError":
      return of(error.reason === "Timeout" ? status.DEADLINE_EXCEEDED : status.INTERNAL, error)
    case "SysfsError":
    case "StageStoreError":
      return of(status.INTERNAL, error)
    // NodeExpandVolume / CreateVolume: "Unsupported capacity_range | 11 OUT_OF_RANGE".
    case "CapacityOutOfRange":
      return of(status.OUT_OF_RANGE, error)
    // ControllerPublishVolume: "Node does not exist | 5 NOT_FOUND".
    case "NodeNotFound":
      return of(status.NOT_FOUND, error)
    // CreateVolume: "Unable to provision in `accessible_topology`"… and generally "out of space".
    case "NoSpace":
      return of(status.RESOURCE_EXHAUSTED, error)
    // ListVolumes: "Invalid `starting_token` | 10 ABORTED".
    case "BadPageToken":
      return of(status.ABORTED, error)
    // The RDS did not answer in time, or could not be reached: transient, the CO retries.
    case "RdsUnavailable":
      return of(error.reason === "Timeout" ? status.DEADLINE_EXCEEDED : status.UNAVAILABLE, error)
    case "RdsCommandFailed":
      return of(error.reason === "NotFound" ? status.NOT_FOUND : error.reason === "NoSpace" ? status.RESOURCE_EXHAUSTED : status.INTERNAL, error)
    case "RosParseError":
      return of(status.INTERNAL, error)
    default: {
      const unhandled: never = error
      return unhandled
    }
  }
}

export type Reply<A> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Error"; readonly status: GrpcStatus; readonly defect: Cause.Cause<unknown> | undefined }

const INTERNAL_MESSAGE = "internal error in rds-csi; see its log"

/** What to send for the outcome of a handler; `defect` is set when a bug must be logged. */
export const replyOf = <A>(exit: Exit.Exit<A, CsiError>): Reply<A> => {
  if (Exit.isSuccess(exit)) return { _tag: "Ok", value: exit.value }
  const cause = exit.cause
  const defect = Cause.hasDies(cause) ? cause : undefined
  const failure = Cause.findError(cause)
  if (Result.isSuccess(failure)) return { _tag: "Error", status: statusOf(failure.success), defect }
  if (defect !== undefined) return { _tag: "Error", status: { code: status.INTERNAL, message: INTERNAL_MESSAGE }, defect }
  // Only interruption is left: the server is shutting down under this call. ABORTED tells the CO
  // to retry; the operation is idempotent and resumes where it stopped.
  return { _tag: "Error", status: { code: status.ABORTED, message: "operation interrupted: rds-csi is shutting down" }, defect }
}

/** `INVALID_ARGUMENT` for logs and metrics labels. */
export const codeName = (code: status): string => statusName(code)
