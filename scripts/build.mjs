// npm run build: bundles the plugin into dist/ (rolldown.config.mjs), puts the CSI protocol next
// to it as text and as the message codecs protobufjs generates (dist/proto/csi-codecs.cjs: the
// bundle neither parses the protocol nor generates code at start-up), and fills dist/.compile-cache: V8's code cache of
// the bundle after one real start of `rds-csi node` (to ready, a few RPCs, SIGTERM), made with the
// V8 flags the image runs with, so that even the first start on a node skips compiling it
// (bin/rds-csi.js seeds an empty NODE_COMPILE_CACHE from it); and dist/node.blob, the node plugin's
// V8 start-up snapshot (scripts/snapshot.mjs). dist/ is generated: never committed.
import * as grpc from "@grpc/grpc-js"
import { spawn } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { build } from "rolldown"
import config from "../rolldown.config.mjs"
import { buildSnapshot } from "./snapshot.mjs"

const root = new URL("..", import.meta.url).pathname
rmSync(`${root}dist`, { recursive: true, force: true })
await build(config)
mkdirSync(`${root}dist/proto`, { recursive: true })
cpSync(`${root}src/csi/proto/csi.proto`, `${root}dist/proto/csi.proto`)
const { loadCsi, parseCsiProto } = await import("../src/csi/Proto.ts")
const { codecModuleSource } = await import("../src/csi/ProtoCodegen.ts")
writeFileSync(`${root}dist/proto/csi-codecs.cjs`, codecModuleSource(parseCsiProto()))
await buildSnapshot(root)

/** One start of the bundled node plugin with the compile cache on dist/.compile-cache; best effort. */
const fillCompileCache = async () => {
  const tmp = mkdtempSync(`${tmpdir()}/rds-csi-build-`)
  const socket = `${tmp}/csi.sock`
  // Events on, against an API server that refuses at once (port 9 on loopback): the Kubernetes
  // client's chunk is loaded and its start-up path run, so it is in the cache too.
  writeFileSync(`${tmp}/kubeconfig`, [
    "apiVersion: v1", "kind: Config", "current-context: build",
    "clusters: [{name: build, cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}}]",
    "users: [{name: build, user: {token: build}}]",
    "contexts: [{name: build, context: {cluster: build, user: build}}]", ""
  ].join("\n"))
  const child = spawn(process.execPath, [`${root}bin/rds-csi.js`, "node", "--endpoint", `unix://${socket}`, "--node-id", "build",
    "--state-dir", `${tmp}/state`, "--allowed-path-root", `${tmp}/kubelet`, "--events=true", "--kubeconfig", `${tmp}/kubeconfig`], {
    env: { ...process.env, NODE_COMPILE_CACHE: `${root}dist/.compile-cache`, NODE_OPTIONS: "--max-semi-space-size=1", RDS_CSI_FROM_SOURCE: "" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const exited = new Promise((resolve) => child.once("exit", resolve))
  let out = ""
  child.stdout.on("data", (d) => { out += d })
  child.stderr.on("data", (d) => { out += d })
  const deadline = Date.now() + 30_000
  while (!out.includes('"rds-csi node ready"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
  const ready = out.includes('"rds-csi node ready"')
  if (ready) {
    // The request path compiled too: a few RPCs the first minutes of a node bring anyway.
    const csi = loadCsi()
    // Harmless volume RPCs too (paths in this temp dir, nothing mounted or staged there): the
    // validation, lock, record, mount-table and error-mapping paths every volume RPC takes.
    const call = (client, method, request = {}) => new Promise((resolve) => client[method](request, { deadline: Date.now() + 5000 }, () => resolve()))
    const identity = new csi.Identity(`unix://${socket}`, grpc.credentials.createInsecure())
    const node = new csi.Node(`unix://${socket}`, grpc.credentials.createInsecure())
    const volume = { volume_id: "build-warm-up" }
    const calls = [
      [identity, "GetPluginInfo"], [identity, "Probe"], [node, "NodeGetCapabilities"], [node, "NodeGetInfo"],
      [node, "NodeUnpublishVolume", { ...volume, target_path: `${tmp}/kubelet/pods/p/volumes/v/mount` }],
      [node, "NodeUnstageVolume", { ...volume, staging_target_path: `${tmp}/kubelet/plugins/v/globalmount` }],
      [node, "NodeGetVolumeStats", { ...volume, volume_path: `${tmp}/kubelet/pods/p/volumes/v/mount` }],
      [node, "NodePublishVolume", { ...volume, staging_target_path: `${tmp}/kubelet/plugins/v/globalmount`, target_path: `${tmp}/kubelet/pods/p/volumes/v/mount`, volume_capability: { mount: { fs_type: "ext4" }, access_mode: { mode: "SINGLE_NODE_WRITER" } } }]
    ]
    for (const [client, method, request] of calls) await call(client, method, request)
    identity.close()
    node.close()
    // The client loads after ready; its access check then finds the server refusing.
    const loaded = Date.now() + 20_000
    while (!/not reachable yet|events disabled/.test(out) && Date.now() < loaded && child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
  }
  child.kill("SIGTERM")
  await exited
  rmSync(tmp, { recursive: true, force: true })
  if (process.env.RDS_CSI_BUILD_DEBUG === "1") console.log(out)
  console.log(ready ? "build: dist/.compile-cache (one start of the bundle)" : `build: no compile cache (the plugin did not start: ${out.slice(-300)})`)
}
await fillCompileCache()
console.log("build: dist/rds-csi.mjs, dist/node.blob")
