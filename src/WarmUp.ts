/**
 * The pure part of the node plugin's first NodeStage, NodePublish, NodeUnpublish and
 * NodeUnstage, run once on made-up values while the start-up snapshot is built
 * (scripts/snapshot-entry.cjs): each request through its codec (bytes → message → the plain
 * object the handler gets) and its validation, each empty response encoded, and a stage record
 * through the store's schema (encode, JSON, decode). V8 keeps in the blob the bytecode of every
 * function that ran, and Effect the record schema's compiled parser, so the first RPCs after a
 * start do not compile them (issue 12: the first NodeStage after a start paid ~0.1–0.2 s of its
 * own time for this under the VM's emulation, bench/README.md).
 *
 * Nothing here touches the host, a metric, the log or a clock: it returns what it made, for its
 * test, and throws if a value it made is refused (then the build fails, which is the point).
 *
 * May import: effect, csi/Proto, csi/Validate, node/StageStore, node/StageStoreLive.
 */
import { Effect, Result } from "effect"
import { loadCsiDefinitions } from "./csi/Proto.ts"
import * as Validate from "./csi/Validate.ts"
import type { StageRecord } from "./node/StageStore.ts"
import { recordRoundTrip } from "./node/StageStoreLive.ts"

const ROOTS = ["/var/lib/kubelet"]
const VOLUME = "pvc-00000000-0000-4000-8000-000000000000"
const STAGING = `/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/${VOLUME}/globalmount`
const TARGET = `/var/lib/kubelet/pods/00000000-0000-4000-8000-000000000001/volumes/kubernetes.io~csi/${VOLUME}/mount`
const NQN = `nqn.2000-02.com.mikrotik:${VOLUME}`
const CAPABILITY = { mount: { fs_type: "ext4", mount_flags: ["noatime"] }, access_mode: { mode: "SINGLE_NODE_WRITER" } }
const CONTEXT = { nqn: NQN, nvmeAddress: "10.0.0.5", nvmePort: "4420", ctrlLossTmo: "-1", reconnectDelay: "5" }

const valid = <A, E>(what: string, r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`warm-up: the made-up ${what} was refused: ${String(r.failure)}`)
  return r.success
}

/** Runs the warm-up; returns the requests as validated and the record as read back. */
export const warmUp = () => {
  const node = loadCsiDefinitions().Node
  const through = (method: string, request: object): object => {
    const d = node[method]
    if (d === undefined) throw new Error(`warm-up: no Node method ${method}`)
    d.responseSerialize({})
    return d.requestDeserialize(d.requestSerialize(request))
  }
  const stage = valid("NodeStageVolume", Validate.stage(
    through("NodeStageVolume", { volume_id: VOLUME, staging_target_path: STAGING, volume_capability: CAPABILITY, volume_context: CONTEXT }),
    ROOTS
  ))
  const publish = valid("NodePublishVolume", Validate.publish(
    through("NodePublishVolume", { volume_id: VOLUME, staging_target_path: STAGING, target_path: TARGET, volume_capability: CAPABILITY, readonly: false }),
    ROOTS
  ))
  const unpublish = valid("NodeUnpublishVolume", Validate.unpublish(through("NodeUnpublishVolume", { volume_id: VOLUME, target_path: TARGET }), ROOTS))
  const unstage = valid("NodeUnstageVolume", Validate.unstage(through("NodeUnstageVolume", { volume_id: VOLUME, staging_target_path: STAGING }), ROOTS))
  const record: StageRecord = {
    version: 1,
    volumeId: stage.volumeId,
    stagingPath: stage.stagingPath,
    nqn: stage.target.nqn,
    address: stage.target.address,
    port: stage.target.port,
    ctrlLossTmo: stage.target.ctrlLossTmo,
    reconnectDelay: stage.target.reconnectDelay,
    selector: { nguid: "a3c5fa9cfd726d3e6d9d528055c24900" },
    device: { name: "nvme0n1", devT: "259:0", identity: { nsid: 1, nguid: "a3c5fa9cfd726d3e6d9d528055c24900" } },
    accessType: "Mount",
    fsType: "ext4",
    mountFlags: ["noatime"],
    readOnly: false,
    connectedByPlugin: true,
    complete: true,
    bootId: "00000000-0000-4000-8000-000000000002",
    publishedTargets: [{ path: publish.targetPath, readOnly: false }],
    stagedAt: "2026-01-01T00:00:00.000Z"
  }
  const readBack = Effect.runSync(recordRoundTrip(record))
  return { stage, publish, unpublish, unstage, record: readBack }
}
