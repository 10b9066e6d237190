import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { type CsiClient, status, statusOf } from "./client.ts"
import { TestCsi, testCsiLayer } from "./fixture.ts"
import {
  blockCap,
  context,
  expandReq,
  mountCap,
  publishReq,
  stageReq,
  statsReq,
  unpublishReq,
  unstageReq
} from "./requests.ts"

interface Case {
  readonly name: string
  readonly call: (client: CsiClient) => Promise<unknown>
  readonly code: status
  /** The field the message must name, and (optionally) more of the message. */
  readonly field: string
  readonly says?: RegExp
}

const bad = (name: string, call: Case["call"], field: string, says?: RegExp, code = status.INVALID_ARGUMENT): Case =>
  says === undefined ? { name, call, code, field } : { name, call, code, field, says }

const cases: ReadonlyArray<Case> = [
  // NodeStageVolume
  bad("stage: no volume_id", (c) => c.NodeStageVolume(stageReq({ volume_id: undefined })), "volume_id", /is required/),
  bad("stage: volume_id with '/'", (c) => c.NodeStageVolume(stageReq({ volume_id: "a/b" })), "volume_id"),
  bad("stage: no staging_target_path", (c) => c.NodeStageVolume(stageReq({ staging_target_path: undefined })), "staging_target_path", /is required/),
  bad("stage: staging path outside the allowed roots", (c) => c.NodeStageVolume(stageReq({ staging_target_path: "/etc/cron.d" })), "staging_target_path", /allowed root/),
  bad("stage: '..' in the staging path", (c) => c.NodeStageVolume(stageReq({ staging_target_path: "/var/lib/kubelet/../../etc" })), "staging_target_path", /'\.\.'/),
  bad("stage: relative staging path", (c) => c.NodeStageVolume(stageReq({ staging_target_path: "var/lib/kubelet/x" })), "staging_target_path", /absolute/),
  bad("stage: no volume_capability", (c) => c.NodeStageVolume(stageReq({ volume_capability: undefined })), "volume_capability", /is required/),
  bad("stage: no access_mode", (c) => c.NodeStageVolume(stageReq({ volume_capability: { mount: { fs_type: "ext4" } } })), "volume_capability.access_mode", /is required/),
  bad("stage: access mode UNKNOWN", (c) => c.NodeStageVolume(stageReq({ volume_capability: mountCap("UNKNOWN") })), "volume_capability.access_mode"),
  bad("stage: neither mount nor block", (c) => c.NodeStageVolume(stageReq({ volume_capability: { access_mode: { mode: "SINGLE_NODE_WRITER" } } })), "volume_capability.access_type", /mount.*block/),
  bad("stage: unknown fs_type", (c) => c.NodeStageVolume(stageReq({ volume_capability: mountCap("SINGLE_NODE_WRITER", "btrfs") })), "volume_capability.mount.fs_type", /ext4, xfs/),
  bad("stage: disallowed mount flag", (c) => c.NodeStageVolume(stageReq({ volume_capability: mountCap("SINGLE_NODE_WRITER", "ext4", ["noatime", "bind"]) })), "volume_capability.mount.mount_flags", /'bind'/),
  bad("stage: disallowed flag value", (c) => c.NodeStageVolume(stageReq({ volume_capability: mountCap("SINGLE_NODE_WRITER", "ext4", ["errors=ignore"]) })), "volume_capability.mount.mount_flags"),
  bad("stage: MULTI_NODE_MULTI_WRITER on a file system", (c) => c.NodeStageVolume(stageReq({ volume_capability: mountCap("MULTI_NODE_MULTI_WRITER") })), "volume_capability.access_mode", /raw block/),
  bad("stage: MULTI_NODE_SINGLE_WRITER", (c) => c.NodeStageVolume(stageReq({ volume_capability: blockCap("MULTI_NODE_SINGLE_WRITER") })), "volume_capability.access_mode", /not supported/),
  bad("stage: volume_mount_group (no VOLUME_MOUNT_GROUP capability)", (c) => c.NodeStageVolume(stageReq({ volume_capability: { mount: { fs_type: "ext4", volume_mount_group: "2000" }, access_mode: { mode: "SINGLE_NODE_WRITER" } } })), "volume_capability.mount.volume_mount_group"),
  bad("stage: no volume_context", (c) => c.NodeStageVolume(stageReq({ volume_context: undefined })), "volume_context.nqn", /is required/),
  bad("stage: bad NQN", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nqn: "iqn.2000-02.com.mikrotik:x" } })), "volume_context.nqn", /nqn\./),
  bad("stage: NQN with a bad month", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nqn: "nqn.2000-13.com.mikrotik:x" } })), "volume_context.nqn"),
  // Hostile contexts: libnvme passes these values to the kernel's connect option string unescaped.
  bad("stage: NQN injecting a connect option", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nqn: "nqn.2000-02.com.mikrotik:pvc-1,duplicate_connect" } })), "volume_context.nqn", /must not contain ','/),
  bad("stage: NQN with '='", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nqn: "nqn.2000-02.com.mikrotik:pvc=1" } })), "volume_context.nqn", /'='/),
  bad("stage: NQN with a newline", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nqn: "nqn.2000-02.com.mikrotik:pvc-1\ntraddr=10.9.9.9" } })), "volume_context.nqn", /control characters/),
  bad("stage: address injecting a connect option", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nvmeAddress: "10.0.0.1,nr_io_queues=1" } })), "volume_context.nvmeAddress", /must not contain ','/),
  bad("stage: IPv6 zone injecting a connect option", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nvmeAddress: "fe80::1%eth0,duplicate_connect" } })), "volume_context.nvmeAddress", /connect option string/),
  bad("stage: host name as the address", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nvmeAddress: "rds.example.com" } })), "volume_context.nvmeAddress", /not a host name/),
  bad("stage: host name as rdsAddress", (c) => c.NodeStageVolume(stageReq({ volume_context: { nqn: context.nqn, rdsAddress: "rds", nvmePort: "4420" } })), "volume_context.rdsAddress", /not a host name/),
  bad("stage: no address", (c) => c.NodeStageVolume(stageReq({ volume_context: { nqn: context.nqn, nvmePort: "4420" } })), "volume_context.nvmeAddress", /is required/),
  bad("stage: bad address", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nvmeAddress: "10.0.0.300" } })), "volume_context.nvmeAddress"),
  bad("stage: bad rdsAddress fallback", (c) => c.NodeStageVolume(stageReq({ volume_context: { nqn: context.nqn, rdsAddress: "not an address", nvmePort: "4420" } })), "volume_context.rdsAddress"),
  bad("stage: no port", (c) => c.NodeStageVolume(stageReq({ volume_context: { nqn: context.nqn, nvmeAddress: "10.42.0.5" } })), "volume_context.nvmePort", /is required/),
  bad("stage: port out of range", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nvmePort: "70000" } })), "volume_context.nvmePort", /65535/),
  bad("stage: port not a number", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, nvmePort: "http" } })), "volume_context.nvmePort"),
  bad("stage: bad ctrlLossTmo", (c) => c.NodeStageVolume(stageReq({ volume_context: { ...context, ctrlLossTmo: "forever" } })), "volume_context.ctrlLossTmo"),
  // NodeUnstageVolume
  bad("unstage: no volume_id", (c) => c.NodeUnstageVolume(unstageReq({ volume_id: "" })), "volume_id", /is required/),
  bad("unstage: no staging_target_path", (c) => c.NodeUnstageVolume(unstageReq({ staging_target_path: "" })), "staging_target_path", /is required/),
  bad("unstage: staging path outside the allowed roots", (c) => c.NodeUnstageVolume(unstageReq({ staging_target_path: "/mnt/x" })), "staging_target_path"),
  // NodePublishVolume
  bad("publish: no volume_id", (c) => c.NodePublishVolume(publishReq({ volume_id: undefined })), "volume_id", /is required/),
  bad("publish: no staging_target_path is FAILED_PRECONDITION (spec table)", (c) => c.NodePublishVolume(publishReq({ staging_target_path: undefined })), "staging_target_path", /is required/, status.FAILED_PRECONDITION),
  bad("publish: '..' in the staging path", (c) => c.NodePublishVolume(publishReq({ staging_target_path: "/var/lib/kubelet/plugins/../../../root" })), "staging_target_path", /'\.\.'/),
  bad("publish: no target_path", (c) => c.NodePublishVolume(publishReq({ target_path: undefined })), "target_path", /is required/),
  // csi-sanity sends only a volume id: the missing fields are INVALID_ARGUMENT before the staging rule.
  bad("publish: only a volume_id → INVALID_ARGUMENT for target_path", (c) => c.NodePublishVolume({ volume_id: "pvc-1" }), "target_path", /is required/),
  bad("publish: no capability and no staging path → INVALID_ARGUMENT", (c) => c.NodePublishVolume(publishReq({ volume_capability: undefined, staging_target_path: undefined })), "volume_capability", /is required/),
  bad("publish: target path outside the allowed roots", (c) => c.NodePublishVolume(publishReq({ target_path: "/home/user/mnt" })), "target_path", /allowed root/),
  bad("publish: '..' in the target path", (c) => c.NodePublishVolume(publishReq({ target_path: "/var/lib/kubelet/pods/../../../../etc" })), "target_path", /'\.\.'/),
  bad("publish: no volume_capability", (c) => c.NodePublishVolume(publishReq({ volume_capability: undefined })), "volume_capability", /is required/),
  bad("publish: no access_mode", (c) => c.NodePublishVolume(publishReq({ volume_capability: { block: {} } })), "volume_capability.access_mode"),
  bad("publish: MULTI_NODE_MULTI_WRITER on a file system", (c) => c.NodePublishVolume(publishReq({ volume_capability: mountCap("MULTI_NODE_MULTI_WRITER", "xfs") })), "volume_capability.access_mode"),
  bad("publish: disallowed mount flag", (c) => c.NodePublishVolume(publishReq({ volume_capability: mountCap("SINGLE_NODE_WRITER", "ext4", ["remount"]) })), "volume_capability.mount.mount_flags"),
  // NodeUnpublishVolume
  bad("unpublish: no volume_id", (c) => c.NodeUnpublishVolume(unpublishReq({ volume_id: undefined })), "volume_id", /is required/),
  bad("unpublish: no target_path", (c) => c.NodeUnpublishVolume(unpublishReq({ target_path: undefined })), "target_path", /is required/),
  bad("unpublish: not normalised target path", (c) => c.NodeUnpublishVolume(unpublishReq({ target_path: "/var/lib/kubelet//pods/x" })), "target_path", /normalised/),
  // NodeGetVolumeStats
  bad("stats: no volume_id", (c) => c.NodeGetVolumeStats(statsReq({ volume_id: undefined })), "volume_id", /is required/),
  bad("stats: no volume_path", (c) => c.NodeGetVolumeStats(statsReq({ volume_path: undefined })), "volume_path", /is required/),
  // A volume_path where no volume of ours can be is "does not exist on specified volume_path" (csi-sanity checks it).
  bad("stats: volume path outside the allowed roots is NOT_FOUND", (c) => c.NodeGetVolumeStats(statsReq({ volume_path: "/proc/1/root" })), "volume_path", /allowed root/, status.NOT_FOUND),
  bad("stats: a relative volume path is NOT_FOUND", (c) => c.NodeGetVolumeStats(statsReq({ volume_path: "some/path" })), "volume_path", /absolute/, status.NOT_FOUND),
  bad("stats: bad optional staging_target_path", (c) => c.NodeGetVolumeStats(statsReq({ staging_target_path: "/tmp/x" })), "staging_target_path"),
  // NodeExpandVolume
  bad("expand: no volume_id", (c) => c.NodeExpandVolume(expandReq({ volume_id: undefined })), "volume_id", /is required/),
  bad("expand: no volume_path", (c) => c.NodeExpandVolume(expandReq({ volume_path: undefined })), "volume_path", /is required/),
  bad("expand: '..' in the volume path is NOT_FOUND", (c) => c.NodeExpandVolume(expandReq({ volume_path: "/var/lib/kubelet/.." })), "volume_path", /'\.\.'/, status.NOT_FOUND),
  bad("expand: negative required_bytes", (c) => c.NodeExpandVolume(expandReq({ capacity_range: { required_bytes: "-1" } })), "capacity_range.required_bytes", /negative/),
  bad("expand: required_bytes beyond 2^53 is OUT_OF_RANGE", (c) => c.NodeExpandVolume(expandReq({ capacity_range: { required_bytes: "9223372036854775807" } })), "capacity_range.required_bytes", undefined, status.OUT_OF_RANGE),
  bad("expand: limit below required is OUT_OF_RANGE", (c) => c.NodeExpandVolume(expandReq({ capacity_range: { required_bytes: "2000", limit_bytes: "1000" } })), "capacity_range.limit_bytes", undefined, status.OUT_OF_RANGE),
  bad("expand: invalid optional volume_capability", (c) => c.NodeExpandVolume(expandReq({ volume_capability: mountCap("SINGLE_NODE_WRITER", "zfs") })), "volume_capability.mount.fs_type")
]

layer(testCsiLayer(), { excludeTestServices: true })("validation", (it) => {
  for (const c of cases) {
    it.effect(`${c.name} → ${status[c.code]} naming ${c.field}`, () =>
      Effect.gen(function*() {
        const { client, fake } = yield* TestCsi
        fake.reset()
        const result = yield* statusOf(c.call(client))
        assert.strictEqual(status[result.code], status[c.code], result.details)
        assert.include(result.details, c.field)
        if (c.says !== undefined) assert.match(result.details, c.says)
        // Nothing reaches the use cases when the request is invalid.
        assert.deepStrictEqual(fake.calls, [])
      }))
  }
})

describe("valid requests reach NodeVolumes translated", () => {
  layer(testCsiLayer(), { excludeTestServices: true })((it) => {
    it.effect("NodeStageVolume: defaults filled in, flags split, rdsAddress accepted", () =>
      Effect.gen(function*() {
        const { client, fake } = yield* TestCsi
        fake.reset()
        yield* statusOf(client.NodeStageVolume(stageReq({
          volume_capability: mountCap("SINGLE_NODE_WRITER", "", ["noatime,nodiratime", "data=ordered"]),
          volume_context: { nqn: context.nqn, rdsAddress: "[fd00::5]", nvmePort: "4420", nsid: "2" }
        })))
        assert.deepStrictEqual(fake.calls, [{
          method: "stage",
          request: {
            volumeId: "pvc-0b5e1b1c",
            stagingPath: "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/0b5e/globalmount",
            capability: {
              accessType: { _tag: "Mount", fsType: "ext4", mountFlags: ["noatime", "nodiratime", "data=ordered"] },
              accessMode: "SINGLE_NODE_WRITER"
            },
            target: {
              nqn: context.nqn,
              address: "fd00::5",
              port: 4420,
              ctrlLossTmo: -1,
              reconnectDelay: 5,
              keepAliveTmo: undefined,
              namespace: { nsid: 2, nguid: undefined, uuid: undefined }
            }
          }
        }])
      }))

    it.effect("NodePublishVolume: raw block, multi-writer, read-only", () =>
      Effect.gen(function*() {
        const { client, fake } = yield* TestCsi
        fake.reset()
        const result = yield* statusOf(client.NodePublishVolume(publishReq({ volume_capability: blockCap("MULTI_NODE_MULTI_WRITER"), readonly: true })))
        assert.strictEqual(result.code, status.OK)
        const [call] = fake.calls
        assert.deepStrictEqual(call?.request, {
          volumeId: "pvc-0b5e1b1c",
          stagingPath: publishReq().staging_target_path,
          targetPath: publishReq().target_path,
          capability: { accessType: { _tag: "Block" }, accessMode: "MULTI_NODE_MULTI_WRITER" },
          readOnly: true
        })
      }))

    it.effect("NodeUnstage, NodeUnpublish, NodeGetVolumeStats", () =>
      Effect.gen(function*() {
        const { client, fake } = yield* TestCsi
        fake.reset()
        yield* statusOf(client.NodeUnpublishVolume(unpublishReq()))
        yield* statusOf(client.NodeUnstageVolume(unstageReq()))
        yield* statusOf(client.NodeGetVolumeStats(statsReq({ staging_target_path: stageReq().staging_target_path })))
        assert.deepStrictEqual(fake.calls, [
          { method: "unpublish", request: { volumeId: "pvc-0b5e1b1c", targetPath: unpublishReq().target_path } },
          { method: "unstage", request: { volumeId: "pvc-0b5e1b1c", stagingPath: unstageReq().staging_target_path } },
          { method: "stats", request: { volumeId: "pvc-0b5e1b1c", volumePath: statsReq().volume_path } }
        ])
      }))

    it.effect("NodeExpandVolume: required_bytes as a number; 0 means unspecified", () =>
      Effect.gen(function*() {
        const { client, fake } = yield* TestCsi
        fake.reset()
        yield* statusOf(client.NodeExpandVolume(expandReq()))
        yield* statusOf(client.NodeExpandVolume(expandReq({ capacity_range: { required_bytes: "0", limit_bytes: "0" } })))
        yield* statusOf(client.NodeExpandVolume(expandReq({ capacity_range: undefined, volume_capability: blockCap() })))
        assert.deepStrictEqual(fake.calls.map((c) => (c.request as { requiredBytes: unknown }).requiredBytes), [2147483648, undefined, undefined])
      }))
  })
})
