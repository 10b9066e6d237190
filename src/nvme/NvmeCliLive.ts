/**
 * NvmeCli over the real nvme-cli 2.x: one execFile per call (never a shell) through
 * process/Command, `LC_ALL=C` so messages are stable, Settings.commandTimeout on every call and a
 * SIGKILL `forceKillAfter` the SIGTERM. Everything that decides (argument lists, "already
 * connected", error reasons, the list-subsys JSON shapes) is a pure function below, tested
 * against outputs captured from the real nvme-cli 2.3 on kernel 6.1 (test/fixtures/nvme).
 *
 * May import: effect, nvme/NvmeCli, process/Command, Settings.
 */
import { Duration, Effect, Layer, Result, Schema } from "effect"
import type { Nqn } from "../domain/Ids.ts"
import { type CommandOutput, FORCE_KILL_AFTER, runCommand, tail } from "../process/Command.ts"
import { onPath } from "../process/Path.ts"
import { Settings } from "../Settings.ts"
import { type ConnectArgs, NvmeCli, NvmeCliError, type SubsystemListing } from "./NvmeCli.ts"


// ---------------------------------------------------------------------------- pure decisions

/** `nvme connect` arguments; `--opt=value` so that `-1` is never read as an option. */
export const connectArgv = (a: ConnectArgs): ReadonlyArray<string> => [
  "connect", "-t", "tcp", "-a", a.address, "-s", String(a.port), "-n", a.nqn,
  `--ctrl-loss-tmo=${a.ctrlLossTmo}`,
  `--reconnect-delay=${a.reconnectDelay}`,
  ...(a.keepAliveTmo === undefined ? [] : [`--keep-alive-tmo=${a.keepAliveTmo}`]),
  ...(a.hostNqn === undefined ? [] : [`--hostnqn=${a.hostNqn}`]),
  ...(a.hostId === undefined ? [] : [`--hostid=${a.hostId}`])
]

// nvme-cli 2.3 finds the existing controller itself: "already connected", exit 1 (also when
// that controller is still reconnecting). Older versions let the kernel refuse the duplicate:
// "Failed to write to /dev/nvme-fabrics: Operation already in progress", exit 114 (EALREADY).
const ALREADY = /already connected|Operation already in progress/i
// The kernel's connect errors as nvme-cli prints them ("Failed to write to /dev/nvme-fabrics: <strerror>").
const UNREACHABLE = /Connection refused|Network is unreachable|No route to host|Connection timed out|Host is down|Connection reset/i
// No NVMe at all yet (nvme-fabrics / nvme-core not loaded): nothing is connected.
const NO_TOPOLOGY = /Failed to scan topology: No such file or directory/i

export type ConnectVerdict =
  | { readonly _tag: "Connected" }
  | { readonly _tag: "AlreadyConnected" }
  | { readonly _tag: "Failed"; readonly reason: "Unreachable" | "Failed"; readonly detail: string }

/** Pure: what an `nvme connect` run means. */
export const classifyConnect = (out: CommandOutput): ConnectVerdict => {
  const text = `${out.stderr}\n${out.stdout}`
  if (ALREADY.test(text) || out.exitCode === 114) return { _tag: "AlreadyConnected" }
  if (out.exitCode === 0) return { _tag: "Connected" }
  return { _tag: "Failed", reason: UNREACHABLE.test(text) ? "Unreachable" : "Failed", detail: tail(out.stderr || out.stdout) }
}

/** Pure: `nvme disconnect -n` / `-d`; nothing to disconnect is success ("disconnected 0 controller(s)", "Did not find device"). */
export const classifyDisconnect = (out: CommandOutput): { readonly ok: true } | { readonly ok: false; readonly detail: string } => {
  if (out.exitCode === 0) return { ok: true }
  const text = `${out.stderr}\n${out.stdout}`
  if (/Did not find device|No such file or directory|No such device/i.test(text)) return { ok: true }
  return { ok: false, detail: tail(out.stderr || out.stdout) }
}

const PathJson = Schema.Struct({
  Name: Schema.String,
  Transport: Schema.optionalKey(Schema.String),
  Address: Schema.optionalKey(Schema.String),
  State: Schema.optionalKey(Schema.String)
})
const SubsystemJson = Schema.Struct({
  Name: Schema.String,
  NQN: Schema.String,
  Paths: Schema.optionalKey(Schema.Array(PathJson))
})
const HostJson = Schema.Struct({
  HostNQN: Schema.optionalKey(Schema.String),
  HostID: Schema.optionalKey(Schema.String),
  // required: an object without it is not something we understand, not "no subsystems"
  Subsystems: Schema.Array(SubsystemJson)
})
// nvme-cli 1.x: subsystems and their paths as alternating array elements.
const LegacyJson = Schema.Struct({
  Subsystems: Schema.Array(Schema.Union([SubsystemJson, Schema.Struct({ Paths: Schema.Array(PathJson) })]))
})
const ListSubsysJson = Schema.Union([Schema.Array(HostJson), HostJson, LegacyJson])
const decodeListJson = Schema.decodeUnknownResult(ListSubsysJson)

type SubsystemJson = typeof SubsystemJson.Type
type PathJson = typeof PathJson.Type

const toListing = (s: SubsystemJson, paths: ReadonlyArray<PathJson> | undefined): SubsystemListing => ({
  nqn: s.NQN,
  name: s.Name,
  paths: (paths ?? []).map((p) => ({ name: p.Name, transport: p.Transport ?? "", address: p.Address ?? "", state: p.State ?? "" }))
})

/**
 * Pure: `nvme list-subsys -o json` → subsystems. Accepts nvme-cli 2.x (an array of hosts, or
 * one host object), 1.x (alternating subsystem/paths elements), an empty output, and
 * "Failed to scan topology" (no NVMe module loaded = nothing connected). Anything else is
 * UnknownOutput: the caller sees an error, never a guess.
 */
export const decodeListSubsys = (out: CommandOutput): Result.Result<ReadonlyArray<SubsystemListing>, NvmeCliError> => {
  const unknown = (detail: string) =>
    Result.fail(new NvmeCliError({ reason: "UnknownOutput", command: "nvme list-subsys -o json", exitCode: out.exitCode, detail }))
  if (out.exitCode !== 0) {
    if (NO_TOPOLOGY.test(out.stderr)) return Result.succeed([])
    return Result.fail(new NvmeCliError({ reason: "Failed", command: "nvme list-subsys -o json", exitCode: out.exitCode, detail: tail(out.stderr || out.stdout) }))
  }
  const text = out.stdout.trim()
  if (text === "") return Result.succeed([])
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return unknown(`not JSON (${String(e)}): ${tail(text, 200)}`)
  }
  const decoded = decodeListJson(json)
  if (Result.isFailure(decoded)) return unknown(`unexpected shape: ${decoded.failure.message.slice(0, 300)}`)
  const v = decoded.success
  if (Array.isArray(v)) {
    return Result.succeed((v as ReadonlyArray<typeof HostJson.Type>).flatMap((h) => h.Subsystems.map((s) => toListing(s, s.Paths))))
  }
  const obj = v as typeof HostJson.Type | typeof LegacyJson.Type
  const items = obj.Subsystems
  const out2: Array<SubsystemListing> = []
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!
    if (!("NQN" in item)) continue
    const next = items[i + 1]
    const paths = item.Paths ?? (next !== undefined && !("NQN" in next) ? next.Paths : undefined)
    out2.push(toListing(item, paths))
  }
  return Result.succeed(out2)
}

/** Pure: the first line of `nvme version`. */
export const parseVersion = (stdout: string): string | undefined => {
  const first = stdout.split("\n").map((l) => l.trim()).find((l) => l.length > 0)
  return first !== undefined && /^nvme version/i.test(first) ? first : undefined
}

// ---------------------------------------------------------------------------- running nvme

export const NvmeCliLive: Layer.Layer<NvmeCli, never, Settings> = Layer.effect(
  NvmeCli,
  Effect.gen(function*() {
    const settings = yield* Settings
    const timeout = settings.commandTimeout

    const nvme = (args: ReadonlyArray<string>) => {
      const command = `nvme ${args.join(" ")}`
      return runCommand("nvme", args, timeout).pipe(
        Effect.mapError((f) =>
          new NvmeCliError({
            reason: f._tag === "SpawnFailed" ? "Failed" : f._tag,
            command,
            exitCode: undefined,
            detail: f._tag === "Timeout" ? `no answer within ${Duration.format(timeout)}, killed` : f.detail
          })
        ),
        Effect.map((out) => ({ out, command }))
      )
    }

    const connect = Effect.fn("NvmeCli.connect")(function*(args: ConnectArgs) {
      const { out, command } = yield* nvme(connectArgv(args))
      const verdict = classifyConnect(out)
      if (verdict._tag === "Failed") {
        return yield* new NvmeCliError({ reason: verdict.reason, command, exitCode: out.exitCode, detail: verdict.detail })
      }
    })

    const disconnectWith = (args: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const { out, command } = yield* nvme(args)
        const verdict = classifyDisconnect(out)
        if (!verdict.ok) return yield* new NvmeCliError({ reason: "Failed", command, exitCode: out.exitCode, detail: verdict.detail })
      })

    const disconnect = Effect.fn("NvmeCli.disconnect")(function*(nqn: Nqn) {
      yield* disconnectWith(["disconnect", "-n", nqn])
    })
    const disconnectController = Effect.fn("NvmeCli.disconnectController")(function*(name: string) {
      if (!/^nvme\d+$/.test(name)) {
        return yield* new NvmeCliError({ reason: "Failed", command: `nvme disconnect -d ${name}`, exitCode: undefined, detail: "not a controller name" })
      }
      yield* disconnectWith(["disconnect", "-d", name])
    })

    const listSubsystems = Effect.gen(function*() {
      const { out } = yield* nvme(["list-subsys", "-o", "json"])
      return yield* Effect.fromResult(decodeListSubsys(out))
    }).pipe(Effect.withSpan("NvmeCli.listSubsystems"))

    const version = Effect.gen(function*() {
      const { out, command } = yield* nvme(["version"])
      const v = parseVersion(out.stdout)
      if (out.exitCode !== 0 || v === undefined) {
        return yield* new NvmeCliError({ reason: out.exitCode !== 0 ? "Failed" : "UnknownOutput", command, exitCode: out.exitCode, detail: tail(out.stderr || out.stdout) })
      }
      return v
    }).pipe(Effect.withSpan("NvmeCli.version"))

    const installed = Effect.sync(() => onPath("nvme") !== undefined)

    return NvmeCli.of({ connect, disconnect, disconnectController, listSubsystems, version, installed })
  })
)

export const layer = NvmeCliLive

export { type CommandOutput, FORCE_KILL_AFTER }
