/**
 * NvmeCli over the kernel model: nvme-cli 2.x as the plugin sees it. "Already connected" is
 * absorbed (success, no new controller), a connect to an unknown address or a down link is
 * Unreachable, an NQN the target does not export is Failed, both with nvme-cli's own words;
 * disconnecting what is not there is success. Injected failures (KernelModel.failNvme) come first.
 *
 * May import: nvme/NvmeCli, testing/KernelModel.
 */
import { Effect, Layer } from "effect"
import type { Nqn } from "../domain/Ids.ts"
import { type ConnectArgs, NvmeCli, NvmeCliError } from "../nvme/NvmeCli.ts"
import { KernelModel, type NvmeFault, type NvmeOp } from "./KernelModel.ts"
import * as Nvme from "./KernelNvme.ts"
import type { KernelError } from "./KernelTypes.ts"

const STRERROR: Partial<Record<KernelError["errno"], string>> = {
  ECONNREFUSED: "Connection refused",
  ETIMEDOUT: "Connection timed out",
  EHOSTUNREACH: "No route to host",
  EIO: "Input/output error",
  EINVAL: "Invalid argument"
}

// What nvme-cli 2.x prints: libnvme's line with the kernel's errno, then its own summary.
const fromKernel = (command: string, e: KernelError): NvmeCliError =>
  new NvmeCliError({
    reason: e.errno === "ECONNREFUSED" || e.errno === "ETIMEDOUT" || e.errno === "EHOSTUNREACH" ? "Unreachable" : "Failed",
    command,
    exitCode: 1,
    detail: `Failed to write to /dev/nvme-fabrics: ${STRERROR[e.errno] ?? e.errno}\ncould not add new controller: failed to write to nvme-fabrics device`
  })

/** NvmeCli whose every call acts on the KernelModel in context. */
export const layer: Layer.Layer<NvmeCli, never, KernelModel> = Layer.effect(
  NvmeCli,
  Effect.gen(function*() {
    const k = yield* KernelModel
    const injected = (op: NvmeOp, command: string) =>
      Effect.flatMap(k.syscall((s) => s.takeFault(`nvme.${op}`) as NvmeFault | undefined).pipe(Effect.orDie), (f) =>
        f === undefined
          ? Effect.void
          : Effect.fail(new NvmeCliError({ reason: f.reason, command, exitCode: f.exitCode ?? (f.reason === "Timeout" ? undefined : 1), detail: f.detail ?? `injected ${f.reason}` })))

    const connect = Effect.fn("NvmeCli.connect")(function*(args: ConnectArgs) {
      const command = `nvme connect -t tcp -a ${args.address} -s ${args.port} -n ${args.nqn} --ctrl-loss-tmo=${args.ctrlLossTmo} --reconnect-delay=${args.reconnectDelay}`
      yield* injected("connect", command)
      // A real connect is a process: other fibers run meanwhile (concurrent stages interleave here).
      yield* Effect.yieldNow
      yield* k.syscall((s) => Nvme.connect(s, args)).pipe(
        Effect.asVoid,
        // nvme-cli 2.x: "already connected" is an error there and success here (STYLE rule 7).
        Effect.catchTag("KernelError", (e) => e.errno === "EALREADY" ? Effect.void : Effect.fail(fromKernel(command, e)))
      )
    })

    const disconnect = Effect.fn("NvmeCli.disconnect")(function*(nqn: Nqn) {
      yield* injected("disconnect", `nvme disconnect -n ${nqn}`)
      yield* k.syscall((s) => Nvme.disconnectNqn(s, nqn)).pipe(Effect.orDie)
    })

    const disconnectController = Effect.fn("NvmeCli.disconnectController")(function*(name: string) {
      if (!/^nvme\d+$/.test(name)) {
        return yield* new NvmeCliError({ reason: "Failed", command: `nvme disconnect -d ${name}`, exitCode: undefined, detail: "not a controller name" })
      }
      yield* injected("disconnectController", `nvme disconnect -d ${name}`)
      yield* k.syscall((s) => Nvme.disconnectController(s, name)).pipe(
        Effect.catchTag("KernelError", (e) => e.errno === "ENODEV" ? Effect.void : Effect.die(e))
      )
    })

    const listSubsystems = injected("listSubsystems", "nvme list-subsys -o json").pipe(
      Effect.andThen(k.syscall(Nvme.listSubsystems).pipe(Effect.orDie)),
      Effect.withSpan("NvmeCli.listSubsystems")
    )

    const version = injected("version", "nvme version").pipe(
      Effect.andThen(k.syscall((s) => s.nvmeVersion).pipe(Effect.orDie)),
      Effect.withSpan("NvmeCli.version")
    )

    const installed = k.syscall((s) => s.nvmeInstalled).pipe(Effect.orDie)

    return NvmeCli.of({ connect, disconnect, disconnectController, listSubsystems, version, installed })
  })
)
