/**
 * npm run demo, host side: starts kube-apiserver + etcd on 127.0.0.1 (test/cluster), creates the
 * PVC and PV of the demo volume, boots the VM with the API server forwarded in by qemu (nothing
 * else leaves it), streams the guest's progress, and prints `kubectl describe pvc` whenever the
 * guest asks for it.
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { kubectl } from "../../test/cluster/guestAccess.ts"
import { startApiServerForGuest } from "../../test/e2e/apiServerVm.ts"
import { REPO, VM_DIR } from "../../test/e2e/vm/runInVm.ts"

const NAMESPACE = "demo"
const VOLUME = "pvc-demo-db"
const t0 = Date.now()
const say = (line: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`)

say("starting kube-apiserver 1.20.2 and etcd on 127.0.0.1 (the first run builds the API server from Debian's source: ~4 min)")
const setup = await startApiServerForGuest({ nodeName: "e2e-guest", namespace: NAMESPACE, volumeIds: [VOLUME] })
say(`API server ${setup.cluster.server}; PVC ${NAMESPACE}/${VOLUME} bound to a PV of driver rds.csi.srvlab.io, volumeHandle ${VOLUME}`)

const describe = (what: "pvc" | "node") => {
  const out = what === "pvc"
    ? kubectl(setup.cluster, ["describe", "pvc", "-n", NAMESPACE, VOLUME])
    : kubectl(setup.cluster, ["describe", "node", "e2e-guest"])
  const events = out.slice(out.indexOf("Events:"))
  console.log(`\n$ kubectl describe ${what === "pvc" ? `pvc -n ${NAMESPACE} ${VOLUME}` : "node e2e-guest"}\n...\n${events.trimEnd()}\n`)
}

say("booting the VM (qemu, Debian kernel 6.1, software emulation; the RDS emulator, the controller and the node plugin run inside it)")
const vm = spawn("bash", [path.join(VM_DIR, "run-in-vm.sh"), "-t", "900", "-m", "1024", "-o", setup.outDir,
  ...setup.forwards.flatMap((f) => ["-f", f]), "--", "bash", path.join(REPO, "scripts/demo/guest.sh"), setup.outDir, VOLUME], {
  cwd: REPO,
  stdio: ["ignore", "pipe", "inherit"]
})
const exited = new Promise<number>((ok) => vm.on("exit", (c) => ok(c ?? 1)))
const lines = readline.createInterface({ input: vm.stdout })
for await (const line of lines) {
  const i = line.indexOf("[demo] ")
  if (i < 0) continue
  const text = line.slice(i + "[demo] ".length)
  if (text === "describe-pvc") describe("pvc")
  else if (text === "describe-node") describe("node")
  else say(text)
}
const code = await exited
describe("pvc")
await setup.stop()
say(code === 0 ? "demo: done — the volume came back by itself, events and data as shown above" : `demo: FAILED (guest exit ${code}); console log in the VM output`)
process.exit(code)
