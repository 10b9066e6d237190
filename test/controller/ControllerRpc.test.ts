/**
 * The Controller service's rules, over gRPC, on the in-memory RDS emulator: every validation
 * (INVALID_ARGUMENT naming the field), idempotency of every RPC twice over, rounding up and
 * OUT_OF_RANGE, ALREADY_EXISTS, RESOURCE_EXHAUSTED, fencing, expansion, pagination and the
 * number of RouterOS commands each RPC costs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { rpc, status, statusOf } from "../csi/client.ts"
import { blockCap, controller, GiB, HOST_A, MiB, mountCap, NODE_A, NODE_B, nodeAccepts } from "./fixture.ts"

const create = (name: string, extra: Record<string, unknown> = {}) => ({ name, volume_capabilities: [mountCap()], ...extra })

describe("controller: validation names the field", () => {
  it.effect("CreateVolume", () =>
    Effect.gen(function*() {
      const { client } = yield* controller()
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ volume_capabilities: [mountCap()] }, "name"],
        [create("bad name"), "name"],
        [create("../etc"), "name"],
        [create("a".repeat(129)), "name"],
        [{ name: "pvc-1" }, "volume_capabilities"],
        [create("pvc-1", { volume_capabilities: [{ mount: {}, access_mode: { mode: "MULTI_NODE_MULTI_WRITER" } }] }), "volume_capabilities[0].access_mode"],
        [create("pvc-1", { parameters: { colour: "blue" } }), "parameters.colour"],
        [create("pvc-1", { parameters: { volumePath: "/storage-pool/../etc" } }), "parameters.volumePath"],
        [create("pvc-1", { parameters: { nvmeAddress: "rds.example.com" } }), "parameters.nvmeAddress"],
        [create("pvc-1", { parameters: { nvmePort: "99999" } }), "parameters.nvmePort"],
        [create("pvc-1", { parameters: { ctrlLossTmo: "-5" } }), "parameters.ctrlLossTmo"],
        [create("pvc-1", { capacity_range: { required_bytes: "-1" } }), "capacity_range.required_bytes"],
        [create("pvc-1", { volume_content_source: { snapshot: { snapshot_id: "s" } } }), "volume_content_source"]
      ]
      for (const [request, field] of cases) {
        const r = yield* statusOf(client.CreateVolume(request))
        assert.strictEqual(r.code, status.INVALID_ARGUMENT, `${JSON.stringify(request).slice(0, 80)}: ${r.details}`)
        assert.isTrue(r.details.startsWith(`${field}:`), `${field} in '${r.details}'`)
      }
    }))

  it.effect("the other RPCs", () =>
    Effect.gen(function*() {
      const { client } = yield* controller()
      const expect = function*(call: Promise<unknown>, field: string) {
        const r = yield* statusOf(call)
        assert.strictEqual(r.code, status.INVALID_ARGUMENT, r.details)
        assert.isTrue(r.details.startsWith(`${field}`), `${field} in '${r.details}'`)
      }
      yield* expect(client.DeleteVolume({}), "volume_id")
      yield* expect(client.ControllerPublishVolume({ node_id: NODE_A, volume_capability: mountCap() }), "volume_id")
      yield* expect(client.ControllerPublishVolume({ volume_id: "pvc-1", volume_capability: mountCap() }), "node_id")
      yield* expect(client.ControllerPublishVolume({ volume_id: "pvc-1", node_id: "Node_A" }), "node_id")
      yield* expect(client.ControllerPublishVolume({ volume_id: "pvc-1", node_id: "node-a,not-an-nqn", volume_capability: mountCap() }), "node_id (host NQN")
      yield* expect(client.ControllerPublishVolume({ volume_id: "pvc-1", node_id: NODE_A }), "volume_capability")
      yield* expect(client.ControllerUnpublishVolume({ node_id: NODE_A }), "volume_id")
      yield* expect(client.ControllerExpandVolume({ volume_id: "pvc-1" }), "capacity_range")
      yield* expect(client.ControllerExpandVolume({ capacity_range: { required_bytes: GiB } }), "volume_id")
      yield* expect(client.ValidateVolumeCapabilities({ volume_id: "pvc-1" }), "volume_capabilities")
      yield* expect(client.ControllerGetVolume({}), "volume_id")
      yield* expect(client.GetCapacity({ parameters: { volumePath: "relative" } }), "parameters.volumePath")
    }))
})

describe("controller: CreateVolume", () => {
  it.effect("rounds up to whole MiB, never below required_bytes; the context is what the node reads", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      const a = yield* rpc(() => client.CreateVolume(create("pvc-a", { capacity_range: { required_bytes: 1.5 * GiB } })))
      assert.strictEqual(Number(a.volume.capacity_bytes), 1.5 * GiB)
      const b = yield* rpc(() => client.CreateVolume(create("pvc-b", { capacity_range: { required_bytes: GiB + 1 } })))
      assert.strictEqual(Number(b.volume.capacity_bytes), GiB + MiB)
      const c = yield* rpc(() => client.CreateVolume(create("pvc-c")))
      assert.strictEqual(Number(c.volume.capacity_bytes), GiB, "no range: the 1 GiB default")
      const d = yield* rpc(() => client.CreateVolume(create("pvc-d", { capacity_range: { limit_bytes: 512 * MiB } })))
      assert.strictEqual(Number(d.volume.capacity_bytes), 512 * MiB, "only a limit: the default capped by it")
      assert.deepStrictEqual(a.volume.volume_context, { nqn: "nqn.2000-02.com.mikrotik:pvc-a", nvmeAddress: "10.0.0.1", nvmePort: "4420" })
      assert.isTrue(nodeAccepts(a.volume.volume_context))
      const disk = rds.state().disks.find((x) => x.slot === "pvc-b")
      assert.strictEqual(disk?.filePath, "/storage-pool/k8s/pvc-b.img")
      const range = yield* statusOf(client.CreateVolume(create("pvc-e", { capacity_range: { required_bytes: GiB + 1, limit_bytes: GiB + 2 } })))
      assert.strictEqual(range.code, status.OUT_OF_RANGE, range.details)
      assert.match(range.details, /limit/)
      assert.isUndefined(rds.state().disks.find((x) => x.slot === "pvc-e"), "nothing created")
      const inverted = yield* statusOf(client.CreateVolume(create("pvc-f", { capacity_range: { required_bytes: 2 * GiB, limit_bytes: GiB } })))
      assert.strictEqual(inverted.code, status.OUT_OF_RANGE)
    }))

  it.effect("StorageClass parameters (the Go driver's keys) reach the disk and the volume context", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      const v = yield* rpc(() =>
        client.CreateVolume(create("pvc-sc", {
          parameters: {
            volumePath: "/storage-pool/fast",
            nvmeAddress: "10.0.0.9",
            nvmePort: "4421",
            ctrlLossTmo: "-1",
            reconnectDelay: "2",
            keepAliveTmo: "5",
            "csi.storage.k8s.io/fstype": "xfs",
            "csi.storage.k8s.io/pvc/name": "data"
          }
        }))
      )
      assert.deepStrictEqual(v.volume.volume_context, {
        nqn: "nqn.2000-02.com.mikrotik:pvc-sc",
        nvmeAddress: "10.0.0.9",
        nvmePort: "4421",
        ctrlLossTmo: "-1",
        reconnectDelay: "2",
        keepAliveTmo: "5"
      })
      assert.isTrue(nodeAccepts(v.volume.volume_context))
      const disk = rds.state().disks.find((x) => x.slot === "pvc-sc")
      assert.strictEqual(disk?.filePath, "/storage-pool/fast/pvc-sc.img")
      assert.strictEqual(disk?.nvmeTcpServerPort, 4421)
    }))

  it.effect("idempotent: the same request twice is the same volume and one print; an incompatible one is ALREADY_EXISTS", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      const req = create("pvc-twice", { capacity_range: { required_bytes: GiB, limit_bytes: GiB } })
      const first = yield* rpc(() => client.CreateVolume(req))
      assert.isAtMost(rds.sent.length, 3, `CreateVolume used ${rds.sent.length} commands`)
      const before = rds.sent.length
      const second = yield* rpc(() => client.CreateVolume(req))
      assert.deepStrictEqual(second, first)
      assert.deepStrictEqual(rds.sent.slice(before).map((c) => c.name), ["disk.print"])
      const third = yield* rpc(() => client.CreateVolume(req))
      assert.deepStrictEqual(third, first)
      for (
        const other of [
          create("pvc-twice", { capacity_range: { required_bytes: 2 * GiB } }),
          create("pvc-twice", { capacity_range: { limit_bytes: 512 * MiB } }),
          create("pvc-twice", { parameters: { volumePath: "/storage-pool/other" } }),
          create("pvc-twice", { parameters: { nvmePort: "4421" } })
        ]
      ) {
        const r = yield* statusOf(client.CreateVolume(other))
        assert.strictEqual(r.code, status.ALREADY_EXISTS, JSON.stringify(other))
      }
      assert.strictEqual(rds.state().disks.length, 1)
    }))

  it.effect("a full pool is RESOURCE_EXHAUSTED and leaves neither disk nor file", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller({ poolBytes: 3 * GiB })
      yield* rpc(() => client.CreateVolume(create("pvc-1", { capacity_range: { required_bytes: 2 * GiB } })))
      const r = yield* statusOf(client.CreateVolume(create("pvc-2", { capacity_range: { required_bytes: 2 * GiB } })))
      assert.strictEqual(r.code, status.RESOURCE_EXHAUSTED, r.details)
      assert.match(r.details, /not enough space/)
      assert.deepStrictEqual(rds.state().disks.map((d) => d.slot), ["pvc-1"])
      assert.isFalse(rds.state().files.some((f) => f.name.endsWith("pvc-2.img")))
      const capacity = yield* rpc(() => client.GetCapacity({}))
      assert.strictEqual(Number(capacity.available_capacity), GiB)
    }))
})

describe("controller: DeleteVolume", () => {
  it.effect("removes the disk, then its file; twice is OK; an unknown volume is OK; 3 commands", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-del")))
      const before = rds.sent.length
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-del" }))
      assert.deepStrictEqual(rds.sent.slice(before).map((c) => c.name), ["disk.print", "disk.remove", "file.remove"])
      assert.strictEqual(rds.state().disks.length, 0)
      assert.isFalse(rds.state().files.some((f) => f.name.endsWith("pvc-del.img")))
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-del" }))
      yield* rpc(() => client.DeleteVolume({ volume_id: "never-existed" }))
    }))

  it.effect("a file left without its disk is removed by the retry", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-half")))
      assert.strictEqual(rds.admin(`/disk remove [find slot="pvc-half"]`).exitCode, 0)
      assert.isTrue(rds.state().files.some((f) => f.name === "storage-pool/k8s/pvc-half.img"))
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-half" }))
      assert.isFalse(rds.state().files.some((f) => f.name === "storage-pool/k8s/pvc-half.img"))
    }))

  it.effect("never touches a disk this driver does not manage", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      const added = rds.admin(
        "/disk add type=file file-path=/storage-pool/admin/db.img file-size=1G slot=db nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:admin-db"
      )
      assert.strictEqual(added.exitCode, 0, added.output)
      const del = yield* statusOf(client.DeleteVolume({ volume_id: "db" }))
      assert.strictEqual(del.code, status.FAILED_PRECONDITION, del.details)
      assert.match(del.details, /does not manage/)
      // A static PV for it (attachRequired is per driver) is published as it is: never fenced.
      yield* rpc(() => client.ControllerPublishVolume({ volume_id: "db", node_id: NODE_A, volume_capability: mountCap() }))
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "db", node_id: NODE_A }))
      const expand = yield* statusOf(client.ControllerExpandVolume({ volume_id: "db", capacity_range: { required_bytes: 2 * GiB } }))
      assert.strictEqual(expand.code, status.FAILED_PRECONDITION)
      assert.strictEqual(rds.state().disks.length, 1)
      assert.strictEqual(rds.state().disks[0]!.allowHostName, "")
      const list = yield* rpc(() => client.ListVolumes({}))
      assert.strictEqual(list.entries.length, 0, "ListVolumes shows only this driver's volumes")
    }))
})

describe("controller: publish fences at the target", () => {
  it.effect("single-node: one host admitted; the same node again is OK; a second node is FAILED_PRECONDITION naming the first", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-f")))
      const req = { volume_id: "pvc-f", node_id: NODE_A, volume_capability: mountCap(), readonly: false }
      const first = yield* rpc(() => client.ControllerPublishVolume(req))
      assert.deepStrictEqual(first.publish_context, {})
      assert.strictEqual(rds.state().disks[0]!.allowHostName, HOST_A)
      yield* rpc(() => client.ControllerPublishVolume(req))
      const second = yield* statusOf(client.ControllerPublishVolume({ ...req, node_id: NODE_B }))
      assert.strictEqual(second.code, status.FAILED_PRECONDITION)
      assert.include(second.details, HOST_A)
      assert.strictEqual(rds.state().disks[0]!.allowHostName, HOST_A, "still fenced to the first")
      // Unpublish from the wrong node changes nothing; from the right one opens the fence; twice is OK.
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "pvc-f", node_id: NODE_B }))
      assert.strictEqual(rds.state().disks[0]!.allowHostName, HOST_A)
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "pvc-f", node_id: NODE_A }))
      assert.strictEqual(rds.state().disks[0]!.allowHostName, "")
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "pvc-f", node_id: NODE_A }))
      yield* rpc(() => client.ControllerPublishVolume({ ...req, node_id: NODE_B }))
      assert.notStrictEqual(rds.state().disks[0]!.allowHostName, HOST_A)
    }))

  it.effect("static PVs of other targets are published untouched, whatever their handle", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      for (
        const [volume_id, nqn] of [
          ["nqn.2014-08.io.example:disk-1", "nqn.2014-08.io.example:disk-1"],
          ["static-db", "nqn.2014-08.io.example:db"]
        ] as const
      ) {
        const before = rds.sent.length
        yield* rpc(() => client.ControllerPublishVolume({ volume_id, node_id: NODE_A, volume_capability: mountCap(), volume_context: { nqn, nvmeAddress: "10.0.0.7", nvmePort: "4420" } }))
        yield* rpc(() => client.ControllerUnpublishVolume({ volume_id, node_id: NODE_A }))
        assert.isTrue(rds.sent.slice(before).every((c) => c.name === "disk.print"), "nothing but reads")
      }
    }))

  it.effect("unknown volume, node without host NQN: NOT_FOUND; unpublish of either: OK", () =>
    Effect.gen(function*() {
      const { client } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-n")))
      const missing = yield* statusOf(client.ControllerPublishVolume({ volume_id: "nope", node_id: NODE_A, volume_capability: mountCap() }))
      assert.strictEqual(missing.code, status.NOT_FOUND)
      const bare = yield* statusOf(client.ControllerPublishVolume({ volume_id: "pvc-n", node_id: "some-fake-node-id", volume_capability: mountCap() }))
      assert.strictEqual(bare.code, status.NOT_FOUND)
      assert.match(bare.details, /host NQN/)
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "nope", node_id: NODE_A }))
      yield* rpc(() => client.ControllerUnpublishVolume({ volume_id: "pvc-n", node_id: "some-fake-node-id" }))
    }))

  it.effect("multi-node modes admit any host (no single host to fence to), and never a volume fenced to another", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      yield* rpc(() => client.CreateVolume({ name: "pvc-rox", volume_capabilities: [mountCap("MULTI_NODE_READER_ONLY")] }))
      for (const node of [NODE_A, NODE_B, "node-c"]) {
        yield* rpc(() => client.ControllerPublishVolume({ volume_id: "pvc-rox", node_id: node, volume_capability: mountCap("MULTI_NODE_READER_ONLY"), readonly: true }))
      }
      assert.strictEqual(rds.state().disks[0]!.allowHostName, "")
      yield* rpc(() => client.CreateVolume({ name: "pvc-rwo", volume_capabilities: [blockCap()] }))
      yield* rpc(() => client.ControllerPublishVolume({ volume_id: "pvc-rwo", node_id: NODE_A, volume_capability: blockCap() }))
      const multi = yield* statusOf(client.ControllerPublishVolume({ volume_id: "pvc-rwo", node_id: NODE_B, volume_capability: blockCap("MULTI_NODE_MULTI_WRITER") }))
      assert.strictEqual(multi.code, status.FAILED_PRECONDITION)
    }))
})

describe("controller: ControllerExpandVolume", () => {
  it.effect("grows only; node expansion for file systems, not for raw block; NOT_FOUND; OUT_OF_RANGE", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-x")))
      const grown = yield* rpc(() => client.ControllerExpandVolume({ volume_id: "pvc-x", capacity_range: { required_bytes: 2 * GiB + 1 }, volume_capability: mountCap() }))
      assert.strictEqual(Number(grown.capacity_bytes), 2 * GiB + MiB)
      assert.isTrue(grown.node_expansion_required)
      const again = yield* rpc(() => client.ControllerExpandVolume({ volume_id: "pvc-x", capacity_range: { required_bytes: 2 * GiB + 1 }, volume_capability: mountCap() }))
      assert.deepStrictEqual(again, grown)
      const smaller = yield* rpc(() => client.ControllerExpandVolume({ volume_id: "pvc-x", capacity_range: { required_bytes: GiB } }))
      assert.strictEqual(Number(smaller.capacity_bytes), 2 * GiB + MiB, "never shrinks")
      const block = yield* rpc(() => client.ControllerExpandVolume({ volume_id: "pvc-x", capacity_range: { required_bytes: 3 * GiB }, volume_capability: blockCap() }))
      assert.isFalse(block.node_expansion_required)
      assert.strictEqual(rds.state().files.find((f) => f.name.endsWith("pvc-x.img"))?.size, 3 * GiB)
      const missing = yield* statusOf(client.ControllerExpandVolume({ volume_id: "nope", capacity_range: { required_bytes: GiB } }))
      assert.strictEqual(missing.code, status.NOT_FOUND)
      const range = yield* statusOf(client.ControllerExpandVolume({ volume_id: "pvc-x", capacity_range: { required_bytes: 4 * GiB + 1, limit_bytes: 4 * GiB + 2 } }))
      assert.strictEqual(range.code, status.OUT_OF_RANGE)
    }))

  it.effect("beyond the pool is RESOURCE_EXHAUSTED and the volume keeps its size", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller({ poolBytes: 2 * GiB })
      yield* rpc(() => client.CreateVolume(create("pvc-y")))
      const r = yield* statusOf(client.ControllerExpandVolume({ volume_id: "pvc-y", capacity_range: { required_bytes: 5 * GiB } }))
      assert.strictEqual(r.code, status.RESOURCE_EXHAUSTED, r.details)
      assert.strictEqual(rds.state().files.find((f) => f.name.endsWith("pvc-y.img"))?.size, GiB)
    }))
})

describe("controller: list, get, validate, capacity, capabilities", () => {
  it.effect("ListVolumes pages by name; a bad token is ABORTED; deleting the last of a page loses nothing", () =>
    Effect.gen(function*() {
      const { client } = yield* controller()
      for (const n of ["v1", "v2", "v3", "v4", "v5"]) yield* rpc(() => client.CreateVolume(create(n)))
      const p1 = yield* rpc(() => client.ListVolumes({ max_entries: 2 }))
      assert.deepStrictEqual(p1.entries.map((e) => e.volume.volume_id), ["v1", "v2"])
      assert.notStrictEqual(p1.next_token, "")
      yield* rpc(() => client.DeleteVolume({ volume_id: "v2" }))
      const p2 = yield* rpc(() => client.ListVolumes({ max_entries: 2, starting_token: p1.next_token }))
      assert.deepStrictEqual(p2.entries.map((e) => e.volume.volume_id), ["v3", "v4"])
      const p3 = yield* rpc(() => client.ListVolumes({ max_entries: 2, starting_token: p2.next_token }))
      assert.deepStrictEqual(p3.entries.map((e) => e.volume.volume_id), ["v5"])
      assert.strictEqual(p3.next_token, "")
      const all = yield* rpc(() => client.ListVolumes({}))
      assert.strictEqual(all.entries.length, 4)
      assert.deepStrictEqual(all.entries[0]!.status.volume_condition, { abnormal: false, message: "exported; any host may connect" })
      for (const token of ["invalid-token", "v1.zz", "v1."]) {
        const r = yield* statusOf(client.ListVolumes({ starting_token: token }))
        assert.strictEqual(r.code, status.ABORTED, token)
      }
    }))

  it.effect("ControllerGetVolume: abnormal when the export is gone, NOT_FOUND when the disk is", () =>
    Effect.gen(function*() {
      const { client, rds } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-g")))
      const ok = yield* rpc(() => client.ControllerGetVolume({ volume_id: "pvc-g" }))
      assert.isFalse(ok.status.volume_condition?.abnormal)
      assert.strictEqual(rds.admin(`/disk set [find slot="pvc-g"] nvme-tcp-export=no`).exitCode, 0)
      const off = yield* rpc(() => client.ControllerGetVolume({ volume_id: "pvc-g" }))
      assert.isTrue(off.status.volume_condition?.abnormal)
      assert.match(off.status.volume_condition?.message ?? "", /not exported/)
      yield* rpc(() => client.DeleteVolume({ volume_id: "pvc-g" }))
      const gone = yield* statusOf(client.ControllerGetVolume({ volume_id: "pvc-g" }))
      assert.strictEqual(gone.code, status.NOT_FOUND)
    }))

  it.effect("ValidateVolumeCapabilities confirms valid capabilities of an existing volume; NOT_FOUND otherwise", () =>
    Effect.gen(function*() {
      const { client } = yield* controller()
      yield* rpc(() => client.CreateVolume(create("pvc-v")))
      const r = yield* rpc(() => client.ValidateVolumeCapabilities({ volume_id: "pvc-v", volume_capabilities: [mountCap(), blockCap()] }))
      assert.strictEqual(r.confirmed?.volume_capabilities.length, 2)
      const missing = yield* statusOf(client.ValidateVolumeCapabilities({ volume_id: "nope", volume_capabilities: [mountCap()] }))
      assert.strictEqual(missing.code, status.NOT_FOUND)
    }))

  it.effect("GetCapacity is the pool's free bytes; the capabilities advertised are the ones served", () =>
    Effect.gen(function*() {
      const { client } = yield* controller({ poolBytes: 10 * GiB })
      assert.strictEqual(Number((yield* rpc(() => client.GetCapacity({}))).available_capacity), 10 * GiB)
      yield* rpc(() => client.CreateVolume(create("pvc-c", { capacity_range: { required_bytes: 3 * GiB } })))
      assert.strictEqual(Number((yield* rpc(() => client.GetCapacity({ volume_capabilities: [mountCap()] }))).available_capacity), 7 * GiB)
      const caps = yield* rpc(() => client.ControllerGetCapabilities({}))
      assert.deepStrictEqual(caps.capabilities.map((c) => c.rpc.type).sort(), [
        "CREATE_DELETE_VOLUME", "EXPAND_VOLUME", "GET_CAPACITY", "GET_VOLUME", "LIST_VOLUMES", "PUBLISH_UNPUBLISH_VOLUME", "VOLUME_CONDITION"
      ])
      const plugin = yield* rpc(() => client.GetPluginCapabilities({}))
      assert.deepStrictEqual(plugin.capabilities.map((c) => c.service?.type ?? c.volume_expansion?.type), ["CONTROLLER_SERVICE", "ONLINE"])
      const probe = yield* rpc(() => client.Probe({}))
      assert.isTrue(probe.ready?.value)
    }))
})
