/**
 * Doctor check: the kernel's NVMe-oF interface is visible where the plugin reads sysfs
 * (`<sysfs-root>/class/nvme-fabrics`, the readiness probe's own test), and the NVMe controllers
 * under it can be read. Asks through the plugin's own Sysfs service.
 *
 * May import: effect, nvme/Sysfs, ./Check.ts.
 */
import { Effect } from "effect"
import { Sysfs, type NvmeSnapshot, type SysfsError } from "../nvme/Sysfs.ts"
import { type CheckResult, fail, ok } from "./Check.ts"

const NAME = "sysfs nvme-fabrics"

/** Pure: the verdict from the fabrics probe and a snapshot of the controllers. */
export const decideFabrics = (sysfsRoot: string, available: boolean, snapshot: NvmeSnapshot | SysfsError): CheckResult => {
  const where = `${sysfsRoot.replace(/\/+$/, "")}/class/nvme-fabrics`
  if (!available) {
    return fail(NAME, `${where} missing`, `modprobe nvme-tcp (it loads nvme-fabrics); in a container mount the host's /sys and pass --sysfs-root`)
  }
  if ("_tag" in snapshot) return fail(NAME, `${where} present, but ${snapshot.message}`, `check that ${sysfsRoot} is the host's sysfs, readable by this user`)
  const tcp = snapshot.controllers.filter((c) => c.transport === "tcp").length
  return ok(NAME, `${where} present; ${snapshot.controllers.length} NVMe controller(s), ${tcp} over TCP, ${snapshot.namespaces.length} namespace device(s)`)
}

export const check = (sysfsRoot: string): Effect.Effect<CheckResult, never, Sysfs> =>
  Effect.gen(function*() {
    const sysfs = yield* Sysfs
    const available = yield* sysfs.fabricsAvailable
    const snapshot = yield* sysfs.snapshot.pipe(Effect.catch((e) => Effect.succeed(e)))
    return decideFabrics(sysfsRoot, available, snapshot)
  }).pipe(Effect.withSpan("Doctor.fabrics"))
