/**
 * `rds-csi node` through bin/rds-csi.js, the built CLI as the image runs it: a plain line starts
 * the plugin on the start-up path (src/nodeEntry.ts), and every line that path leaves behind —
 * help, a missing or bad flag — still reaches the full CLI, which answers as it always has. All of
 * it twice: plain, and with the DaemonSet's NODE_OPTIONS, which start Node from the build's V8
 * start-up snapshot (dist/node.blob, scripts/snapshot.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { makeCsiClient } from "./csi/client.ts"
import { daemonSetNodeOptions } from "./deploy/nodeOptions.ts"

const ROOT = path.resolve(import.meta.dirname, "..")
const NODE24 = fs.existsSync(path.join(ROOT, "node_modules/node/bin/node")) ? path.join(ROOT, "node_modules/node/bin/node") : process.execPath
const plain = Object.fromEntries(Object.entries(process.env).filter(([k]) => !["CSI_ENDPOINT", "NODE_ID", "KUBECONFIG", "EVENTS", "NODE_OPTIONS"].includes(k)))
const daemonSet = daemonSetNodeOptions(ROOT)

describe.each([
  { how: "the bundle (RDS_CSI_SNAPSHOT=0)", env: { ...plain, RDS_CSI_SNAPSHOT: "0" }, startedFrom: "bundle" },
  // bin/rds-csi.js starts itself again from the blob (execve), as the DaemonSet would have.
  { how: "plain: NODE_OPTIONS that name no blob (the image's before round 9)", env: { ...plain, NODE_OPTIONS: "--max-semi-space-size=1 --use-openssl-ca" }, startedFrom: "snapshot" },
  { how: "with the DaemonSet's NODE_OPTIONS", env: { ...plain, NODE_OPTIONS: daemonSet }, startedFrom: "snapshot" }
])("rds-csi node, the command line ($how)", ({ env, startedFrom }) => {
  const node = (...args: ReadonlyArray<string>) => spawnSync(NODE24, [path.join(ROOT, "bin/rds-csi.js"), "node", ...args], { encoding: "utf8", env, timeout: 60_000 })

  it("--help is the full CLI's help", () => {
    const r = node("--help")
    assert.strictEqual(r.status, 0, r.stderr)
    assert.match(r.stdout, /Run the CSI node plugin/)
    assert.match(r.stdout, /--state-watch-interval string +How often/)
  })

  it("a missing required flag is named by the full CLI (exit not 0)", () => {
    const r = node("--endpoint", "unix:///tmp/x.sock")
    assert.notStrictEqual(r.status, 0)
    assert.match(r.stdout + r.stderr, /Missing required flag: --node-id/)
  })

  it("a bad value is named with its rule (exit 2)", () => {
    const r = node("--endpoint", "tcp://0.0.0.0:9", "--node-id", "n")
    assert.strictEqual(r.status, 2)
    assert.strictEqual(r.stderr.trim(), "rds-csi node: --endpoint: must be unix:///absolute/path (got 'tcp://0.0.0.0:9')")
  })

  it("a plain line starts the plugin with what it says (flags, then environment), and SIGTERM stops it cleanly", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-cli-"))
    const child = spawn(NODE24, [path.join(ROOT, "bin/rds-csi.js"), "node", "--endpoint", `unix://${tmp}/csi.sock`, "--state-dir", `${tmp}/state`,
      "--allowed-path-root", `${tmp}/kubelet`, "--events=false"], {
      env: { ...env, NODE_ID: "cli-test", HEALTH_INTERVAL: "7s", NODE_DEBUG_NATIVE: "CODE_CACHE" }, stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const deadline = Date.now() + 20_000
    while (!out.includes('"rds-csi node ready"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
    // Requests decode and answers encode with the codecs it started with (from the blob: those evaluated into it).
    const client = makeCsiClient(`${tmp}/csi.sock`)
    const info = await client.GetPluginInfo({}) as { name: string }
    const caps = await client.NodeGetCapabilities({}) as { capabilities: ReadonlyArray<{ rpc: { type: string } }> }
    const refused = await client.NodeStageVolume({ volume_id: "v1", staging_target_path: `${tmp}/kubelet/s` }).then(() => undefined, (e: Error) => e.message)
    client.close()
    child.kill("SIGTERM")
    const code = await exited
    fs.rmSync(tmp, { recursive: true, force: true })
    assert.include(out, '"rds-csi node ready"', out.slice(-1000))
    assert.strictEqual(info.name, "rds.csi.srvlab.io")
    assert.include(caps.capabilities.map((c) => c.rpc.type), "STAGE_UNSTAGE_VOLUME")
    assert.match(refused ?? "", /^3 INVALID_ARGUMENT: volume_capability/)
    const starting = JSON.parse(out.split("\n").find((l) => l.includes('"rds-csi node starting"'))!) as { config: Record<string, unknown>; startedFrom?: string }
    assert.strictEqual(starting.config["nodeId"], "cli-test")
    assert.strictEqual(starting.config["healthInterval"], "7s")
    assert.strictEqual(starting.config["events"], false)
    assert.strictEqual(starting.startedFrom, startedFrom)
    assert.strictEqual(code, 0)
    // Every built-in the start compiles comes from a code cache V8 takes: Node's own, or the
    // blob's, trimmed by the build to what a start compiles (scripts/snapshot.mjs). A V8 flag in
    // the DaemonSet's options that the cache was not made with would show here as "rejected".
    const compiled = out.split("\n").filter((l) => l.startsWith("Compiling ")).length
    assert.isAbove(compiled, 20, out.slice(0, 2000))
    assert.deepStrictEqual(out.split("\n").filter((l) => / without code cache|is rejected/.test(l)), [])
    // From the blob, node:crypto, node:net and their kind are in the heap it starts with (scripts/snapshot-entry.cjs): none
    // compiles; nor does node:module, which nothing needs before a package is first required.
    if (startedFrom === "snapshot") {
      assert.deepStrictEqual(out.split("\n").filter((l) => /^Compiling (crypto|net|os|fs\/promises|assert|module|internal\/crypto\/\S+) /.test(l)), [])
    }
  })
})

describe.each([
  { how: "plain", env: plain },
  { how: "with the DaemonSet's NODE_OPTIONS", env: { ...plain, NODE_OPTIONS: daemonSet } }
])("rds-csi node with events on, what it loads ($how)", ({ env }) => {
  it("the Kubernetes client and what it runs, none of the packages its KubeConfig keeps for what rds-csi never does (scripts/lazy-externals.mjs)", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-cli-"))
    // Every module file Node loads, by URL, written when the process exits (module.registerHooks sees require and import alike).
    fs.writeFileSync(path.join(tmp, "record.cjs"), [
      `const seen = new Set()`,
      `require("node:module").registerHooks({ load: (url, context, next) => { seen.add(url); return next(url, context) } })`,
      `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(path.join(tmp, "loaded.txt"))}, [...seen].join("\\n")))`
    ].join("\n"))
    // An API server that refuses at once: the client loads, checks its access, and says it cannot reach it.
    fs.writeFileSync(path.join(tmp, "kubeconfig"), [
      "apiVersion: v1", "kind: Config", "current-context: t",
      "clusters: [{name: t, cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}}]",
      "users: [{name: t, user: {token: t}}]", "contexts: [{name: t, context: {cluster: t, user: t}}]", ""
    ].join("\n"))
    const child = spawn(NODE24, [path.join(ROOT, "bin/rds-csi.js"), "node", "--endpoint", `unix://${tmp}/csi.sock`, "--state-dir", `${tmp}/state`,
      "--allowed-path-root", `${tmp}/kubelet`, "--events=true", "--kubeconfig", path.join(tmp, "kubeconfig")], {
      env: { ...env, NODE_ID: "cli-test", NODE_OPTIONS: `${env.NODE_OPTIONS ?? ""} --require=${path.join(tmp, "record.cjs")}` },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const deadline = Date.now() + 40_000
    while (!/not reachable yet/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50))
    child.kill("SIGTERM")
    assert.strictEqual(await exited, 0, out.slice(-1000))
    assert.match(out, /API server https:\/\/127\.0\.0\.1:9 not reachable yet/)
    const loaded = fs.readFileSync(path.join(tmp, "loaded.txt"), "utf8").split("\n")
    fs.rmSync(tmp, { recursive: true, force: true })
    // The client's own dependencies it runs here: its YAML parser for the kubeconfig.
    assert.isTrue(loaded.some((u) => u.includes("/node_modules/js-yaml/")), loaded.join("\n"))
    for (const pkg of ["undici", "socks", "socks-proxy-agent", "hpagent", "jsonpath-plus", "openid-client", "oauth4webapi", "jose"]) {
      assert.deepStrictEqual(loaded.filter((u) => u.includes(`/node_modules/${pkg}/`)), [], pkg)
    }
  })
})

describe("any command but `rds-csi node` under the node plugin's NODE_OPTIONS (the image's own, the DaemonSet's)", () => {
  // What the process that runs the command has, written when it exits (an execve replaces a process without an exit).
  const probe = (nodeOptions: string, ...args: ReadonlyArray<string>) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-cli-"))
    fs.writeFileSync(path.join(tmp, "probe.cjs"), [
      `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(path.join(tmp, "seen.json"))}, JSON.stringify({`,
      `  pid: process.pid, execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS, webAssembly: typeof WebAssembly }))`,
      `)`
    ].join("\n"))
    const r = spawnSync(NODE24, [path.join(ROOT, "bin/rds-csi.js"), ...args], {
      encoding: "utf8", timeout: 60_000, env: { ...plain, NODE_OPTIONS: `${nodeOptions} --require=${path.join(tmp, "probe.cjs")}` }
    })
    const seen = JSON.parse(fs.readFileSync(path.join(tmp, "seen.json"), "utf8")) as { pid: number; execArgv: Array<string>; nodeOptions: string; webAssembly: string }
    fs.rmSync(tmp, { recursive: true, force: true })
    return { r, seen }
  }

  it.each([
    { how: "as one token each", options: daemonSet },
    { how: "--snapshot-blob and its path apart", options: daemonSet.replace("--snapshot-blob=", "--snapshot-blob ") }
  ])("starts again without --jitless and the blob ($how): WebAssembly, which the controller's SSH library needs, is there; the other options stay", ({ options }) => {
    const { r, seen } = probe(options, "doctor", "--help")
    assert.strictEqual(r.status, 0, r.stderr)
    assert.match(r.stdout, /Check this node's prerequisites/)
    assert.strictEqual(seen.pid, r.pid, "the same process (execve), not a child")
    assert.strictEqual(seen.webAssembly, "object")
    const kept = seen.nodeOptions.split(/\s+/)
    for (const gone of ["--jitless", "--snapshot-blob"]) assert.isFalse(kept.some((f) => f.startsWith(gone)), seen.nodeOptions)
    assert.isFalse(kept.some((f) => f.endsWith("node.blob")), seen.nodeOptions)
    for (const stays of ["--max-old-space-size=160", "--max-semi-space-size=1", "--use-openssl-ca"]) assert.include(kept, stays)
  })

  it("`rds-csi node` keeps them: it runs from the blob, under V8's interpreter only", () => {
    const { r, seen } = probe(daemonSet, "node", "--help")
    assert.strictEqual(r.status, 0, r.stderr)
    assert.strictEqual(seen.webAssembly, "undefined")
    assert.include(seen.nodeOptions.split(/\s+/), "--jitless")
  })
})
