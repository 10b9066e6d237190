/**
 * Doctor check: nvme-cli is installed and is 2.0 or newer (the JSON shapes and the "already
 * connected" behaviour NvmeCliLive relies on are nvme-cli 2.x's). Asks through the plugin's own
 * NvmeCli service, so it sees exactly the binary `rds-csi node` would run.
 *
 * May import: effect, nvme/NvmeCli, ./Check.ts.
 */
import { Effect } from "effect"
import type { NvmeCliError } from "../nvme/NvmeCli.ts"
import { NvmeCli } from "../nvme/NvmeCli.ts"
import { type CheckResult, fail, ok, warn } from "./Check.ts"

const NAME = "nvme-cli"
const INSTALL = "install nvme-cli 2.x (Debian 12+/Ubuntu 22.04+: apt-get install nvme-cli; RHEL 9: dnf install nvme-cli)"
export const MINIMUM = { major: 2, minor: 0 } as const

/** `nvme version 2.3 (git 2.3)` → {major: 2, minor: 3}; undefined when there is no version number. */
export const parseNvmeVersion = (line: string): { readonly major: number; readonly minor: number } | undefined => {
  const m = /nvme version v?(\d+)\.(\d+)/i.exec(line)
  return m === null ? undefined : { major: Number(m[1]), minor: Number(m[2]) }
}

/** Pure: the verdict from `nvme version`'s first line or the error running it. */
export const decideVersion = (answer: string | NvmeCliError): CheckResult => {
  if (typeof answer !== "string") {
    return answer.reason === "NotInstalled"
      ? fail(NAME, "nvme not found on PATH", INSTALL)
      : fail(NAME, `nvme version failed: ${answer.message}`, `fix or reinstall nvme-cli: ${INSTALL}`)
  }
  const v = parseNvmeVersion(answer)
  if (v === undefined) return warn(NAME, `cannot read a version from '${answer}'`, `check that nvme is nvme-cli 2.x: ${INSTALL}`)
  if (v.major < MINIMUM.major) return fail(NAME, `${answer}: older than ${MINIMUM.major}.${MINIMUM.minor}`, `upgrade: ${INSTALL}`)
  return ok(NAME, `${answer} (>= ${MINIMUM.major}.${MINIMUM.minor})`)
}

export const check: Effect.Effect<CheckResult, never, NvmeCli> = Effect.gen(function*() {
  const nvme = yield* NvmeCli
  const answer = yield* nvme.version.pipe(Effect.catch((e) => Effect.succeed(e)))
  return decideVersion(answer)
}).pipe(Effect.withSpan("Doctor.nvmeCli"))
