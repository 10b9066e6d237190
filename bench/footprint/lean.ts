/**
 * bench/footprint, guest side: a gRPC unary client made of node:http2 and nothing else, for the
 * second timing of each RPC. The harness's grpc-js client costs 40–110 ms on each side of a call
 * under the VM's emulation (bench/README.md, round 9), which a CO's client (kubelet's Go gRPC on
 * a connection it keeps) does not; this one sends a request encoded before the clock starts as
 * one DATA frame on an open HTTP/2 session and waits for the trailers: what is left of a call is
 * the plugin, its HTTP/2 server and the socket.
 *   const lean = await leanClient(SOCKET); await lean.call("Node", "NodeStageVolume", frame)
 */
import * as http2 from "node:http2"
import * as net from "node:net"
import { loadCsiDefinitions } from "../../src/csi/Proto.ts"

type Service = "Identity" | "Node"

export interface LeanClient {
  /** The gRPC message frame of `request` (5-byte prefix + protobuf), made once before it is timed. */
  readonly frame: (service: Service, method: string, request: object) => Buffer
  /** One unary call; resolves with the gRPC status and message from the trailers. */
  readonly call: (service: Service, method: string, frame: Buffer) => Promise<{ readonly code: number; readonly details: string }>
  readonly close: () => void
}

export const leanClient = async (socket: string): Promise<LeanClient> => {
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) })
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve())
    session.once("error", reject)
  })
  session.on("error", () => {})
  const definitions = loadCsiDefinitions()
  const definition = (service: Service, method: string) => {
    const d = definitions[service][method]
    if (d === undefined) throw new Error(`no method ${service}.${method}`)
    return d
  }
  return {
    frame: (service, method, request) => {
      const body = definition(service, method).requestSerialize(request)
      const frame = Buffer.alloc(5 + body.length)
      frame.writeUInt32BE(body.length, 1)
      body.copy(frame, 5)
      return frame
    },
    call: (service, method, frame) =>
      new Promise((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": `/csi.v1.${service}/${method}`,
          "content-type": "application/grpc",
          te: "trailers"
        })
        let code = -1
        let details = ""
        const take = (headers: http2.IncomingHttpHeaders) => {
          if (headers["grpc-status"] === undefined) return
          code = Number(headers["grpc-status"])
          details = decodeURIComponent(String(headers["grpc-message"] ?? ""))
        }
        stream.on("response", take)
        stream.on("trailers", take)
        stream.on("data", () => {})
        stream.on("end", () => resolve({ code, details }))
        stream.on("error", reject)
        stream.end(frame)
      }),
    close: () => session.close()
  }
}
