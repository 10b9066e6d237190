/**
 * The options of `rds-csi node` as data: each flag's name, environment variable, kind, default
 * and description, in one table. Two readers share it: CliFlags.ts turns it into the effect/cli
 * flags (help, errors, the other commands), NodeArgs.ts reads the plain command lines the
 * DaemonSet gives on the start-up path without loading the CLI library (seconds under emulation,
 * issue 12). Precedence: flag, then environment variable, then default.
 *
 * May import: Settings.
 */
import { Duration, type Option } from "effect"
import { DEFAULTS } from "./Settings.ts"

interface Described {
  /** The flag without its dashes. */
  readonly name: string
  /** The environment variable read when the flag is absent (an empty one counts as absent). */
  readonly env: string
  readonly description: string
}
/** A string; no default = required. */
export interface TextOption extends Described {
  readonly kind: "text"
  readonly fallback?: string
}
/** A string that may be unset (`Option.none`). */
export interface OptionalOption extends Described {
  readonly kind: "optional"
}
export interface BooleanOption extends Described {
  readonly kind: "boolean"
  readonly fallback: boolean
}
export interface IntOption extends Described {
  readonly kind: "int"
  readonly fallback: number
}
/** Given any number of times; its environment variable (comma-separated) is read by the validation, not here. */
export interface RepeatedOption extends Described {
  readonly kind: "repeated"
  /** The default as the help states it. */
  readonly fallbackText: string
}
export type NodeOption = TextOption | OptionalOption | BooleanOption | IntOption | RepeatedOption

/** What an option parses to. */
export type ValueOf<O extends NodeOption> = O extends TextOption ? string
  : O extends OptionalOption ? Option.Option<string>
  : O extends BooleanOption ? boolean
  : O extends IntOption ? number
  : ReadonlyArray<string>

const fmt = (d: Duration.Duration) => Duration.format(d)

/** The options of `rds-csi node`, in the order the help lists them. */
export const NODE_OPTIONS = {
  endpoint: { kind: "text", name: "endpoint", env: "CSI_ENDPOINT", description: "CSI endpoint kubelet connects to, unix:///path/csi.sock." },
  nodeId: { kind: "text", name: "node-id", env: "NODE_ID", description: "This node's name in Kubernetes (NodeGetInfo node_id; Node events)." },
  driverName: { kind: "text", name: "driver-name", env: "DRIVER_NAME", description: "CSI driver name reported by GetPluginInfo.", fallback: DEFAULTS.driverName },
  stateDir: { kind: "text", name: "state-dir", env: "STATE_DIR", description: "Directory for the per-volume stage records (survive restarts).", fallback: DEFAULTS.stateDir },
  allowedPathRoots: {
    kind: "repeated",
    name: "allowed-path-root",
    env: "ALLOWED_PATH_ROOTS",
    description: "Directory under which staging and target paths must lie; repeat for several (env: comma-separated).",
    fallbackText: DEFAULTS.allowedPathRoots.join(",")
  },
  managedNqnPrefix: {
    kind: "optional",
    name: "managed-nqn-prefix",
    env: "MANAGED_NQN_PREFIX",
    description:
      "NQN prefix of the connections this plugin manages: only these are staged, disconnected or cleaned as orphans; unset turns orphan cleanup off."
  },
  kubeconfig: { kind: "optional", name: "kubeconfig", env: "KUBECONFIG", description: "Kubeconfig file for the API server; unset means in-cluster configuration." },
  events: { kind: "boolean", name: "events", env: "EVENTS", description: "Post Kubernetes Events on PVCs and the Node.", fallback: DEFAULTS.events },
  metricsAddress: {
    kind: "optional",
    name: "metrics-address",
    env: "METRICS_ADDRESS",
    description: "HOST:PORT for /metrics, /healthz and /readyz; unset disables the HTTP endpoint."
  },
  healthInterval: {
    kind: "text",
    name: "health-interval",
    env: "HEALTH_INTERVAL",
    description: "How often the health monitor reads each staged volume's state.",
    fallback: fmt(DEFAULTS.healthInterval)
  },
  stateWatchInterval: {
    kind: "text",
    name: "state-watch-interval",
    env: "STATE_WATCH_INTERVAL",
    description:
      "How often the health monitor re-reads the state of the staged volumes' NVMe controllers between its full passes (a change triggers a pass at once); 0 turns this off.",
    fallback: fmt(DEFAULTS.stateWatchInterval)
  },
  orphanInterval: {
    kind: "text",
    name: "orphan-interval",
    env: "ORPHAN_INTERVAL",
    description: "How often the orphan reconciler looks for unused managed connections.",
    fallback: fmt(DEFAULTS.orphanInterval)
  },
  orphanDryRun: { kind: "boolean", name: "orphan-dry-run", env: "ORPHAN_DRY_RUN", description: "Report orphan connections without disconnecting them.", fallback: false },
  restartPodsOnRecovery: {
    kind: "boolean",
    name: "restart-pods-on-recovery",
    env: "RESTART_PODS_ON_RECOVERY",
    description:
      "After a stale-mount recovery, delete the controller-owned pods that still hold the old mount (private mount propagation) so they come back on the recovered volume. Off: a Warning event on each such pod says so.",
    fallback: false
  },
  sysfsRoot: { kind: "text", name: "sysfs-root", env: "SYSFS_ROOT", description: "Where the host's sysfs is mounted.", fallback: DEFAULTS.sysfsRoot },
  procRoot: {
    kind: "text",
    name: "proc-root",
    env: "PROC_ROOT",
    description: "Where the host's /proc is mounted (in-use checks need the host's PID namespace).",
    fallback: DEFAULTS.procRoot
  },
  hostNqn: { kind: "optional", name: "host-nqn", env: "HOST_NQN", description: "Host NQN for nvme connect; unset lets nvme-cli use /etc/nvme/hostnqn." },
  hostId: { kind: "optional", name: "host-id", env: "HOST_ID", description: "Host ID for nvme connect; unset lets nvme-cli use /etc/nvme/hostid." },
  maxVolumesPerNode: {
    kind: "int",
    name: "max-volumes-per-node",
    env: "MAX_VOLUMES_PER_NODE",
    description: "NodeGetInfo max_volumes_per_node; 0 = no limit.",
    fallback: DEFAULTS.maxVolumesPerNode
  },
  connectTimeout: {
    kind: "text",
    name: "connect-timeout",
    env: "CONNECT_TIMEOUT",
    description: "Time NodeStage may spend connecting, all attempts together.",
    fallback: fmt(DEFAULTS.connectTimeout)
  },
  connectAttempts: {
    kind: "int",
    name: "connect-attempts",
    env: "CONNECT_ATTEMPTS",
    description: "nvme connect attempts per NodeStage (exponential backoff with jitter).",
    fallback: DEFAULTS.connectAttempts
  },
  recoveryConcurrency: {
    kind: "int",
    name: "recovery-concurrency",
    env: "RECOVERY_CONCURRENCY",
    description: "Stale-mount recoveries the health monitor runs at once (an outage of a whole target recovers its volumes in parallel).",
    fallback: DEFAULTS.recoveryConcurrency
  },
  commandTimeout: {
    kind: "text",
    name: "command-timeout",
    env: "COMMAND_TIMEOUT",
    description: "Timeout of each nvme-cli and mount tool call (mkfs gets four times as much).",
    fallback: fmt(DEFAULTS.commandTimeout)
  }
} as const satisfies Record<string, NodeOption>

export type NodeOptions = typeof NODE_OPTIONS
/** The parsed command line of `rds-csi node`, before validation (Config.toSettings). */
export type Parsed = { readonly [K in keyof NodeOptions]: ValueOf<NodeOptions[K]> }
