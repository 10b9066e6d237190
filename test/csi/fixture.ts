/**
 * Test fixture for the gRPC edge: a recording NodeVolumes double with configurable results, a
 * log capture, and a running CsiServer on a socket in a fresh temp dir with a client on it.
 * The real NodeVolumes can replace the double later: the tests only talk gRPC.
 *
 * May import: src/csi, src/node (contract), src/Settings, test/csi/client.
 */
import { Context, Effect, Layer, Logger, References } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { CsiServer, type ServerOptions } from "../../src/csi/Server.ts"
import { type NodeError, NodeVolumes, type Readiness } from "../../src/node/NodeVolumes.ts"
import type { VolumeStats } from "../../src/node/Requests.ts"
import { type NodeSettings, Settings, testSettings } from "../../src/Settings.ts"
import { type CsiClient, csiClient } from "./client.ts"

export type Method = "stage" | "unstage" | "publish" | "unpublish" | "stats" | "expand"

export interface Recorded {
  readonly method: Method
  readonly request: unknown
}

export const defaultStats: VolumeStats = {
  usage: { _tag: "Filesystem", totalBytes: 1000, usedBytes: 300, availableBytes: 700, totalInodes: 64, usedInodes: 4, freeInodes: 60 },
  condition: { abnormal: false, message: "volume is healthy" }
}

/** A NodeVolumes that records its calls and answers what the test sets. */
export interface FakeNodeVolumes {
  readonly calls: Array<Recorded>
  /** What each use case does next (default: succeed). Replace per test; `reset` restores. */
  readonly next: {
    void: Partial<Record<"stage" | "unstage" | "publish" | "unpublish", Effect.Effect<void, NodeError>>>
    stats: Effect.Effect<VolumeStats, NodeError>
    expand: Effect.Effect<{ readonly capacityBytes: number }, NodeError>
    readiness: Readiness
  }
  readonly reset: () => void
  readonly layer: Layer.Layer<NodeVolumes>
}

export const makeFakeNodeVolumes = (): FakeNodeVolumes => {
  const calls: Array<Recorded> = []
  const next: FakeNodeVolumes["next"] = {
    void: {},
    stats: Effect.succeed(defaultStats),
    expand: Effect.succeed({ capacityBytes: 2048 }),
    readiness: { ready: true, problems: [] }
  }
  const record = (method: Method, request: unknown) => Effect.sync(() => void calls.push({ method, request }))
  const voidCase = (method: "stage" | "unstage" | "publish" | "unpublish") => (request: unknown) =>
    Effect.andThen(record(method, request), Effect.suspend(() => next.void[method] ?? Effect.void))
  const fake: FakeNodeVolumes = {
    calls,
    next,
    reset: () => {
      calls.length = 0
      next.void = {}
      next.stats = Effect.succeed(defaultStats)
      next.expand = Effect.succeed({ capacityBytes: 2048 })
      next.readiness = { ready: true, problems: [] }
    },
    layer: Layer.succeed(NodeVolumes, NodeVolumes.of({
      stage: voidCase("stage"),
      unstage: voidCase("unstage"),
      publish: voidCase("publish"),
      unpublish: voidCase("unpublish"),
      stats: (request) => Effect.andThen(record("stats", request), Effect.suspend(() => next.stats)),
      expand: (request) => Effect.andThen(record("expand", request), Effect.suspend(() => next.expand)),
      readiness: Effect.sync(() => next.readiness),
      firstReadiness: Effect.void
    }))
  }
  return fake
}

export interface LogEntry {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
  readonly cause: string
}

/** A logger that keeps entries in `into` (and prints nothing). */
export const captureLogs = (into: Array<LogEntry>): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.layer([Logger.make(({ message, logLevel, cause, fiber }) => {
      const parts = Array.isArray(message) ? message : [message]
      into.push({
        level: logLevel,
        message: parts.map(String).join(" "),
        annotations: { ...fiber.getRef(References.CurrentLogAnnotations) },
        cause: cause.reasons.length > 0 ? String(cause.reasons.map((r) => r._tag === "Die" ? String(r.defect) : r._tag)) : ""
      })
    })]),
    Layer.succeed(References.MinimumLogLevel, "Debug")
  )

/** A fresh directory under the OS temp dir, removed with the scope (short: socket paths max 107 bytes). */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "csi-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** The server's dependencies for `settings`: the fake, Settings and the log capture. */
export const serverDeps = (fake: FakeNodeVolumes, settings: NodeSettings, logs: Array<LogEntry>) =>
  Layer.mergeAll(fake.layer, Settings.layer(settings), captureLogs(logs))

export class TestCsi extends Context.Service<TestCsi, {
  readonly client: CsiClient
  readonly fake: FakeNodeVolumes
  readonly logs: Array<LogEntry>
  readonly socketPath: string
  readonly settings: NodeSettings
}>()("test/csi/TestCsi") {}

/** A running server (fake NodeVolumes) and a client on it, for a whole describe block. */
export const testCsiLayer = (overrides: Partial<NodeSettings> = {}, options: ServerOptions = { shutdownTimeout: "2 seconds" }) =>
  Layer.effect(TestCsi, Effect.gen(function*() {
    const dir = yield* tempDir
    const fake = makeFakeNodeVolumes()
    const logs: Array<LogEntry> = []
    const settings = testSettings({ endpoint: `unix://${dir}/csi.sock`, ...overrides })
    const server = Context.get(
      yield* Layer.build(CsiServer.layerWith(options).pipe(Layer.provide(serverDeps(fake, settings, logs)))),
      CsiServer
    )
    const client = yield* csiClient(server.socketPath)
    return { client, fake, logs, socketPath: server.socketPath, settings }
  }))
