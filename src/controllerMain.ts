/**
 * Composition root of `rds-csi controller`: reads the SSH key and the pinned host key, builds
 * the RDS client (one SSH connection), the volume use cases and the CSI edge (Identity +
 * Controller on the same gRPC server code as the node), plus /metrics, /healthz and /readyz.
 * Runs until interrupted; closing the scope stops accepting RPCs, lets in-flight ones finish
 * (bounded), closes the SSH connection and removes the socket.
 *
 * May import: everything.
 */
import { Data, Duration, Effect, Layer, Schedule } from "effect"
import * as Fs from "node:fs/promises"
import { ControllerConfig, type ControllerSettings } from "./controller/ControllerSettings.ts"
import { describeControllerSettings } from "./controller/ControllerFlags.ts"
import { Volumes } from "./controller/Volumes.ts"
import { ControllerIdentityService, ControllerService } from "./csi/ControllerService.ts"
import type { Handler } from "./csi/Rpc.ts"
import { serve } from "./csi/Server.ts"
import { VolumeLocks } from "./node/VolumeLocks.ts"
import * as HttpEndpoints from "./observability/HttpEndpoints.ts"
import * as Logging from "./observability/Logging.ts"
import { printSystem } from "./rds/Commands.ts"
import { RdsClient } from "./rds/RdsClient.ts"
import * as RdsClientSsh from "./rds/RdsClientSsh.ts"

/** A key file that cannot be used; the message names the flag. */
export class KeyFileError extends Data.TaggedError("KeyFileError")<{ readonly flag: string; readonly detail: string }> {
  override get message(): string {
    return `${this.flag}: ${this.detail}`
  }
}

const readKey = (file: string, flag: string) =>
  Effect.tryPromise({
    try: () => Fs.readFile(file),
    catch: (e) => new KeyFileError({ flag, detail: `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}` })
  })

/** The SSH options from the settings: the key files read, the host key parsed. */
export const sshOptions = (settings: ControllerSettings) =>
  Effect.gen(function*() {
    const privateKey = yield* readKey(settings.sshKeyFile, "--rds-ssh-key")
    if (!/PRIVATE KEY-----/.test(privateKey.toString("utf8"))) {
      return yield* new KeyFileError({ flag: "--rds-ssh-key", detail: `${settings.sshKeyFile} is not a private key (expected an OpenSSH or PEM '-----BEGIN … PRIVATE KEY-----' file)` })
    }
    let hostKey: Buffer | undefined
    if (settings.hostKeyFile !== undefined) {
      hostKey = RdsClientSsh.parsePublicKey((yield* readKey(settings.hostKeyFile, "--rds-host-key")).toString("utf8"))
      if (hostKey === undefined) {
        return yield* new KeyFileError({ flag: "--rds-host-key", detail: `${settings.hostKeyFile} holds no public key ('ssh-ed25519 AAAA…' or a known_hosts line)` })
      }
    }
    return {
      host: settings.rdsHost,
      port: settings.rdsPort,
      user: settings.rdsUser,
      privateKey,
      hostKey,
      commandTimeout: settings.commandTimeout,
      maxChannels: settings.sshChannels,
      attempts: 3
    } satisfies RdsClientSsh.SshOptions
  })

type ControllerContext = Volumes | ControllerConfig | RdsClient

/** The controller's services over an RDS client (tests pass one over the emulator). */
export const controllerServices = (settings: ControllerSettings, rds: Layer.Layer<RdsClient>): Layer.Layer<ControllerContext> =>
  Volumes.layer.pipe(Layer.provideMerge(Layer.mergeAll(rds, VolumeLocks.layer, ControllerConfig.layer(settings))))

/** Serves Identity + Controller on the settings' endpoint for the life of the scope; returns the socket path. */
export const serveController = Effect.gen(function*() {
  const settings = yield* ControllerConfig
  return yield* serve<ControllerContext>(settings.endpoint, settings.driverName, [
    { service: "Identity", handlers: ControllerIdentityService as Record<string, Handler<ControllerContext>> },
    { service: "Controller", handlers: ControllerService as Record<string, Handler<ControllerContext>> }
  ], {})
})

const readiness = Effect.gen(function*() {
  const rds = yield* RdsClient
  return yield* rds.run(printSystem()).pipe(
    Effect.as({ ready: true, problems: [] as ReadonlyArray<string> }),
    Effect.catch((e) => Effect.succeed({ ready: false, problems: [e.message] }))
  )
})

/** Runs the controller until interrupted. */
export const runController = (settings: ControllerSettings): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* Effect.logInfo("rds-csi controller starting").pipe(Effect.annotateLogs({ config: describeControllerSettings(settings) }))
    const options = yield* sshOptions(settings)
    if (options.hostKey === undefined) yield* Effect.logWarning("the RDS host key is NOT checked (--rds-insecure-skip-host-key-check)")
    const services = controllerServices(settings, RdsClientSsh.layer(options))
    yield* Effect.gen(function*() {
      const rds = yield* RdsClient
      const ctx = yield* Effect.context<RdsClient>()
      yield* Layer.build(HttpEndpoints.layerFor(settings.metricsAddress, Effect.provide(readiness, ctx)))
      yield* serveController
      // The volumes-by-state gauge between ListVolumes calls: one print a minute.
      const volumes = yield* Volumes
      yield* volumes.list.pipe(Effect.ignore, Effect.repeat(Schedule.spaced(Duration.minutes(1))), Effect.forkScoped)
      yield* Effect.logInfo("rds-csi controller ready").pipe(Effect.annotateLogs({ rds: rds.describe }))
      return yield* Effect.never
    }).pipe(Effect.scoped, Effect.provide(services))
  }).pipe(
    Effect.provide(Logging.layer(settings)),
    Effect.catchCause((cause) =>
      Effect.logFatal("rds-csi controller stopped on an error", cause).pipe(
        Effect.andThen(Effect.sync(() => {
          process.exitCode = 1
        })),
        Effect.provide(Logging.layer(settings))
      )
    )
  )
