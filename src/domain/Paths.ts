/**
 * Host paths that kubelet hands us (staging and target paths). They are used as mount points
 * by a privileged process, so they must be absolute, normalised, free of `..`, and inside one of
 * the configured allowed roots. Pure.
 */
import { Brand, Result } from "effect"
import * as Path from "node:path"
import { InvalidArgument } from "./Errors.ts"

export type HostPath = string & Brand.Brand<"HostPath">

/** Checks `value` against the rules; `allowedRoots` are absolute, normalised directories. */
export const hostPath = (
  value: string,
  field: string,
  allowedRoots: ReadonlyArray<string>
): Result.Result<HostPath, InvalidArgument> => {
  if (value.length === 0) return Result.fail(new InvalidArgument({ field, rule: "is required" }))
  if (value.includes("\0")) return Result.fail(new InvalidArgument({ field, rule: "must not contain NUL bytes" }))
  if (!Path.posix.isAbsolute(value)) return Result.fail(new InvalidArgument({ field, rule: "must be an absolute path" }))
  if (value.split("/").includes("..")) return Result.fail(new InvalidArgument({ field, rule: "must not contain '..'" }))
  const normal = Path.posix.normalize(value)
  const trimmed = normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal
  if (trimmed !== value) return Result.fail(new InvalidArgument({ field, rule: `must be normalised (${trimmed})` }))
  const inside = allowedRoots.some((root) => root === "/" || value === root || value.startsWith(root + "/"))
  if (!inside) {
    return Result.fail(new InvalidArgument({ field, rule: `must be under an allowed root (${allowedRoots.join(", ") || "none configured"})` }))
  }
  return Result.succeed(value as HostPath)
}
