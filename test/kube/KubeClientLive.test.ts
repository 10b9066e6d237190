/**
 * KubeClientLive without a server: configuration loading (never the localhost:8080 fallback)
 * and the mapping of request failures (HTTP status, socket and TLS errors, timeouts) to
 * KubeError reasons. The request path itself is in KubeHttp.test.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { loadKubeConfig } from "../../src/kube/KubeClientLive.ts"
import { parseRetryAfter, toKubeError } from "../../src/kube/KubeWire.ts"
import { HttpStatusError } from "../../src/kube/KubeHttp.ts"
import * as Kube from "../../src/kube/index.ts"

describe("rds-csi/kube's KubeClientLive namespace", () => {
  it("still offers the failure mapping that moved to KubeWire.ts", () => {
    assert.strictEqual(Kube.KubeClientLive.parseRetryAfter, parseRetryAfter)
    assert.strictEqual(Kube.KubeClientLive.toKubeError, toKubeError)
    assert.strictEqual(typeof Kube.KubeClientLive.layerConfig, "object")
  })
})

describe("loadKubeConfig", () => {
  it.effect("without --kubeconfig and outside a cluster it fails instead of using localhost:8080", () =>
    Effect.gen(function*() {
      const saved = { host: process.env["KUBERNETES_SERVICE_HOST"], port: process.env["KUBERNETES_SERVICE_PORT"] }
      delete process.env["KUBERNETES_SERVICE_HOST"]
      delete process.env["KUBERNETES_SERVICE_PORT"]
      const e = yield* Effect.flip(loadKubeConfig(undefined))
      if (saved.host !== undefined) process.env["KUBERNETES_SERVICE_HOST"] = saved.host
      if (saved.port !== undefined) process.env["KUBERNETES_SERVICE_PORT"] = saved.port
      assert.strictEqual(e.reason, "Invalid")
      assert.match(e.detail, /not falling back to localhost:8080/)
    }))

  it.effect("loads a kubeconfig file; a missing file is an Invalid error", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "kc-"))
      const file = join(dir, "config")
      writeFileSync(file, [
        "apiVersion: v1", "kind: Config",
        "clusters: [{name: c, cluster: {server: \"https://127.0.0.1:6443\"}}]",
        "users: [{name: u, user: {token: t}}]",
        "contexts: [{name: x, context: {cluster: c, user: u}}]",
        "current-context: x", ""
      ].join("\n"))
      const kc = yield* loadKubeConfig(file)
      assert.strictEqual(kc.getCurrentCluster()?.server, "https://127.0.0.1:6443")
      const missing = yield* Effect.flip(loadKubeConfig(join(dir, "nope")))
      assert.strictEqual(missing.reason, "Invalid")
    }))
})

describe("toKubeError", () => {
  const api = (code: number, headers: Record<string, string> = {}) =>
    new HttpStatusError(code, JSON.stringify({ kind: "Status", message: `status ${code}` }), headers)

  it("maps HTTP status to a reason, keeping the server's message", () => {
    const cases: Array<[number, string]> = [[404, "NotFound"], [403, "Forbidden"], [401, "Forbidden"], [409, "Conflict"], [410, "Conflict"],
      [429, "TooManyRequests"], [500, "ServerError"], [503, "ServerError"], [422, "Invalid"], [400, "Invalid"]]
    for (const [code, reason] of cases) {
      const e = toKubeError("op", api(code))
      assert.strictEqual(e.reason, reason, String(code))
      assert.strictEqual(e.status, code)
      assert.strictEqual(e.detail, `status ${code}`)
    }
  })

  it("reads Retry-After as seconds or as an HTTP date", () => {
    assert.deepStrictEqual(toKubeError("op", api(429, { "retry-after": "3" })).retryAfter, Duration.seconds(3))
    assert.deepStrictEqual(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), Duration.millis(6_000))
    assert.isUndefined(parseRetryAfter("soon", 0))
  })

  it("a body that is not a Status still gives a detail", () => {
    assert.strictEqual(toKubeError("op", new HttpStatusError(502, "", {})).detail, "HTTP 502")
    assert.strictEqual(toKubeError("op", new HttpStatusError(500, "upstream broke", {})).detail, "upstream broke")
  })

  it("anything else is Transport (with the socket's code), or Timeout", () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
    const e = toKubeError("op", reset)
    assert.strictEqual(e.reason, "Transport")
    assert.match(e.detail, /ECONNRESET: socket hang up/)
    const tls = Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" })
    assert.match(toKubeError("op", tls).detail, /DEPTH_ZERO_SELF_SIGNED_CERT/)
    assert.strictEqual(toKubeError("op", new DOMException("too slow", "TimeoutError")).reason, "Timeout")
  })
})
