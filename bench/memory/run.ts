/**
 * bench/memory (one command: `node bench/memory/run.ts [TRIALS]`, ~1 min): the node plugin's
 * memory on this host, events off and on, by part of the program.
 *
 * It builds the bundle (rolldown.config.mjs, as `npm run build` does) into a private folder (a
 * concurrent `npm run build` cannot swap the chunks under it), starts the test cluster (a real
 * kube-apiserver + etcd on loopback, test/cluster), and runs `bin/rds-csi.js node` with
 * NODE_OPTIONS=--max-semi-space-size=1 as the DaemonSet does: --events=false, then
 * --events=true with a kubeconfig for the node ServiceAccount. Each run waits for the socket
 * and the "ready" log line, idles IDLE_MS and reads VmRSS; the last trial of each then writes a
 * heap snapshot (SIGUSR2), split by part in heap.ts. Prints the table, writes
 * bench/out/memory.json, exits 1 on any failure (no socket, a kube warning with events on).
 * Probe readiness is not waited for: nvme-cli may be missing on the host.
 *
 * May import: node built-ins, rolldown, test/cluster, ./heap.ts.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { build } from "rolldown"
import config from "../../rolldown.config.mjs"
import { startCluster } from "../../test/cluster/cluster.ts"
import { attribute } from "./heap.ts"

const REPO = path.resolve(import.meta.dirname, "../..")
process.chdir(REPO) // rolldown.config.mjs names its input relative to the repository
const TRIALS = Number(process.argv[2] ?? "3")
const IDLE_MS = 5_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mib = (bytes: number) => bytes / 1048576
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const waitFor = async (what: string, ms: number, check: () => boolean) => {
  for (const until = Date.now() + ms; !check(); await sleep(50)) if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
}

/** bin/ and a fresh dist/ in a folder of their own; node_modules is the repository's. */
const stage = async (root: string) => {
  await build({ ...config, output: { ...config.output, dir: path.join(root, "dist") } } as Parameters<typeof build>[0])
  fs.mkdirSync(path.join(root, "dist/proto"), { recursive: true })
  fs.copyFileSync(path.join(REPO, "src/csi/proto/csi.proto"), path.join(root, "dist/proto/csi.proto"))
  fs.cpSync(path.join(REPO, "bin"), path.join(root, "bin"), { recursive: true })
  fs.copyFileSync(path.join(REPO, "package.json"), path.join(root, "package.json"))
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(root, "node_modules"))
}

interface Run { readonly rssKiB: number; readonly snapshot: string | undefined; readonly log: string }

const runPlugin = async (root: string, dir: string, events: boolean, kubeconfig: string, snapshot: boolean): Promise<Run> => {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, "state"), { recursive: true })
  fs.mkdirSync(path.join(dir, "root"))
  const logFile = path.join(dir, "plugin.log")
  const fd = fs.openSync(logFile, "w")
  const child = spawn(path.join(REPO, "node_modules/node/bin/node"), [
    path.join(root, "bin/rds-csi.js"), "node",
    "--endpoint", `unix://${dir}/csi.sock`, "--node-id", "bench-memory", "--state-dir", path.join(dir, "state"),
    "--allowed-path-root", path.join(dir, "root"), `--events=${events}`, "--kubeconfig", kubeconfig
  ], {
    cwd: dir, stdio: ["ignore", fd, fd],
    env: { ...process.env, NODE_OPTIONS: "--max-semi-space-size=1 --heapsnapshot-signal=SIGUSR2", NODE_COMPILE_CACHE: path.join(root, "cache") }
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
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1])
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
    return { rssKiB, snapshot: file, log: log() }
  } finally {
    child.kill("SIGTERM")
    await Promise.race([exited, sleep(5_000).then(() => child.kill("SIGKILL"))])
  }
}

const main = async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-memory-"))
  await stage(root)
  const chunks = fs.readdirSync(path.join(root, "dist")).filter((f) => f.endsWith(".mjs"))
    .map((f) => [f.replace(/-[\w-]{8}\.mjs$/, ".mjs"), fs.statSync(path.join(root, "dist", f)).size] as const)
  const { cluster, stop } = await startCluster()
  try {
    const kubeconfig = path.join(root, "kubeconfig")
    fs.writeFileSync(kubeconfig, [
      "apiVersion: v1", "kind: Config",
      `clusters: [{name: t, cluster: {server: "${cluster.server}", certificate-authority: "${cluster.caFile}"}}]`,
      `users: [{name: u, user: {token: ${cluster.nodeToken}}}]`,
      "contexts: [{name: t, context: {cluster: t, user: u}}]", "current-context: t", ""
    ].join("\n"))
    const results = []
    for (const events of [false, true]) {
      const runs: Array<Run> = []
      for (let i = 0; i < TRIALS; i++) runs.push(await runPlugin(root, path.join(root, `events-${events}`), events, kubeconfig, i === TRIALS - 1))
      const trouble = runs.flatMap((r) => r.log.split("\n")).filter((l) => /"level":"(warn|error)"/.test(l) && /API server|events disabled|RBAC/.test(l))
      if (events && trouble.length > 0) throw new Error(`the kube side did not come up cleanly:\n${trouble.join("\n")}`)
      const heap = attribute(runs.at(-1)!.snapshot!)
      results.push({ events, rssMiB: runs.map((r) => mib(r.rssKiB * 1024)), heap })
      console.log(`events=${events}: RSS ${runs.map((r) => (r.rssKiB / 1024).toFixed(1)).join(", ")} MiB; heap ${mib(heap.total).toFixed(1)} MiB`)
    }
    const [off, on] = results as [typeof results[0], typeof results[0]]
    const f = (x: number | undefined) => (x === undefined || x < 0.005 ? "—" : x.toFixed(2))
    const partNames = [...new Set([...off.heap.parts.keys(), ...on.heap.parts.keys()])]
    const sum = (r: typeof off, p: string) => { const v = r.heap.parts.get(p); return v === undefined ? 0 : mib(v.source + v.code) }
    partNames.sort((a, b) => sum(on, b) - sum(on, a))
    const rows: Array<[string, ...Array<string>]> = [
      [`RSS idle (median of ${TRIALS})`, f(median(off.rssMiB)), "", f(median(on.rssMiB)), ""],
      ["V8 heap used (snapshot, after a full GC)", f(mib(off.heap.total)), "", f(mib(on.heap.total)), ""]
    ]
    const small = (r: typeof off) => partNames.filter((p) => sum(on, p) < 0.1).map((p) => r.heap.parts.get(p)).filter((v) => v !== undefined)
    for (const p of partNames.filter((p) => sum(on, p) >= 0.1)) {
      const a = off.heap.parts.get(p), b = on.heap.parts.get(p)
      rows.push([`  ${p}`, f(a && mib(a.source)), f(a && mib(a.code)), f(b && mib(b.source)), f(b && mib(b.code))])
    }
    const smallSum = (r: typeof off, k: "source" | "code") => mib(small(r).reduce((t, v) => t + v![k], 0))
    rows.push(["  other packages (< 0.1 MiB each)", f(smallSum(off, "source")), f(smallSum(off, "code")), f(smallSum(on, "source")), f(smallSum(on, "code"))])
    rows.push(["  data (objects, strings, arrays, shapes)", f(mib(off.heap.data)), "", f(mib(on.heap.data)), ""])
    console.log("\n| MiB | events off: source | code | events on: source | code |\n| --- | ---: | ---: | ---: | ---: |")
    for (const r of rows) console.log(`| ${r.join(" | ")} |`)
    console.log(`\nchunks in dist/ (KiB): ${chunks.map(([n, s]) => `${n} ${Math.round(s / 1024)}`).join(", ")}`)
    fs.mkdirSync(path.join(REPO, "bench/out"), { recursive: true })
    fs.writeFileSync(path.join(REPO, "bench/out/memory.json"), JSON.stringify({
      at: new Date().toISOString(), trials: TRIALS, idleMs: IDLE_MS, chunks: Object.fromEntries(chunks),
      runs: results.map((r) => ({ events: r.events, rssMiB: r.rssMiB, heapMiB: mib(r.heap.total), dataMiB: mib(r.heap.data),
        parts: Object.fromEntries([...r.heap.parts].map(([p, v]) => [p, { sourceMiB: mib(v.source), codeMiB: mib(v.code) }])) }))
    }, null, 2))
  } finally {
    await stop()
    fs.rmSync(root, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(`bench/memory: ${e instanceof Error ? e.message : String(e)}`)
  process.exit(1)
})
