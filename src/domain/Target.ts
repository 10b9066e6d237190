/**
 * Where a volume lives: the NVMe/TCP target address and port. Pure.
 */
import { Brand, Result } from "effect"
import { isIP } from "node:net"
import { InvalidArgument } from "./Errors.ts"

export type TargetAddress = string & Brand.Brand<"TargetAddress">
export type Port = number & Brand.Brand<"Port">

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/
const IPV4ISH = /^[0-9.]+$/

/** An IPv4 or IPv6 literal, or a DNS host name. `[::1]` brackets are accepted and removed. */
export const targetAddress = (value: string, field: string): Result.Result<TargetAddress, InvalidArgument> => {
  const v = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value
  if (v.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (isIP(v) !== 0) return Result.succeed(v as TargetAddress)
  // "10.0.0.300" looks like an address, not a name: reject it as a bad address rather than resolve it.
  if (IPV4ISH.test(v)) return Result.fail(new InvalidArgument({ field, rule: "is not a valid IPv4 address" }))
  if (v.includes(":")) return Result.fail(new InvalidArgument({ field, rule: "is not a valid IPv6 address" }))
  if (!HOSTNAME.test(v)) return Result.fail(new InvalidArgument({ field, rule: "must be an IPv4 or IPv6 address or a DNS host name" }))
  return Result.succeed(v as TargetAddress)
}

/** A TCP port 1–65535, given as a decimal string (volume context values are strings). */
export const port = (value: string, field: string): Result.Result<Port, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (!/^\d{1,5}$/.test(value)) return Result.fail(new InvalidArgument({ field, rule: "must be a decimal integer 1-65535" }))
  const n = Number(value)
  if (n < 1 || n > 65535) return Result.fail(new InvalidArgument({ field, rule: "must be between 1 and 65535" }))
  return Result.succeed(n as Port)
}
