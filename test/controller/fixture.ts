/**
 * The controller served on a real gRPC socket over the in-memory RDS emulator (the emulator's
 * own interpreter, no SSH): what the CSI sidecars or csi-sanity would talk to, minus the network.
 */
import { Effect, Result } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type ControllerSettings, testControllerSettings } from "../../src/controller/ControllerSettings.ts"
import { controllerServices, serveController } from "../../src/controllerMain.ts"
import { volumeTarget } from "../../src/domain/Volume.ts"
import { makeRdsTest, type RdsTest, type RdsTestOptions } from "../../src/testing/RdsClientTest.ts"
import { type CsiClient, csiClient } from "../csi/client.ts"

export const GiB = 1024 ** 3
export const MiB = 1024 ** 2
export const HOST_A = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-000000000001"
export const HOST_B = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-4000-8000-000000000002"
export const NODE_A = `node-a,${HOST_A}`
export const NODE_B = `node-b,${HOST_B}`

export const mountCap = (mode = "SINGLE_NODE_WRITER") => ({ mount: { fs_type: "ext4", mount_flags: [] }, access_mode: { mode } })
export const blockCap = (mode = "SINGLE_NODE_WRITER") => ({ block: {}, access_mode: { mode } })

export interface Controller {
  readonly client: CsiClient
  readonly rds: RdsTest
  readonly settings: ControllerSettings
}

/** Serves a controller for the life of the scope. */
export const controller = (options: RdsTestOptions & { readonly settings?: Partial<ControllerSettings> } = {}) =>
  Effect.gen(function*() {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rds-csi-ctl-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
    const settings = testControllerSettings({ endpoint: `unix://${dir}/controller.sock`, ...options.settings })
    const rds = makeRdsTest(options)
    const path = yield* serveController.pipe(Effect.provide(controllerServices(settings, rds.layer)))
    const client = yield* csiClient(path)
    return { client, rds, settings } satisfies Controller
  })

/** The node plugin's own reading of a volume context: provisioned volumes must pass it. */
export const nodeAccepts = (context: Readonly<Record<string, string>>): boolean => Result.isSuccess(volumeTarget(context))
