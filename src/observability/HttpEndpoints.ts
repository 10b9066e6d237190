/**
 * The plugin's HTTP endpoint on `--metrics-address`: `/metrics` (Prometheus text from effect's
 * exporter), `/healthz` (liveness: the process serves), `/readyz` (readiness: nvme-cli, sysfs
 * and the mount tools answer). A plain node:http server: three routes need no framework, and
 * the footprint budget (SPEC §8) counts every module loaded.
 *
 * May import: node/NodeVolumes (readiness), Settings. The controller passes its own readiness (layerFor).
 */
import { Effect, Layer } from "effect"
import { PrometheusMetrics } from "effect/observability"
import type * as HttpTypes from "node:http"
import { NodeVolumes } from "../node/NodeVolumes.ts"
import { Settings } from "../Settings.ts"

// Taken from Node, not imported: an ES import of node:http builds its module facade, which reads
// every export, and the lazy WebSocket/fetch getters among them load undici (~1.2 s of start-up
// in the TCG guest, 35 ms on a host) for nothing. Taken when the server starts, not when this
// module is evaluated: the start-up snapshot (scripts/snapshot.mjs) evaluates it, and cannot hold
// node:http's parser. process.getBuiltinModule rather than a require() made by node:module,
// which a start would otherwise load for this alone.
const Http = (): typeof HttpTypes => process.getBuiltinModule("node:http")

const split = (address: string): { readonly host: string; readonly port: number } => {
  const i = address.lastIndexOf(":")
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, "$1")
  return { host: host === "" ? "0.0.0.0" : host, port: Number(address.slice(i + 1)) }
}

export interface Readiness {
  readonly ready: boolean
  readonly problems: ReadonlyArray<string>
}

/** The node plugin's endpoints: readiness from NodeVolumes. */
export const layer: Layer.Layer<never, never, Settings | NodeVolumes> = Layer.unwrap(Effect.gen(function*() {
  const settings = yield* Settings
  const volumes = yield* NodeVolumes
  return layerFor(settings.metricsAddress, volumes.readiness)
}))

/** Serves the endpoints on `metricsAddress` for the life of the layer; nothing when it is undefined. */
export const layerFor = (metricsAddress: string | undefined, readiness: Effect.Effect<Readiness>): Layer.Layer<never> => Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = { metricsAddress }
    const volumes = { readiness }
    if (settings.metricsAddress === undefined) {
      yield* Effect.logInfo("metrics endpoint disabled (no --metrics-address)")
      return
    }
    const ctx = yield* Effect.context<never>()
    const run = <A>(e: Effect.Effect<A>) => Effect.runPromiseWith(ctx)(e)
    const { host, port } = split(settings.metricsAddress)

    const handle = async (req: HttpTypes.IncomingMessage, res: HttpTypes.ServerResponse): Promise<void> => {
      const path = (req.url ?? "/").split("?")[0]
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end()
        return
      }
      switch (path) {
        case "/metrics": {
          const body = await run(PrometheusMetrics.format())
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body)
          return
        }
        case "/healthz":
          res.writeHead(200, { "content-type": "text/plain" }).end("ok\n")
          return
        case "/readyz": {
          const r = await run(volumes.readiness)
          res.writeHead(r.ready ? 200 : 503, { "content-type": "text/plain" }).end(r.ready ? "ready\n" : `not ready:\n${r.problems.join("\n")}\n`)
          return
        }
        default:
          res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz or /readyz\n")
      }
    }

    yield* Effect.acquireRelease(
      Effect.callback<HttpTypes.Server, Error>((resume) => {
        const server = Http().createServer((req, res) => {
          handle(req, res).catch((e: unknown) => {
            if (!res.headersSent) res.writeHead(500).end(String(e))
          })
        })
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(port, host, () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    ).pipe(
      Effect.tap(() => Effect.logInfo(`metrics, healthz and readyz on http://${settings.metricsAddress}`)),
      Effect.orDie
    )
  })
)
