/**
 * bench/memory (one command: `node bench/memory/run.ts [TRIALS] [CONFIG]`, ~1 min): the node
 * plugin's memory on this host, events off and on, by part of the program. CONFIG is another
 * rolldown config to build with (default rolldown.config.mjs), to weigh a build option.
 *
 * It runs the build (scripts/build.mjs) in a private copy of the sources (a concurrent
 * `npm run build` cannot swap the chunks under it), starts the test cluster (a real
 * kube-apiserver + etcd on loopback, test/cluster), and runs `bin/rds-csi.js node` with the
 * DaemonSet's NODE_OPTIONS (its start-up snapshot too), as bench/footprint does: --events=false, then
 * --events=true with a kubeconfig for the node ServiceAccount. Each run waits for the socket
 * and the "ready" log line, idles IDLE_MS (the Kubernetes side loads after ready) and reads
 * VmRSS, RssAnon and RssFile; the last trial of each writes a heap snapshot (SIGUSR2), split
 * by part in heap.ts. Prints the tables, writes bench/out/memory.json, exits 1 on any failure
 * (no socket, a kube warning with events on). Probe readiness is not waited for: nvme-cli may
 * be missing on the host. KEEP_MEMORY_RUN=1 keeps the build, logs and snapshots.
 *
 * May import: node built-ins, test/cluster, test/deploy/nodeOptions.ts, ./heap.ts.
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startCluster } from "../../test/cluster/cluster.ts"
import { daemonSetNodeOptions } from "../../test/deploy/nodeOptions.ts"
import { attribute } from "./heap.ts"

const REPO = path.resolve(import.meta.dirname, "../..")
const NODE = path.join(REPO, "node_modules/node/bin/node")
const TRIALS = Number(process.argv[2] ?? "3")
const CONFIG = path.resolve(process.argv[3] ?? path.join(REPO, "rolldown.config.mjs"))
const IDLE_MS = 5_000
/** The DaemonSet's V8 options without the start-up snapshot (which runs scripts, not -e), for the floors. */
const V8_OPTIONS = daemonSetNodeOptions().split(/\s+/).filter((o) => !o.startsWith("--snapshot-blob")).join(" ")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mib = (bytes: number) => bytes / 1048576
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const waitFor = async (what: string, ms: number, check: () => boolean) => {
  for (const until = Date.now() + ms; !check(); await sleep(50)) if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
}

/**
 * The repository's build (scripts/build.mjs: the bundle, dist/proto, the shipped compile cache)
 * run in a copy of the sources, so dist/ is ours alone; node_modules is the repository's.
 */
const stage = (root: string) => {
  for (const d of ["src", "scripts", "bin"]) fs.cpSync(path.join(REPO, d), path.join(root, d), { recursive: true })
  fs.copyFileSync(path.join(REPO, "package.json"), path.join(root, "package.json"))
  fs.copyFileSync(CONFIG, path.join(root, "rolldown.config.mjs"))
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(root, "node_modules"))
  execFileSync(NODE, ["scripts/build.mjs"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
}

interface Run { readonly rssKiB: number; readonly anonKiB: number; readonly fileKiB: number; readonly snapshot: string | undefined; readonly log: string }

const runPlugin = async (root: string, dir: string, events: boolean, kubeconfig: string, snapshot: boolean): Promise<Run> => {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, "state"), { recursive: true })
  fs.mkdirSync(path.join(dir, "root"))
  const logFile = path.join(dir, "plugin.log")
  const fd = fs.openSync(logFile, "w")
  const child = spawn(NODE, [
    path.join(root, "bin/rds-csi.js"), "node",
    "--endpoint", `unix://${dir}/csi.sock`, "--node-id", "bench-memory", "--state-dir", path.join(dir, "state"),
    "--allowed-path-root", path.join(dir, "root"), `--events=${events}`, "--kubeconfig", kubeconfig
  ], {
    cwd: dir, stdio: ["ignore", fd, fd],
    env: { ...process.env, NODE_OPTIONS: `${daemonSetNodeOptions(root)} --heapsnapshot-signal=SIGUSR2`, NODE_COMPILE_CACHE: path.join(root, "cache") }
  })
  fs.closeSync(fd)
  let exit: string | undefined
  const exited = new Promise<void>((r) => child.once("exit", (code, sig) => { exit = `${code ?? sig}`; r() }))
  const log = () => fs.readFileSync(logFile, "utf8")
  try {
    await waitFor("the socket and the ready line", 30_000, () => {
      if (exit !== undefined) throw new Error(`plugin ended (${exit}):\n${log().slice(-2000)}`)
      return fs.existsSync(path.join(dir, "csi.sock")) && log().includes("rds-csi node ready")
    })
    await sleep(IDLE_MS)
    const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8")
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1])
    let file: string | undefined
    if (snapshot) {
      child.kill("SIGUSR2")
      // Written in one go by the main thread: done when the name exists and the size stays put.
      let last = -1
      await waitFor("the heap snapshot", 60_000, () => {
        file = fs.readdirSync(dir).find((f) => f.endsWith(".heapsnapshot"))
        const size = file === undefined ? -1 : fs.statSync(path.join(dir, file)).size
        const done = size > 0 && size === last
        last = size
        return done
      })
      file = path.join(dir, file!)
    }
    return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon"), fileKiB: kib("RssFile"), snapshot: file, log: log() }
  } finally {
    child.kill("SIGTERM")
    await Promise.race([exited, sleep(5_000).then(() => child.kill("SIGKILL"))])
  }
}

/**
 * The floor under the plugin's RSS, measured the same way: a bare Node 24 with the plugin's
 * flags, and one that has loaded only the built-ins the plugin cannot do without (http2 for the
 * gRPC server, which brings net, tls, crypto and http; child_process for nvme-cli and mount)
 * and serves an idle http2 server on a unix socket.
 */
const FLOOR = {
  "a bare Node 24 (same flags), idle": "setTimeout(() => {}, 1e9)",
  "Node 24 + the built-ins gRPC and the commands need (http2, child_process), an idle http2 server": [
    "require('child_process'); const h = require('http2');",
    "h.createServer().listen(process.argv[1] + '/floor.sock'); setTimeout(() => {}, 1e9)"
  ].join(" ")
} as const
const floor = async (dir: string): Promise<Record<string, number>> => {
  const out: Record<string, number> = {}
  for (const [what, code] of Object.entries(FLOOR)) {
    const runs: Array<number> = []
    for (let i = 0; i < TRIALS; i++) {
      fs.rmSync(path.join(dir, "floor.sock"), { force: true })
      const child = spawn(NODE, ["-e", code, dir], { env: { ...process.env, NODE_OPTIONS: V8_OPTIONS }, stdio: "ignore" })
      await sleep(IDLE_MS)
      const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8")
      runs.push(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024)
      child.kill("SIGKILL")
    }
    out[what] = median(runs)
  }
  return out
}

/** Two tables: RSS and heap, events off and on; the heap's source and code by part. */
const report = (off: Result, on: Result, floors: Record<string, number>) => {
  const f = (x: number | undefined) => (x === undefined || x < 0.005 ? "—" : x.toFixed(2))
  const line = (cells: ReadonlyArray<string>) => console.log(`| ${cells.join(" | ")} |`)
  console.log(`\n| MiB (host, idle ${IDLE_MS / 1000} s after ready) | events off | events on |\n| --- | ---: | ---: |`)
  line([`RSS (median of ${TRIALS})`, f(median(off.rssMiB)), f(median(on.rssMiB))])
  line(["  anonymous (V8 heaps, malloc)", f(median(off.anonMiB)), f(median(on.anonMiB))])
  line(["  file-backed (the node binary, libraries)", f(median(off.fileMiB)), f(median(on.fileMiB))])
  for (const [what, rss] of Object.entries(floors)) line([`floor: ${what}, RSS`, f(rss), f(rss)])
  line(["V8 heap (snapshot after a full GC; Node's own sources are external strings)", f(mib(off.heap.total)), f(mib(on.heap.total))])
  const sum = (r: Result, p: string) => { const v = r.heap.parts.get(p); return v === undefined ? 0 : mib(v.source + v.code) }
  const names = [...new Set([...off.heap.parts.keys(), ...on.heap.parts.keys()])].sort((a, b) => sum(on, b) - sum(on, a))
  const big = names.filter((p) => Math.max(sum(on, p), sum(off, p)) >= 0.1)
  const rest = (r: Result, k: "source" | "code") => mib(names.filter((p) => !big.includes(p)).reduce((t, p) => t + (r.heap.parts.get(p)?.[k] ?? 0), 0))
  console.log("\n| heap by part, MiB | off: source | off: code | on: source | on: code |\n| --- | ---: | ---: | ---: | ---: |")
  for (const p of big) {
    const a = off.heap.parts.get(p), b = on.heap.parts.get(p)
    line([p, f(a && mib(a.source)), f(a && mib(a.code)), f(b && mib(b.source)), f(b && mib(b.code))])
  }
  line(["other packages (< 0.1 MiB each)", f(rest(off, "source")), f(rest(off, "code")), f(rest(on, "source")), f(rest(on, "code"))])
  line(["data (objects, strings, arrays, shapes)", f(mib(off.heap.data)), "", f(mib(on.heap.data)), ""])
}

interface Result {
  readonly events: boolean
  readonly rssMiB: ReadonlyArray<number>
  readonly anonMiB: ReadonlyArray<number>
  readonly fileMiB: ReadonlyArray<number>
  readonly heap: ReturnType<typeof attribute>
}

const main = async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-memory-"))
  try {
    stage(root)
    const chunks = fs.readdirSync(path.join(root, "dist")).filter((f) => f.endsWith(".mjs"))
      .map((f) => [f.replace(/-[\w-]{8}\.mjs$/, ".mjs"), fs.statSync(path.join(root, "dist", f)).size] as const)
    // The start-up snapshot's chunks (the DaemonSet's NODE_OPTIONS start the plugin from it): heap.ts names their scripts by them.
    const snapshotChunks = fs.readdirSync(path.join(root, "dist")).filter((f) => /^snapshot-.*\.cjs$/.test(f)).map((f) => path.join(root, "dist", f))
    const { cluster, stop } = await startCluster()
    try {
      const kubeconfig = path.join(root, "kubeconfig")
      fs.writeFileSync(kubeconfig, [
        "apiVersion: v1", "kind: Config",
        `clusters: [{name: t, cluster: {server: "${cluster.server}", certificate-authority: "${cluster.caFile}"}}]`,
        `users: [{name: u, user: {token: ${cluster.nodeToken}}}]`,
        "contexts: [{name: t, context: {cluster: t, user: u}}]", "current-context: t", ""
      ].join("\n"))
      const results: Array<Result> = []
      for (const events of [false, true]) {
        const runs: Array<Run> = []
        for (let i = 0; i < TRIALS; i++) runs.push(await runPlugin(root, path.join(root, `events-${events}`), events, kubeconfig, i === TRIALS - 1))
        const trouble = runs.flatMap((r) => r.log.split("\n")).filter((l) => /"level":"(warn|error)"/.test(l) && /API server|events disabled|RBAC/.test(l))
        if (events && trouble.length > 0) throw new Error(`the kube side did not come up cleanly:\n${trouble.join("\n")}`)
        const m = (k: "rssKiB" | "anonKiB" | "fileKiB") => runs.map((r) => r[k] / 1024)
        results.push({ events, rssMiB: m("rssKiB"), anonMiB: m("anonKiB"), fileMiB: m("fileKiB"), heap: attribute(runs.at(-1)!.snapshot!, snapshotChunks) })
        console.log(`events=${events}: RSS ${m("rssKiB").map((x) => x.toFixed(1)).join(", ")} MiB`)
      }
      const floors = await floor(root)
      report(results[0]!, results[1]!, floors)
      console.log(`\nchunks in dist/ (KiB): ${chunks.map(([n, s]) => `${n} ${Math.round(s / 1024)}`).join(", ")}`)
      fs.mkdirSync(path.join(REPO, "bench/out"), { recursive: true })
      fs.writeFileSync(path.join(REPO, "bench/out/memory.json"), JSON.stringify({
        at: new Date().toISOString(), trials: TRIALS, idleMs: IDLE_MS, config: CONFIG, chunks: Object.fromEntries(chunks), floorMiB: floors,
        runs: results.map((r) => ({ ...r, heap: undefined, heapMiB: mib(r.heap.total), dataMiB: mib(r.heap.data),
          parts: Object.fromEntries([...r.heap.parts].map(([p, v]) => [p, { sourceMiB: mib(v.source), codeMiB: mib(v.code) }])) }))
      }, null, 2))
    } finally {
      await stop()
    }
  } finally {
    if (process.env["KEEP_MEMORY_RUN"] === "1") console.log(`kept: ${root} (snapshots, logs, the build)`)
    else fs.rmSync(root, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(`bench/memory: ${e instanceof Error ? e.message : String(e)}`)
  process.exit(1)
})
