import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { CsiServer, type ServerOptions } from "../../src/csi/Server.ts"
import { testSettings } from "../../src/Settings.ts"
import { csiClient, rpc, status, statusOf } from "./client.ts"
import { type LogEntry, makeFakeNodeVolumes, serverDeps, tempDir } from "./fixture.ts"
import { stageReq } from "./requests.ts"

const serverIn = (dir: string, options: ServerOptions = { shutdownTimeout: "2 seconds" }, endpoint = `unix://${dir}/csi.sock`) => {
  const fake = makeFakeNodeVolumes()
  const logs: Array<LogEntry> = []
  const layer = CsiServer.layerWith(options).pipe(Layer.provide(serverDeps(fake, testSettings({ endpoint }), logs)))
  return { fake, logs, layer }
}

/** Leaves a socket file nobody listens on, as a plugin killed with SIGKILL does. */
const staleSocket = (path: string) =>
  Effect.promise(() =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`])
      child.stdout.once("data", () => child.kill("SIGKILL"))
      child.once("exit", () => Fs.existsSync(path) ? resolve() : reject(new Error("no stale socket left behind")))
    })
  )

const listening = (path: string) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer((s) => s.end()).listen(path, () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )

describe("CsiServer socket", () => {
  it.live("listens on the endpoint's socket with mode 0660", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { layer } = serverIn(dir)
      yield* Layer.build(layer)
      const stat = Fs.lstatSync(Path.join(dir, "csi.sock"))
      assert.isTrue(stat.isSocket())
      assert.strictEqual((stat.mode & 0o777).toString(8), "660")
    }))

  it.live("creates the socket's directory when it is missing", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { layer } = serverIn(dir, undefined, `unix://${dir}/plugins/rds/csi.sock`)
      const client = yield* csiClient(`${dir}/plugins/rds/csi.sock`)
      yield* Layer.build(layer)
      assert.isString((yield* rpc(() => client.GetPluginInfo())).name)
    }))

  it.live("removes a stale socket left by a killed plugin, then serves", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "csi.sock")
      yield* staleSocket(path)
      const { layer, logs } = serverIn(dir)
      yield* Layer.build(layer)
      const client = yield* csiClient(path)
      assert.strictEqual((yield* rpc(() => client.Probe())).ready?.value, true)
      assert.isTrue(logs.some((l) => l.message === "removing stale CSI socket"))
    }))

  it.live("refuses to remove a file that is not a socket", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "csi.sock")
      Fs.writeFileSync(path, "precious")
      const error = yield* Effect.flip(Layer.build(serverIn(dir).layer))
      assert.strictEqual(error.reason, "NotASocket")
      assert.strictEqual(Fs.readFileSync(path, "utf8"), "precious")
    }))

  it.live("refuses to take over a socket another process still serves", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "csi.sock")
      yield* listening(path)
      const error = yield* Effect.flip(Layer.build(serverIn(dir).layer))
      assert.strictEqual(error.reason, "InUse")
      assert.isTrue(Fs.lstatSync(path).isSocket())
    }))

  it.live("rejects an endpoint that is not unix:///<absolute path>", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      for (const endpoint of ["tcp://127.0.0.1:10000", "unix://relative/csi.sock", `unix://${dir}/../x.sock`]) {
        const error = yield* Effect.flip(Layer.build(serverIn(dir, undefined, endpoint).layer))
        assert.strictEqual(error.reason, "Endpoint", endpoint)
      }
    }))
})

describe("CsiServer shutdown", () => {
  it.live("closing the scope stops the server and removes the socket", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "csi.sock")
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(serverIn(dir).layer, scope)
      const client = yield* csiClient(path)
      yield* rpc(() => client.GetPluginInfo())
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Fs.existsSync(path))
      const after = yield* statusOf(client.GetPluginInfo(undefined, { deadlineMs: 500 }))
      assert.notStrictEqual(after.code, status.OK)
    }))

  it.live("an in-flight call finishes before the server stops", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "csi.sock")
      const { fake, layer } = serverIn(dir, { shutdownTimeout: "5 seconds" })
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      fake.next.void.stage = Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(release))
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(layer, scope)
      const client = yield* csiClient(path)
      const call = yield* Effect.forkChild(statusOf(client.NodeStageVolume(stageReq())))
      yield* Deferred.await(started)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.sleep("100 millis")
      assert.isUndefined(closing.pollUnsafe(), "shutdown waits for the in-flight call")
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual((yield* Fiber.join(call)).code, status.OK)
      yield* Fiber.join(closing)
      assert.isFalse(Fs.existsSync(path))
    }))

  it.live("a call still running at the bound is cut off and its fiber interrupted", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "csi.sock")
      const { fake, layer, logs } = serverIn(dir, { shutdownTimeout: "200 millis" })
      const started = yield* Deferred.make<void>()
      let interrupted = false
      fake.next.void.stage = Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
        Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true)))
      )
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(layer, scope)
      const client = yield* csiClient(path)
      const call = yield* Effect.forkChild(statusOf(client.NodeStageVolume(stageReq())))
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      assert.notStrictEqual((yield* Fiber.join(call)).code, status.OK)
      assert.isTrue(interrupted)
      assert.isFalse(Fs.existsSync(path))
      assert.isTrue(logs.some((l) => l.annotations["rpc"] === "NodeStageVolume" && l.annotations["code"] === "ABORTED"))
    }))
})
