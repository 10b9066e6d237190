/**
 * Doctor check: the nvme-tcp kernel module is loaded, built in, or at least loadable. Loaded is
 * read from sysfs (`<sysfs-root>/module/nvme_tcp`); otherwise `modprobe -n -v nvme-tcp` (a dry
 * run: it loads nothing) says whether the module exists for the running kernel. In a container
 * modprobe reads `/lib/modules`, so the DaemonSet mounts the host's read-only.
 *
 * May import: effect, process/Command, ./Check.ts.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import { type CommandOutput, type RunFailure, runCommand, tail } from "../process/Command.ts"
import { type CheckResult, type DoctorOptions, fail, ok, warn } from "./Check.ts"

const NAME = "nvme-tcp module"
const PERSIST = "modprobe nvme-tcp; echo nvme-tcp > /etc/modules-load.d/nvme-tcp.conf (loads it at every boot)"
const INSTALL =
  "install the nvme-tcp module for the running kernel (Debian: the linux-image package; Ubuntu: linux-modules-extra-$(uname -r); " +
  "RHEL: kernel-modules-core), then " + PERSIST +
  "; in a container also mount the host's /lib/modules read-only"

/** Pure: the verdict from what sysfs and the dry run showed. */
export const decideModule = (
  loadedPath: string,
  loaded: boolean,
  dryRun: CommandOutput | RunFailure | undefined
): CheckResult => {
  if (loaded) return ok(NAME, `loaded (${loadedPath})`)
  if (dryRun === undefined) return fail(NAME, `not loaded (${loadedPath} missing)`, INSTALL)
  if ("_tag" in dryRun) {
    const why = dryRun._tag === "Timeout" ? "modprobe -n did not answer" : `modprobe could not run: ${dryRun.detail}`
    return fail(NAME, `not loaded (${loadedPath} missing) and ${why}`, `load it on the host: ${PERSIST}; or install kmod so the check can ask modprobe`)
  }
  const said = tail(`${dryRun.stdout}\n${dryRun.stderr}`, 300).replaceAll("\n", " ")
  if (dryRun.exitCode === 0 && /\bbuiltin\b/.test(said)) return ok(NAME, `built into the kernel (modprobe -n: ${said})`)
  if (dryRun.exitCode === 0) {
    return warn(NAME, `not loaded, but loadable (modprobe -n: ${said || "nothing to do"}); nvme connect loads it on demand`, PERSIST)
  }
  return fail(NAME, `not loaded (${loadedPath} missing) and not loadable: ${said || `modprobe exit ${dryRun.exitCode}`}`, INSTALL)
}

export const check = (options: DoctorOptions): Effect.Effect<CheckResult> =>
  Effect.gen(function*() {
    const loadedPath = `${options.sysfsRoot.replace(/\/+$/, "")}/module/nvme_tcp`
    if (fs.existsSync(loadedPath)) return decideModule(loadedPath, true, undefined)
    const dryRun = yield* runCommand(options.modprobe, ["-n", "-v", "nvme-tcp"], options.timeout).pipe(
      Effect.catch((f) => Effect.succeed(f))
    )
    return decideModule(loadedPath, false, dryRun)
  }).pipe(Effect.withSpan("Doctor.kernelModule"))
