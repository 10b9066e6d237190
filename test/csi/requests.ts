/**
 * Valid CSI requests for the edge tests, each a function of overrides so a test can break one
 * field at a time. Paths lie under the test settings' allowed root, /var/lib/kubelet.
 *
 * May import: src/csi/Messages (types).
 */
import type * as M from "../../src/csi/Messages.ts"

export const VOLUME = "pvc-0b5e1b1c"
export const STAGING = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/0b5e/globalmount"
export const TARGET = "/var/lib/kubelet/pods/7c1f/volumes/kubernetes.io~csi/pvc-0b5e1b1c/mount"
export const NQN = "nqn.2000-02.com.mikrotik:pvc-0b5e1b1c"

export const context = { nqn: NQN, nvmeAddress: "10.42.0.5", nvmePort: "4420" }

export const mountCap = (mode = "SINGLE_NODE_WRITER", fs_type = "ext4", mount_flags: ReadonlyArray<string> = []): M.VolumeCapabilityMessage => ({
  mount: { fs_type, mount_flags },
  access_mode: { mode }
})

export const blockCap = (mode = "SINGLE_NODE_WRITER"): M.VolumeCapabilityMessage => ({ block: {}, access_mode: { mode } })

export const stageReq = (o: Partial<M.NodeStageVolumeRequest> = {}): M.NodeStageVolumeRequest => ({
  volume_id: VOLUME,
  staging_target_path: STAGING,
  volume_capability: mountCap(),
  volume_context: context,
  secrets: { password: "do-not-log" },
  ...o
})

export const unstageReq = (o: Partial<M.NodeUnstageVolumeRequest> = {}): M.NodeUnstageVolumeRequest => ({
  volume_id: VOLUME,
  staging_target_path: STAGING,
  ...o
})

export const publishReq = (o: Partial<M.NodePublishVolumeRequest> = {}): M.NodePublishVolumeRequest => ({
  volume_id: VOLUME,
  staging_target_path: STAGING,
  target_path: TARGET,
  volume_capability: mountCap(),
  readonly: false,
  volume_context: context,
  ...o
})

export const unpublishReq = (o: Partial<M.NodeUnpublishVolumeRequest> = {}): M.NodeUnpublishVolumeRequest => ({
  volume_id: VOLUME,
  target_path: TARGET,
  ...o
})

export const statsReq = (o: Partial<M.NodeGetVolumeStatsRequest> = {}): M.NodeGetVolumeStatsRequest => ({
  volume_id: VOLUME,
  volume_path: TARGET,
  ...o
})

export const expandReq = (o: Partial<M.NodeExpandVolumeRequest> = {}): M.NodeExpandVolumeRequest => ({
  volume_id: VOLUME,
  volume_path: TARGET,
  staging_target_path: STAGING,
  capacity_range: { required_bytes: "2147483648", limit_bytes: "0" },
  ...o
})
