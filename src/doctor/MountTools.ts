/**
 * Doctor check: the mount tools the plugin spawns are on PATH (the plugin's own Mounter says
 * which are missing). mount, umount, blkid and both mkfs are required; the resize tools only
 * matter for NodeExpandVolume, so their absence is a warning.
 *
 * May import: effect, mount/Mounter, ./Check.ts.
 */
import { Effect } from "effect"
import { Mounter } from "../mount/Mounter.ts"
import { type CheckResult, fail, ok, warn } from "./Check.ts"

const NAME = "mount tools"

/** Which Debian/Ubuntu package brings each tool (RHEL: util-linux, e2fsprogs, xfsprogs alike). */
export const PACKAGE_OF: Readonly<Record<string, string>> = {
  mount: "mount",
  umount: "mount",
  blkid: "util-linux",
  "mkfs.ext4": "e2fsprogs",
  resize2fs: "e2fsprogs",
  "mkfs.xfs": "xfsprogs",
  xfs_growfs: "xfsprogs"
}
export const REQUIRED = ["mount", "umount", "blkid", "mkfs.ext4", "mkfs.xfs"] as const

const install = (tools: ReadonlyArray<string>) =>
  `apt-get install ${[...new Set(tools.map((t) => PACKAGE_OF[t] ?? t))].join(" ")} (or your distribution's packages for ${tools.join(", ")})`

/** Pure: the verdict from the list of missing tools. */
export const decideTools = (missing: ReadonlyArray<string>): CheckResult => {
  const required = missing.filter((t) => (REQUIRED as ReadonlyArray<string>).includes(t))
  const optional = missing.filter((t) => !required.includes(t))
  if (required.length > 0) {
    return fail(NAME, `missing: ${missing.join(", ")}`, install(missing))
  }
  if (optional.length > 0) return warn(NAME, `${REQUIRED.join(", ")} present; missing ${optional.join(", ")} (volume expansion will fail)`, install(optional))
  return ok(NAME, `${REQUIRED.join(", ")}, resize2fs, xfs_growfs present`)
}

export const check: Effect.Effect<CheckResult, never, Mounter> = Effect.gen(function*() {
  const mounter = yield* Mounter
  return decideTools(yield* mounter.missingTools)
}).pipe(Effect.withSpan("Doctor.mountTools"))
