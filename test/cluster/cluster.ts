/**
 * A real kube-apiserver v1.20.2 and etcd on 127.0.0.1 only, RBAC on, with the project's own
 * RBAC (deploy/base) applied by the machine's kubectl. Used by the integration tests' vitest
 * globalSetup and by bench/events.
 *
 * The binary is cached under /var/cache/rds-csi/ (KUBE_APISERVER_BIN overrides it) and built
 * with build-kube-apiserver.sh when missing (about 3.5 min, needs root for apt). State lives in
 * a fresh temp dir, removed at teardown unless KEEP_CLUSTER=1. Ports are free ones unless
 * ETCD_PORT / API_PORT are set.
 *
 * May import: node built-ins only (this runs in vitest's main process, not in a test worker).
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export interface KubeTestCluster {
  /** https://127.0.0.1:PORT of the real API server. */
  readonly server: string
  readonly caFile: string
  /** PEM of the CA, for in-process servers (the fault proxy) that need it. */
  readonly pkiDir: string
  /** system:masters: test fixtures and kubectl describe. */
  readonly adminToken: string
  /** system:serviceaccount:rds-csi:rds-csi-node: everything the plugin does. */
  readonly nodeToken: string
  /** system:serviceaccount:rds-csi:nobody: authenticated, granted nothing. */
  readonly nobodyToken: string
  readonly adminKubeconfig: string
  readonly stateDir: string
}

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, "../..")
const CACHE = "/var/cache/rds-csi/kube-apiserver-1.20.2"
const BIN = join(CACHE, "kubernetes-1.20.2/_output/local/bin/linux/amd64/kube-apiserver")
const NODE_USER = "system:serviceaccount:rds-csi:rds-csi-node"

const log = (msg: string) => process.stderr.write(`[test/cluster] ${msg}\n`)

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0

const which = (cmd: string) => spawnSync("bash", ["-c", `command -v ${cmd}`]).status === 0

const aptInstall = (...pkgs: Array<string>) => {
  if (!isRoot()) throw new Error(`missing ${pkgs.join(", ")}: install them (apt-get install ${pkgs.join(" ")}) or run as root`)
  log(`apt-get install ${pkgs.join(" ")}`)
  execFileSync("bash", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${pkgs.join(" ")}`], { stdio: "inherit" })
}

const ensureApiserver = (): string => {
  const fromEnv = process.env["KUBE_APISERVER_BIN"]
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  if (existsSync(BIN)) return BIN
  if (!isRoot()) throw new Error(`no kube-apiserver at ${BIN}: run test/cluster/build-kube-apiserver.sh as root, or set KUBE_APISERVER_BIN`)
  // The folder the build log goes to exists before the shell opens it (a new machine has no /var/cache/rds-csi).
  mkdirSync(dirname(CACHE), { recursive: true })
  const buildLog = join(dirname(CACHE), "kube-apiserver-build.log")
  log(`building kube-apiserver v1.20.2 into ${CACHE} (about 4 min; log: ${buildLog})`)
  const out = execFileSync("bash", ["-c", `bash "${join(HERE, "build-kube-apiserver.sh")}" "${CACHE}" 2>"${buildLog}"`], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024
  })
  const bin = out.trim().split("\n").pop() ?? ""
  if (!existsSync(bin)) throw new Error(`kube-apiserver build did not produce a binary; see ${buildLog}`)
  return bin
}

const portFree = (port: number): Promise<boolean> =>
  new Promise((ok) => {
    const s = createServer()
    s.once("error", () => ok(false))
    s.listen(port, "127.0.0.1", () => s.close(() => ok(true)))
  })

/** `count` consecutive free ports on 127.0.0.1 (etcd needs client, peer and metrics). */
const freePorts = async (count: number): Promise<number> => {
  for (let i = 0; i < 200; i++) {
    const base = 20000 + Math.floor(Math.random() * 20000)
    let ok = true
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p)
    if (ok) return base
  }
  throw new Error("no free ports on 127.0.0.1")
}

const kubectl = (kubeconfig: string, args: Array<string>, input?: string): string =>
  execFileSync("kubectl", ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"]
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts a cluster (building the server binary first if needed); call `stop` to end it. */
export async function startCluster(): Promise<{ readonly cluster: KubeTestCluster; readonly stop: () => Promise<void> }> {
  const bin = ensureApiserver()
  if (!which("etcd")) aptInstall("etcd-server")
  // The machine's kubectl (any version >= 1.20); Debian's own is 1.20, from the same source package as the server.
  if (!which("kubectl")) aptInstall("kubernetes-client")
  const stateDir = mkdtempSync(join(tmpdir(), "rds-csi-cluster-"))
  const etcdPort = Number(process.env["ETCD_PORT"] ?? (await freePorts(3)))
  const apiPort = Number(process.env["API_PORT"] ?? (await freePorts(1)))
  log(`starting etcd :${etcdPort} and kube-apiserver :${apiPort} in ${stateDir}`)
  const started = spawnSync("bash", [join(HERE, "start-cluster.sh"), bin, stateDir], {
    env: { ...process.env, ETCD_PORT: String(etcdPort), API_PORT: String(apiPort) },
    encoding: "utf8",
    timeout: 120_000
  })
  const stop = async () => {
    spawnSync("bash", [join(HERE, "stop-cluster.sh"), stateDir], { stdio: "inherit" })
    if (process.env["KEEP_CLUSTER"] === "1") log(`state kept in ${stateDir}`)
    else rmSync(stateDir, { recursive: true, force: true })
  }
  if (started.status !== 0) {
    await stop()
    throw new Error(`cluster did not start:\n${started.stdout}\n${started.stderr}`)
  }
  const adminKubeconfig = join(stateDir, "admin.kubeconfig")
  try {
    // The project's own RBAC, exactly as deployed (not the whole base: other files may carry
    // objects a bare API server without controllers cannot run, and they are tested separately).
    const base = join(ROOT, "deploy/base")
    kubectl(adminKubeconfig, ["apply", "-f", join(base, "namespace.yaml"), "-f", join(base, "serviceaccount.yaml"), "-f", join(base, "rbac.yaml")])
    // The RBAC authorizer learns about new bindings through its informer: wait until it has.
    for (let i = 0; ; i++) {
      const r = spawnSync("kubectl", ["--kubeconfig", adminKubeconfig, "auth", "can-i", "create", "events", "--as", NODE_USER, "-n", "default"], { encoding: "utf8" })
      if (r.stdout.trim() === "yes") break
      if (i > 100) throw new Error(`RBAC not effective for ${NODE_USER}: ${r.stdout} ${r.stderr}`)
      await sleep(100)
    }
  } catch (e) {
    await stop()
    throw e
  }
  const cluster: KubeTestCluster = {
    server: `https://127.0.0.1:${apiPort}`,
    caFile: join(stateDir, "pki/ca.crt"),
    pkiDir: join(stateDir, "pki"),
    adminToken: "admin-token",
    nodeToken: "csi-node-token",
    nobodyToken: "nobody-token",
    adminKubeconfig,
    stateDir
  }
  log(`ready: ${cluster.server}`)
  return { cluster, stop }
}
