/**
 * Where a volume lives: the NVMe/TCP target address and port. Pure.
 */
import { Brand, Result } from "effect"
import { isIP, SocketAddress } from "node:net"
import { InvalidArgument } from "./Errors.ts"
import { optionSafe } from "./Ids.ts"

export type TargetAddress = string & Brand.Brand<"TargetAddress">
export type Port = number & Brand.Brand<"Port">

const IPV4ISH = /^[0-9.]+$/

/**
 * One spelling per address, so sysfs's `traddr` and a volume context compare as strings: IPv6 as
 * inet_ntop prints it (lower case, leading zeros dropped, the longest zero run as `::`), its zone
 * (`%eth0`) kept as given; anything else is returned unchanged.
 */
export const canonicalAddress = (address: string): string => {
  if (isIP(address) !== 6) return address
  const zoneAt = address.indexOf("%")
  const ip = zoneAt < 0 ? address : address.slice(0, zoneAt)
  const zone = zoneAt < 0 ? "" : address.slice(zoneAt)
  return new SocketAddress({ address: ip, family: "ipv6" }).address + zone
}

/**
 * An IPv4 or IPv6 literal; `[::1]` brackets are removed and IPv6 is made canonical. Host names
 * are refused: nvme-cli resolves them and the kernel then reports the resolved address in sysfs
 * (`traddr=`), so the controller could never be matched to the volume.
 */
export const targetAddress = (value: string, field: string): Result.Result<TargetAddress, InvalidArgument> => {
  const v = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value
  if (v.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  const safe = optionSafe(v, field)
  if (Result.isFailure(safe)) return Result.fail(safe.failure)
  if (isIP(v) !== 0) return Result.succeed(canonicalAddress(v) as TargetAddress)
  if (IPV4ISH.test(v)) return Result.fail(new InvalidArgument({ field, rule: "is not a valid IPv4 address" }))
  if (v.includes(":")) return Result.fail(new InvalidArgument({ field, rule: "is not a valid IPv6 address" }))
  return Result.fail(new InvalidArgument({
    field,
    rule: "must be an IPv4 or IPv6 address, not a host name (sysfs reports the address nvme-cli resolved it to, so the connection could never be matched)"
  }))
}

/** A TCP port 1–65535, given as a decimal string (volume context values are strings). */
export const port = (value: string, field: string): Result.Result<Port, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (!/^\d{1,5}$/.test(value)) return Result.fail(new InvalidArgument({ field, rule: "must be a decimal integer 1-65535" }))
  const n = Number(value)
  if (n < 1 || n > 65535) return Result.fail(new InvalidArgument({ field, rule: "must be between 1 and 65535" }))
  return Result.succeed(n as Port)
}
