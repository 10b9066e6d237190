/**
 * Where the emulator's disks become real (or not): the interpreter decides, as a list of
 * Actions, what a command changes; a Backend carries the actions out. MemoryBackend does
 * nothing (the state is all there is); NvmetBackend makes sparse files under a storage root
 * and exports them with the Linux kernel's NVMe/TCP target (configfs).
 *
 * Every action is idempotent (the daemon may replay the state at start: `restore`).
 *
 * May import: effect, ./Model.
 */
import { Context, Data, type Effect } from "effect"
import type { DiskEntry, EmulatorState } from "./Model.ts"

/** One change to the world outside the state file. Paths are RouterOS file paths (`/storage-pool/...`). */
export type Action =
  | { readonly _tag: "CreateDirectory"; readonly path: string }
  | { readonly _tag: "RemoveDirectory"; readonly path: string }
  /** A new (sparse) file of `size` bytes; an existing one is truncated to `size`. */
  | { readonly _tag: "CreateFile"; readonly path: string; readonly size: number }
  /** Grow a file to `size` bytes. */
  | { readonly _tag: "ResizeFile"; readonly path: string; readonly size: number }
  | { readonly _tag: "RemoveFile"; readonly path: string }
  /** Make the NVMe/TCP export match `disk` (create it, or update its allowed hosts / port). */
  | { readonly _tag: "Export"; readonly disk: DiskEntry }
  /** Tell connected initiators the namespace's size changed. */
  | { readonly _tag: "Revalidate"; readonly disk: DiskEntry }
  /** Remove the export of `disk` (its file stays). */
  | { readonly _tag: "Unexport"; readonly disk: DiskEntry }

/** A backend could not do what a command needed (the command fails with `failure: <detail>`). */
export class BackendError extends Data.TaggedError("BackendError")<{
  readonly reason: "Io" | "Configfs" | "Setup"
  readonly path: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.detail}${this.path === "" ? "" : ` (${this.path})`}`
  }
}

/** The emulator itself could not start or keep running (state file, ports, keys, sshd). */
export class EmulatorError extends Data.TaggedError("EmulatorError")<{
  readonly reason: "StateFile" | "Listen" | "Keys" | "Sshd" | "Options" | "Backend"
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

export class Backend extends Context.Service<Backend, {
  readonly kind: "memory" | "nvmet"
  /** Carries out one action. */
  readonly apply: (action: Action) => Effect.Effect<void, BackendError>
  /** At start: make the world match a loaded state (files exist, exports are up). */
  readonly restore: (state: EmulatorState) => Effect.Effect<void, BackendError>
}>()("rds-csi/emulator/Backend") {}
