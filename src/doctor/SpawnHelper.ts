/**
 * Doctor check: perl for the node plugin's spawn helper (process/SpawnHelper.ts). Without it
 * the plugin forks its commands itself: everything works, each command costs a fork of the
 * plugin (a warning, not a failure).
 *
 * May import: effect, process/SpawnHelper, ./Check.ts.
 */
import { Effect } from "effect"
import { onPath } from "../process/Path.ts"
import { callsOn } from "../process/SpawnHelper.ts"
import { type CheckResult, ok, warn } from "./Check.ts"

const NAME = "spawn helper"

/** Pure: the verdict from where perl was found (undefined: not on PATH) and this process.arch. */
export const decideHelper = (perl: string | undefined, arch: string): CheckResult =>
  perl === undefined
    ? warn(NAME, "perl is not on PATH: the plugin forks nvme, mount and mkfs itself, binds and unmounts with mount(8) and umount(8) (works; each command then costs a fork of the ~70 MB plugin)", "apt-get install perl-base (Essential on Debian: it is normally there)")
    : ok(
      NAME,
      `${perl}: a small process forks the plugin's commands${
        callsOn(arch) ? " and makes its binds and unmounts as system calls" : `; binds and unmounts run mount(8) and umount(8) (no system call numbers for ${arch})`
      }`
    )

export const check: Effect.Effect<CheckResult> = Effect.sync(() => decideHelper(onPath("perl"), process.arch)).pipe(Effect.withSpan("Doctor.spawnHelper"))
