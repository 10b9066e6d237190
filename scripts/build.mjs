// npm run build: bundles the plugin into dist/ (rolldown.config.mjs), puts the CSI protocol next
// to it as text and as the message codecs protobufjs generates (dist/proto/csi-codecs.cjs: the
// bundle neither parses the protocol nor generates code at start-up), and fills dist/.compile-cache: V8's code cache of
// the bundle after one real start of `rds-csi node` (to ready, a few RPCs, SIGTERM), made with the
// V8 flags the image runs with, so that even the first start on a node skips compiling it
// (bin/rds-csi.js seeds an empty NODE_COMPILE_CACHE from it); and dist/node.blob, the node plugin's
// V8 start-up snapshot (scripts/snapshot.mjs), whose code cache of Node's built-ins is trimmed to
// those one start from it compiles. dist/ is generated: never committed.
import * as grpc from "@grpc/grpc-js"
import { spawn } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { build } from "rolldown"
import config from "../rolldown.config.mjs"
import { BLOB_V8_FLAGS, buildSnapshot, CODE_CACHE, compiledBuiltins, trimCodeCache } from "./snapshot.mjs"

const root = new URL("..", import.meta.url).pathname
rmSync(`${root}dist`, { recursive: true, force: true })
await build(config)
mkdirSync(`${root}dist/proto`, { recursive: true })
cpSync(`${root}src/csi/proto/csi.proto`, `${root}dist/proto/csi.proto`)
const { loadCsi, parseCsiProto } = await import("../src/csi/Proto.ts")
const { codecModuleSource } = await import("../src/csi/ProtoCodegen.ts")
writeFileSync(`${root}dist/proto/csi-codecs.cjs`, codecModuleSource(parseCsiProto()))
await buildSnapshot(root)

/**
 * One start of the built node plugin (`env` on top of this process's): to ready, a few RPCs, the
 * Kubernetes client's first check, SIGTERM. Returns whether it got ready, and its output.
 */
const warmStart = async (env) => {
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
    env: { ...process.env, RDS_CSI_FROM_SOURCE: "", ...env },
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
  return { ready, out }
}

// The snapshot's code cache, trimmed to the built-ins a start from the blob compiles (the
// blob's V8 flags, BLOB_V8_FLAGS, the ones that matter to a code cache). If that start fails, the
// whole cache stays: larger, never wrong.
if (CODE_CACHE === "trim") {
  const blob = `${root}dist/node.blob`
  const { ready, out } = await warmStart({ NODE_OPTIONS: [...BLOB_V8_FLAGS, `--snapshot-blob=${blob}`].join(" "), NODE_DEBUG_NATIVE: "CODE_CACHE" })
  const compiled = compiledBuiltins(out)
  const why = !ready ? `a start from it did not get ready: ${out.slice(-300)}`
    : !out.includes('"startedFrom":"snapshot"') ? "the start did not run from the blob"
    : compiled.size === 0 ? "Node named no built-in it compiled (NODE_DEBUG_NATIVE=CODE_CACHE)"
    : undefined
  if (why === undefined) {
    const { kept, dropped } = trimCodeCache(blob, compiled)
    const kb = (es) => Math.round(es.reduce((n, e) => n + e.size, 0) / 1024)
    console.log(`build: dist/node.blob keeps the code cache of the ${kept.length} built-ins a start compiles (${kb(kept)} KiB; ${dropped.length} others, ${kb(dropped)} KiB, dropped)`)
  } else {
    console.log(`build: dist/node.blob keeps its whole code cache (${why})`)
  }
}

// The bundle's compile cache on dist/.compile-cache, for starts without the blob; best effort.
const { ready } = await warmStart({ NODE_COMPILE_CACHE: `${root}dist/.compile-cache`, NODE_OPTIONS: "--max-semi-space-size=1", RDS_CSI_SNAPSHOT: "0" })
console.log(ready ? "build: dist/.compile-cache (one start of the bundle)" : "build: no compile cache (the plugin did not start; RDS_CSI_BUILD_DEBUG=1 shows its output)")
console.log("build: dist/rds-csi.mjs, dist/node.blob")
