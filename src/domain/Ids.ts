/**
 * Identifiers: VolumeId, Nqn, NodeId. Branded strings with constructors that check the rules
 * and name the field on failure; the rule shared by every value that reaches the kernel's
 * connect option string. Pure.
 */
import { Brand, Result } from "effect"
import { InvalidArgument } from "./Errors.ts"

export type VolumeId = string & Brand.Brand<"VolumeId">
export type Nqn = string & Brand.Brand<"Nqn">
export type NodeId = string & Brand.Brand<"NodeId">

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8")
// Printable ASCII except space and '/': a volume ID becomes part of a state-file name and a log field.
const VOLUME_ID = /^[\x21-\x2e\x30-\x7e]+$/

/** CSI volume IDs are opaque, but ours end up in file names and logs: 1–128 bytes, printable, no `/`. */
export const volumeId = (value: string, field = "volume_id"): Result.Result<VolumeId, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (utf8Length(value) > 128) return Result.fail(new InvalidArgument({ field, rule: "must be at most 128 bytes" }))
  if (!VOLUME_ID.test(value)) {
    return Result.fail(new InvalidArgument({ field, rule: "must be printable ASCII without spaces or '/'" }))
  }
  return Result.succeed(value as VolumeId)
}

// libnvme writes "nqn=<nqn>,traddr=<address>,…,hostnqn=…" to /dev/nvme-fabrics unescaped, and the
// kernel splits that string at ',' and newlines: a value carrying them adds connect options of its
// own choosing ("…:pvc-1,duplicate_connect"). '=' and the rest have no business there either.
const OPTION_UNSAFE = /[,=\s\x00-\x1f\x7f]/

/** A value bound for the kernel's connect option string: no ',', '=', whitespace or control characters. */
export const optionSafe = (value: string, field: string): Result.Result<string, InvalidArgument> =>
  OPTION_UNSAFE.test(value)
    ? Result.fail(new InvalidArgument({
      field,
      rule: "must not contain ',', '=', whitespace or control characters (they would reach the kernel's connect option string)"
    }))
    : Result.succeed(value)

const NQN_UUID = /^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
// nqn.yyyy-mm.reverse.domain[:anything]: the date and a reverse domain name are mandatory (NVMe base spec §4.5).
// The name after ':' is printable ASCII but ',' (\x2c) and '=' (\x3d), which optionSafe rejects first with its own message.
const NQN_DOMAIN = /^nqn\.(\d{4})-(\d{2})\.([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[\x21-\x2b\x2d-\x3c\x3e-\x7e]+)?$/

/** An NVMe Qualified Name per the NVMe base specification: `nqn.yyyy-mm.reverse-domain[:id]` or the UUID form; at most 223 bytes, option-safe. */
export const nqn = (value: string, field = "volume_context.nqn"): Result.Result<Nqn, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (!value.startsWith("nqn.")) return Result.fail(new InvalidArgument({ field, rule: "must start with 'nqn.'" }))
  const safe = optionSafe(value, field)
  if (Result.isFailure(safe)) return Result.fail(safe.failure)
  if (utf8Length(value) > 223) return Result.fail(new InvalidArgument({ field, rule: "must be at most 223 bytes" }))
  if (NQN_UUID.test(value)) return Result.succeed(value as Nqn)
  const m = NQN_DOMAIN.exec(value)
  if (m === null) {
    return Result.fail(new InvalidArgument({
      field,
      rule: "must be 'nqn.yyyy-mm.<reverse domain>[:<name>]' or 'nqn.2014-08.org.nvmexpress:uuid:<uuid>'"
    }))
  }
  const month = Number(m[2])
  if (month < 1 || month > 12) return Result.fail(new InvalidArgument({ field, rule: "has an invalid month in its date (yyyy-mm)" }))
  return Result.succeed(value as Nqn)
}

const NODE_ID = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/

/** The node ID is the Kubernetes node name: a DNS subdomain (RFC 1123), at most 253 characters. */
export const nodeId = (value: string, field = "node_id"): Result.Result<NodeId, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (value.length > 253) return Result.fail(new InvalidArgument({ field, rule: "must be at most 253 characters" }))
  if (!NODE_ID.test(value)) {
    return Result.fail(new InvalidArgument({ field, rule: "must be a DNS subdomain: lower-case letters, digits, '-' and '.'" }))
  }
  return Result.succeed(value as NodeId)
}

/** True when `value` lies within the managed prefix (the only connections this plugin may ever touch). */
export const isManaged = (value: Nqn, managedPrefix: string | undefined): boolean =>
  managedPrefix !== undefined && managedPrefix.length > 0 && value.startsWith(managedPrefix)

/**
 * What NodeGetInfo reports as node_id and the controller reads back from CSINode: the node name,
 * then ',' and the host NQN the node connects with (`worker-1,nqn.2014-08.org.nvmexpress:uuid:…`),
 * so ControllerPublish can fence the volume to exactly that host at the target (SPEC §9: the host
 * NQN travels through NodeGetInfo/CSINode, never through configuration). ',' appears in neither
 * part: node names are DNS subdomains and NQNs are option-safe. A node that knows no host NQN
 * reports its name alone.
 */
export interface NodeIdentity {
  readonly name: NodeId
  readonly hostNqn: Nqn | undefined
}

/** The node_id NodeGetInfo returns. */
export const formatNodeId = (identity: NodeIdentity): string =>
  identity.hostNqn === undefined ? identity.name : `${identity.name},${identity.hostNqn}`

/** A node_id from ControllerPublish/Unpublish → its parts; each part checked with its own rule. */
export const parseNodeId = (value: string, field = "node_id"): Result.Result<NodeIdentity, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (utf8Length(value) > 256) return Result.fail(new InvalidArgument({ field, rule: "must be at most 256 bytes" }))
  const comma = value.indexOf(",")
  const name = nodeId(comma < 0 ? value : value.slice(0, comma), field)
  if (Result.isFailure(name)) return Result.fail(name.failure)
  if (comma < 0) return Result.succeed({ name: name.success, hostNqn: undefined })
  const host = nqn(value.slice(comma + 1), `${field} (host NQN after ',')`)
  return Result.isFailure(host) ? Result.fail(host.failure) : Result.succeed({ name: name.success, hostNqn: host.success })
}
