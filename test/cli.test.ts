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
import { daemonSetNodeOptions } from "./deploy/nodeOptions.ts"

const ROOT = path.resolve(import.meta.dirname, "..")
const NODE24 = fs.existsSync(path.join(ROOT, "node_modules/node/bin/node")) ? path.join(ROOT, "node_modules/node/bin/node") : process.execPath
const plain = Object.fromEntries(Object.entries(process.env).filter(([k]) => !["CSI_ENDPOINT", "NODE_ID", "KUBECONFIG", "EVENTS", "NODE_OPTIONS"].includes(k)))
const daemonSet = daemonSetNodeOptions(ROOT)

describe.each([
  { how: "plain", env: plain, startedFrom: "bundle" },
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
      "--allowed-path-root", `${tmp}/kubelet`, "--events=false"], { env: { ...env, NODE_ID: "cli-test", HEALTH_INTERVAL: "7s" }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const deadline = Date.now() + 20_000
    while (!out.includes('"rds-csi node ready"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
    child.kill("SIGTERM")
    const code = await exited
    fs.rmSync(tmp, { recursive: true, force: true })
    assert.include(out, '"rds-csi node ready"', out.slice(-1000))
    const starting = JSON.parse(out.split("\n").find((l) => l.includes('"rds-csi node starting"'))!) as { config: Record<string, unknown>; startedFrom?: string }
    assert.strictEqual(starting.config["nodeId"], "cli-test")
    assert.strictEqual(starting.config["healthInterval"], "7s")
    assert.strictEqual(starting.config["events"], false)
    assert.strictEqual(starting.startedFrom, startedFrom)
    assert.strictEqual(code, 0)
  })
})
