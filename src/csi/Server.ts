/**
 * CsiServer: the Identity and Node services on the unix socket kubelet talks to. Acquiring the
 * layer removes a stale socket left by a crashed plugin (only a socket, and only when nobody
 * answers on it), binds, and restricts the socket to owner and group (0660). Releasing it stops
 * accepting calls, lets in-flight calls finish within a bound (then cuts them off and interrupts
 * their fibers), and removes the socket.
 *
 * May import: node:fs, node:net, node:path, node/NodeVolumes, Settings, csi/*.
 */
import { Context, Data, Duration, Effect, Layer } from "effect"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Path from "node:path"
import type { NodeVolumes } from "../node/NodeVolumes.ts"
import { Settings } from "../Settings.ts"
import { IdentityService } from "./IdentityService.ts"
import { NodeService } from "./NodeService.ts"
import { hasStaticCodecs, loadCsiDefinitions, reachableTypes, warmCodec } from "./Proto.ts"
import { type Handler, implementation } from "./Rpc.ts"
import { UnaryServer } from "./UnaryServer.ts"

export class CsiServerError extends Data.TaggedError("CsiServerError")<{
  readonly reason: "Endpoint" | "NotASocket" | "InUse" | "Bind" | "Io"
  readonly endpoint: string
  readonly detail: string
}> {
  override get message(): string {
    return `CSI endpoint ${this.endpoint}: ${this.detail}`
  }
}

export interface ServerOptions {
  /** How long in-flight calls may run after shutdown begins before they are cut off (default 10 s). */
  readonly shutdownTimeout?: Duration.Input
}

/** `unix:///abs/path` (or `unix:/abs/path`) → `/abs/path`. Nothing else: kubelet only speaks unix sockets to node plugins. */
export const socketPathOf = (endpoint: string): Effect.Effect<string, CsiServerError> => {
  const path = endpoint.startsWith("unix://") ? endpoint.slice("unix://".length) : endpoint.startsWith("unix:") ? endpoint.slice("unix:".length) : undefined
  if (path === undefined || !Path.posix.isAbsolute(path) || Path.posix.normalize(path) !== path) {
    return Effect.fail(new CsiServerError({ reason: "Endpoint", endpoint, detail: "must be unix:///<absolute path>" }))
  }
  return Effect.succeed(path)
}

const io = (endpoint: string, what: string) => (cause: unknown) =>
  new CsiServerError({ reason: "Io", endpoint, detail: `${what}: ${cause instanceof Error ? cause.message : String(cause)}` })

const lstat = (path: string) =>
  Effect.tryPromise({
    try: () => Fs.lstat(path).catch((e: NodeJS.ErrnoException) => e.code === "ENOENT" ? undefined : Promise.reject(e)),
    catch: io(path, "lstat")
  })

/** True when a process accepts connections on the socket (a second plugin instance must not steal it). */
const answers = (path: string): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect(path)
    const done = (live: boolean) => {
      socket.destroy()
      resume(Effect.succeed(live))
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    // A listener that does not accept within a second is still somebody's socket.
    socket.setTimeout(1000, () => done(true))
  })

/** Removes a stale socket at `path`; refuses anything that is not a socket or that someone still answers on. */
const clearStale = Effect.fn("CsiServer.clearStale")(function*(path: string, endpoint: string) {
  yield* Effect.tryPromise({ try: () => Fs.mkdir(Path.dirname(path), { recursive: true }), catch: io(endpoint, "mkdir") })
  const stat = yield* lstat(path)
  if (stat === undefined) return
  if (!stat.isSocket()) {
    return yield* new CsiServerError({ reason: "NotASocket", endpoint, detail: `${path} exists and is not a socket; refusing to remove it` })
  }
  if (yield* answers(path)) {
    return yield* new CsiServerError({ reason: "InUse", endpoint, detail: `another process is serving on ${path}` })
  }
  yield* Effect.logInfo("removing stale CSI socket").pipe(Effect.annotateLogs({ path }))
  yield* Effect.tryPromise({ try: () => Fs.unlink(path), catch: io(endpoint, "unlink") })
})

const bind = (server: UnaryServer, path: string, endpoint: string) =>
  Effect.tryPromise({
    try: () => server.listen(path),
    catch: (error) => new CsiServerError({ reason: "Bind", endpoint, detail: error instanceof Error ? error.message : String(error) })
  })

/** Identifies the socket file we bound (inode numbers alone are reused at once on tmpfs). */
interface SocketId {
  readonly ino: number
  readonly ctimeMs: number
}

/** Stops the server: graceful within `bound`, then forced (in-flight fibers interrupted); the socket goes too. */
const stop = (server: UnaryServer, abort: AbortController, path: string, bound: Duration.Input, ours: () => SocketId | undefined) =>
  Effect.gen(function*() {
    const graceful = yield* Effect.promise(() => server.close().then(() => true)).pipe(
      Effect.timeoutOrElse({ duration: bound, orElse: () => Effect.succeed(false) })
    )
    if (!graceful) {
      yield* Effect.logWarning("in-flight CSI calls did not finish in time; cutting them off").pipe(
        Effect.annotateLogs({ timeout: Duration.format(Duration.fromInputUnsafe(bound)) })
      )
      server.destroy()
      abort.abort()
    }
    // Node removes the socket when the listener closes; this covers the rest, and never removes a
    // socket that another process has bound at the same path since.
    const stat = yield* Effect.orElseSucceed(lstat(path), () => undefined)
    const id = ours()
    if (stat !== undefined && stat.isSocket() && id !== undefined && stat.ino === id.ino && stat.ctimeMs === id.ctimeMs) {
      yield* Effect.tryPromise(() => Fs.unlink(path)).pipe(Effect.ignore)
    }
    yield* Effect.logInfo("CSI server stopped").pipe(Effect.annotateLogs({ path, graceful }))
  })

/** A service the server offers: its definition in the CSI package and its handlers. */
export interface ServiceTable<R> {
  readonly service: "Identity" | "Node" | "Controller"
  readonly handlers: Readonly<Record<string, Handler<R>>>
}

/**
 * Running from the sources (the bundle's codecs are generated at build time): generates the
 * codecs of every message `services` exchange, one message at a time with a yield between, in
 * the background a while after the socket serves (when kubelet's registration and
 * first probes are answered): neither readiness nor the first volume RPC then pays for
 * protobufjs's code generation (seconds in all under emulation, on one vCPU).
 */
const WARM_AFTER = Duration.seconds(2)
const warmCodecs = (services: ReadonlyArray<ServiceTable<unknown>>) =>
  Effect.gen(function*() {
    // The bundle's codecs were generated at build time: nothing to do.
    if (hasStaticCodecs()) return
    yield* Effect.sleep(WARM_AFTER)
    const types = reachableTypes(services.map((s) => s.service))
    for (const direction of ["decoded", "encoded"] as const) {
      for (const type of types[direction]) {
        yield* Effect.yieldNow
        warmCodec(type, direction)
      }
    }
  }).pipe(Effect.catchCause((cause) => Effect.logDebug("warming the gRPC codecs failed (each is generated on first use instead)", cause)))

/**
 * Serves `services` on `endpoint` until the scope closes (the node's Identity + Node, or the
 * controller's Identity + Controller: one edge, one way of logging, mapping errors and stopping).
 */
export const serve = <R>(endpoint: string, driverName: string, services: ReadonlyArray<ServiceTable<R>>, options: ServerOptions) =>
  Effect.gen(function*() {
    const path = yield* socketPathOf(endpoint)
    const context = yield* Effect.context<R>()
    const abort = new AbortController()
    const runWith = Effect.runPromiseExitWith(context)
    const run = <A, E>(effect: Effect.Effect<A, E, R>) => runWith(effect, { signal: abort.signal })
    const csi = loadCsiDefinitions()

    yield* clearStale(path, endpoint)
    const server = new UnaryServer()
    for (const service of services) server.add(csi[service.service], implementation(run, service.handlers))
    let socketId: SocketId | undefined
    yield* Effect.acquireRelease(
      bind(server, path, endpoint),
      () => stop(server, abort, path, options.shutdownTimeout ?? Duration.seconds(10), () => socketId)
    )
    yield* Effect.tryPromise({ try: () => Fs.chmod(path, 0o660), catch: io(endpoint, "chmod") })
    const stat = yield* lstat(path)
    if (stat !== undefined) socketId = { ino: stat.ino, ctimeMs: stat.ctimeMs }
    yield* Effect.logInfo("CSI server listening").pipe(Effect.annotateLogs({ endpoint, driver: driverName }))
    yield* Effect.forkScoped(warmCodecs(services))
    return path
  })

const make = (options: ServerOptions) =>
  Effect.gen(function*() {
    const settings = yield* Settings
    const path = yield* serve<NodeVolumes | Settings>(settings.endpoint, settings.driverName, [
      { service: "Identity", handlers: IdentityService as Record<string, Handler<NodeVolumes | Settings>> },
      { service: "Node", handlers: NodeService as Record<string, Handler<NodeVolumes | Settings>> }
    ], options)
    return CsiServer.of({ socketPath: path })
  })

export class CsiServer extends Context.Service<CsiServer, {
  /** The socket the server listens on. */
  readonly socketPath: string
}>()("rds-csi/csi/CsiServer") {
  /** Serves until the layer's scope closes; needs NodeVolumes and Settings. */
  static readonly layer: Layer.Layer<CsiServer, CsiServerError, NodeVolumes | Settings> = Layer.effect(CsiServer, make({}))
  /** As `layer`, with options (tests shorten the shutdown bound). */
  static readonly layerWith = (options: ServerOptions): Layer.Layer<CsiServer, CsiServerError, NodeVolumes | Settings> =>
    Layer.effect(CsiServer, make(options))
}
