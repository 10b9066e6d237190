/**
 * Our copy of the CSI protocol (proto/csi.proto) as the method definitions of Identity, Node and
 * Controller (paths and codecs: what UnaryServer.ts serves, and grpc-js clients for the tests and
 * tools, loaded only when a client is asked for), built directly on protobufjs. The bundled build loads the codecs
 * protobufjs generated at build time (proto/csi-codecs.cjs, written by `npm run build` with
 * ProtoCodegen.ts): no reflection tree and no code generation in the plugin at all. The sources
 * parse the .proto and protobufjs generates each message's codec on first use (`warmCodec`
 * does that ahead of the first RPC). @grpc/proto-loader, which the tests still use as the
 * reference, also encodes a descriptor of every file and message for reflection we never serve
 * (seconds of start-up under emulation).
 *
 * The decoding options are fixed here, once, because Messages.ts describes exactly the shapes
 * they produce (the same as proto-loader's with LOADER_OPTIONS, checked by Proto.test.ts).
 *
 * May import: @grpc/grpc-js (clients for the tests and the build, loaded on demand; a dev dependency), protobufjs, node:fs, node:module, node:path, csi/ProtoCodegen.
 */
import type * as grpc from "@grpc/grpc-js"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import protobuf from "protobufjs"
import { type CodecMethod, type MessageCodec, methodsOf, reachable, type StaticCodecs } from "./ProtoCodegen.ts"

/** Found next to this module at run time (sources run directly under Node's type stripping). */
export const PROTO_PATH = Path.join(import.meta.dirname, "proto", "csi.proto")
/** The codecs generated at build time (dist/proto/csi-codecs.cjs); absent when running the sources. */
export const CODECS_PATH = Path.join(import.meta.dirname, "proto", "csi-codecs.cjs")

/**
 * - keepCase: field names as the spec writes them (`volume_id`), so error messages and code match it.
 * - longs: String. The only int64 we read is `capacity_range.*_bytes`; as a string we can reject
 *   a value above 2^53 exactly instead of letting it round silently. (We write int64 as numbers:
 *   byte and inode counts stay far below 2^53.)
 * - enums: String, so access modes and units read as their names.
 * - defaults: true, so unset scalars are "" / false / [] / {} as proto3 means them.
 * - oneofs: true, so `access_type` says which of `mount`/`block` was sent.
 */
export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true
} as const

const CONVERSION: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true }

/** Parses csi.proto and the google/protobuf files it imports (csi.proto extends FieldOptions). */
export const parseCsiProto = (): protobuf.Root => {
  const require = createRequire(import.meta.url)
  const descriptor = require("protobufjs/google/protobuf/descriptor.json") as { nested: { google: { nested: { protobuf: { nested: object } } } } }
  protobuf.common("descriptor", descriptor.nested.google.nested.protobuf.nested)
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true })
  root.resolveAll()
  return root
}

let cachedRoot: protobuf.Root | undefined
const csiRoot = (): protobuf.Root => cachedRoot ??= parseCsiProto()

/** What a module ProtoCodegen wrote exports: the codecs, made with the Writer, Reader and util given. */
export type CodecModule = (writer: unknown, reader: unknown, util: unknown) => StaticCodecs

/** Loads a module ProtoCodegen wrote, with this protobufjs's Writer, Reader and util. */
export const loadStaticCodecs = (path: string): StaticCodecs => (createRequire(import.meta.url)(path) as CodecModule)(protobuf.Writer, protobuf.Reader, protobuf.util)

/** A reflected type or a generated one: both are called as methods, with the same functions. */
type Codec = Pick<MessageCodec, "encode" | "decode" | "fromObject" | "toObject">

const serializer = (type: Codec, name: string) => (value: object): Buffer => {
  if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with type ${name}, got array instead`)
  return type.encode(type.fromObject(value)).finish() as Buffer
}
const deserializer = (type: Codec) => (bytes: Buffer): object => type.toObject(type.decode(bytes), CONVERSION)

/** The grpc-js definition of a service: the same paths, codecs and names proto-loader would give. */
const definitionOf = (service: string, methods: ReadonlyArray<CodecMethod>, codec: (fullName: string) => Codec): grpc.ServiceDefinition => {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {}
  for (const method of methods) {
    const request = codec(method.request)
    const response = codec(method.response)
    definition[method.name] = {
      path: `/csi.v1.${service}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: serializer(request, method.request.slice(method.request.lastIndexOf(".") + 1)),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response, method.response.slice(method.response.lastIndexOf(".") + 1)),
      responseDeserialize: deserializer(response),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1)
    }
  }
  return definition
}

type ServiceName = "Identity" | "Node" | "Controller"
export type CsiDefinitions = Readonly<Record<ServiceName, Readonly<Record<string, grpc.MethodDefinition<object, object>>>>>

interface CsiPackage {
  readonly Identity: grpc.ServiceClientConstructor
  readonly Node: grpc.ServiceClientConstructor
  readonly Controller: grpc.ServiceClientConstructor
}

/** The csi.v1 services' method definitions from generated codecs (the bundle's) or, without them, from protobufjs's reflection. */
export const csiDefinitions = (codecs: StaticCodecs | undefined): CsiDefinitions => {
  const service = (name: ServiceName) =>
    codecs !== undefined
      ? definitionOf(name, codecs.services[name], (fullName) => codecs.types[fullName]!)
      : definitionOf(name, methodsOf(csiRoot(), name), (fullName) => csiRoot().lookupType(fullName))
  return { Identity: service("Identity"), Node: service("Node"), Controller: service("Controller") }
}

/** grpc-js client constructors over the same definitions (grpc-js is required here, not at start-up). */
export const csiPackage = (codecs: StaticCodecs | undefined): CsiPackage => {
  const grpcJs = createRequire(import.meta.url)("@grpc/grpc-js") as typeof grpc
  const definitions = csiDefinitions(codecs)
  const client = (name: ServiceName) => grpcJs.makeClientConstructor(definitions[name], `csi.v1.${name}`)
  return { Identity: client("Identity"), Node: client("Node"), Controller: client("Controller") }
}

/** True when this build carries generated codecs (nothing to warm up). */
export const hasStaticCodecs = (): boolean => cachedCodecs?.codecs !== undefined || existsSync(CODECS_PATH)

// Loaded once per process, whoever asks first (the server's definitions, the tests' clients).
let cachedCodecs: { readonly codecs: StaticCodecs | undefined } | undefined
const codecsHere = (): StaticCodecs | undefined => (cachedCodecs ??= { codecs: hasStaticCodecs() ? loadStaticCodecs(CODECS_PATH) : undefined }).codecs

let cachedDefinitions: CsiDefinitions | undefined
/** The csi.v1 method definitions the server serves. */
export const loadCsiDefinitions = (): CsiDefinitions => cachedDefinitions ??= csiDefinitions(codecsHere())

/**
 * The codecs and the server's definitions made from a codecs module evaluated by the caller: the
 * start-up snapshot's builder (scripts/snapshot-entry.cjs), whose require cannot read files,
 * hands dist/proto/csi-codecs.cjs here, so a start from the blob finds them made instead of
 * compiling and running 200 KB of generated code before it can answer (issue 12).
 */
export const useStaticCodecs = (make: CodecModule): void => {
  const codecs = make(protobuf.Writer, protobuf.Reader, protobuf.util)
  cachedCodecs = { codecs }
  cachedDefinitions = csiDefinitions(codecs)
}

let cachedPackage: CsiPackage | undefined
/** The csi.v1 package as grpc-js client constructors (tests, tools). */
export const loadCsi = (): CsiPackage => cachedPackage ??= csiPackage(codecsHere())

/** Every message type `services` decode (their requests and what those contain) and encode (their responses), each once. */
export const reachableTypes = (services: ReadonlyArray<string>): { readonly decoded: ReadonlyArray<protobuf.Type>; readonly encoded: ReadonlyArray<protobuf.Type> } => {
  const root = csiRoot()
  const walk = (roots: ReadonlyArray<protobuf.Type>): ReadonlyArray<protobuf.Type> => reachable(roots).messages
  const methods = services.flatMap((name) => root.lookupService(`csi.v1.${name}`).methodsArray.map((m) => {
    m.resolve()
    return m
  }))
  return { decoded: walk(methods.map((m) => m.resolvedRequestType!)), encoded: walk(methods.map((m) => m.resolvedResponseType!)) }
}

/**
 * Generates `type`'s decoder and converter to plain objects (`decoded`), or its converter from
 * plain objects and encoder, now: protobufjs builds each on first use (tens of milliseconds per
 * message under emulation), which the first RPC would otherwise pay.
 */
export const warmCodec = (type: protobuf.Type, direction: "decoded" | "encoded"): void => {
  if (direction === "decoded") type.toObject(type.decode(new Uint8Array(0)), CONVERSION)
  else type.encode(type.fromObject({})).finish()
}
