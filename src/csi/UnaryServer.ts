/**
 * A gRPC server for unary methods over node:http2: all of gRPC that CSI needs (every CSI method
 * is unary), on the HTTP/2 mapping of the gRPC protocol (grpc/doc/PROTOCOL-HTTP2.md). It replaces
 * @grpc/grpc-js on the plugin's side: grpc-js is a client and a server with load balancers, name
 * resolvers, channelz and retries, and loading it cost over a second of every start under
 * emulation and ~4.7 MiB resident (issue 12). Clients are unchanged: kubelet and the sidecars
 * (grpc-go), csi-sanity, and the tests' grpc-js client all speak to it.
 *
 * What it does: a POST to `/package.Service/Method` with content-type application/grpc and one
 * length-prefixed message is decoded, handed to the method's handler, and answered with one
 * message and `grpc-status: 0` in the trailers, or with a trailers-only response carrying the
 * status and its percent-encoded message. An unknown method is UNIMPLEMENTED, a compressed
 * message (this server offers only `identity`) UNIMPLEMENTED, a request over MAX_MESSAGE bytes
 * RESOURCE_EXHAUSTED, a malformed frame or an undecodable message INTERNAL. A call the client
 * cancels keeps running (the handler decides; see Rpc.ts) and its answer is dropped.
 *
 * May import: node:http2, csi/StatusCode.
 */
import * as Http2 from "node:http2"
import { status } from "./StatusCode.ts"

/** How to read a method's request and write its response (Proto.ts builds them from csi.proto). */
export interface UnaryMethod {
  readonly path: string
  readonly requestDeserialize: (bytes: Buffer) => unknown
  readonly responseSerialize: (value: never) => Buffer
}

/** A method's answer: its response, or a status. */
export type Answer = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly code: number; readonly message: string }

export type UnaryHandler = (request: unknown) => Promise<Answer>

/** The largest request accepted, as grpc-js and grpc-go's default (4 MiB). */
export const MAX_MESSAGE = 4 * 1024 * 1024

/** grpc-message: percent-encoded outside printable ASCII, and `%` itself (PROTOCOL-HTTP2.md). */
export const encodeMessage = (message: string): string => {
  let out = ""
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

const GRPC_HEADERS = { ":status": 200, "content-type": "application/grpc", "grpc-accept-encoding": "identity" } as const

const trailersOnly = (stream: Http2.ServerHttp2Stream, code: number, message: string): void => {
  if (stream.destroyed || stream.closed || stream.headersSent) return
  stream.respond({ ...GRPC_HEADERS, "grpc-status": String(code), "grpc-message": encodeMessage(message) }, { endStream: true })
}

/** One length-prefixed message: the request's bytes, or the status to refuse it with. */
const unframe = (body: Buffer): { readonly bytes: Buffer } | { readonly code: number; readonly message: string } => {
  if (body.length < 5) return { code: status.INTERNAL, message: `a unary request must carry one message (got ${body.length} bytes)` }
  const length = body.readUInt32BE(1)
  if (body.length !== 5 + length) return { code: status.INTERNAL, message: `a unary request must carry exactly one message (frame of ${length} bytes in a body of ${body.length})` }
  if (body[0] !== 0) return { code: status.UNIMPLEMENTED, message: "compressed messages are not supported (grpc-accept-encoding: identity)" }
  return { bytes: body.subarray(5) }
}

export class UnaryServer {
  private readonly methods = new Map<string, { readonly method: UnaryMethod; readonly handler: UnaryHandler }>()
  private readonly sessions = new Set<Http2.ServerHttp2Session>()
  private readonly server: Http2.Http2Server

  constructor() {
    this.server = Http2.createServer()
    this.server.on("session", (session) => {
      this.sessions.add(session)
      session.once("close", () => this.sessions.delete(session))
      // A client that vanishes mid-call: nothing to answer, nothing to crash on.
      session.on("error", () => {})
    })
    this.server.on("stream", (stream, headers) => this.call(stream, headers))
  }

  /** Serves `handlers` for the methods of `definition` that have one. */
  add(definition: Readonly<Record<string, UnaryMethod>>, handlers: Readonly<Record<string, UnaryHandler>>): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = handlers[name]
      if (handler !== undefined) this.methods.set(method.path, { method, handler })
    }
  }

  /** Listens on the unix socket `path`. */
  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(error)
      this.server.once("error", failed)
      this.server.listen(path, () => {
        this.server.off("error", failed)
        // From now on an error is a connection the listener could not accept (EMFILE, say): the
        // client retries it; it must not end the plugin with an unhandled 'error'.
        this.server.on("error", () => {})
        resolve()
      })
    })
  }

  /** Stops accepting connections and calls; resolves once every call in flight has been answered and every connection closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      // GOAWAY: clients open no new call here; the session closes when its calls are answered.
      for (const session of this.sessions) session.close()
    })
  }

  /** Cuts every connection now (calls in flight get no answer). */
  destroy(): void {
    for (const session of this.sessions) session.destroy()
  }

  private call(stream: Http2.ServerHttp2Stream, headers: Http2.IncomingHttpHeaders): void {
    stream.on("error", () => {})
    const contentType = headers["content-type"]
    if (headers[":method"] !== "POST" || typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 415, "content-type": "text/plain" }, { endStream: true })
      return
    }
    const entry = this.methods.get(headers[":path"] ?? "")
    if (entry === undefined) {
      stream.resume()
      trailersOnly(stream, status.UNIMPLEMENTED, `unknown method ${headers[":path"] ?? ""}`)
      return
    }
    const chunks: Array<Buffer> = []
    let size = 0
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_MESSAGE + 5) {
        if (!stream.headersSent) trailersOnly(stream, status.RESOURCE_EXHAUSTED, `request larger than ${MAX_MESSAGE} bytes`)
        stream.close(Http2.constants.NGHTTP2_CANCEL)
        return
      }
      chunks.push(chunk)
    })
    stream.once("end", () => {
      if (size > MAX_MESSAGE + 5) return
      const frame = unframe(Buffer.concat(chunks, size))
      if ("code" in frame) return trailersOnly(stream, frame.code, frame.message)
      let request: unknown
      try {
        request = entry.method.requestDeserialize(frame.bytes)
      } catch (error) {
        return trailersOnly(stream, status.INTERNAL, `cannot decode the request: ${error instanceof Error ? error.message : String(error)}`)
      }
      void entry.handler(request).then((answer) => this.answer(stream, entry.method, answer))
    })
  }

  private answer(stream: Http2.ServerHttp2Stream, method: UnaryMethod, answer: Answer): void {
    // A cancelled call (deadline, disconnect): its answer has nowhere to go.
    if (stream.destroyed || stream.closed) return
    if (!answer.ok) return trailersOnly(stream, answer.code, answer.message)
    let payload: Buffer
    try {
      payload = method.responseSerialize(answer.value as never)
    } catch (error) {
      return trailersOnly(stream, status.INTERNAL, `cannot encode the response: ${error instanceof Error ? error.message : String(error)}`)
    }
    const frame = Buffer.allocUnsafe(5 + payload.length)
    frame[0] = 0
    frame.writeUInt32BE(payload.length, 1)
    payload.copy(frame, 5)
    stream.respond(GRPC_HEADERS, { waitForTrailers: true })
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
    stream.end(frame)
  }
}
