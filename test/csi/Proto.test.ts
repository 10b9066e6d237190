import { assert, describe, it } from "@effect/vitest"
import * as protoLoader from "@grpc/proto-loader"
import { LOADER_OPTIONS, loadCsi, PROTO_PATH } from "../../src/csi/Proto.ts"

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
