/**
 * Doctor check: the host NQN nvme-cli presents to targets. Storage (the RDS among others)
 * authorises hosts by NQN, so it must exist and stay the same across reboots and plugin
 * restarts: `/etc/nvme/hostnqn` on the host (the DaemonSet mounts /etc/nvme), or --host-nqn.
 * Missing is a warning: nvme-cli then derives one per call, which a target ACL may not know.
 *
 * May import: node:fs, ./Check.ts.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import { type CheckResult, errorText, ok, warn } from "./Check.ts"

const NAME = "host NQN"
const GENERATE = "nvme gen-hostnqn > /etc/nvme/hostnqn (once, on the host), then allow that NQN on the storage target"

/** Pure: the verdict from the file's content, or why it could not be read. */
export const decideHostNqn = (file: string, content: string | { readonly error: string }): CheckResult => {
  if (typeof content !== "string") return warn(NAME, `${file}: ${content.error}`, GENERATE)
  const nqn = content.trim()
  if (!/^nqn\.\d{4}-\d{2}\.[^:]+:.+/.test(nqn)) return warn(NAME, `${file} does not hold an NQN ('${nqn.slice(0, 80)}')`, GENERATE)
  return ok(NAME, `${nqn} (${file})`)
}

export const check = (file: string): Effect.Effect<CheckResult> =>
  Effect.sync(() => {
    let content: string | { readonly error: string }
    try {
      content = fs.readFileSync(file, "utf8")
    } catch (e) {
      content = { error: errorText(e) }
    }
    return decideHostNqn(file, content)
  })
