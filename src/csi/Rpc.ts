/**
 * Turns an Effect handler into a unary gRPC handler (UnaryServer.ts): runs it with the server's
 * captured context, logs every call (rpc, volume, duration_ms, the commands it ran and their
 * commands_ms, code), and answers with the reply
 * GrpcStatus.ts chooses. Requests are never logged whole: they may carry secrets.
 *
 * May import: csi/GrpcStatus, csi/UnaryServer (types), process/Command (CommandTally).
 */
import { Clock, Effect, type Exit } from "effect"
import { CommandTally } from "../process/Command.ts"
import { codeName, type CsiError, type Reply, replyOf } from "./GrpcStatus.ts"
import type { Answer, UnaryHandler } from "./UnaryServer.ts"

export type Handler<R> = (request: never) => Effect.Effect<unknown, CsiError, R>

/** Runs an effect to its Exit (Effect.runPromiseExitWith over the server's context, with its abort signal). */
export type Runner<R> = <A>(effect: Effect.Effect<A, CsiError, R>) => Promise<Exit.Exit<A, CsiError>>

// Called every few seconds by kubelet and the liveness probe: logged at debug when they succeed.
const QUIET = new Set(["Probe", "GetPluginInfo", "GetPluginCapabilities", "NodeGetCapabilities", "NodeGetInfo"])

const volumeOf = (request: unknown): string | undefined => {
  const id = (request as { readonly volume_id?: unknown } | null)?.volume_id
  return typeof id === "string" && id.length > 0 ? id.slice(0, 256) : undefined
}

const logReply = (method: string, reply: Reply<unknown>, durationMs: number, tally: CommandTally): Effect.Effect<void> => {
  const annotations = {
    duration_ms: durationMs,
    // The host's tools the call ran (nvme, blkid, mkfs, mount, umount) and their time: the rest of
    // duration_ms is the plugin's own (and the kernel's, waiting for a device).
    ...(tally.count === 0 ? {} : { commands: tally.count, commands_ms: tally.ms }),
    code: reply._tag === "Ok" ? "OK" : codeName(reply.status.code)
  }
  if (reply._tag === "Ok") {
    return (QUIET.has(method) ? Effect.logDebug("rpc") : Effect.logInfo("rpc")).pipe(Effect.annotateLogs(annotations))
  }
  if (reply.defect !== undefined) {
    return Effect.logError("rpc failed with a defect", reply.defect).pipe(Effect.annotateLogs(annotations))
  }
  return Effect.logWarning(`rpc failed: ${reply.status.message}`).pipe(Effect.annotateLogs(annotations))
}

/** The handler for one call, logged when it ends however it ends (success, failure, defect, interruption). */
export const traced = <R>(method: string, handler: Handler<R>, request: unknown): Effect.Effect<unknown, CsiError, R> => {
  const volume = volumeOf(request)
  const tally: CommandTally = { count: 0, ms: 0 }
  return Effect.flatMap(Clock.currentTimeMillis, (start) =>
    (handler as (request: unknown) => Effect.Effect<unknown, CsiError, R>)(request).pipe(
      Effect.provideService(CommandTally, tally),
      Effect.onExit((exit) => Effect.flatMap(Clock.currentTimeMillis, (end) => logReply(method, replyOf(exit), end - start, tally)))
    )).pipe(Effect.annotateLogs(volume === undefined ? { rpc: method } : { rpc: method, volume }))
}

/**
 * The unary handler for `handler`. A call the CO cancels (deadline, disconnect) keeps running:
 * stopping a mount or mkfs halfway helps nobody, and the CO's retry finds either the lock held
 * (ABORTED) or the work done (OK). Only server shutdown interrupts, through `run`.
 */
export const unary = <R>(run: Runner<R>, method: string, handler: Handler<R>): UnaryHandler => (request) =>
  run(traced(method, handler, request)).then((exit): Answer => {
    const reply = replyOf(exit)
    return reply._tag === "Ok" ? { ok: true, value: reply.value } : { ok: false, code: reply.status.code, message: reply.status.message }
  })

/** The unary handlers for a table of Effect handlers. */
export const implementation = <R>(run: Runner<R>, handlers: Readonly<Record<string, Handler<R>>>): Readonly<Record<string, UnaryHandler>> =>
  Object.fromEntries(Object.entries(handlers).map(([method, handler]) => [method, unary(run, method, handler)]))
