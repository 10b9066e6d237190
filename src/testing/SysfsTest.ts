/**
 * Sysfs over the kernel model: `/sys/class/nvme` and `/sys/block` as they are right now
 * (removed controllers and devices are simply absent). Injected failures (KernelModel.failSysfs)
 * come first. The state reader reads the model's controllers directly (no files to keep open).
 *
 * May import: nvme/Sysfs, testing/KernelModel.
 */
import { type Duration, Effect, Layer } from "effect"
import { type DeviceWatch, onlySubsystem, type StateReader, Sysfs, SysfsError, type WatchedState } from "../nvme/Sysfs.ts"
import { KernelModel } from "./KernelModel.ts"
import * as Nvme from "./KernelNvme.ts"
import { devTOf } from "./KernelState.ts"

/** Sysfs reading the KernelModel in context. */
export const layer: Layer.Layer<Sysfs, never, KernelModel> = Layer.effect(
  Sysfs,
  Effect.gen(function*() {
    const k = yield* KernelModel
    const snapshot = k.syscall((s) => ({ fault: s.takeFault("sysfs.snapshot") as string | undefined, snap: Nvme.snapshot(s) })).pipe(
      Effect.orDie,
      Effect.flatMap(({ fault, snap }) => fault === undefined ? Effect.succeed(snap) : Effect.fail(new SysfsError({ path: "/sys/class/nvme", detail: fault }))),
      Effect.withSpan("Sysfs.snapshot")
    )
    const blockDevT = Effect.fn("Sysfs.blockDevT")(function*(name: string) {
      const dev = yield* k.syscall((s) => s.presentDevice(name)).pipe(Effect.orDie)
      return dev === undefined ? undefined : devTOf(dev)
    })
    const fabricsAvailable = k.syscall((s) => s.fabricsAvailable).pipe(Effect.orDie)
    const bootId = k.syscall((s) => s.bootId).pipe(Effect.orDie)
    const reader: StateReader = {
      read: (names) =>
        k.syscall((s) => {
          const out = new Map<string, WatchedState>()
          for (const name of names) {
            // A deleted controller stays in the model as `removed`; its name may belong to a new one.
            const c = s.controllers.find((c) => c.name === name && c.state !== "removed")
            out.set(name, c === undefined ? "gone" : c.state as WatchedState)
          }
          return out as ReadonlyMap<string, WatchedState>
        }).pipe(Effect.orDie)
    }
    const snapshotOf = (nqn: string) => Effect.map(snapshot, (s) => onlySubsystem(s, nqn))
    // The model changes only when the test acts: a device wait just sleeps (on the test's clock).
    const deviceChange = (within: Duration.Duration) => Effect.sleep(within)
    // The model's /dev: every present controller and namespace device, with its number.
    const deviceWatch = Effect.succeed<DeviceWatch>({
      version: k.syscall((s) => {
        const snap = Nvme.snapshot(s)
        return [...snap.controllers.map((c) => c.name), ...snap.namespaces.map((n) => `${n.name}=${n.devT}`)].join(" ")
      }).pipe(Effect.orDie)
    })
    return Sysfs.of({ snapshot, snapshotOf, deviceChange, deviceWatch, blockDevT, fabricsAvailable, bootId, stateReader: Effect.succeed(reader) })
  })
)
