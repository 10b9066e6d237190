/**
 * Configuration of `rds-csi controller`: every flag, its environment variable, its default and
 * what it is for, and the validation into ControllerSettings. Every error names the flag and the
 * rule. Precedence: flag, then environment variable, then default.
 *
 * May import: CliFlags (flag helpers), Config (value parsers), domain, rds/Commands, controller/ControllerSettings.
 */
import { Config, Duration, Result } from "effect"
import { Flag } from "effect/cli"
import { described, flag, optionalText, text } from "../CliFlags.ts"
import { absoluteDir, optional, parseDuration } from "../Config.ts"
import { InvalidArgument } from "../domain/Errors.ts"
import { nqn } from "../domain/Ids.ts"
import { targetAddress } from "../domain/Target.ts"
import { rosPath } from "../rds/Commands.ts"
import { DEFAULTS } from "../Settings.ts"
import { CONTROLLER_DEFAULTS, type ControllerSettings } from "./ControllerSettings.ts"

export const controllerFlags = {
  endpoint: Flag.String("endpoint").pipe(
    Flag.withDescription(described("CSI endpoint the sidecars connect to, unix:///path/csi.sock.", "CSI_ENDPOINT")),
    Flag.withFallbackConfig(Config.String("CSI_ENDPOINT"))
  ),
  driverName: text("driver-name", "DRIVER_NAME", "CSI driver name reported by GetPluginInfo.", DEFAULTS.driverName),
  rdsAddress: Flag.String("rds-address").pipe(
    Flag.withDescription(described("The RDS's SSH address, HOST[:PORT] (port 22 when omitted; IPv6 as [addr]:port).", "RDS_ADDRESS")),
    Flag.withFallbackConfig(Config.String("RDS_ADDRESS"))
  ),
  rdsUser: text("rds-user", "RDS_USER", "RouterOS user the controller logs in as (public-key authentication).", CONTROLLER_DEFAULTS.rdsUser),
  rdsSshKey: Flag.String("rds-ssh-key").pipe(
    Flag.withDescription(described("File with the SSH private key for the RDS user (OpenSSH or PEM, unencrypted). Never logged.", "RDS_SSH_KEY")),
    Flag.withFallbackConfig(Config.String("RDS_SSH_KEY"))
  ),
  rdsHostKey: optionalText(
    "rds-host-key",
    "RDS_HOST_KEY",
    "File with the RDS's public host key (`ssh-ed25519 AAAA…`, or a known_hosts line): the only key accepted. Required unless --rds-insecure-skip-host-key-check."
  ),
  rdsInsecureSkipHostKeyCheck: flag(
    "rds-insecure-skip-host-key-check",
    "RDS_INSECURE_SKIP_HOST_KEY_CHECK",
    "Accept any host key from the RDS (a man in the middle could then run commands as the controller). For first tries only.",
    false
  ),
  volumePath: text("volume-path", "VOLUME_PATH", "Directory on the RDS for the volumes' backing files (StorageClass parameter volumePath overrides).", CONTROLLER_DEFAULTS.volumePath),
  nvmeAddress: Flag.String("nvme-address").pipe(
    Flag.withDescription(described("IP address nodes connect to for NVMe/TCP (StorageClass parameter nvmeAddress overrides).", "NVME_ADDRESS")),
    Flag.withFallbackConfig(Config.String("NVME_ADDRESS"))
  ),
  nvmePort: Flag.Int("nvme-port").pipe(
    Flag.withDescription(described("NVMe/TCP port of the exports (StorageClass parameter nvmePort overrides).", "NVME_PORT", String(CONTROLLER_DEFAULTS.nvmePort))),
    Flag.withFallbackConfig(Config.Int("NVME_PORT")),
    Flag.withDefault(CONTROLLER_DEFAULTS.nvmePort)
  ),
  nqnPrefix: text("nqn-prefix", "NQN_PREFIX", "A volume's NQN is this prefix + its name; the node plugin's --managed-nqn-prefix should match.", CONTROLLER_DEFAULTS.nqnPrefix),
  commandTimeout: text("command-timeout", "COMMAND_TIMEOUT", "Timeout of each RouterOS command over SSH (connecting included).", Duration.format(CONTROLLER_DEFAULTS.commandTimeout)),
  kubeconfig: optionalText("kubeconfig", "KUBECONFIG", "Kubeconfig file for the API server; unset means in-cluster configuration."),
  metricsAddress: optionalText("metrics-address", "METRICS_ADDRESS", "HOST:PORT for /metrics, /healthz and /readyz; unset disables the HTTP endpoint."),
  logLevel: text("log-level", "LOG_LEVEL", "Minimum log level: trace, debug, info, warn or error.", "info")
} as const

type FlagValue<F> = F extends Flag.Flag<infer A> ? A : never
export type ControllerFlagValues = { readonly [K in keyof typeof controllerFlags]: FlagValue<(typeof controllerFlags)[K]> }

const fail = (field: string, rule: string) => Result.fail(new InvalidArgument({ field, rule }))

/** `host`, `host:port`, `[v6]`, `[v6]:port` → host and port. */
export const hostPort = (value: string, field: string): Result.Result<{ readonly host: string; readonly port: number }, InvalidArgument> => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(value)
  if (m === null) return fail(field, `must be HOST[:PORT] (a name or IPv4, or [IPv6]) (got '${value}')`)
  const port = m[3] === undefined ? CONTROLLER_DEFAULTS.rdsPort : Number(m[3])
  if (port < 1 || port > 65535) return fail(field, "port must be between 1 and 65535")
  return Result.succeed({ host: m[1] ?? m[2]!, port })
}

export const toControllerSettings = (p: ControllerFlagValues, version: string): Result.Result<ControllerSettings, InvalidArgument> =>
  Result.gen(function*() {
    if (!p.endpoint.startsWith("unix://") || p.endpoint.length <= "unix://".length) return yield* fail("--endpoint", `must be unix:///absolute/path (got '${p.endpoint}')`)
    yield* absoluteDir(p.endpoint.slice("unix://".length), "--endpoint")
    const rds = yield* hostPort(p.rdsAddress, "--rds-address")
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(p.rdsUser)) return yield* fail("--rds-user", "must be 1-64 of A-Z a-z 0-9 . _ -")
    const sshKeyFile = yield* absoluteDir(p.rdsSshKey, "--rds-ssh-key")
    const hostKey = optional(p.rdsHostKey)
    const hostKeyFile = hostKey === undefined ? undefined : yield* absoluteDir(hostKey, "--rds-host-key")
    if (hostKeyFile === undefined && !p.rdsInsecureSkipHostKeyCheck) {
      return yield* fail("--rds-host-key", "is required: pin the RDS's host key (ssh-keyscan -t ed25519 <rds>, checked on the RDS console), or pass --rds-insecure-skip-host-key-check")
    }
    const volumePath = yield* rosPath(p.volumePath, "--volume-path")
    const nvmeAddress = yield* targetAddress(p.nvmeAddress, "--nvme-address")
    if (p.nvmePort < 1 || p.nvmePort > 65535) return yield* fail("--nvme-port", "must be between 1 and 65535")
    const prefixCheck = yield* nqn(`${p.nqnPrefix}x`, "--nqn-prefix")
    if (!/^[A-Za-z0-9.:_-]+$/.test(p.nqnPrefix) || prefixCheck.length > 223 - 128) {
      return yield* fail("--nqn-prefix", "must be an NQN prefix of A-Z a-z 0-9 . : _ - leaving room for 128-character names")
    }
    const metricsAddress = optional(p.metricsAddress)
    if (metricsAddress !== undefined && !/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/.test(metricsAddress)) {
      return yield* fail("--metrics-address", `must be HOST:PORT, e.g. 0.0.0.0:9812 (got '${metricsAddress}')`)
    }
    const logLevel = (["trace", "debug", "info", "warn", "error"] as const).find((l) => l === p.logLevel.toLowerCase())
    if (logLevel === undefined) return yield* fail("--log-level", "must be one of trace, debug, info, warn, error")
    return {
      driverName: p.driverName,
      version,
      endpoint: p.endpoint,
      rdsHost: rds.host,
      rdsPort: rds.port,
      rdsUser: p.rdsUser,
      sshKeyFile,
      hostKeyFile,
      insecureSkipHostKeyCheck: p.rdsInsecureSkipHostKeyCheck,
      defaults: { volumePath, nvmeAddress, nvmePort: p.nvmePort, ctrlLossTmo: undefined, reconnectDelay: undefined, keepAliveTmo: undefined },
      nqnPrefix: p.nqnPrefix,
      commandTimeout: yield* parseDuration(p.commandTimeout, "--command-timeout"),
      sshChannels: CONTROLLER_DEFAULTS.sshChannels,
      kubeconfig: optional(p.kubeconfig),
      metricsAddress,
      logLevel,
      defaultVolumeBytes: CONTROLLER_DEFAULTS.defaultVolumeBytes
    } satisfies ControllerSettings
  })

/** The effective configuration for the start-up log: paths of the key files, never their content. */
export const describeControllerSettings = (s: ControllerSettings): Record<string, unknown> => ({ ...s, commandTimeout: Duration.format(s.commandTimeout) })
