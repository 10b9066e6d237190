/**
 * Doctor check: the host's /proc is where --proc-root says. Before a lazy unmount the plugin
 * looks for processes holding the mount through it; in a container that needs hostPID (and
 * root to read other processes' fds), else the check sees only the container and a busy mount
 * could be detached under a running database. A warning, not a failure: normal unmounts work.
 *
 * May import: node:fs, ./Check.ts.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import { type CheckResult, errorText, ok, warn } from "./Check.ts"

const NAME = "host /proc"
const FIX = "run with hostPID: true as root (deploy/base does), or pass --proc-root where the host's /proc is mounted"

/** Pure: PID 1's name and whether its mount table could be read (needs the host PID namespace and privilege). */
export const decideHostProc = (procRoot: string, pid1: string | { readonly error: string }, readable: true | { readonly error: string }): CheckResult => {
  if (typeof pid1 !== "string") return warn(NAME, `${procRoot}/1: ${pid1.error}`, FIX)
  if (readable !== true) return warn(NAME, `PID 1 is ${pid1}, but ${procRoot}/1/fd: ${readable.error} (in-use checks will miss other processes)`, FIX)
  return ok(NAME, `${procRoot}: PID 1 is ${pid1}; other processes' files are readable for the in-use check`)
}

export const check = (procRoot: string): Effect.Effect<CheckResult> =>
  Effect.sync(() => {
    const root = procRoot.replace(/(.)\/+$/, "$1")
    let pid1: string | { readonly error: string }
    try {
      pid1 = fs.readFileSync(`${root}/1/comm`, "utf8").trim()
    } catch (e) {
      pid1 = { error: errorText(e) }
    }
    let readable: true | { readonly error: string } = true
    try {
      fs.readdirSync(`${root}/1/fd`)
    } catch (e) {
      readable = { error: errorText(e) }
    }
    return decideHostProc(root, pid1, readable)
  })
