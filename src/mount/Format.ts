/**
 * The safe-format rule (SPEC §4.2): a device is formatted only when `blkid -p` proves it empty:
 * exit status 2 with no file system and no partition table reported. Every other outcome
 * (a signature, exit 1, 4 or 8, a timeout, output we do not understand) is an error, never
 * "unformatted". mkfs runs forced, so it also runs only on the block device that was probed: the
 * node's dev_t is read before the probe and again right before mkfs, and a difference (the name
 * renumbered onto another volume's disk) refuses. This file is the only caller of Mounter.mkfs.
 *
 * May import: domain, mount/Mounter.
 */
import { Data, Effect } from "effect"
import type { FsType } from "../domain/Volume.ts"
import { type MountError, Mounter, type ProbeOutput } from "./Mounter.ts"

export type ProbeVerdict =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Filesystem"; readonly fsType: string; readonly uuid: string | undefined }
  | { readonly _tag: "PartitionTable"; readonly ptType: string }
  | { readonly _tag: "Unknown"; readonly why: string }

/** Parses `KEY=value` lines of `blkid -o export`. */
export const parseExport = (stdout: string): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=")
    if (eq > 0) out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim())
  }
  return out
}

/** Pure: what a blkid result proves. Only exit 2 with nothing reported is Empty. */
export const classifyProbe = (out: ProbeOutput): ProbeVerdict => {
  const kv = parseExport(out.stdout)
  const type = kv.get("TYPE")
  const ptType = kv.get("PTTYPE")
  if (out.exitCode === 2) {
    // blkid also exits 2 when it cannot open the device: only a silent exit 2 proves emptiness.
    if (kv.size === 0 && out.stdout.trim() === "" && out.stderr.trim() === "") return { _tag: "Empty" }
    if (out.stderr.trim() !== "") return { _tag: "Unknown", why: `blkid exit 2 with an error: ${out.stderr.trim().slice(0, 200)}` }
    return { _tag: "Unknown", why: `blkid exit 2 but it reported ${out.stdout.trim().slice(0, 200)}` }
  }
  if (out.exitCode === 0) {
    if (ptType !== undefined) return { _tag: "PartitionTable", ptType }
    if (type !== undefined) return { _tag: "Filesystem", fsType: type, uuid: kv.get("UUID") }
    return { _tag: "Unknown", why: "blkid exit 0 without TYPE or PTTYPE" }
  }
  return { _tag: "Unknown", why: `blkid exit ${out.exitCode}: ${(out.stderr || out.stdout).trim().slice(0, 200)}` }
}

/** The device holds something other than the requested file system, cannot be proven empty, or is no longer the device that was probed. */
export class FormatRefused extends Data.TaggedError("FormatRefused")<{
  readonly device: string
  readonly reason: "PartitionTable" | "OtherFilesystem" | "NotProvenEmpty" | "DeviceChanged"
  readonly detail: string
  /** DeviceChanged: the dev_t the node had when it was probed (or was expected to have). */
  readonly probedDevT?: string | undefined
  /** DeviceChanged: the dev_t the node has now; undefined when it is no block device any more. */
  readonly currentDevT?: string | undefined
}> {
  override get message(): string {
    return `refusing to format ${this.device}: ${this.detail}`
  }
}

export type EnsureResult = { readonly formatted: boolean; readonly verdict: ProbeVerdict }

const devTText = (devT: string | undefined): string => devT ?? "no block device"

const deviceChanged = (device: string, probedDevT: string | undefined, currentDevT: string | undefined, when: string) =>
  new FormatRefused({
    device,
    reason: "DeviceChanged",
    detail: `${when} it was ${devTText(probedDevT)}, now it is ${devTText(currentDevT)} (renumbered onto another disk?)`,
    probedDevT,
    currentDevT
  })

/**
 * mkfs (forced) of `device`, only while its node is still the block device `probedDevT` that
 * blkid proved empty: the dev_t is read again immediately before mkfs.
 */
export const formatProbed = Effect.fn("Format.formatProbed")(function*(device: string, fsType: FsType, probedDevT: string | undefined) {
  const mounter = yield* Mounter
  const currentDevT = yield* mounter.deviceNumber(device)
  if (probedDevT === undefined || currentDevT !== probedDevT) {
    return yield* deviceChanged(device, probedDevT, currentDevT, "when probed")
  }
  yield* mounter.mkfs(device, fsType)
}) as (device: string, fsType: FsType, probedDevT: string | undefined) => Effect.Effect<void, FormatRefused | MountError, Mounter>

/** blkid's verdict on `device` and the dev_t its node had as the probe started. */
const probeWithDevT = Effect.fn("Format.probe")(function*(device: string, expectedDevT: string | undefined) {
  const mounter = yield* Mounter
  const devT = yield* mounter.deviceNumber(device)
  if (expectedDevT !== undefined && devT !== expectedDevT) return yield* deviceChanged(device, expectedDevT, devT, "when resolved")
  return { devT, verdict: classifyProbe(yield* mounter.probe(device)) }
})

/**
 * Makes sure `device` carries a `fsType` file system: keeps an existing one of that type,
 * formats a proven-empty device, refuses everything else. `expectedDevT` (the dev_t the device
 * was resolved to, when the caller knows it) must match the node before the probe too.
 */
export const ensureFilesystem = Effect.fn("Format.ensureFilesystem")(function*(device: string, fsType: FsType, expectedDevT?: string) {
  const { devT, verdict } = yield* probeWithDevT(device, expectedDevT)
  switch (verdict._tag) {
    case "Filesystem":
      if (verdict.fsType === fsType) return { formatted: false, verdict } satisfies EnsureResult
      return yield* new FormatRefused({
        device,
        reason: "OtherFilesystem",
        detail: `it already holds a ${verdict.fsType} file system, ${fsType} was requested`
      })
    case "PartitionTable":
      return yield* new FormatRefused({ device, reason: "PartitionTable", detail: `it holds a ${verdict.ptType} partition table` })
    case "Unknown":
      return yield* new FormatRefused({ device, reason: "NotProvenEmpty", detail: verdict.why })
    case "Empty": {
      yield* formatProbed(device, fsType, devT)
      return { formatted: true, verdict } satisfies EnsureResult
    }
  }
}) as (device: string, fsType: FsType, expectedDevT?: string) => Effect.Effect<EnsureResult, FormatRefused | MountError, Mounter>
