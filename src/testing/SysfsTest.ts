/**
 * Sysfs over the kernel model: `/sys/class/nvme` and `/sys/block` as they are right now
 * (removed controllers and devices are simply absent). Injected failures (KernelModel.failSysfs)
 * come first.
 *
 * May import: nvme/Sysfs, testing/KernelModel.
 */
import { Effect, Layer } from "effect"
import { Sysfs, SysfsError } from "../nvme/Sysfs.ts"
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
    return Sysfs.of({ snapshot, blockDevT, fabricsAvailable, bootId })
  })
)
