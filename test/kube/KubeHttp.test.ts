/**
 * KubeHttp and KubeClientLive.make against a scripted HTTP server on 127.0.0.1 (no API server):
 * what goes on the wire (path, credentials from KubeConfig, JSON body, the PATCH content type),
 * what comes back (JSON, HttpStatusError with the server's headers), aborts, one kept-alive
 * connection, and the watch's line stream and its ends. The same calls against the real API
 * server: test/integration/deploy-rbac-calls.test.ts and Faults.test.ts.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { KubeConfig } from "@kubernetes/client-node"
import { Effect, Stream } from "effect"
import { make as makeClient } from "../../src/kube/KubeClientLive.ts"
import { defaultRoots, HttpStatusError, make } from "../../src/kube/KubeHttp.ts"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
  readonly socket: unknown
}

/** A server answering with `answer`; what it was sent is in `seen`. */
const serve = async (answer: (req: Seen, res: ServerResponse) => void) => {
  const seen: Array<Seen> = []
  const server: Server = createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, socket: req.socket }
      seen.push(s)
      answer(s, res)
    })
  })
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const close = () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()) })
  return { seen, url, close }
}

/** A KubeConfig for `server` with a bearer token (plain HTTP needs skipTLSVerify in client-node). */
const config = (server: string, user: { token?: string; authProvider?: unknown } = { token: "t0k" }) => {
  const kc = new KubeConfig()
  kc.loadFromClusterAndUser({ name: "c", server, skipTLSVerify: true }, { name: "u", ...user } as Parameters<KubeConfig["loadFromClusterAndUser"]>[1])
  return kc
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "Content-Type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

const signal = () => new AbortController().signal

describe("KubeHttp.json", () => {
  it("sends the credentials, the path (after the server URL's own path) and a JSON body; decodes the answer", async () => {
    const s = await serve((_req, res) => json(res, 201, { ok: true }))
    try {
      const http = make(config(`${s.url}/prefix/`))
      const r = await http.json<{ ok: boolean }>({ method: "POST", path: "/api/v1/namespaces/a/events", body: { n: 1 }, signal: signal() })
      assert.deepStrictEqual(r, { ok: true })
      const [req] = s.seen
      assert.strictEqual(req!.method, "POST")
      assert.strictEqual(req!.url, "/prefix/api/v1/namespaces/a/events")
      assert.strictEqual(req!.headers["authorization"], "Bearer t0k")
      assert.strictEqual(req!.headers["content-type"], "application/json")
      assert.strictEqual(req!.body, "{\"n\":1}")
    } finally {
      await s.close()
    }
  })

  it("a token file (the service account's) is read through KubeConfig", async () => {
    const s = await serve((_req, res) => json(res, 200, {}))
    try {
      const file = join(mkdtempSync(join(tmpdir(), "kube-http-")), "token")
      writeFileSync(file, "from-file")
      const http = make(config(s.url, { authProvider: { name: "tokenFile", config: { tokenFile: file } } }))
      await http.json({ method: "GET", path: "/api/v1/nodes/n", signal: signal() })
      assert.strictEqual(s.seen[0]!.headers["authorization"], "Bearer from-file")
    } finally {
      await s.close()
    }
  })

  it("outside 2xx: HttpStatusError with the body and headers; consecutive calls share one connection", async () => {
    const s = await serve((req, res) =>
      req.url.includes("busy") ? json(res, 429, { kind: "Status", message: "slow down" }, { "Retry-After": "2" }) : json(res, 200, {}))
    try {
      const http = make(config(s.url))
      await http.json({ method: "GET", path: "/a", signal: signal() })
      const e = await http.json({ method: "GET", path: "/busy", signal: signal() }).catch((e: unknown) => e)
      assert.instanceOf(e, HttpStatusError)
      assert.strictEqual(e.status, 429)
      assert.strictEqual(e.headers["retry-after"], "2")
      assert.match(e.body, /slow down/)
      assert.strictEqual(s.seen[0]!.socket, s.seen[1]!.socket)
    } finally {
      await s.close()
    }
  })

  it("an abort ends a request the server never answers", async () => {
    const s = await serve(() => undefined)
    try {
      const c = new AbortController()
      const pending = make(config(s.url)).json({ method: "GET", path: "/hang", signal: c.signal }).catch((e: unknown) => e)
      setTimeout(() => c.abort(), 50)
      assert.strictEqual((await pending as Error).name, "AbortError")
    } finally {
      await s.close()
    }
  })
})

describe("KubeHttp.lines", () => {
  const run = (path: string, url: string, idleMs = 5_000) =>
    new Promise<{ lines: Array<string>; end: unknown }>((resolve) => {
      const lines: Array<string> = []
      make(config(url)).lines(path, signal(), idleMs, (l) => lines.push(l), (end) => resolve({ lines, end }))
    })

  it("lines split across writes, then the server's end", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" })
      res.write("{\"a\":1}\n{\"b\"")
      setTimeout(() => res.end(":2}\n\n"), 20)
    })
    try {
      assert.deepStrictEqual(await run("/w", s.url), { lines: ["{\"a\":1}", "{\"b\":2}"], end: undefined })
    } finally {
      await s.close()
    }
  })

  it("a refusal is an HttpStatusError; silence ends it with a TimeoutError", async () => {
    const s = await serve((req, res) => req.url === "/gone" ? json(res, 410, { kind: "Status", code: 410 }) : res.writeHead(200).flushHeaders())
    try {
      const refused = await run("/gone", s.url)
      assert.instanceOf(refused.end, HttpStatusError)
      assert.strictEqual((refused.end as HttpStatusError).status, 410)
      assert.strictEqual(((await run("/silent", s.url, 100)).end as Error).name, "TimeoutError")
    } finally {
      await s.close()
    }
  })
})

describe("KubeClientLive.make over KubeHttp", () => {
  it.effect("the watch maps events, bookmarks and an ERROR 410; the PATCH is a strategic merge", () =>
    Effect.gen(function*() {
      const s = yield* Effect.promise(() =>
        serve((req, res) => {
          if (req.url.startsWith("/api/v1/persistentvolumes?")) {
            res.writeHead(200)
            const pv = { metadata: { name: "pv1", uid: "u1", resourceVersion: "7" }, spec: { csi: { driver: "d", volumeHandle: "h1" }, claimRef: { namespace: "ns", name: "c" } } }
            res.write(`${JSON.stringify({ type: "ADDED", object: pv })}\n`)
            res.write(`${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } })}\n`)
            res.end(`${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old" } })}\n`)
          } else json(res, 200, { metadata: { name: "e", namespace: "ns" }, involvedObject: {}, count: 3, lastTimestamp: "2026-01-01T00:00:01Z" })
        })
      )
      const client = makeClient(config(s.url))
      const watched = yield* client.watchPersistentVolumes("5").pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(watched.reason, "Conflict")
      assert.match(s.seen[0]!.url, /watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=5/)
      const events = yield* client.watchPersistentVolumes("5").pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(Array.from(events), [
        { type: "ADDED", object: { name: "pv1", uid: "u1", resourceVersion: "7", csi: { driver: "d", volumeHandle: "h1" }, claimRef: { namespace: "ns", name: "c", uid: undefined } } },
        { type: "BOOKMARK", resourceVersion: "9" }
      ])
      const patched = yield* client.patchEvent("ns", "e", { count: 3, lastTimestamp: 1_000, message: "m" })
      assert.strictEqual(patched.count, 3)
      assert.strictEqual(patched.lastTimestamp, Date.parse("2026-01-01T00:00:01Z"))
      const patch = s.seen.find((r) => r.method === "PATCH")!
      assert.strictEqual(patch.headers["content-type"], "application/strategic-merge-patch+json")
      assert.deepStrictEqual(JSON.parse(patch.body), { count: 3, lastTimestamp: "1970-01-01T00:00:01Z", message: "m" })
      yield* Effect.promise(() => s.close())
    }))
})

describe("KubeHttp's TLS trust when the kubeconfig names no CA (the DaemonSet runs Node with --use-openssl-ca)", () => {
  const TLS = join(import.meta.dirname, "../fixtures/tls")
  const ROOT = join(import.meta.dirname, "../..")
  const NODE24 = existsSync(join(ROOT, "node_modules/node/bin/node")) ? join(ROOT, "node_modules/node/bin/node") : process.execPath

  it("defaultRoots holds Node's default roots and all of its bundled ones", () => {
    const roots = defaultRoots()
    for (const pem of [...tls.getCACertificates("default"), ...tls.getCACertificates("bundled")]) assert.include(roots, pem.trim())
    assert.isAbove(tls.getCACertificates("bundled").length, 100)
  })

  it("under --use-openssl-ca, with no OpenSSL store: NODE_EXTRA_CA_CERTS and the bundled roots are trusted, nothing else, and verification stays on", async () => {
    const servers = await Promise.all(["server", "untrusted"].map(async (name) => {
      const server = createHttpsServer({ cert: readFileSync(join(TLS, `${name}.pem`)), key: readFileSync(join(TLS, `${name}.key`)) }, (_, res) => json(res, 200, { name }))
      await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
      return server
    }))
    const [trusted, untrusted] = servers.map((s) => `https://127.0.0.1:${(s.address() as AddressInfo).port}`)
    const empty = mkdtempSync(join(tmpdir(), "rds-csi-no-store-"))
    // A child Node: NODE_EXTRA_CA_CERTS and the CA flags are read at its start.
    const script = [
      `import * as tls from "node:tls"`,
      `import https from "node:https"`,
      `import { syncBuiltinESMExports } from "node:module"`,
      `import { KubeConfig } from "@kubernetes/client-node"`,
      // What the request is given to trust (node:https's request, seen through its ES namespace).
      `let given`,
      `const request = https.request`,
      `https.request = (url, options) => { given = options.ca; return request(url, options) }`,
      `syncBuiltinESMExports()`,
      `import { defaultRoots, make } from "./src/kube/KubeHttp.ts"`,
      `const get = async (server) => {`,
      `  const kc = new KubeConfig()`,
      `  kc.loadFromClusterAndUser({ name: "c", server }, { name: "u", token: "t" })`,
      `  return make(kc).json({ method: "GET", path: "/version", signal: new AbortController().signal }).then((a) => a.name, (e) => "refused: " + (e.code ?? e.message))`,
      `}`,
      `const roots = defaultRoots()`,
      `console.log(JSON.stringify({`,
      `  defaultLength: tls.getCACertificates("default").length,`,
      `  bundledInRoots: tls.getCACertificates("bundled").every((pem) => roots.includes(pem.trim())),`,
      `  trusted: await get(${JSON.stringify(trusted)}),`,
      `  givenBundled: tls.getCACertificates("bundled").every((pem) => given?.includes(pem.trim())),`,
      `  untrusted: await get(${JSON.stringify(untrusted)})`,
      `}))`
    ].join("\n")
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(NODE24, ["--use-openssl-ca", "--no-warnings", "--input-type=module", "-e", script], {
        cwd: ROOT,
        env: { PATH: process.env["PATH"] ?? "", NODE_EXTRA_CA_CERTS: join(TLS, "ca.pem"), SSL_CERT_FILE: join(empty, "none.pem"), SSL_CERT_DIR: empty },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      child.stdout.on("data", (d: Buffer) => (out += d.toString()))
      child.stderr.on("data", (d: Buffer) => (out += d.toString()))
      child.once("exit", (code) => resolve({ code, out }))
    })
    for (const s of servers) s.close()
    assert.strictEqual(r.code, 0, r.out)
    const seen = JSON.parse(r.out.trim().split("\n").at(-1)!) as { defaultLength: number; bundledInRoots: boolean; givenBundled: boolean; trusted: string; untrusted: string }
    // Node's own default under the flag is the extra CA alone: the bundled roots come from defaultRoots.
    assert.strictEqual(seen.defaultLength, 1)
    assert.isTrue(seen.bundledInRoots)
    assert.isTrue(seen.givenBundled)
    assert.strictEqual(seen.trusted, "server")
    assert.strictEqual(seen.untrusted, "refused: DEPTH_ZERO_SELF_SIGNED_CERT")
  })
})
