/**
 * Starts the test cluster (kube-apiserver + etcd on 127.0.0.1, the project's RBAC) for a VM guest
 * and keeps it up until SIGTERM/SIGINT, then stops it. For scripts (the demo):
 *
 *   node test/cluster/serve-for-guest.ts DIR &          # DIR/ready appears when it is up
 *   while [ ! -e DIR/ready ]; do sleep 0.2; done
 *   bash test/e2e/vm/run-in-vm.sh -f "$(cat DIR/forward)" -- CMD...   # in the guest:
 *       rds-csi node --events=true --kubeconfig DIR/guest-node.kubeconfig ...
 *       kubectl --kubeconfig DIR/guest-admin.kubeconfig ...
 *   kubectl --kubeconfig DIR/admin.kubeconfig describe pvc ...          # on the host
 *   kill %1                                             # stops the cluster
 *
 * DIR must exist before the VM boots (the guest sees the host's files as they were at boot).
 * Optional: NODE_NAME=e2e-guest NAMESPACE=demo VOLUMES="vol-a vol-b" create the Node and a PVC
 * bound to a PV of our driver per volume ID, so the plugin's events have objects to land on.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { startCluster } from "./cluster.ts"
import { apiForward, createVolumeObjects, guestKubeconfig, writeGuestNodeKubeconfig } from "./guestAccess.ts"

const dir = resolve(process.argv[2] ?? "")
if (process.argv[2] === undefined) {
  process.stderr.write("usage: node test/cluster/serve-for-guest.ts DIR\n")
  process.exit(2)
}
mkdirSync(dir, { recursive: true })
const { cluster, stop } = await startCluster()
let stopping = false
const shutdown = async () => {
  if (stopping) return
  stopping = true
  await stop()
  process.exit(0)
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)
try {
  writeGuestNodeKubeconfig(cluster, join(dir, "guest-node.kubeconfig"))
  writeFileSync(join(dir, "guest-admin.kubeconfig"), guestKubeconfig(cluster, cluster.adminToken), { mode: 0o600 })
  copyFileSync(cluster.adminKubeconfig, join(dir, "admin.kubeconfig"))
  writeFileSync(join(dir, "forward"), `${apiForward(cluster)}\n`)
  const volumes = (process.env["VOLUMES"] ?? "").split(/\s+/).filter((v) => v !== "")
  if (process.env["NODE_NAME"] !== undefined) {
    createVolumeObjects(cluster, process.env["NODE_NAME"], process.env["NAMESPACE"] ?? "default", volumes)
  }
  writeFileSync(join(dir, "ready"), `${cluster.server}\n`)
  process.stderr.write(`[serve-for-guest] ${cluster.server} → guest https://10.0.2.100:6443; run-in-vm.sh -f ${apiForward(cluster)}; files in ${dir}\n`)
} catch (e) {
  process.stderr.write(`[serve-for-guest] ${String(e)}\n`)
  await stop()
  process.exit(1)
}
// Stay up until signalled.
setInterval(() => {}, 1 << 30)
