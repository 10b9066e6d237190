/**
 * NodeSettings: the node plugin's effective configuration as every service sees it, already
 * validated. Config.ts reads it from flags and environment; tests build it with `testSettings`.
 *
 * May import: domain.
 */
import { Context, Duration, Layer } from "effect"
import type { NodeId } from "./domain/Ids.ts"

export interface NodeSettings {
  readonly driverName: string
  readonly nodeId: NodeId
  /** `unix:///path/csi.sock` as given, and the socket path. */
  readonly endpoint: string
  readonly stateDir: string
  readonly allowedPathRoots: ReadonlyArray<string>
  /** NQNs this plugin may disconnect when no volume uses them; undefined = orphan cleanup off. */
  readonly managedNqnPrefix: string | undefined
  readonly kubeconfig: string | undefined
  readonly events: boolean
  readonly metricsAddress: string | undefined
  readonly healthInterval: Duration.Duration
  /**
   * How often the health monitor re-reads only the `state` file of the staged volumes'
   * controllers between full passes, so a state change is acted on within this, not within
   * healthInterval. Zero turns the watch off.
   */
  readonly stateWatchInterval: Duration.Duration
  readonly orphanInterval: Duration.Duration
  readonly orphanDryRun: boolean
  readonly sysfsRoot: string
  readonly procRoot: string
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error"
  readonly hostNqn: string | undefined
  /**
   * The host NQN this node connects with, as NodeGetInfo reports it in node_id (`name,hostnqn`)
   * for the controller's fencing: --host-nqn, else /etc/nvme/hostnqn read at start.
   */
  readonly reportedHostNqn: string | undefined
  readonly hostId: string | undefined
  readonly maxVolumesPerNode: number
  /** Total time NodeStage may spend connecting (all attempts). */
  readonly connectTimeout: Duration.Duration
  /** How many connect attempts before NodeStage gives up. */
  readonly connectAttempts: number
  /** First delay between connect attempts; doubles each time, with jitter. */
  readonly connectBackoff: Duration.Duration
  /** Attempts of a stale-mount recovery before RecoveryFailed (backoff as for connects). */
  readonly recoveryAttempts: number
  /**
   * Stale-mount recoveries the health monitor runs at once (each may take attempts × the connect
   * timeout against a target that is gone).
   */
  readonly recoveryConcurrency: number
  /**
   * After a recovery, delete the pods that still hold the old mount (private propagation), so
   * their controller recreates them on the recovered volume. Off by default: a Warning event on
   * each such pod and the VolumeCondition say so instead. Bare pods are never deleted.
   */
  readonly restartPodsOnRecovery: boolean
  /** Bound on waiting for the namespace block device to appear after a connect. */
  readonly deviceWaitTimeout: Duration.Duration
  /** Per-command timeout for nvme-cli and the mount tools (mkfs gets more). */
  readonly commandTimeout: Duration.Duration
  readonly version: string
}

export class Settings extends Context.Service<Settings, NodeSettings>()("rds-csi/Settings") {
  static readonly layer = (settings: NodeSettings): Layer.Layer<Settings> => Layer.succeed(Settings, settings)
}

export const DEFAULTS = {
  driverName: "rds.csi.srvlab.io",
  stateDir: "/var/lib/kubelet/plugins/rds.csi.srvlab.io/state",
  allowedPathRoots: ["/var/lib/kubelet"],
  events: true,
  healthInterval: Duration.seconds(2),
  stateWatchInterval: Duration.millis(100),
  orphanInterval: Duration.minutes(5),
  sysfsRoot: "/sys",
  procRoot: "/proc",
  logLevel: "info",
  maxVolumesPerNode: 0,
  connectTimeout: Duration.seconds(30),
  connectAttempts: 5,
  connectBackoff: Duration.millis(500),
  recoveryAttempts: 3,
  recoveryConcurrency: 4,
  deviceWaitTimeout: Duration.seconds(15),
  commandTimeout: Duration.seconds(30)
} as const

/** Settings for tests: every default, with the given overrides. */
export const testSettings = (overrides: Partial<NodeSettings> = {}): NodeSettings => ({
  driverName: DEFAULTS.driverName,
  nodeId: "node-1" as NodeId,
  endpoint: "unix:///tmp/csi.sock",
  stateDir: "/var/lib/rds-csi-test",
  allowedPathRoots: ["/var/lib/kubelet"],
  managedNqnPrefix: "nqn.2000-02.com.mikrotik:",
  kubeconfig: undefined,
  events: false,
  metricsAddress: undefined,
  healthInterval: DEFAULTS.healthInterval,
  stateWatchInterval: DEFAULTS.stateWatchInterval,
  orphanInterval: DEFAULTS.orphanInterval,
  orphanDryRun: false,
  restartPodsOnRecovery: false,
  sysfsRoot: "/sys",
  procRoot: "/proc",
  logLevel: "info",
  hostNqn: undefined,
  reportedHostNqn: undefined,
  hostId: undefined,
  maxVolumesPerNode: 0,
  connectTimeout: Duration.seconds(10),
  connectAttempts: 3,
  connectBackoff: Duration.millis(1),
  recoveryAttempts: 3,
  recoveryConcurrency: DEFAULTS.recoveryConcurrency,
  deviceWaitTimeout: Duration.seconds(5),
  commandTimeout: Duration.seconds(10),
  version: "0.0.0-test",
  ...overrides
})
