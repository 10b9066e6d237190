/**
 * Host side of "the plugin in a VM posts to the real API server on the host": starts the test
 * cluster (127.0.0.1 only), creates the Node and the PVCs/PVs for the volume IDs, starts the
 * control server (hostControl.ts), writes the guest's kubeconfig (the plugin's ServiceAccount)
 * into the VM's output directory, and boots the VM with two forwards — API server and control —
 * through run-in-vm.sh -f (qemu user networking, restrict=on: the guest reaches nothing else).
 * Used by test/e2e/resilience.test.ts and bench/detection.
 *
 * May import: node built-ins, test/cluster, ./hostControl.ts, ./vm/runInVm.ts (paths).
 */
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type KubeTestCluster, startCluster } from "../cluster/cluster.ts"
import { apiForward, createVolumeObjects, writeGuestNodeKubeconfig } from "../cluster/guestAccess.ts"
import { type HostControl, startHostControl } from "./hostControl.ts"
import { REPO, VM_DIR } from "./vm/runInVm.ts"

export interface ApiServerForGuest {
  readonly cluster: KubeTestCluster
  readonly control: HostControl
  /** The VM's output directory (shared read-write with the guest); holds guest-node.kubeconfig. */
  readonly outDir: string
  /** run-in-vm.sh -f values: API server, control server. */
  readonly forwards: ReadonlyArray<string>
  readonly stop: () => Promise<void>
}

export const startApiServerForGuest = async (options: {
  readonly nodeName: string
  readonly namespace: string
  readonly volumeIds: ReadonlyArray<string>
  readonly watchEvents?: boolean
}): Promise<ApiServerForGuest> => {
  const { cluster, stop: stopCluster } = await startCluster()
  try {
    createVolumeObjects(cluster, options.nodeName, options.namespace, options.volumeIds)
    const control = await startHostControl(cluster, { watchEvents: options.watchEvents === true })
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-e2e-api-"))
    writeGuestNodeKubeconfig(cluster, path.join(outDir, "guest-node.kubeconfig"))
    prewarmCompileCache(outDir)
    return {
      cluster,
      control,
      outDir,
      forwards: [apiForward(cluster), control.forward],
      stop: async () => {
        await control.close()
        await stopCluster()
        if (process.env["E2E_KEEP"] === undefined) fs.rmSync(outDir, { recursive: true, force: true })
        else process.stderr.write(`kept ${outDir} (E2E_KEEP)\n`)
      }
    }
  } catch (e) {
    await stopCluster()
    throw e
  }
}

/**
 * Node's compile cache for the plugin's modules, filled on the host (~1 s) into OUT/node-compile-cache
 * for the guest scripts to copy and use (NODE_COMPILE_CACHE): under TCG a plugin start spends most
 * of its 15-50 s compiling and transpiling ~600 modules; with the cache about 40 % less. Best
 * effort: without it the guest only starts slower.
 */
export const prewarmCompileCache = (outDir: string): void => {
  try {
    execFileSync(path.join(REPO, "node_modules/node/bin/node"), [path.join(REPO, "bin/rds-csi.js"), "node", "--help"], {
      env: { ...process.env, NODE_COMPILE_CACHE: path.join(outDir, "node-compile-cache") },
      stdio: "ignore",
      timeout: 60_000
    })
  } catch {
    // --help exits 0; anything else only means a colder start in the guest
  }
}

export interface VmResult {
  readonly exitCode: number
  readonly console: string
  readonly wallMs: number
}

/** Boots the VM with the forwards and runs `command` (argv) in the guest; never rejects. */
export const runGuest = (setup: ApiServerForGuest, command: ReadonlyArray<string>, timeoutSeconds: number, memoryMb = 1024): Promise<VmResult> => {
  const started = Date.now()
  const fwd = setup.forwards.flatMap((f) => ["-f", f])
  return new Promise((resolve) => {
    execFile("bash", [path.join(VM_DIR, "run-in-vm.sh"), "-q", "-t", String(timeoutSeconds), "-m", String(memoryMb), "-o", setup.outDir, ...fwd, "--", ...command],
      { cwd: REPO, timeout: (timeoutSeconds + 60) * 1000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => {
        const file = path.join(setup.outDir, "console.log")
        const consoleLog = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : stdout
        resolve({ exitCode: error === null ? 0 : typeof error.code === "number" ? error.code : 125, console: consoleLog, wallMs: Date.now() - started })
      })
  })
}
