/**
 * Doctor checks on the kubelet directory: it exists; the mount that holds it propagates mounts
 * both ways (`shared:` in /proc/self/mountinfo's optional fields), without which pods see empty
 * directories where the plugin mounted their volumes; and kubelet's plugin directories are there.
 * The mount table is read through the plugin's own Mounter (the same /proc/self/mountinfo), so
 * in a container this checks the container's view, which is the one that matters.
 *
 * May import: effect, mount/Mounter, ./Check.ts.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { MountEntry } from "../mount/Mounter.ts"
import { Mounter } from "../mount/Mounter.ts"
import { type CheckResult, type DoctorOptions, errorText, fail, ok, warn } from "./Check.ts"

const DIR = "kubelet dir"
const PROPAGATION = "kubelet dir propagation"
const PLUGIN_DIRS = "kubelet plugin dirs"

const within = (mountPoint: string, p: string): boolean =>
  mountPoint === "/" || p === mountPoint || p.startsWith(mountPoint + "/")

/** The mount a lookup of `p` lands on: the deepest mount point containing it, the last mounted there. */
export const mountContaining = (entries: ReadonlyArray<MountEntry>, p: string): MountEntry | undefined => {
  let best: MountEntry | undefined
  for (const e of entries) {
    if (within(e.mountPoint, p) && (best === undefined || e.mountPoint.length >= best.mountPoint.length)) best = e
  }
  return best
}

/** Pure: is the mount holding `dir` shared? */
export const decidePropagation = (dir: string, entries: ReadonlyArray<MountEntry> | { readonly error: string }): CheckResult => {
  if ("error" in entries) return fail(PROPAGATION, `cannot read the mount table: ${entries.error}`, "run doctor where /proc is mounted")
  const m = mountContaining(entries, dir)
  if (m === undefined) return fail(PROPAGATION, `no mount contains ${dir}`, "check /proc/self/mountinfo")
  const fields = m.optionalFields.join(" ")
  const of = `${dir} is on mount ${m.mountPoint} (${m.fsType}${fields === "" ? ", private" : `, ${fields}`})`
  if (m.optionalFields.some((f) => f.startsWith("shared:"))) return ok(PROPAGATION, `${of}: mounts propagate to kubelet`)
  const fix = `on the host: mount --make-rshared ${m.mountPoint} (systemd makes / shared at boot; something made it private), ` +
    `or for the kubelet dir alone: mount --bind ${dir} ${dir} && mount --make-rshared ${dir}; ` +
    `in the DaemonSet: mountPropagation: Bidirectional on the kubelet-dir volume (deploy/base sets it)`
  const why = m.optionalFields.some((f) => f.startsWith("master:"))
    ? "slave: host mounts arrive here, but the plugin's mounts would not reach kubelet"
    : "private: the plugin's mounts would not reach kubelet or the pods"
  return fail(PROPAGATION, `${of}: ${why}`, fix)
}

/** Pure: the kubelet dir itself. */
export const decideDir = (dir: string, stat: "directory" | "other" | { readonly error: string }): CheckResult => {
  const fix = `pass --kubelet-dir with kubelet's --root-dir (default /var/lib/kubelet; k0s: /var/lib/k0s/kubelet; ` +
    `microk8s: /var/snap/microk8s/common/var/lib/kubelet), and in a container mount it from the host`
  if (stat === "directory") return ok(DIR, `${dir} exists`)
  if (stat === "other") return fail(DIR, `${dir} is not a directory`, fix)
  return fail(DIR, `${dir}: ${stat.error}`, fix)
}

/** Pure: kubelet's plugin registration dir and this driver's socket dir. */
export const decidePluginDirs = (registry: string, registryExists: boolean, pluginDir: string, pluginDirExists: boolean): CheckResult => {
  if (!registryExists) {
    return warn(PLUGIN_DIRS, `${registry} missing: kubelet creates it when it starts`, `start kubelet (with --root-dir ${path.dirname(registry)}) before the plugin; node-driver-registrar registers there`)
  }
  if (!pluginDirExists) {
    return warn(PLUGIN_DIRS, `${registry} present; ${pluginDir} missing (the CSI socket goes there)`, `mkdir -p ${pluginDir} (the DaemonSet's hostPath DirectoryOrCreate does it)`)
  }
  return ok(PLUGIN_DIRS, `${registry} and ${pluginDir} present`)
}

const statOf = (p: string): "directory" | "other" | { readonly error: string } => {
  try {
    return fs.statSync(p).isDirectory() ? "directory" : "other"
  } catch (e) {
    return { error: errorText(e) }
  }
}

const realpath = (p: string): string => {
  try {
    return fs.realpathSync(p)
  } catch {
    return p
  }
}

export const check = (options: DoctorOptions): Effect.Effect<ReadonlyArray<CheckResult>, never, Mounter> =>
  Effect.gen(function*() {
    const dir = options.kubeletDir.replace(/(.)\/+$/, "$1")
    const dirResult = decideDir(dir, statOf(dir))
    if (dirResult.status !== "ok") return [dirResult]
    // The mount table names real paths: a symlinked kubelet dir lives where the link points.
    const real = realpath(dir)
    const mounter = yield* Mounter
    const entries = yield* mounter.mountinfo.pipe(Effect.catch((e) => Effect.succeed({ error: e.message })))
    const registry = `${dir}/plugins_registry`
    const pluginDir = `${dir}/plugins/${options.driverName}`
    return [
      dirResult,
      decidePropagation(real, entries),
      decidePluginDirs(registry, statOf(registry) === "directory", pluginDir, statOf(pluginDir) === "directory")
    ]
  }).pipe(Effect.withSpan("Doctor.kubelet"))
