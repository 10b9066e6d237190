/**
 * `rds-csi doctor`: checks that this node can run `rds-csi node` and says, for each problem,
 * exactly what to fix. Each check lives in its own file in this folder and asks through the
 * plugin's own live layers (NvmeCli, Sysfs, Mounter, KubeClient), so it sees what the plugin
 * would see. Exit code 1 when any required check fails, 0 otherwise (warnings included).
 *
 * May import: domain, nvme, mount, kube (the client-node layer only lazily), process, CliFlags,
 * Settings, ./*.
 */
import { Config, Console, Duration, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as os from "node:os"
import { nodeFlags } from "../CliFlags.ts"
import type { NodeId } from "../domain/Ids.ts"
import type { KubeClient, KubeError } from "../kube/KubeClient.ts"
import type { Mounter } from "../mount/Mounter.ts"
import { MounterLive } from "../mount/MounterLive.ts"
import type { NvmeCli } from "../nvme/NvmeCli.ts"
import { NvmeCliLive } from "../nvme/NvmeCliLive.ts"
import type { Sysfs } from "../nvme/Sysfs.ts"
import { SysfsLive } from "../nvme/SysfsLive.ts"
import { DEFAULTS, type NodeSettings, Settings } from "../Settings.ts"
import * as ApiAccess from "./ApiAccess.ts"
import { type CheckResult, type DoctorOptions, exitCode, render } from "./Check.ts"
import * as Fabrics from "./Fabrics.ts"
import * as HostNqn from "./HostNqn.ts"
import * as HostProc from "./HostProc.ts"
import * as KernelModule from "./KernelModule.ts"
import * as Kubelet from "./Kubelet.ts"
import { doctorControllerCommand } from "./Rds.ts"
import * as MountTools from "./MountTools.ts"
import * as SpawnHelper from "./SpawnHelper.ts"
import * as NvmeCliVersion from "./NvmeCliVersion.ts"
import * as StateDir from "./StateDir.ts"

export const DEFAULT_KUBELET_DIR = "/var/lib/kubelet"

/** Every check, in the order a person would fix them: kernel, tools, kubelet, files, API. */
export const runChecks = (
  options: DoctorOptions,
  kube: Layer.Layer<KubeClient, KubeError> | { readonly none: string }
): Effect.Effect<ReadonlyArray<CheckResult>, never, NvmeCli | Sysfs | Mounter> =>
  Effect.gen(function*() {
    return [
      yield* KernelModule.check(options),
      yield* Fabrics.check(options.sysfsRoot),
      yield* NvmeCliVersion.check,
      yield* HostNqn.check(options.hostNqnFile),
      yield* MountTools.check,
      yield* SpawnHelper.check,
      ...(yield* Kubelet.check(options)),
      yield* StateDir.check(options.stateDir),
      yield* HostProc.check(options.procRoot),
      yield* ApiAccess.check(kube)
    ]
  }).pipe(Effect.withSpan("Doctor.run"))

export { exitCode, render }

/** The live layers' settings: the plugin's defaults, with doctor's roots. */
export const settingsFor = (o: DoctorOptions, version: string): NodeSettings => ({
  driverName: o.driverName,
  nodeId: "doctor" as NodeId,
  endpoint: `unix://${o.kubeletDir}/plugins/${o.driverName}/csi.sock`,
  stateDir: o.stateDir,
  allowedPathRoots: [o.kubeletDir],
  managedNqnPrefix: undefined,
  kubeconfig: o.kubeconfig,
  events: false,
  metricsAddress: undefined,
  healthInterval: DEFAULTS.healthInterval,
  stateWatchInterval: DEFAULTS.stateWatchInterval,
  orphanInterval: DEFAULTS.orphanInterval,
  orphanDryRun: true,
  restartPodsOnRecovery: false,
  recoveryConcurrency: DEFAULTS.recoveryConcurrency,
  sysfsRoot: o.sysfsRoot,
  procRoot: o.procRoot,
  logLevel: "warn",
  hostNqn: undefined,
  reportedHostNqn: undefined,
  hostId: undefined,
  maxVolumesPerNode: 0,
  connectTimeout: DEFAULTS.connectTimeout,
  connectAttempts: DEFAULTS.connectAttempts,
  connectBackoff: DEFAULTS.connectBackoff,
  recoveryAttempts: DEFAULTS.recoveryAttempts,
  deviceWaitTimeout: DEFAULTS.deviceWaitTimeout,
  commandTimeout: o.timeout,
  version
})

/** The KubeClient to ask through: --kubeconfig, else in-cluster, else none (and why). client-node loads only here. */
export const kubeFor = (
  o: DoctorOptions,
  env: Readonly<Record<string, string | undefined>>
): Layer.Layer<KubeClient, KubeError> | { readonly none: string } => {
  const inCluster = (env["KUBERNETES_SERVICE_HOST"] ?? "") !== "" && (env["KUBERNETES_SERVICE_PORT"] ?? "") !== ""
  if (o.kubeconfig === undefined && !inCluster) return { none: "no --kubeconfig / KUBECONFIG and not in a cluster" }
  return Layer.unwrap(
    Effect.promise(() => import("../kube/KubeClientLive.ts")).pipe(
      Effect.map((m) => m.layer({ kubeconfig: o.kubeconfig, requestTimeout: o.timeout }))
    )
  )
}

/** Runs every check on this host through the live layers and prints the report; returns the exit code. */
export const runDoctor = (o: DoctorOptions, version: string): Effect.Effect<number> =>
  Effect.gen(function*() {
    const host = Layer.mergeAll(NvmeCliLive, SysfsLive, MounterLive).pipe(Layer.provide(Settings.layer(settingsFor(o, version))))
    const results = yield* runChecks(o, kubeFor(o, process.env)).pipe(Effect.provide(host))
    yield* Console.log(render(results, `rds-csi doctor ${version} on ${os.hostname()}: can this node run rds-csi node?`).trimEnd())
    return exitCode(results)
  })

const doctorFlags = {
  sysfsRoot: nodeFlags.sysfsRoot,
  procRoot: nodeFlags.procRoot,
  stateDir: nodeFlags.stateDir,
  kubeconfig: nodeFlags.kubeconfig,
  driverName: nodeFlags.driverName,
  kubeletDir: Flag.String("kubelet-dir").pipe(
    Flag.withDescription(`kubelet's root directory (its --root-dir). Env: KUBELET_DIR. Default: ${DEFAULT_KUBELET_DIR}.`),
    Flag.withFallbackConfig(Config.String("KUBELET_DIR")),
    Flag.withDefault(DEFAULT_KUBELET_DIR)
  )
} as const

/** `rds-csi doctor`, registered next to `node` in cli.ts. */
export const doctorCommand = (version: string) =>
  Command.make("doctor", doctorFlags, (f) =>
    Effect.gen(function*() {
      const options: DoctorOptions = {
        sysfsRoot: f.sysfsRoot,
        procRoot: f.procRoot,
        stateDir: f.stateDir,
        kubeletDir: f.kubeletDir,
        driverName: f.driverName,
        kubeconfig: Option.getOrUndefined(Option.filter(f.kubeconfig, (k) => k !== "")),
        hostNqnFile: "/etc/nvme/hostnqn",
        modprobe: "modprobe",
        timeout: Duration.seconds(10)
      }
      const code = yield* runDoctor(options, version)
      if (code !== 0) process.exitCode = code
    })).pipe(
      Command.withDescription(
        "Check this node's prerequisites for `rds-csi node` (nvme-tcp module, nvme-cli, sysfs, mount tools, kubelet dir and its mount propagation, state dir, API server access) and print what to fix. Exit code 1 when a required check fails."
      )
    ).pipe(Command.withSubcommands([doctorControllerCommand(version)]))
