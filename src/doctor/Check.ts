/**
 * What a doctor check reports, and the options every check reads. A check gathers facts through
 * the plugin's own services (or the files under the configured roots) and decides one result:
 * OK, WARN (works, but look at this) or FAIL (rds-csi node will not work here), with the exact
 * fix for anything but OK. Checks never fail as Effects: a broken probe is itself a result.
 *
 * May import: effect.
 */
import type { Duration } from "effect"

export type Status = "ok" | "warn" | "fail"

export interface CheckResult {
  /** Short, fixed name of what was checked, e.g. `nvme-tcp module`. */
  readonly name: string
  readonly status: Status
  /** What was found, with the evidence (a path, a version, a tool's message). */
  readonly detail: string
  /** For WARN and FAIL: the commands or settings that fix it. */
  readonly fix: string | undefined
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail, fix: undefined })
export const warn = (name: string, detail: string, fix: string): CheckResult => ({ name, status: "warn", detail, fix })
export const fail = (name: string, detail: string, fix: string): CheckResult => ({ name, status: "fail", detail, fix })

/** Where to look: the subset of `rds-csi node`'s settings the checks need, plus the kubelet dir. */
export interface DoctorOptions {
  readonly sysfsRoot: string
  readonly procRoot: string
  readonly stateDir: string
  readonly kubeletDir: string
  readonly driverName: string
  /** A kubeconfig file; undefined = in-cluster when KUBERNETES_SERVICE_HOST/PORT are set, else no API check. */
  readonly kubeconfig: string | undefined
  /** The host NQN file nvme-cli reads (`/etc/nvme/hostnqn`). */
  readonly hostNqnFile: string
  /** The module probe command (tests point it at a script). */
  readonly modprobe: string
  /** Bound on every command and API request a check makes. */
  readonly timeout: Duration.Duration
}

/** One-line message of anything thrown by a file-system call. */
export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const LABEL = { ok: "OK", warn: "WARN", fail: "FAIL" } as const

/** The report as printed: one line per check, a `fix:` line under each WARN and FAIL, a summary. */
export const render = (
  results: ReadonlyArray<CheckResult>,
  header: string,
  verdict = { fail: "rds-csi node will not work on this node until the failures are fixed.", ok: "this node can run rds-csi node." }
): string => {
  const width = Math.max(...results.map((r) => r.name.length))
  const lines = [header]
  for (const r of results) {
    lines.push(`${LABEL[r.status].padEnd(4)}  ${r.name.padEnd(width)}  ${r.detail}`)
    if (r.fix !== undefined) lines.push(`${" ".repeat(8 + width)}fix: ${r.fix}`)
  }
  const n = (s: CheckResult["status"]) => results.filter((r) => r.status === s).length
  lines.push(
    `${n("ok")} ok, ${n("warn")} warning(s), ${n("fail")} failed: ` +
      (n("fail") > 0 ? verdict.fail : verdict.ok)
  )
  return lines.join("\n") + "\n"
}

/** 1 when any required check failed. */
export const exitCode = (results: ReadonlyArray<CheckResult>): number => (results.some((r) => r.status === "fail") ? 1 : 0)
