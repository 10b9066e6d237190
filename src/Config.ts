/**
 * Configuration of the node plugin: every flag, its environment variable, its default and what
 * it is for, in one place; and the validation that turns them into NodeSettings (SPEC §5).
 * Precedence: flag, then environment variable, then default.
 *
 * May import: domain, Settings.
 */
import { Config, Duration, Option, Result } from "effect"
import { Flag } from "effect/cli"
import * as Path from "node:path"
import { InvalidArgument } from "./domain/Errors.ts"
import { nodeId, nqn, optionSafe } from "./domain/Ids.ts"
import { DEFAULTS, type NodeSettings } from "./Settings.ts"

export const described = (description: string, env: string, fallback?: string) =>
  `${description} Env: ${env}.${fallback === undefined ? "" : ` Default: ${fallback}.`}`

export const text = (name: string, env: string, description: string, fallback: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(described(description, env, fallback)),
    Flag.withFallbackConfig(Config.String(env)),
    Flag.withDefault(fallback)
  )

export const optionalText = (name: string, env: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(described(description, env, "unset")),
    Flag.withFallbackConfig(Config.String(env)),
    Flag.optional
  )

export const flag = (name: string, env: string, description: string, fallback: boolean) =>
  Flag.Boolean(name).pipe(
    Flag.withDescription(described(description, env, String(fallback))),
    Flag.withFallbackConfig(Config.Boolean(env)),
    Flag.withDefault(fallback)
  )

const fmt = (d: Duration.Duration) => Duration.format(d)

/** The flags of `rds-csi node`. */
export const nodeFlags = {
  endpoint: Flag.String("endpoint").pipe(
    Flag.withDescription(described("CSI endpoint kubelet connects to, unix:///path/csi.sock.", "CSI_ENDPOINT")),
    Flag.withFallbackConfig(Config.String("CSI_ENDPOINT"))
  ),
  nodeId: Flag.String("node-id").pipe(
    Flag.withDescription(described("This node's name in Kubernetes (NodeGetInfo node_id; Node events).", "NODE_ID")),
    Flag.withFallbackConfig(Config.String("NODE_ID"))
  ),
  driverName: text("driver-name", "DRIVER_NAME", "CSI driver name reported by GetPluginInfo.", DEFAULTS.driverName),
  stateDir: text("state-dir", "STATE_DIR", "Directory for the per-volume stage records (survive restarts).", DEFAULTS.stateDir),
  allowedPathRoots: Flag.String("allowed-path-root").pipe(
    Flag.withDescription(described(
      "Directory under which staging and target paths must lie; repeat for several (env: comma-separated).",
      "ALLOWED_PATH_ROOTS",
      DEFAULTS.allowedPathRoots.join(",")
    )),
    Flag.atLeast(0)
  ),
  managedNqnPrefix: optionalText(
    "managed-nqn-prefix",
    "MANAGED_NQN_PREFIX",
    "NQN prefix of the connections this plugin manages: only these are staged, disconnected or cleaned as orphans; unset turns orphan cleanup off."
  ),
  kubeconfig: optionalText("kubeconfig", "KUBECONFIG", "Kubeconfig file for the API server; unset means in-cluster configuration."),
  events: flag("events", "EVENTS", "Post Kubernetes Events on PVCs and the Node.", DEFAULTS.events),
  metricsAddress: optionalText("metrics-address", "METRICS_ADDRESS", "HOST:PORT for /metrics, /healthz and /readyz; unset disables the HTTP endpoint."),
  healthInterval: text("health-interval", "HEALTH_INTERVAL", "How often the health monitor reads each staged volume's state.", fmt(DEFAULTS.healthInterval)),
  stateWatchInterval: text(
    "state-watch-interval",
    "STATE_WATCH_INTERVAL",
    "How often the health monitor re-reads the state of the staged volumes' NVMe controllers between its full passes (a change triggers a pass at once); 0 turns this off.",
    fmt(DEFAULTS.stateWatchInterval)
  ),
  orphanInterval: text("orphan-interval", "ORPHAN_INTERVAL", "How often the orphan reconciler looks for unused managed connections.", fmt(DEFAULTS.orphanInterval)),
  orphanDryRun: flag("orphan-dry-run", "ORPHAN_DRY_RUN", "Report orphan connections without disconnecting them.", false),
  restartPodsOnRecovery: flag(
    "restart-pods-on-recovery",
    "RESTART_PODS_ON_RECOVERY",
    "After a stale-mount recovery, delete the controller-owned pods that still hold the old mount (private mount propagation) so they come back on the recovered volume. Off: a Warning event on each such pod says so.",
    false
  ),
  sysfsRoot: text("sysfs-root", "SYSFS_ROOT", "Where the host's sysfs is mounted.", DEFAULTS.sysfsRoot),
  procRoot: text("proc-root", "PROC_ROOT", "Where the host's /proc is mounted (in-use checks need the host's PID namespace).", DEFAULTS.procRoot),
  hostNqn: optionalText("host-nqn", "HOST_NQN", "Host NQN for nvme connect; unset lets nvme-cli use /etc/nvme/hostnqn."),
  hostId: optionalText("host-id", "HOST_ID", "Host ID for nvme connect; unset lets nvme-cli use /etc/nvme/hostid."),
  maxVolumesPerNode: Flag.Int("max-volumes-per-node").pipe(
    Flag.withDescription(described("NodeGetInfo max_volumes_per_node; 0 = no limit.", "MAX_VOLUMES_PER_NODE", "0")),
    Flag.withFallbackConfig(Config.Int("MAX_VOLUMES_PER_NODE")),
    Flag.withDefault(DEFAULTS.maxVolumesPerNode)
  ),
  connectTimeout: text("connect-timeout", "CONNECT_TIMEOUT", "Time NodeStage may spend connecting, all attempts together.", fmt(DEFAULTS.connectTimeout)),
  connectAttempts: Flag.Int("connect-attempts").pipe(
    Flag.withDescription(described("nvme connect attempts per NodeStage (exponential backoff with jitter).", "CONNECT_ATTEMPTS", String(DEFAULTS.connectAttempts))),
    Flag.withFallbackConfig(Config.Int("CONNECT_ATTEMPTS")),
    Flag.withDefault(DEFAULTS.connectAttempts)
  ),
  recoveryConcurrency: Flag.Int("recovery-concurrency").pipe(
    Flag.withDescription(described(
      "Stale-mount recoveries the health monitor runs at once (an outage of a whole target recovers its volumes in parallel).",
      "RECOVERY_CONCURRENCY",
      String(DEFAULTS.recoveryConcurrency)
    )),
    Flag.withFallbackConfig(Config.Int("RECOVERY_CONCURRENCY")),
    Flag.withDefault(DEFAULTS.recoveryConcurrency)
  ),
  commandTimeout: text("command-timeout", "COMMAND_TIMEOUT", "Timeout of each nvme-cli and mount tool call (mkfs gets four times as much).", fmt(DEFAULTS.commandTimeout))
} as const

type FlagValue<F> = F extends Flag.Flag<infer A> ? A : never
type Flags = { readonly [K in keyof typeof nodeFlags]: FlagValue<(typeof nodeFlags)[K]> }
// --state-watch-interval may be absent: callers built before it existed (and their tests) get the default.
type Parsed = Flags

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
