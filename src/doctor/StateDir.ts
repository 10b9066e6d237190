/**
 * Doctor check: the state dir (one stage record per volume, what lets a restarted plugin find
 * its volumes again) is writable. An existing dir is proven by writing, syncing and removing a
 * probe file, as the stage store does; a missing one by the nearest existing parent being
 * writable, since the plugin creates it.
 *
 * May import: node:fs, ./Check.ts.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type CheckResult, errorText, fail, ok } from "./Check.ts"

const NAME = "state dir"

export type Probe =
  | { readonly _tag: "Written" }
  | { readonly _tag: "Creatable"; readonly parent: string }
  | { readonly _tag: "NotDirectory" }
  | { readonly _tag: "Failed"; readonly at: string; readonly error: string }

/** Pure: the verdict from what probing found. */
export const decideStateDir = (dir: string, probe: Probe): CheckResult => {
  const fix = (at: string) =>
    `make ${at} writable by the plugin (root in the DaemonSet), or pass --state-dir on a writable host path; ` +
    `with a read-only root file system it must be a mounted volume (deploy/base uses the plugin's hostPath dir)`
  switch (probe._tag) {
    case "Written":
      return ok(NAME, `${dir} writable`)
    case "Creatable":
      return ok(NAME, `${dir} missing; the plugin creates it (${probe.parent} is writable)`)
    case "NotDirectory":
      return fail(NAME, `${dir} exists and is not a directory`, `remove it or pass --state-dir`)
    case "Failed":
      return fail(NAME, `${probe.at}: ${probe.error}`, fix(probe.at))
  }
}

/** Probes for real: writes a file in `dir` when it exists, else asks whether its nearest parent is writable. */
export const probe = (dir: string): Probe => {
  let stat: fs.Stats | undefined
  try {
    stat = fs.statSync(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return { _tag: "Failed", at: dir, error: errorText(e) }
  }
  if (stat !== undefined) {
    if (!stat.isDirectory()) return { _tag: "NotDirectory" }
    const file = path.join(dir, `.rds-csi-doctor-${process.pid}`)
    try {
      const fd = fs.openSync(file, "wx", 0o600)
      try {
        fs.writeSync(fd, "probe\n")
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      fs.unlinkSync(file)
      return { _tag: "Written" }
    } catch (e) {
      return { _tag: "Failed", at: dir, error: errorText(e) }
    }
  }
  let parent = path.dirname(dir)
  while (!fs.existsSync(parent) && parent !== path.dirname(parent)) parent = path.dirname(parent)
  try {
    if (!fs.statSync(parent).isDirectory()) return { _tag: "Failed", at: parent, error: "not a directory" }
    fs.accessSync(parent, fs.constants.W_OK)
    return { _tag: "Creatable", parent }
  } catch (e) {
    return { _tag: "Failed", at: parent, error: errorText(e) }
  }
}

export const check = (dir: string): Effect.Effect<CheckResult> => Effect.sync(() => decideStateDir(dir, probe(dir)))
