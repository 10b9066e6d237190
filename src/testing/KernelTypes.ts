/**
 * The vocabulary of the in-memory kernel model (KernelModel.ts): what a namespace holds, what
 * tests read back (views, the change log, the mkfs log), the faults they can inject, and the
 * errno-style error the model's "system calls" fail with. Pure types and small constructors.
 *
 * May import: domain, nvme and mount contracts (types only).
 */
import { Data } from "effect"
import type { ControllerState } from "../nvme/Sysfs.ts"

/** What the first blocks of a namespace say: nothing, a file system, or a partition table. */
export type Signature =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Filesystem"; readonly fsType: string; readonly uuid: string; readonly sizeBytes: number }
  | { readonly _tag: "PartitionTable"; readonly ptType: string; readonly uuid: string }

export const Signature = {
  empty: { _tag: "Empty" } as Signature,
  filesystem: (fsType: string, uuid: string, sizeBytes: number): Signature => ({ _tag: "Filesystem", fsType, uuid, sizeBytes }),
  partitionTable: (ptType: string, uuid = "0f6e1b3a-7d2c-4c55-9a61-2b9c3f1d4e5a"): Signature => ({ _tag: "PartitionTable", ptType, uuid })
} as const

/** A namespace a target exports. Its content lives here, so it survives reconnects and renumbering. */
export interface NamespaceSpec {
  readonly nsid: number
  readonly nguid?: string | undefined
  readonly uuid?: string | undefined
  readonly sizeBytes: number
  /** Default: Empty. A Filesystem's `sizeBytes` of 0 means "the namespace's size". */
  readonly signature?: Signature | undefined
  /** Files inside the file system, path → content ("data intact" checks compare these). */
  readonly files?: Readonly<Record<string, string>> | undefined
}

export interface NamespaceView {
  readonly nqn: string
  readonly nsid: number
  readonly nguid: string | undefined
  readonly uuid: string | undefined
  readonly sizeBytes: number
  readonly signature: Signature
  readonly files: Readonly<Record<string, string>>
}

/** Model-level controller state: the kernel's, plus `removed` once it is gone from sysfs. */
export type ModelControllerState = ControllerState | "removed"

export interface ControllerView {
  readonly name: string
  readonly instance: number
  readonly state: ModelControllerState
  readonly nqn: string
  readonly address: string
  readonly port: number
  readonly ctrlLossTmo: number
  readonly reconnectDelay: number
  readonly subsystem: string
}

export interface DeviceView {
  /** Kernel name: `nvme0n1` (head or non-multipath namespace) or the hidden path `nvme0c0n1`. */
  readonly name: string
  readonly devT: string
  readonly kind: "head" | "path" | "namespace"
  readonly nqn: string
  readonly nsid: number
  /** False once /dev and /sys/block no longer show it; it lives on while a mount holds it. */
  readonly present: boolean
  /** Mount points (and lazily detached, still held mounts) that keep it alive. */
  readonly heldBy: ReadonlyArray<string>
}

export interface SubsystemView {
  readonly name: string
  readonly nqn: string
  readonly instance: number
  readonly controllers: ReadonlyArray<string>
  readonly heads: ReadonlyArray<string>
}

export interface PortalView {
  readonly address: string
  readonly port: number
  readonly linkUp: boolean
  readonly exports: ReadonlyArray<string>
}

/** One line of the change log: `subject: change`, e.g. `nvme0: live -> connecting`. */
export interface LogEntry {
  readonly seq: number
  readonly what: "link" | "target" | "namespace" | "controller" | "subsystem" | "device" | "mount" | "path" | "mkfs" | "fault" | "host"
  readonly subject: string
  readonly change: string
}

/** Every mkfs call, formatted or not; a `formatted` one over a non-Empty `previous` or with `filesLost` destroyed data. */
export interface MkfsRecord {
  readonly seq: number
  readonly device: string
  readonly fsType: string
  readonly outcome: "formatted" | "failed"
  /** Why it failed (the tool's words), empty when formatted. */
  readonly detail: string
  /** The namespace behind the device; undefined when the call never reached one. */
  readonly nqn: string | undefined
  readonly nsid: number | undefined
  /** What was on the namespace before the call; undefined when it never reached one. */
  readonly previous: Signature | undefined
  /** Files destroyed by this call (0 unless formatted). */
  readonly filesLost: number
}

/** How the next blkid probes misbehave. `Exit` covers exit 1/4/8 and "exit 2 with output". */
export type BlkidFault =
  | { readonly _tag: "Exit"; readonly exitCode: number; readonly stdout: string; readonly stderr: string }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "Garbage" }

export const BlkidFault = {
  exit: (exitCode: number, stdout = "", stderr = `blkid: probing failed (exit ${exitCode})`): BlkidFault => ({ _tag: "Exit", exitCode, stdout, stderr }),
  timeout: { _tag: "Timeout" } as BlkidFault,
  garbage: { _tag: "Garbage" } as BlkidFault
} as const

export type Errno =
  | "ENOENT" | "EEXIST" | "ENOTDIR" | "EISDIR" | "ENOTEMPTY" | "EBUSY" | "EINVAL" | "EIO" | "EROFS"
  | "ETIMEDOUT" | "ECONNREFUSED" | "EHOSTUNREACH" | "EALREADY" | "ENODEV" | "ENOTBLK"

/** A model "system call" failed the way the kernel would; the test layers map it to contract errors. */
export class KernelError extends Data.TaggedError("KernelError")<{
  readonly errno: Errno
  readonly syscall: string
  readonly path: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.syscall} ${this.path}: ${this.errno}: ${this.detail}`
  }
}

/** Options of a fresh model. Native multipath is on in distribution kernels (nvme_core.multipath=Y). */
export interface KernelOptions {
  readonly multipath: boolean
}
