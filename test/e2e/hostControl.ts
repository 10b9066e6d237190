/**
 * Host side of the guest ↔ host link of the resilience e2e tests and bench/detection: a small
 * HTTP server on 127.0.0.1 (the guest reaches it at 10.0.2.100:GUEST_CONTROL_PORT through
 * run-in-vm.sh -f) through which a guest scenario asks the HOST to check what the real API
 * server shows, with the machine's kubectl, at the moment the scenario needs it:
 *
 *   POST /expect  {scenario, what, target, expect, absent?, ordered?, timeoutMs}
 *                 polls `kubectl describe pvc|node` until every expected event line is there
 *                 (then checks the absent ones), answers with the Events lines as kubectl
 *                 printed them, and records the check for the host-side vitest test;
 *   GET  /time    the host's clock (epoch ms, sub-ms), for the guest to estimate its offset;
 *   GET  /seen?reason=R&name=N&since=T   waits (bounded) until a host-side watch on the
 *                 API server's events sees a write (create, or a count raised) of event R on
 *                 object N after host time T; answers with the host time it arrived
 *                 (bench/detection; needs `watchEvents`).
 *
 * The guest can only choose which PVC/Node to describe and which reasons to look for: names are
 * checked against a strict pattern and kubectl runs without a shell.
 *
 * May import: node built-ins, test/cluster.
 */
import { execFile } from "node:child_process"
import * as http from "node:http"
import * as https from "node:https"
import { readFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import type { KubeTestCluster } from "../cluster/cluster.ts"

/** The guest-side port of the control forward (10.0.2.100:7000). */
export const GUEST_CONTROL_PORT = 7000

export interface Check {
  readonly what: string
  readonly ok: boolean
  readonly detail: string
}

export interface ExpectedEvent {
  readonly type: "Normal" | "Warning"
  readonly reason: string
  /** A regular expression the message must match. */
  readonly message?: string
}

export interface ExpectRequest {
  readonly scenario: string
  readonly what: string
  readonly target: { readonly kind: "pvc"; readonly namespace: string; readonly name: string } | { readonly kind: "node"; readonly name: string }
  readonly expect: ReadonlyArray<ExpectedEvent>
  /** Reasons (and optional message patterns) that must NOT be on the object once the expected ones are. */
  readonly absent?: ReadonlyArray<{ readonly reason: string; readonly message?: string }>
  /** The expected events first appeared in this order (by firstTimestamp, 1 s resolution, ties allowed). */
  readonly ordered?: boolean
  readonly timeoutMs: number
}

export interface EventLine {
  readonly type: string
  readonly reason: string
  readonly age: string
  readonly from: string
  readonly message: string
  readonly line: string
}

export interface ExpectResult {
  readonly ok: boolean
  readonly ms: number
  /** The Events lines of `kubectl describe` that matched, in `expect` order. */
  readonly matched: ReadonlyArray<string>
  /** The whole Events section, as kubectl printed it. */
  readonly events: string
  readonly why: string
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/
const REASON = /^[A-Za-z]{1,64}$/

const kubectlAsync = (cluster: KubeTestCluster, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile("kubectl", ["--kubeconfig", cluster.adminKubeconfig, ...args], { encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`kubectl ${args.join(" ")}: ${stderr || error.message}`)))
  })

/** The Events table of `kubectl describe`, one entry per event line. */
export const parseDescribeEvents = (describe: string): { readonly section: string; readonly lines: ReadonlyArray<EventLine> } => {
  const at = describe.indexOf("\nEvents:")
  const section = at < 0 ? "" : describe.slice(at + 1).trimEnd()
  const lines = section.split("\n").flatMap((line) => {
    const m = /^\s+(Normal|Warning)\s+(\S+)\s+(.+?)\s{2,}(\S+)\s{2,}(.*)$/.exec(line)
    return m === null ? [] : [{ type: m[1]!, reason: m[2]!, age: m[3]!, from: m[4]!, message: m[5]!, line: line.trim() }]
  })
  return { section, lines }
}

interface ApiEvent {
  readonly reason: string
  readonly count?: number
  readonly firstTimestamp?: string
  readonly message?: string
  readonly involvedObject: { readonly kind: string; readonly name: string }
}

const matches = (e: EventLine, x: ExpectedEvent): boolean =>
  e.type === x.type && e.reason === x.reason && (x.message === undefined || new RegExp(x.message).test(e.message))

export interface HostControl {
  readonly port: number
  /** The run-in-vm.sh -f value for this server. */
  readonly forward: string
  /** Every /expect check, by scenario. */
  readonly checks: ReadonlyMap<string, ReadonlyArray<Check>>
  readonly close: () => Promise<void>
}

/** Host time in epoch ms with sub-millisecond precision. */
export const hostNow = (): number => performance.timeOrigin + performance.now()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Watches every Event on the server (admin) and remembers when each write of it (create or count change) arrived. */
const watchEvents = (cluster: KubeTestCluster) => {
  const arrivals: Array<{ readonly reason: string; readonly name: string; readonly count: number; readonly at: number }> = []
  const ca = readFileSync(cluster.caFile)
  let request: http.ClientRequest | undefined
  let stopped = false
  const connect = () => {
    if (stopped) return
    const url = new URL("/api/v1/events?watch=1", cluster.server)
    request = https.get(url, { ca, headers: { Authorization: `Bearer ${cluster.adminToken}` } }, (res) => {
      let buffer = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        const at = hostNow()
        buffer += chunk
        for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          if (line.trim() === "") continue
          const ev = (JSON.parse(line) as { object: ApiEvent }).object
          arrivals.push({ reason: ev.reason, name: ev.involvedObject.name, count: ev.count ?? 1, at })
        }
      })
      res.on("end", () => setTimeout(connect, 100))
    })
    request.on("error", () => setTimeout(connect, 200))
  }
  connect()
  return {
    /** Host time of the first write of event `reason` on object `name` that arrived after `since`; waits up to `timeoutMs`. */
    seen: async (reason: string, name: string, since: number, timeoutMs: number): Promise<number | undefined> => {
      const limit = hostNow() + timeoutMs
      for (;;) {
        const hit = arrivals.find((a) => a.reason === reason && a.name === name && a.at > since)
        if (hit !== undefined) return hit.at
        if (hostNow() > limit) return undefined
        await sleep(5)
      }
    },
    stop: () => {
      stopped = true
      request?.destroy()
    }
  }
}

/** Starts the control server on 127.0.0.1 (a free port). */
export const startHostControl = async (cluster: KubeTestCluster, options: { readonly watchEvents?: boolean; readonly log?: (line: string) => void } = {}): Promise<HostControl> => {
  const checks = new Map<string, Array<Check>>()
  const log = options.log ?? ((line: string) => process.stderr.write(`[host-control] ${line}\n`))
  const watcher = options.watchEvents === true ? watchEvents(cluster) : undefined
  const record = (scenario: string, c: Check) => {
    checks.set(scenario, [...(checks.get(scenario) ?? []), c])
    log(`[${scenario}] ${c.ok ? "ok  " : "FAIL"} ${c.what}${c.detail === "" ? "" : ` — ${c.detail.replace(/\n/g, " ⏎ ").slice(0, 600)}`}`)
  }

  const expectEvents = async (req: ExpectRequest): Promise<ExpectResult> => {
    const t = req.target
    if (!NAME.test(t.name) || (t.kind === "pvc" && !NAME.test(t.namespace)) || ![...req.expect, ...(req.absent ?? [])].every((x) => REASON.test(x.reason))) {
      return { ok: false, ms: 0, matched: [], events: "", why: "bad request" }
    }
    const args = t.kind === "pvc" ? ["describe", "pvc", "-n", t.namespace, t.name] : ["describe", "node", t.name]
    const start = hostNow()
    let section = ""
    let lines: ReadonlyArray<EventLine> = []
    for (;;) {
      const out = await kubectlAsync(cluster, args).catch((e: Error) => `\nEvents:\n  (kubectl failed: ${e.message})`)
      ;({ section, lines } = parseDescribeEvents(out))
      const found = req.expect.map((x) => lines.find((l) => matches(l, x)))
      if (found.every((f) => f !== undefined)) {
        const present = (req.absent ?? []).flatMap((a) =>
          lines.filter((l) => l.reason === a.reason && (a.message === undefined || new RegExp(a.message).test(l.message))).map((l) => l.line))
        let why = present.length > 0 ? `unexpected: ${present.join(" | ")}` : ""
        if (why === "" && req.ordered === true && req.expect.length > 1) {
          const kind = t.kind === "pvc" ? "PersistentVolumeClaim" : "Node"
          const ns = t.kind === "pvc" ? t.namespace : "default"
          const items = (JSON.parse(await kubectlAsync(cluster, [
            "get", "events", "-n", ns, "--field-selector", `involvedObject.kind=${kind},involvedObject.name=${t.name}`, "-o", "json"
          ])) as { items: Array<ApiEvent> }).items
          const firsts = req.expect.map((x) => items.filter((i) => i.reason === x.reason).map((i) => Date.parse(i.firstTimestamp ?? "")).sort()[0] ?? NaN)
          const inOrder = firsts.every((v, i) => i === 0 || v >= firsts[i - 1]!)
          if (!inOrder) why = `not in order: ${req.expect.map((x, i) => `${x.reason} first at ${new Date(firsts[i]!).toISOString()}`).join(", ")}`
        }
        return { ok: why === "", ms: Math.round(hostNow() - start), matched: found.map((f) => f!.line), events: section, why }
      }
      if (hostNow() - start > req.timeoutMs) {
        const missing = req.expect.filter((_, i) => found[i] === undefined).map((x) => `${x.type} ${x.reason}${x.message === undefined ? "" : ` /${x.message}/`}`)
        return { ok: false, ms: Math.round(hostNow() - start), matched: found.flatMap((f) => f === undefined ? [] : [f.line]), events: section, why: `missing after ${req.timeoutMs} ms: ${missing.join(", ")}` }
      }
      await sleep(300)
    }
  }

  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" })
      res.end(JSON.stringify(body))
    }
    const url = new URL(req.url ?? "/", "http://host")
    if (req.method === "GET" && url.pathname === "/time") return reply(200, { now: hostNow() })
    if (req.method === "GET" && url.pathname === "/seen") {
      if (watcher === undefined) return reply(404, { error: "no event watch on this control server" })
      const reason = url.searchParams.get("reason") ?? ""
      const name = url.searchParams.get("name") ?? ""
      void watcher.seen(reason, name, Number(url.searchParams.get("since") ?? "0"), Number(url.searchParams.get("timeoutMs") ?? "30000"))
        .then((at) => reply(200, { at: at ?? null }))
      return
    }
    if (req.method === "POST" && url.pathname === "/expect") {
      let body = ""
      req.setEncoding("utf8")
      req.on("data", (c: string) => (body += c))
      req.on("end", () => {
        let parsed: ExpectRequest
        try {
          parsed = JSON.parse(body) as ExpectRequest
        } catch {
          return reply(400, { error: "bad json" })
        }
        void expectEvents(parsed).then((result) => {
          const target = parsed.target.kind === "pvc" ? `pvc ${parsed.target.namespace}/${parsed.target.name}` : `node ${parsed.target.name}`
          record(parsed.scenario, {
            what: `host: kubectl describe ${target}: ${parsed.what}`,
            ok: result.ok,
            detail: result.ok ? `${result.ms} ms: ${result.matched.join(" | ")}` : `${result.why}\n${result.events}`
          })
          reply(200, result)
        }, (e: Error) => reply(500, { error: e.message }))
      })
      return
    }
    reply(404, { error: "unknown" })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    forward: `${GUEST_CONTROL_PORT}:${port}`,
    checks,
    close: () => {
      watcher?.stop()
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    }
  }
}
