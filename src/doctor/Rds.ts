/**
 * `rds-csi doctor controller`: can this controller manage volumes on the RDS? Through the
 * controller's own SSH client (so it sees what the controller would see): the RDS answers over
 * SSH and shows the pinned host key, the volume path exists, a harmless print succeeds, the
 * pool's free space reads. Each failure says what to fix; the key itself is never printed.
 *
 * May import: rds/*, controller/*, controllerMain (sshOptions), doctor/Check.
 */
import { Console, Duration, Effect, References } from "effect"
import { Command } from "effect/cli"
import * as os from "node:os"
import { controllerFlags, toControllerSettings } from "../controller/ControllerFlags.ts"
import type { ControllerSettings } from "../controller/ControllerSettings.ts"
import * as Cmd from "../rds/Commands.ts"
import { RdsClient, type RdsError } from "../rds/RdsClient.ts"
import { fileOf, parseRecords, poolOf } from "../rds/RouterOsParser.ts"
import { type CheckResult, exitCode, fail, ok, render, warn } from "./Check.ts"

const fixFor = (e: RdsError, s: ControllerSettings): string => {
  if (e._tag === "RdsCommandFailed") return "see the RDS's message above; run the same command on the RDS console to compare"
  switch (e.reason) {
    case "HostKeyMismatch":
      return `the RDS presented another host key than ${s.hostKeyFile}: check the key on the RDS console (/ip ssh print) before replacing the pinned one; a changed key can be a man in the middle`
    case "AuthFailed":
      return `give the user '${s.rdsUser}' the public half of ${s.sshKeyFile} on the RDS (/user ssh-keys import public-key-file=… user=${s.rdsUser})`
    case "Timeout":
      return `the RDS did not answer within ${Duration.format(s.commandTimeout)}: check the address, routes and firewall to ${s.rdsHost}:${s.rdsPort}, or raise --command-timeout`
    case "Unreachable":
      return `check --rds-address (${s.rdsHost}:${s.rdsPort}), that SSH is enabled on the RDS (/ip service print) and that this pod may reach it`
  }
}

/** The controller checks over an RdsClient (tests give one over the emulator). */
export const rdsChecks = (s: ControllerSettings): Effect.Effect<ReadonlyArray<CheckResult>, never, RdsClient> =>
  Effect.gen(function*() {
    const rds = yield* RdsClient
    const results: Array<CheckResult> = []
    results.push(
      s.hostKeyFile === undefined
        ? warn("rds host key", "not checked (--rds-insecure-skip-host-key-check)", "pin it: ssh-keyscan -t ed25519 <rds> > host_key.pub, compare the fingerprint on the RDS console, pass --rds-host-key")
        : ok("rds host key", `pinned from ${s.hostKeyFile}`)
    )
    const system = yield* Effect.result(rds.run(Cmd.printSystem()))
    if (system._tag === "Failure") {
      results.push(fail("rds ssh", system.failure.message, fixFor(system.failure, s)))
      return results
    }
    const version = /^\s*version:\s*(.+)$/m.exec(system.success)?.[1]?.trim()
    results.push(ok("rds ssh", `${rds.describe} answers${version === undefined ? "" : `, RouterOS ${version}`}`))

    const path = s.defaults.volumePath
    const files = yield* Effect.result(rds.run(Cmd.printFile(path)))
    if (files._tag === "Failure") results.push(fail("rds volume path", files.failure.message, fixFor(files.failure, s)))
    else {
      const parsed = parseRecords(files.success)
      const dir = parsed._tag === "Success" ? parsed.success.map(fileOf).find((f) => f?.path === path) : undefined
      results.push(
        dir === undefined
          ? fail("rds volume path", `${path} does not exist on the RDS`, `create it on the RDS (Files, or /file add type=directory name=${path.slice(1)}), or point --volume-path at an existing directory`)
          : dir.type === "directory"
          ? ok("rds volume path", `${path} exists`)
          : fail("rds volume path", `${path} is a ${dir.type}, not a directory`, "point --volume-path at a directory")
      )
    }

    const pool = Cmd.poolOfPath(path)
    const space = yield* Effect.result(rds.run(Cmd.printPool(pool)))
    if (space._tag === "Failure") results.push(fail("rds pool", space.failure.message, fixFor(space.failure, s)))
    else {
      const parsed = parseRecords(space.success)
      const p = parsed._tag === "Success" ? parsed.success.map(poolOf).find((x) => x !== undefined) : undefined
      const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`
      results.push(
        p === undefined
          ? fail("rds pool", `no file system mounted at ${pool}`, `the first segment of --volume-path must be a mounted pool (/disk print detail where mount-point="${pool}")`)
          : p.freeBytes === 0
          ? warn("rds pool", `${pool}: ${gib(p.sizeBytes)}, nothing free`, "free space on the pool, or volumes cannot be created or grown")
          : ok("rds pool", `${pool}: ${gib(p.freeBytes)} free of ${gib(p.sizeBytes)}`)
      )
    }
    return results
  })

/** `rds-csi doctor controller`: the same flags and environment as `rds-csi controller`. */
export const doctorControllerCommand = (version: string) =>
  Command.make("controller", controllerFlags, (parsed) =>
    Effect.gen(function*() {
      const settings = toControllerSettings(parsed, version)
      if (settings._tag === "Failure") {
        process.stderr.write(`rds-csi doctor controller: ${settings.failure.message}\n`)
        process.exitCode = 2
        return
      }
      const s = settings.success
      // Loaded here, not at start-up: `rds-csi node` and the node's doctor never load ssh2.
      const { sshOptions } = yield* Effect.promise(() => import("../controllerMain.ts"))
      const RdsClientSsh = yield* Effect.promise(() => import("../rds/RdsClientSsh.ts"))
      const options = yield* Effect.result(sshOptions(s))
      const header = `rds-csi doctor ${version} on ${os.hostname()}: can this controller manage volumes on ${s.rdsHost}?`
      const results = options._tag === "Failure"
        ? [fail("rds keys", options.failure.message, "mount the rds-csi-ssh Secret (private key and host key) where the flags point")]
        : yield* rdsChecks(s).pipe(
          Effect.provide(RdsClientSsh.layer({ ...options.success, attempts: 1 })),
          // The report says what failed; the client's own log lines would only repeat it.
          Effect.provideService(References.MinimumLogLevel, "None")
        )
      yield* Console.log(render(results, header, { fail: "rds-csi controller will not work until the failures are fixed.", ok: "this controller can manage volumes on the RDS." }).trimEnd())
      const code = exitCode(results)
      if (code !== 0) process.exitCode = code
    })).pipe(
      Command.withDescription(
        "Check that `rds-csi controller` can manage volumes on the RDS with these flags: SSH and the pinned host key, the volume path, a harmless print, the pool's free space. Exit code 1 when a check fails."
      )
    )
