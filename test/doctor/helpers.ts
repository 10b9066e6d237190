/**
 * Shared fixtures of the doctor tests: temp dirs, a fake `modprobe` script, DoctorOptions over
 * temp roots, and the test layers (in-memory kernel) with an optional fixed mount table.
 */
import { Duration, Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { DoctorOptions } from "../../src/doctor/Check.ts"
import { Mounter, type MountEntry } from "../../src/mount/Mounter.ts"
import { parseMountinfo } from "../../src/mount/Mountinfo.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { kernelLayers } from "../../src/testing/index.ts"

export const tmp = (prefix = "rds-csi-doctor-"): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** An executable that records its argv in `<dir>/argv` and answers like modprobe would. */
export const fakeModprobe = (dir: string, answer: { readonly stdout?: string; readonly stderr?: string; readonly exit: number }): string => {
  const file = path.join(dir, "modprobe")
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
  fs.writeFileSync(
    file,
    `#!/bin/sh\nprintf "%s\\n" "$*" > ${q(path.join(dir, "argv"))}\nprintf %s ${q(answer.stdout ?? "")}\nprintf %s ${q(answer.stderr ?? "")} >&2\nexit ${answer.exit}\n`,
    { mode: 0o755 }
  )
  return file
}

/** Options over fresh temp roots (nothing in them yet). */
export const options = (root: string, overrides: Partial<DoctorOptions> = {}): DoctorOptions => ({
  sysfsRoot: path.join(root, "sys"),
  procRoot: path.join(root, "proc"),
  stateDir: path.join(root, "kubelet/plugins/rds.csi.srvlab.io/state"),
  kubeletDir: path.join(root, "kubelet"),
  driverName: "rds.csi.srvlab.io",
  kubeconfig: undefined,
  hostNqnFile: path.join(root, "etc/nvme/hostnqn"),
  modprobe: path.join(root, "no-such-modprobe"),
  timeout: Duration.seconds(5),
  ...overrides
})

/** Rows of /proc/self/mountinfo, parsed by the plugin's own parser. */
export const mountinfo = (text: string): ReadonlyArray<MountEntry> => Result.getOrThrow(parseMountinfo(text))

/** The in-memory kernel's services (NvmeCli, Sysfs, Mounter, KernelModel to drive them). */
export const testHost = () => kernelLayers.pipe(Layer.provideMerge(Settings.layer(testSettings())))

/** A Mounter (over the in-memory kernel) whose mountinfo is `table`. */
export const mounterWithTable = (table: ReadonlyArray<MountEntry>): Layer.Layer<Mounter> =>
  Layer.effect(Mounter, Effect.map(Mounter, (m) => Mounter.of({ ...m, mountinfo: Effect.succeed(table), mountsAt: (points) => Effect.succeed(table.filter((e) => points.includes(e.mountPoint))) }))).pipe(Layer.provide(testHost()))
