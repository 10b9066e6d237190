/**
 * The test cluster as a VM guest sees it: run-in-vm.sh `-f GUESTPORT:HOSTPORT` makes the host's
 * 127.0.0.1:HOSTPORT answer at 10.0.2.100:GUESTPORT inside the guest (qemu's user-mode network,
 * restrict=on, nothing else leaves the VM), and make-pki.sh puts IP 10.0.2.100 in the API
 * server's certificate, so a kubeconfig naming https://10.0.2.100:6443 verifies as it would on
 * the host. Kubeconfigs carry the CA inline: the guest needs no other file.
 *
 * Also the fixtures the plugin's events need on that server: a Node, and a PVC bound to a PV of
 * our driver per volume ID (created up front: the plugin's PV index and negative caches would
 * otherwise hide a volume created after its first event).
 *
 * May import: node built-ins, ./cluster.ts (types).
 */
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import type { KubeTestCluster } from "./cluster.ts"

/** Where the host's forwarded ports answer inside the guest. */
export const GUEST_HOST_ADDR = "10.0.2.100"
/** The guest-side port of the API server forward. */
export const GUEST_API_PORT = 6443
export const DRIVER = "rds.csi.srvlab.io"

const portOf = (server: string): number => Number(new URL(server).port)

/** The run-in-vm.sh `-f` value that forwards the guest's 10.0.2.100:6443 to this cluster. */
export const apiForward = (cluster: KubeTestCluster): string => `${GUEST_API_PORT}:${portOf(cluster.server)}`

/** A kubeconfig for use INSIDE the guest: https://10.0.2.100:6443, inline CA, bearer `token`. */
export const guestKubeconfig = (cluster: KubeTestCluster, token: string): string => {
  const ca = readFileSync(cluster.caFile).toString("base64")
  return [
    "apiVersion: v1", "kind: Config",
    `clusters: [{name: t, cluster: {server: "https://${GUEST_HOST_ADDR}:${GUEST_API_PORT}", certificate-authority-data: ${ca}}}]`,
    `users: [{name: u, user: {token: ${token}}}]`,
    "contexts: [{name: t, context: {cluster: t, user: u}}]",
    "current-context: t", ""
  ].join("\n")
}

/** Writes the guest kubeconfig for the plugin's ServiceAccount (csi-node-token) to `file`. */
export const writeGuestNodeKubeconfig = (cluster: KubeTestCluster, file: string): string => {
  writeFileSync(file, guestKubeconfig(cluster, cluster.nodeToken), { mode: 0o600 })
  return file
}

/** The machine's kubectl as the cluster admin, on the host. */
export const kubectl = (cluster: KubeTestCluster, args: ReadonlyArray<string>, input?: string): string =>
  execFileSync("kubectl", ["--kubeconfig", cluster.adminKubeconfig, ...args], { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"], timeout: 30_000 })

export interface VolumeObjects {
  readonly volumeId: string
  readonly namespace: string
  readonly pvc: string
  readonly pv: string
  readonly uid: string
}

/**
 * A Node named `nodeName`, a namespace, and per volume ID a PVC pre-bound to a PV of our driver
 * whose volumeHandle is that ID (as a static PV): what the plugin's events are posted on.
 */
export const createVolumeObjects = (
  cluster: KubeTestCluster,
  nodeName: string,
  namespace: string,
  volumeIds: ReadonlyArray<string>
): ReadonlyArray<VolumeObjects> => {
  kubectl(cluster, ["apply", "-f", "-"], `apiVersion: v1\nkind: Node\nmetadata: {name: ${nodeName}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ${namespace}}\n`)
  const docs = volumeIds.flatMap((id) => [
    `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: ${id}, namespace: ${namespace}}
spec: {accessModes: [ReadWriteOnce], storageClassName: "", volumeName: pv-${id}, resources: {requests: {storage: 64Mi}}}`,
    `apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-${id}}
spec:
  capacity: {storage: 64Mi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  csi: {driver: ${DRIVER}, volumeHandle: ${id}}
  claimRef: {namespace: ${namespace}, name: ${id}}`
  ])
  if (docs.length > 0) kubectl(cluster, ["apply", "-f", "-"], docs.join("\n---\n") + "\n")
  const uids = new Map(
    kubectl(cluster, ["get", "pvc", "-n", namespace, "-o", "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}{\"\\n\"}{end}"])
      .trim().split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const)
  )
  return volumeIds.map((id) => ({ volumeId: id, namespace, pvc: id, pv: `pv-${id}`, uid: uids.get(id) ?? "" }))
}
