/**
 * Configuration of the node plugin: the validation that turns the parsed options (NodeOptions.ts:
 * every flag, its environment variable, its default and what it is for) into NodeSettings
 * (SPEC §5), and the value parsers the controller's flags share.
 *
 * May import: domain, NodeOptions, Settings.
 */
import { Duration, Option, Result } from "effect"
import * as Path from "node:path"
import { InvalidArgument } from "./domain/Errors.ts"
import { nodeId, nqn, optionSafe } from "./domain/Ids.ts"
import type { Parsed } from "./NodeOptions.ts"
import { DEFAULTS, type NodeSettings } from "./Settings.ts"

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const

/** `500ms`, `2s`, `5m`, `1h` (also Duration.format's output, e.g. `2s`), at least 1 ms. */
export const parseDuration = (value: string, field: string): Result.Result<Duration.Duration, InvalidArgument> => {
  const compact = value.replaceAll(" ", "")
  const m = DURATION.exec(compact)
  if (m === null) return Result.fail(new InvalidArgument({ field, rule: `must be a duration like 500ms, 2s, 5m or 1h (got '${value}')` }))
  const ms = Number(m[1]) * UNITS[m[2] as keyof typeof UNITS]
  if (ms < 1) return Result.fail(new InvalidArgument({ field, rule: "must be at least 1ms" }))
  return Result.succeed(Duration.millis(ms))
}

/** A polling interval that `0` turns off: `0`, or a duration of at least 10ms (a shorter poll is a busy loop). */
export const parseInterval = (value: string, field: string): Result.Result<Duration.Duration, InvalidArgument> => {
  if (/^0+(\.0+)?(ms|s|m|h)?$/.test(value.replaceAll(" ", ""))) return Result.succeed(Duration.zero)
  const d = parseDuration(value, field)
  if (Result.isSuccess(d) && Duration.toMillis(d.success) < 10) {
    return Result.fail(new InvalidArgument({ field, rule: `must be 0 (off) or at least 10ms (got '${value}')` }))
  }
  return d
}

export const absoluteDir = (value: string, field: string): Result.Result<string, InvalidArgument> => {
  if (!Path.posix.isAbsolute(value)) return Result.fail(new InvalidArgument({ field, rule: `must be an absolute path (got '${value}')` }))
  const n = Path.posix.normalize(value)
  return Result.succeed(n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n)
}

export const optional = (o: Option.Option<string>): string | undefined => Option.isSome(o) && o.value !== "" ? o.value : undefined

const HOST_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

// Both go to `nvme connect` and from there into the kernel's connect option string.
const hostNqn = (value: string | undefined): Result.Result<string | undefined, InvalidArgument> =>
  value === undefined ? Result.succeed(undefined) : nqn(value, "--host-nqn")

const hostId = (value: string | undefined): Result.Result<string | undefined, InvalidArgument> => {
  if (value === undefined) return Result.succeed(undefined)
  const safe = optionSafe(value, "--host-id")
  if (Result.isFailure(safe)) return safe
  return HOST_ID.test(value)
    ? Result.succeed(value)
    : Result.fail(new InvalidArgument({ field: "--host-id", rule: `must be a UUID (8-4-4-4-12 hex digits), like /etc/nvme/hostid (got '${value}')` }))
}

/** Validates parsed flags into NodeSettings; every error names the flag and the rule. */
export const toSettings = (p: Parsed, version: string, env: Readonly<Record<string, string | undefined>>): Result.Result<NodeSettings, InvalidArgument> =>
  Result.gen(function*() {
    if (!p.endpoint.startsWith("unix://") || p.endpoint.length <= "unix://".length) {
      return yield* Result.fail(new InvalidArgument({ field: "--endpoint", rule: `must be unix:///absolute/path (got '${p.endpoint}')` }))
    }
    yield* absoluteDir(p.endpoint.slice("unix://".length), "--endpoint")
    const id = yield* nodeId(p.nodeId, "--node-id")
    const rawRoots = p.allowedPathRoots.length > 0
      ? p.allowedPathRoots
      : (env["ALLOWED_PATH_ROOTS"]?.split(",").filter((r) => r.trim() !== "") ?? DEFAULTS.allowedPathRoots)
    const roots: Array<string> = []
    for (const r of rawRoots) roots.push(yield* absoluteDir(r.trim(), "--allowed-path-root"))
    const metricsAddress = optional(p.metricsAddress)
    if (metricsAddress !== undefined && !/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/.test(metricsAddress)) {
      return yield* Result.fail(new InvalidArgument({ field: "--metrics-address", rule: `must be HOST:PORT, e.g. 0.0.0.0:9810 (got '${metricsAddress}')` }))
    }
    if (p.maxVolumesPerNode < 0) return yield* Result.fail(new InvalidArgument({ field: "--max-volumes-per-node", rule: "must be 0 or more" }))
    if (p.connectAttempts < 1 || p.connectAttempts > 100) {
      return yield* Result.fail(new InvalidArgument({ field: "--connect-attempts", rule: "must be between 1 and 100" }))
    }
    const recoveryConcurrency = p.recoveryConcurrency
    if (!Number.isInteger(recoveryConcurrency) || recoveryConcurrency < 1) {
      return yield* Result.fail(new InvalidArgument({ field: "--recovery-concurrency", rule: "must be 1 or more" }))
    }
    const level = (env["LOG_LEVEL"] ?? "info").toLowerCase()
    const logLevel = (["trace", "debug", "info", "warn", "error"] as const).find((l) => l === level)
    if (logLevel === undefined) return yield* Result.fail(new InvalidArgument({ field: "LOG_LEVEL", rule: "must be one of trace, debug, info, warn, error" }))
    return {
      driverName: p.driverName,
      nodeId: id,
      endpoint: p.endpoint,
      stateDir: yield* absoluteDir(p.stateDir, "--state-dir"),
      allowedPathRoots: roots,
      managedNqnPrefix: optional(p.managedNqnPrefix),
      kubeconfig: optional(p.kubeconfig),
      events: p.events,
      metricsAddress,
      healthInterval: yield* parseDuration(p.healthInterval, "--health-interval"),
      stateWatchInterval: yield* parseInterval(p.stateWatchInterval, "--state-watch-interval"),
      orphanInterval: yield* parseDuration(p.orphanInterval, "--orphan-interval"),
      orphanDryRun: p.orphanDryRun,
      restartPodsOnRecovery: p.restartPodsOnRecovery,
      sysfsRoot: yield* absoluteDir(p.sysfsRoot, "--sysfs-root"),
      procRoot: yield* absoluteDir(p.procRoot, "--proc-root"),
      logLevel,
      hostNqn: yield* hostNqn(optional(p.hostNqn)),
      reportedHostNqn: yield* hostNqn(optional(p.hostNqn)),
      hostId: yield* hostId(optional(p.hostId)),
      maxVolumesPerNode: p.maxVolumesPerNode,
      connectTimeout: yield* parseDuration(p.connectTimeout, "--connect-timeout"),
      connectAttempts: p.connectAttempts,
      connectBackoff: DEFAULTS.connectBackoff,
      recoveryAttempts: DEFAULTS.recoveryAttempts,
      recoveryConcurrency,
      deviceWaitTimeout: DEFAULTS.deviceWaitTimeout,
      commandTimeout: yield* parseDuration(p.commandTimeout, "--command-timeout"),
      version
    } satisfies NodeSettings
  })

/** The effective configuration as a log line: everything but secrets (there are none yet). */
export const describeSettings = (s: NodeSettings): Record<string, unknown> => ({
  ...s,
  healthInterval: Duration.format(s.healthInterval),
  stateWatchInterval: Duration.format(s.stateWatchInterval),
  orphanInterval: Duration.format(s.orphanInterval),
  connectTimeout: Duration.format(s.connectTimeout),
  connectBackoff: Duration.format(s.connectBackoff),
  deviceWaitTimeout: Duration.format(s.deviceWaitTimeout),
  commandTimeout: Duration.format(s.commandTimeout)
})
