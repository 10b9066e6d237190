import { assert, describe, it } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import protobuf from "protobufjs"
import { csiPackage, LOADER_OPTIONS, loadCsi, loadStaticCodecs, parseCsiProto, PROTO_PATH, reachableTypes, warmCodec } from "../../src/csi/Proto.ts"
import { codecModuleSource } from "../../src/csi/ProtoCodegen.ts"

// The unmodified CSI v1.12.0 proto (Apache-2.0), vendored as a fixture: see test/fixtures/csi-spec/SOURCE.
const REFERENCE = new URL("../fixtures/csi-spec/csi.proto", import.meta.url).pathname

// Field options (csi_secret, alpha_*) annotate; they are not on the wire.
const wire = (descriptor: unknown) => JSON.stringify(descriptor, (key, value) => key === "options" ? undefined : value)

describe("csi.proto", () => {
  it("loads from next to the module and has the three services with every method we serve", () => {
    const csi = loadCsi()
    assert.deepStrictEqual(Object.keys(csi.Identity.service), ["GetPluginInfo", "GetPluginCapabilities", "Probe"])
    assert.deepStrictEqual(Object.keys(csi.Node.service), [
      "NodeStageVolume", "NodeUnstageVolume", "NodePublishVolume", "NodeUnpublishVolume",
      "NodeGetVolumeStats", "NodeExpandVolume", "NodeGetCapabilities", "NodeGetInfo"
    ])
    for (const method of Object.values(csi.Node.service)) assert.match(method.path, /^\/csi\.v1\.Node\//)
    assert.deepStrictEqual(Object.keys(csi.Controller.service), [
      "CreateVolume", "DeleteVolume", "ControllerPublishVolume", "ControllerUnpublishVolume", "ValidateVolumeCapabilities",
      "ListVolumes", "GetCapacity", "ControllerGetCapabilities", "ControllerExpandVolume", "ControllerGetVolume"
    ])
  })

  it("every message we keep is field-for-field the CSI v1.12 one", () => {
    const ours = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)
    const reference = protoLoader.loadSync(REFERENCE, LOADER_OPTIONS)
    const messages = Object.keys(ours).filter((name) => name.startsWith("csi.v1.") && "type" in ours[name]!)
    assert.strictEqual(messages.length, 53)
    for (const name of messages) {
      assert.strictEqual(wire((ours[name] as { type: unknown }).type), wire((reference[name] as { type: unknown } | undefined)?.type), name)
    }
    for (const service of ["csi.v1.Identity", "csi.v1.Node"]) {
      const paths = (def: unknown) => Object.values(def as Record<string, { path: string }>).map((m) => m.path)
      assert.deepStrictEqual(paths(ours[service]), paths(reference[service]))
    }
    // The controller serves the volume RPCs only (no snapshots, no ModifyVolume): each one's path is the reference's.
    const referencePaths = new Set(Object.values(reference["csi.v1.Controller"] as Record<string, { path: string }>).map((m) => m.path))
    for (const m of Object.values(ours["csi.v1.Controller"] as Record<string, { path: string }>)) assert.isTrue(referencePaths.has(m.path), m.path)
  })
})

// What the server decodes and encodes must be exactly what proto-loader (the reference the
// messages were written against) gives for the same bytes, options included.
describe("the codecs built on protobufjs directly", () => {
  const reference = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)
  const samples: Record<string, object> = {
    NodeStageVolume: {
      volume_id: "pvc-1", staging_target_path: "/var/lib/kubelet/x", publish_context: { a: "b" },
      volume_capability: { mount: { fs_type: "ext4", mount_flags: ["noatime"] }, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      secrets: { k: "v" }, volume_context: { nqn: "nqn.x" }
    },
    NodePublishVolume: { volume_id: "v", target_path: "/t", volume_capability: { block: {}, access_mode: { mode: "MULTI_NODE_READER_ONLY" } }, readonly: true },
    NodeGetVolumeStats: { volume_id: "v", volume_path: "/p", staging_target_path: "" },
    NodeExpandVolume: { volume_id: "v", volume_path: "/p", capacity_range: { required_bytes: "9007199254740993", limit_bytes: 0 } },
    CreateVolume: { name: "n", capacity_range: { required_bytes: 1073741824 }, parameters: { volumePath: "/x" }, volume_capabilities: [{ mount: {}, access_mode: { mode: "SINGLE_NODE_SINGLE_WRITER" } }] },
    ListVolumes: { max_entries: 3, starting_token: "t" },
    Probe: {}
  }
  const responses: Record<string, object> = {
    NodeGetVolumeStats: { usage: [{ available: 1, total: 2, used: 1, unit: "BYTES" }], volume_condition: { abnormal: true, message: "m" } },
    Probe: { ready: { value: true } },
    CreateVolume: { volume: { volume_id: "v", capacity_bytes: 1073741824, volume_context: { a: "b" }, accessible_topology: [] } },
    NodeGetInfo: { node_id: "n,nqn", max_volumes_per_node: 0 }
  }
  const csi = loadCsi()
  const ours = { ...csi.Identity.service, ...csi.Node.service, ...csi.Controller.service } as Record<string, grpc.MethodDefinition<object, object>>
  const service = (method: string) => ["Probe", "GetPluginInfo", "GetPluginCapabilities"].includes(method) ? "Identity" : method.startsWith("Node") ? "Node" : "Controller"
  const ref = (method: string) => (reference[`csi.v1.${service(method)}`] as Record<string, grpc.MethodDefinition<object, object>>)[method]!

  it("decode a request and encode a response as proto-loader does", () => {
    for (const [method, request] of Object.entries(samples)) {
      const bytes = ref(method).requestSerialize(request)
      assert.deepStrictEqual(ours[method]!.requestDeserialize(bytes), ref(method).requestDeserialize(bytes), method)
      assert.deepStrictEqual(ours[method]!.requestSerialize(request), bytes, method)
    }
    for (const [method, response] of Object.entries(responses)) {
      const bytes = ref(method).responseSerialize(response)
      assert.deepStrictEqual(ours[method]!.responseSerialize(response), bytes, method)
      assert.deepStrictEqual(ours[method]!.responseDeserialize(bytes), ref(method).responseDeserialize(bytes), method)
    }
  })

  it("have the same paths and stream flags, and warm every message the node exchanges", () => {
    for (const [method, def] of Object.entries(ours)) {
      assert.strictEqual(def.path, ref(method).path)
      assert.strictEqual(def.requestStream, ref(method).requestStream)
      assert.strictEqual(def.responseStream, ref(method).responseStream)
    }
    const { decoded, encoded } = reachableTypes(["Identity", "Node"])
    const names = (ts: ReadonlyArray<{ readonly fullName: string }>) => ts.map((t) => t.fullName)
    for (const name of [".csi.v1.NodeStageVolumeRequest", ".csi.v1.VolumeCapability", ".csi.v1.VolumeCapability.MountVolume"]) assert.include(names(decoded), name)
    for (const name of [".csi.v1.NodeGetVolumeStatsResponse", ".csi.v1.VolumeCondition", ".google.protobuf.BoolValue"]) assert.include(names(encoded), name)
    assert.notInclude(names(decoded), ".csi.v1.VolumeCondition")
    for (const type of decoded) warmCodec(type, "decoded")
    for (const type of encoded) warmCodec(type, "encoded")
  })
})

// The bundle loads the codecs `npm run build` generated (ProtoCodegen): they must be the
// reflection's, message for message, with every field set.
describe("the codecs generated at build time", () => {
  const root = parseCsiProto()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-codecs-"))
  const file = path.join(dir, "csi-codecs.cjs")
  fs.writeFileSync(file, codecModuleSource(root))
  const codecs = loadStaticCodecs(file)
  const CONVERSION = { longs: String, enums: String, defaults: true, oneofs: true }

  /** A value for every field of `type` (nested messages to depth 3, maps and repeated with two entries). */
  const filled = (type: protobuf.Type, depth = 0): Record<string, unknown> => {
    const value = (field: protobuf.Field): unknown => {
      const resolved = field.resolve().resolvedType
      if (resolved instanceof protobuf.Type) return depth < 3 ? filled(resolved, depth + 1) : {}
      if (resolved instanceof protobuf.Enum) return Object.keys(resolved.values).at(-1)
      switch (field.type) {
        case "string": return `${field.name}-value`
        case "bool": return true
        case "bytes": return Buffer.from("bytes")
        case "int64": case "uint64": case "sint64": case "fixed64": case "sfixed64": return "9007199254740993"
        case "double": case "float": return 1.5
        default: return 7
      }
    }
    const out: Record<string, unknown> = {}
    for (const field of type.fieldsArray) {
      // One member of each oneof: protobufjs keeps the last one set.
      if (field.partOf !== null && field.partOf.oneof[0] !== field.name) continue
      const v = value(field)
      out[field.name] = field.map ? { a: v, b: v } : field.repeated ? [v, v] : v
    }
    return out
  }

  it("cover every message of the three services, each encoding and decoding as protobufjs's reflection does", () => {
    const names = Object.keys(codecs.types)
    assert.include(names, "csi.v1.NodeStageVolumeRequest")
    assert.include(names, "google.protobuf.BoolValue")
    assert.isAbove(names.length, 50)
    for (const name of names) {
      const reflected = root.lookupType(name)
      const generated = codecs.types[name]!
      for (const sample of [{}, filled(reflected)]) {
        const bytes = reflected.encode(reflected.fromObject(sample)).finish()
        assert.deepStrictEqual(generated.encode(generated.fromObject(sample)).finish(), bytes, name)
        assert.deepStrictEqual(generated.toObject(generated.decode(bytes), CONVERSION), reflected.toObject(reflected.decode(bytes), CONVERSION), name)
      }
    }
  })

  it("give grpc-js the same definitions as the reflection: paths, flags, names and codecs", () => {
    const generated = csiPackage(codecs)
    const reflected = loadCsi()
    for (const service of ["Identity", "Node", "Controller"] as const) {
      const ours = generated[service].service as Record<string, grpc.MethodDefinition<object, object>>
      const theirs = reflected[service].service as Record<string, grpc.MethodDefinition<object, object>>
      assert.deepStrictEqual(Object.keys(ours), Object.keys(theirs))
      for (const [method, def] of Object.entries(ours)) {
        const ref = theirs[method]!
        assert.strictEqual(def.path, ref.path)
        assert.strictEqual(def.originalName, ref.originalName)
        assert.strictEqual(def.requestStream, ref.requestStream)
        assert.strictEqual(def.responseStream, ref.responseStream)
        const request = filled(root.lookupType(codecs.services[service].find((m) => m.name === method)!.request))
        const bytes = ref.requestSerialize(request)
        assert.deepStrictEqual(def.requestSerialize(request), bytes, method)
        assert.deepStrictEqual(def.requestDeserialize(bytes), ref.requestDeserialize(bytes), method)
      }
    }
  })

  it("fail on an array where a message belongs, as grpc-js's serializers do", () => {
    const def = (csiPackage(codecs).Node.service as Record<string, grpc.MethodDefinition<object, object>>)["NodeStageVolume"]!
    assert.throws(() => def.requestSerialize([] as unknown as object), /expected object with type NodeStageVolumeRequest, got array/)
  })
})
