/**
 * UnaryServer, the plugin's gRPC server on node:http2, at the protocol level: a grpc-js client
 * (what the tests and the e2e harness use) for the ordinary calls, and a raw HTTP/2 client for
 * what no well-behaved client sends (a compressed or oversized message, two messages, a GET).
 * grpc-go (kubelet's side) is exercised by csi-sanity in the e2e suite.
 */
import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as Http2 from "node:http2"
import * as Net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { status } from "../../src/csi/StatusCode.ts"
import { type Answer, encodeMessage, MAX_MESSAGE, type UnaryMethod, UnaryServer } from "../../src/csi/UnaryServer.ts"

/** A method whose messages are UTF-8 text (the framing, not protobuf, is under test). */
const method = (name: string): UnaryMethod => ({
  path: `/test.Echo/${name}`,
  requestDeserialize: (bytes) => bytes.toString("utf8"),
  responseSerialize: ((value: string) => Buffer.from(value, "utf8")) as (value: never) => Buffer
})
const definition = { Say: method("Say"), Fail: method("Fail"), Slow: method("Slow"), Unserved: method("Unserved") }

const grpcDefinition = Object.fromEntries(Object.entries(definition).map(([name, m]) => [name, {
  path: m.path,
  requestStream: false,
  responseStream: false,
  requestSerialize: (s: string) => Buffer.from(s, "utf8"),
  requestDeserialize: (b: Buffer) => b.toString("utf8"),
  responseSerialize: (s: string) => Buffer.from(s, "utf8"),
  responseDeserialize: (b: Buffer) => b.toString("utf8")
}])) as grpc.ServiceDefinition

const started = async (handlers: Record<string, (request: unknown) => Promise<Answer>>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unary-"))
  const socket = path.join(dir, "s.sock")
  const server = new UnaryServer()
  server.add(definition, handlers)
  await server.listen(socket)
  const Client = grpc.makeGenericClientConstructor(grpcDefinition, "Echo")
  const client = new Client(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: string, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: string) => void) => void> & grpc.Client
  const call = (name: string, request: string, deadlineMs = 5000) =>
    new Promise<{ readonly error: grpc.ServiceError | null; readonly response?: string | undefined }>((resolve) =>
      client[name]!(request, { deadline: Date.now() + deadlineMs }, (error, response) => resolve({ error, response })))
  const raw = (headers: Http2.OutgoingHttpHeaders, body: Buffer) =>
    new Promise<{ readonly headers: Http2.IncomingHttpHeaders; readonly trailers: Http2.IncomingHttpHeaders; readonly data: Buffer }>((resolve, reject) => {
      const session = Http2.connect("http://localhost", { createConnection: () => Net.connect(socket) })
      session.on("error", reject)
      const stream = session.request({ ":method": "POST", ":path": definition.Say.path, "content-type": "application/grpc", te: "trailers", ...headers })
      let responseHeaders: Http2.IncomingHttpHeaders = {}
      let trailers: Http2.IncomingHttpHeaders = {}
      const chunks: Array<Buffer> = []
      stream.on("response", (h) => (responseHeaders = h))
      stream.on("trailers", (t) => (trailers = t))
      stream.on("data", (c: Buffer) => chunks.push(c))
      stream.on("error", () => {})
      stream.on("close", () => {
        session.close()
        resolve({ headers: responseHeaders, trailers, data: Buffer.concat(chunks) })
      })
      stream.end(body)
    })
  const close = async () => {
    client.close()
    await server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return { server, call, raw, close, socket }
}

const frame = (payload: Buffer, compressed = 0) => {
  const f = Buffer.alloc(5 + payload.length)
  f[0] = compressed
  f.writeUInt32BE(payload.length, 1)
  payload.copy(f, 5)
  return f
}

const ok = (value: unknown): Promise<Answer> => Promise.resolve({ ok: true, value })

describe("UnaryServer: gRPC unary calls over node:http2", () => {
  it("answers a call with its handler's response, and a failure with its status and message (percent-encoded on the wire, as sent)", async () => {
    const s = await started({
      Say: (r) => ok(`you said: ${String(r)}`),
      Fail: () => Promise.resolve({ ok: false, code: status.FAILED_PRECONDITION, message: "volume «v1» is 100% staged elsewhere\nsecond line" })
    })
    try {
      const said = await s.call("Say", "héllo")
      assert.isNull(said.error)
      assert.strictEqual(said.response, "you said: héllo")
      const failed = await s.call("Fail", "x")
      assert.strictEqual(failed.error?.code, status.FAILED_PRECONDITION)
      assert.strictEqual(failed.error?.details, "volume «v1» is 100% staged elsewhere\nsecond line")
      const rawFail = await s.raw({ ":path": definition.Fail.path }, frame(Buffer.from("x")))
      assert.strictEqual(rawFail.headers["grpc-status"], String(status.FAILED_PRECONDITION), "trailers-only")
      assert.strictEqual(rawFail.headers["grpc-message"], "volume %C2%ABv1%C2%BB is 100%25 staged elsewhere%0Asecond line")
    } finally {
      await s.close()
    }
  })

  it("a method without a handler, or unknown, is UNIMPLEMENTED", async () => {
    const s = await started({ Say: (r) => ok(r) })
    try {
      assert.strictEqual((await s.call("Unserved", "x")).error?.code, status.UNIMPLEMENTED)
      const unknown = await s.raw({ ":path": "/test.Echo/Nope" }, frame(Buffer.from("x")))
      assert.strictEqual(unknown.headers["grpc-status"], String(status.UNIMPLEMENTED))
    } finally {
      await s.close()
    }
  })

  it("refuses what it cannot read: a compressed message, two messages, a cut frame, an oversized request, a non-gRPC request", async () => {
    let calls = 0
    const s = await started({ Say: (r) => (calls++, ok(r)) })
    try {
      const compressed = await s.raw({ "grpc-encoding": "gzip" }, frame(Buffer.from("x"), 1))
      assert.strictEqual(compressed.headers["grpc-status"], String(status.UNIMPLEMENTED))
      const two = await s.raw({}, Buffer.concat([frame(Buffer.from("a")), frame(Buffer.from("b"))]))
      assert.strictEqual(two.headers["grpc-status"], String(status.INTERNAL))
      const cut = await s.raw({}, frame(Buffer.from("abcdef")).subarray(0, 8))
      assert.strictEqual(cut.headers["grpc-status"], String(status.INTERNAL))
      const big = await s.raw({}, frame(Buffer.alloc(MAX_MESSAGE + 1, 0x61)))
      assert.strictEqual(big.headers["grpc-status"], String(status.RESOURCE_EXHAUSTED))
      const notGrpc = await s.raw({ "content-type": "application/json" }, Buffer.from("{}"))
      assert.strictEqual(Number(notGrpc.headers[":status"]), 415)
      assert.strictEqual(calls, 0, "no handler ran for any of them")
      const fine = await s.raw({}, frame(Buffer.from("still serving")))
      assert.strictEqual(Number(fine.headers[":status"]), 200)
      assert.strictEqual(fine.trailers["grpc-status"], "0")
      assert.strictEqual(fine.data.subarray(5).toString(), "still serving")
      assert.strictEqual(calls, 1)
    } finally {
      await s.close()
    }
  })

  it("a call its client gives up on (deadline) keeps running; its late answer is dropped, and the server goes on", async () => {
    let finished = false
    const s = await started({
      Slow: () => new Promise((resolve) => setTimeout(() => {
        finished = true
        resolve({ ok: true, value: "late" })
      }, 300)),
      Say: (r) => ok(r)
    })
    try {
      const late = await s.call("Slow", "x", 50)
      assert.strictEqual(late.error?.code, status.DEADLINE_EXCEEDED)
      await new Promise((r) => setTimeout(r, 400))
      assert.isTrue(finished, "the handler ran to its end")
      assert.strictEqual((await s.call("Say", "next")).response, "next")
    } finally {
      await s.close()
    }
  })

  it("close() answers the calls in flight before it resolves; destroy() cuts them off", async () => {
    let release: (() => void) | undefined
    const s = await started({ Slow: () => new Promise((resolve) => (release = () => resolve({ ok: true, value: "done" }))) })
    const inFlight = s.call("Slow", "x")
    while (release === undefined) await new Promise((r) => setTimeout(r, 5))
    let closed = false
    const closing = s.server.close().then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 100))
    assert.isFalse(closed, "close waits for the call in flight")
    release()
    const answered = await inFlight
    assert.strictEqual(answered.response, "done")
    await closing
    assert.isFalse(fs.existsSync(s.socket), "the socket is gone with the listener")

    const t = await started({ Slow: () => new Promise(() => {}) })
    const cut = t.call("Slow", "x")
    await new Promise((r) => setTimeout(r, 100))
    const closingT = t.server.close()
    t.server.destroy()
    await closingT
    assert.strictEqual((await cut).error?.code, status.UNAVAILABLE)
  })

  it("an error on the listener after it is bound (a connection it could not accept) does not end the process", async () => {
    const s = await started({ Say: (r) => ok(r) })
    try {
      const server = (s.server as unknown as { readonly server: Http2.Http2Server }).server
      server.emit("error", Object.assign(new Error("accept EMFILE"), { code: "EMFILE" }))
      assert.strictEqual((await s.call("Say", "still here")).response, "still here")
    } finally {
      await s.close()
    }
  })

  it("encodes grpc-message as the protocol says: printable ASCII but '%' as is, the rest percent-encoded UTF-8", () => {
    assert.strictEqual(encodeMessage("plain text: 1/2 (ok)"), "plain text: 1/2 (ok)")
    assert.strictEqual(encodeMessage("50%"), "50%25")
    assert.strictEqual(encodeMessage("é\t"), "%C3%A9%09")
  })
})
