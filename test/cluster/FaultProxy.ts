/**
 * FaultProxy: an HTTPS proxy on 127.0.0.1 in front of the real test API server that, per
 * request pattern, answers 429 with Retry-After, 500/503, 403, hangs, resets the connection,
 * or delays, and otherwise forwards. It serves with the test cluster's own serving
 * certificate (SAN 127.0.0.1), so a client trusts it with the same CA as the server itself.
 *
 * May import: node built-ins only.
 */
import { readFileSync } from "node:fs"
import { Agent, createServer, request, type Server } from "node:https"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { join } from "node:path"

export type FaultAction =
  | { readonly kind: "status"; readonly status: number; readonly retryAfter?: number }
  | { readonly kind: "hang" }
  | { readonly kind: "reset" }
  | { readonly kind: "delay"; readonly ms: number }

export interface FaultRule {
  readonly method?: string
  /** Tested against the request path with its query string. */
  readonly path?: RegExp
  readonly action: FaultAction
  /** How many matching requests the rule applies to (default: all). */
  times?: number
}

export interface ProxiedRequest {
  readonly method: string
  readonly path: string
  /** `forwarded:<status>`, `status:<code>`, `hang`, `reset`. */
  readonly outcome: string
  readonly contentType: string
  readonly at: number
}

const REASONS: Record<number, string> = { 403: "Forbidden", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable" }
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"])

export class FaultProxy {
  readonly rules: Array<FaultRule> = []
  readonly log: Array<ProxiedRequest> = []
  private readonly server: Server
  private readonly upstream: URL
  private readonly agent: Agent
  private readonly sockets = new Set<Socket>()
  private readonly hung = new Set<ServerResponse>()

  private constructor(upstream: string, pkiDir: string) {
    this.upstream = new URL(upstream)
    const ca = readFileSync(join(pkiDir, "ca.crt"))
    this.agent = new Agent({ ca, keepAlive: true })
    this.server = createServer({ cert: readFileSync(join(pkiDir, "apiserver.crt")), key: readFileSync(join(pkiDir, "apiserver.key")) }, (req, res) =>
      this.handle(req, res))
    this.server.on("secureConnection", (s: Socket) => {
      this.sockets.add(s)
      s.on("close", () => this.sockets.delete(s))
    })
  }

  /** Starts a proxy for `upstream` (https://127.0.0.1:PORT) using the test PKI in `pkiDir`. */
  static async start(upstream: string, pkiDir: string): Promise<FaultProxy> {
    const p = new FaultProxy(upstream, pkiDir)
    await new Promise<void>((ok) => p.server.listen(0, "127.0.0.1", ok))
    return p
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** Adds a rule; earlier rules win. */
  add(rule: FaultRule): FaultRule {
    this.rules.push(rule)
    return rule
  }

  /** Removes every rule and releases hung requests (by destroying their connections). */
  clear(): void {
    this.rules.length = 0
    for (const res of this.hung) res.socket?.destroy()
    this.hung.clear()
  }

  count(pattern: RegExp, outcome?: RegExp): number {
    return this.log.filter((r) => pattern.test(`${r.method} ${r.path}`) && (outcome === undefined || outcome.test(r.outcome))).length
  }

  async close(): Promise<void> {
    this.clear()
    for (const s of this.sockets) s.destroy()
    this.agent.destroy()
    await new Promise<void>((ok) => this.server.close(() => ok()))
  }

  private match(req: IncomingMessage): FaultAction | undefined {
    for (const r of this.rules) {
      if (r.method !== undefined && r.method !== req.method) continue
      if (r.path !== undefined && !r.path.test(req.url ?? "")) continue
      if (r.times !== undefined) {
        if (r.times <= 0) continue
        r.times--
      }
      return r.action
    }
    return undefined
  }

  private record(req: IncomingMessage, outcome: string): void {
    this.log.push({ method: req.method ?? "", path: req.url ?? "", outcome, contentType: req.headers["content-type"] ?? "", at: Date.now() })
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const action = this.match(req)
    if (action?.kind === "reset") {
      this.record(req, "reset")
      req.socket.destroy()
      return
    }
    if (action?.kind === "hang") {
      this.record(req, "hang")
      this.hung.add(res)
      res.on("close", () => this.hung.delete(res))
      req.resume()
      return
    }
    if (action?.kind === "status") {
      this.record(req, `status:${action.status}`)
      req.resume()
      const body = JSON.stringify({
        kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
        message: `injected by FaultProxy: ${action.status}`, reason: REASONS[action.status] ?? "InternalError", code: action.status
      })
      const headers: Record<string, string> = { "content-type": "application/json" }
      if (action.retryAfter !== undefined) headers["retry-after"] = String(action.retryAfter)
      res.writeHead(action.status, headers).end(body)
      return
    }
    const forward = () => {
      const headers = { ...req.headers, host: this.upstream.host }
      const up = request({
        host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers, agent: this.agent
      }, (upRes) => {
        this.record(req, `forwarded:${upRes.statusCode}`)
        const out: Record<string, string | Array<string>> = {}
        for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v
        res.writeHead(upRes.statusCode ?? 502, out)
        res.flushHeaders() // a quiet watch must still get its headers now
        upRes.pipe(res)
        res.on("close", () => upRes.destroy())
      })
      up.on("error", () => res.destroy())
      req.pipe(up)
    }
    if (action?.kind === "delay") setTimeout(forward, action.ms)
    else forward()
  }
}
