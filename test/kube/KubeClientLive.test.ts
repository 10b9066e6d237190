/**
 * KubeClientLive without a server: configuration loading (never the localhost:8080 fallback)
 * and the mapping of client-node/undici failures to KubeError reasons.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ApiException } from "@kubernetes/client-node"
import { Duration, Effect } from "effect"
import { loadKubeConfig, parseRetryAfter, toKubeError } from "../../src/kube/KubeClientLive.ts"

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
    new ApiException(code, "x", JSON.stringify({ kind: "Status", message: `status ${code}` }), headers)

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

  it("anything else is Transport (with the socket's code), or Timeout", () => {
    const reset = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNRESET", message: "other side closed" } })
    const e = toKubeError("op", reset)
    assert.strictEqual(e.reason, "Transport")
    assert.match(e.detail, /ECONNRESET/)
    assert.strictEqual(toKubeError("op", new DOMException("too slow", "TimeoutError")).reason, "Timeout")
  })
})
