/**
 * NvmeCli: nvme-cli 2.x, the only way this plugin changes NVMe connections. Every call is an
 * execFile (never a shell) with a timeout and a forced kill after it. CLI quirks ("already
 * connected", "no subsystems") are absorbed here; callers never read stderr.
 *
 * May import: domain. The live layer is in NvmeCliLive.ts; the in-memory one in src/testing.
 */
import { Context, Data, type Effect } from "effect"
import type { Nqn } from "../domain/Ids.ts"

export interface ConnectArgs {
  readonly nqn: Nqn
  readonly address: string
  readonly port: number
  readonly ctrlLossTmo: number
  readonly reconnectDelay: number
  readonly keepAliveTmo: number | undefined
  readonly hostNqn: string | undefined
  readonly hostId: string | undefined
}

/** One subsystem as `nvme list-subsys -o json` reports it (nvme-cli 2.x shape, decoded). */
export interface SubsystemListing {
  readonly nqn: string
  readonly name: string
  readonly paths: ReadonlyArray<{ readonly name: string; readonly transport: string; readonly address: string; readonly state: string }>
}

export class NvmeCliError extends Data.TaggedError("NvmeCliError")<{
  readonly reason: "Timeout" | "Failed" | "NotInstalled" | "UnknownOutput" | "Unreachable"
  readonly command: string
  readonly exitCode: number | undefined
  readonly detail: string
}> {
  override get message(): string {
    return `${this.command}: ${this.reason}${this.exitCode === undefined ? "" : ` (exit ${this.exitCode})`}: ${this.detail}`
  }
}

export class NvmeCli extends Context.Service<NvmeCli, {
  /** `nvme connect -t tcp ...`; an existing connection to the same target is success. */
  readonly connect: (args: ConnectArgs) => Effect.Effect<void, NvmeCliError>
  /** `nvme disconnect -n NQN`: every controller of that subsystem. Nothing connected is success. */
  readonly disconnect: (nqn: Nqn) => Effect.Effect<void, NvmeCliError>
  /** `nvme disconnect -d nvmeX`: one controller. Already gone is success. */
  readonly disconnectController: (name: string) => Effect.Effect<void, NvmeCliError>
  /** `nvme list-subsys -o json`, decoded; an unknown shape is UnknownOutput, not a crash. */
  readonly listSubsystems: Effect.Effect<ReadonlyArray<SubsystemListing>, NvmeCliError>
  /** `nvme version`: the first line, e.g. `nvme version 2.3`. */
  readonly version: Effect.Effect<string, NvmeCliError>
  /** Whether `nvme` is there to run (found on PATH), without starting it: the first Probe's check. */
  readonly installed: Effect.Effect<boolean>
}>()("rds-csi/nvme/NvmeCli") {}
