/**
 * ControllerSettings: `rds-csi controller`'s effective configuration, validated
 * (ControllerConfig.ts reads it from flags and environment; tests build it with
 * `testControllerSettings`). The defaults every StorageClass inherits live here too.
 *
 * May import: domain, rds/Commands (types), effect.
 */
import { Context, Duration, Layer } from "effect"
import type { RosPath } from "../rds/Commands.ts"

/** Per-class values: the controller's flags, overridden by StorageClass parameters (the Go driver's keys). */
export interface ClassDefaults {
  readonly volumePath: RosPath
  /** The address nodes connect to (IP literal). */
  readonly nvmeAddress: string
  readonly nvmePort: number
  /** Passed through to the node in volume_context when set. */
  readonly ctrlLossTmo: number | undefined
  readonly reconnectDelay: number | undefined
  readonly keepAliveTmo: number | undefined
}

export interface ControllerSettings {
  readonly driverName: string
  readonly version: string
  readonly endpoint: string
  readonly rdsHost: string
  readonly rdsPort: number
  readonly rdsUser: string
  readonly sshKeyFile: string
  /** The pinned host key file; undefined only with insecureSkipHostKeyCheck. */
  readonly hostKeyFile: string | undefined
  readonly insecureSkipHostKeyCheck: boolean
  readonly defaults: ClassDefaults
  /** NQN of a volume = prefix + its name. */
  readonly nqnPrefix: string
  readonly commandTimeout: Duration.Duration
  /** Exec channels at once on the SSH connection. */
  readonly sshChannels: number
  readonly kubeconfig: string | undefined
  readonly metricsAddress: string | undefined
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error"
  /** Size of a volume created without capacity_range. */
  readonly defaultVolumeBytes: number
}

export class ControllerConfig extends Context.Service<ControllerConfig, ControllerSettings>()("rds-csi/controller/ControllerConfig") {
  static readonly layer = (settings: ControllerSettings): Layer.Layer<ControllerConfig> => Layer.succeed(ControllerConfig, settings)
}

export const CONTROLLER_DEFAULTS = {
  rdsUser: "admin",
  rdsPort: 22,
  volumePath: "/storage-pool/k8s",
  nvmePort: 4420,
  nqnPrefix: "nqn.2000-02.com.mikrotik:",
  commandTimeout: Duration.seconds(30),
  sshChannels: 4,
  defaultVolumeBytes: 1024 ** 3
} as const

/** Settings for tests: every default, with the given overrides. */
export const testControllerSettings = (overrides: Partial<ControllerSettings> = {}): ControllerSettings => ({
  driverName: "rds.csi.srvlab.io",
  version: "0.0.0-test",
  endpoint: "unix:///tmp/controller.sock",
  rdsHost: "127.0.0.1",
  rdsPort: 22,
  rdsUser: "admin",
  sshKeyFile: "/dev/null",
  hostKeyFile: undefined,
  insecureSkipHostKeyCheck: true,
  defaults: {
    volumePath: CONTROLLER_DEFAULTS.volumePath as RosPath,
    nvmeAddress: "10.0.0.1",
    nvmePort: 4420,
    ctrlLossTmo: undefined,
    reconnectDelay: undefined,
    keepAliveTmo: undefined
  },
  nqnPrefix: CONTROLLER_DEFAULTS.nqnPrefix,
  commandTimeout: Duration.seconds(5),
  sshChannels: 4,
  kubeconfig: undefined,
  metricsAddress: undefined,
  logLevel: "info",
  defaultVolumeBytes: CONTROLLER_DEFAULTS.defaultVolumeBytes,
  ...overrides
})
