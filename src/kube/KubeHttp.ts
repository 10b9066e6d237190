/**
 * KubeHttp: the request path under KubeClientLive, for the dozen calls the node plugin makes.
 * client-node's KubeConfig still decides everything about the connection (server, CA, client
 * certificate, bearer token re-read from the service-account file, exec/OIDC plugins, proxies)
 * through `applyToHTTPSOptions`; the request itself is one node:https call with a JSON body,
 * over one keep-alive agent shared by every call. Importing only client-node's config module
 * (not its index) keeps its generated API groups and model table, about 4 MB of code, out of
 * the bundle: this module never serializes through them.
 *
 * May import: node built-ins, @kubernetes/client-node's KubeConfig.
 */
import type * as HttpTypes from "node:http"
import * as https from "node:https"
import { createRequire } from "node:module"
import * as tls from "node:tls"
import type { KubeConfig } from "@kubernetes/client-node/dist/config.js"

// Required, not imported: an ES import of node:http reads every export of it, and its lazy
// WebSocket getter loads Node's internal undici (~1.2 MiB of heap) for nothing.
const http: typeof HttpTypes = createRequire(import.meta.url)("node:http")

/** A response outside 2xx: the status, the raw body (a Status object, usually) and its headers. */
export class HttpStatusError extends Error {
  readonly status: number
  readonly body: string
  readonly headers: HttpTypes.IncomingHttpHeaders
  constructor(status: number, body: string, headers: HttpTypes.IncomingHttpHeaders) {
    super(`HTTP ${status}`)
    this.name = "HttpStatusError"
    this.status = status
    this.body = body
    this.headers = headers
  }
}

export interface Request {
  readonly method: "GET" | "POST" | "PATCH" | "DELETE"
  /** Path and query, e.g. `/api/v1/nodes/n1`. */
  readonly path: string
  readonly body?: unknown
  /** Default application/json; strategic merge for our PATCHes. */
  readonly contentType?: string
  /** Aborts the request (Effect's interruption). */
  readonly signal: AbortSignal
}

export interface KubeHttp {
  readonly server: string
  /** The decoded JSON answer of a 2xx; rejects with HttpStatusError or the socket's error. */
  readonly json: <A>(req: Request) => Promise<A>
  /**
   * A streamed GET (a watch): `line` per newline-delimited JSON line once the answer is 200;
   * `done` exactly once: undefined when the server ends it, else the error (HttpStatusError
   * for a refusal, a TimeoutError after `idleMs` of silence, the socket's error otherwise).
   */
  readonly lines: (path: string, signal: AbortSignal, idleMs: number, line: (text: string) => void, done: (e: unknown) => void) => void
}

let roots: string | undefined
/**
 * What a connection to an API server the kubeconfig names no CA for trusts: what Node trusts by
 * default (with NODE_EXTRA_CA_CERTS and --use-system-ca), and always Node's bundled Mozilla
 * roots, also under the DaemonSet's --use-openssl-ca. That flag spares every start the parse of
 * those roots Node begins in a background thread as soon as node:tls loads (http2 loads it): ~0.6 s
 * of an emulated vCPU before ready (bench/README.md, round 8); but the image has no OpenSSL
 * store to fall back on. In-cluster the service account's CA is always named, so this is for a
 * kubeconfig given with --kubeconfig. One PEM text, made on first need.
 */
export const defaultRoots = (): string =>
  roots ??= [...new Set([...tls.getCACertificates("default"), ...tls.getCACertificates("bundled")])].join("\n")

export const make = (kc: KubeConfig): KubeHttp => {
  const server = kc.getCurrentCluster()?.server ?? ""
  const plain = server.startsWith("http:")
  // One pool for every call, kept alive between the bursts an event storm makes (KubeConfig's own
  // agent closes each connection). A proxied cluster keeps KubeConfig's proxy agent.
  const shared = plain ? new http.Agent({ keepAlive: true, maxFreeSockets: 2 }) : new https.Agent({ keepAlive: true, maxFreeSockets: 2 })
  const viaProxy = kc.getCurrentCluster()?.proxyUrl !== undefined

  /** Starts a request with KubeConfig's TLS options and credentials (read again each time: tokens rotate). */
  const start = async (method: string, path: string, headers: HttpTypes.OutgoingHttpHeaders, signal: AbortSignal) => {
    const opts: https.RequestOptions = {}
    await kc.applyToHTTPSOptions(opts)
    signal.throwIfAborted()
    if (!plain && opts.ca === undefined && opts.rejectUnauthorized !== false) opts.ca = defaultRoots()
    // Appended, not resolved: a server URL may carry a path (a proxying front end's prefix).
    return (plain ? http.request : https.request)(new URL(`${server.replace(/\/+$/, "")}${path}`), {
      ...opts,
      method,
      signal,
      agent: viaProxy ? opts.agent : shared,
      headers: { ...opts.headers, "User-Agent": "rds-csi", Accept: "application/json", ...headers }
    })
  }

  const json = async <A>(req: Request): Promise<A> => {
    const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body))
    const headers = body === undefined ? {} : { "Content-Type": req.contentType ?? "application/json", "Content-Length": body.length }
    const r = await start(req.method, req.path, headers, req.signal)
    return new Promise<A>((resolve, reject) => {
      r.once("error", reject)
      r.once("response", (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.once("error", reject)
        res.once("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          const status = res.statusCode ?? 0
          if (status < 200 || status > 299) return reject(new HttpStatusError(status, text, res.headers))
          try {
            resolve((text === "" ? undefined : JSON.parse(text)) as A)
          } catch (e) {
            reject(e)
          }
        })
      })
      r.end(body)
    })
  }

  const lines: KubeHttp["lines"] = (path, signal, idleMs, line, done) => {
    let finished = false
    let timer: NodeJS.Timeout | undefined
    const finish = (e: unknown) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      done(e)
    }
    start("GET", path, {}, signal).then((r) => {
      // Silence for idleMs (no event, no bookmark) ends the watch: a half-open connection looks the same.
      const idle = () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          r.destroy()
          finish(new DOMException(`no data for ${idleMs} ms`, "TimeoutError"))
        }, idleMs).unref()
      }
      idle()
      r.once("error", finish)
      r.once("response", (res) => {
        const status = res.statusCode ?? 0
        if (status !== 200) {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.once("end", () => finish(new HttpStatusError(status, Buffer.concat(chunks).toString("utf8"), res.headers)))
          return
        }
        let rest = ""
        res.setEncoding("utf8")
        res.on("data", (text: string) => {
          idle()
          const parts = (rest + text).split("\n")
          rest = parts.pop() ?? ""
          for (const p of parts) if (p.trim() !== "") line(p)
        })
        res.once("error", finish)
        res.once("end", () => finish(undefined))
        res.once("close", () => finish(undefined))
      })
      r.end()
    }, finish)
  }

  return { server, json, lines }
}
