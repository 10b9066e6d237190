/**
 * bench/profile (`npm run bench -- profile`): where the plugin's time goes, in the real-kernel
 * VM (TCG, 1 vCPU), the plugin as the image starts it (the bundled build, shipped defaults).
 *   - A cold start (empty compile cache) under `--cpu-prof`: for start-up and each node RPC,
 *     the wall time split into CPU by part (our code, effect, gRPC + protobufjs, the Kubernetes
 *     client, Node's internals, V8's compiler and GC) and time waiting (the kernel, children),
 *     with the busiest functions; source-mapped from the bundle back to the files.
 *   - The same warm (with the compile cache the cold run left), then VOLUMES raw block volumes
 *     staged and 20 s at rest (no RPC: the health passes and the state watch, by part and busiest
 *     functions), and under `strace -f`: per RPC, the processes spawned (fork → exec → exit), the
 *     files opened and the fsyncs.
 *   node bench/profile/run.ts [VOLUMES]   (default 100; 0: no at-rest row)
 * Prints the tables (bench/README.md quotes them) and keeps the raw profiles in
 * bench/out/profile/ (load a .cpuprofile in Chrome DevTools). ~11 min (~4 with VOLUMES 0).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { SourceMap } from "node:module"
import * as path from "node:path"
import { REPO, runInVm } from "../../test/e2e/vm/runInVm.ts"

interface Mark { readonly run: string; readonly what: string; readonly startMono: number; readonly endMono: number; readonly startEpochMs: number; readonly endEpochMs: number; readonly ok: boolean }
interface CallFrame { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
interface ProfileNode { readonly id: number; readonly callFrame: CallFrame; readonly children?: ReadonlyArray<number> }
interface Profile { readonly nodes: ReadonlyArray<ProfileNode>; readonly startTime: number; readonly samples: ReadonlyArray<number>; readonly timeDeltas: ReadonlyArray<number> }

if (!fs.existsSync("/usr/bin/strace")) {
  console.error("bench/profile needs strace on this host (the VM shares its root): apt-get install strace")
  process.exit(1)
}
execFileSync("bash", [path.join(REPO, "test/e2e/vm/setup-host.sh")], { stdio: ["ignore", "ignore", "inherit"] })
execFileSync("npm", ["run", "-s", "build"], { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] })
console.log("profile: booting the VM (one cold profiled run, one warm traced run; a few minutes under TCG)...")
const VOLUMES = Number(process.argv[2] ?? "100")
if (!Number.isInteger(VOLUMES) || VOLUMES < 0) {
  console.error(`bench/profile: VOLUMES must be a whole number ≥ 0, got '${process.argv[2]}'`)
  process.exit(2)
}
const vm = await runInVm({ command: (out) => ["bash", path.join(REPO, "bench/profile/guest.sh"), out, String(VOLUMES)], timeoutSeconds: 1500, memoryMb: 1024 })
const marksFile = path.join(vm.outDir, "marks.json")
if (vm.exitCode !== 0 || !fs.existsSync(marksFile)) {
  console.error(vm.console.split("\n").filter((l) => l.includes("[guest") || l.includes("Error")).slice(-60).join("\n"))
  console.error(`profile: the guest failed (exit ${vm.exitCode})`)
  process.exit(1)
}
const marks = JSON.parse(fs.readFileSync(marksFile, "utf8")) as ReadonlyArray<Mark>
const keep = path.join(REPO, "bench/out/profile")
fs.rmSync(keep, { recursive: true, force: true })
fs.mkdirSync(keep, { recursive: true })
for (const run of ["cold", "warm"]) {
  for (const f of fs.readdirSync(path.join(vm.outDir, "profile", run))) fs.copyFileSync(path.join(vm.outDir, "profile", run, f), path.join(keep, `${run}.cpuprofile`))
}
fs.copyFileSync(path.join(vm.outDir, "strace.txt"), path.join(keep, "strace.txt"))
fs.copyFileSync(marksFile, path.join(keep, "marks.json"))

// ------------------------------------------------------------------ CPU profile, by part
const maps = new Map<string, SourceMap | undefined>()
const sourceMapOf = (url: string): SourceMap | undefined => {
  if (!maps.has(url)) {
    // ES chunks are file: URLs; the start-up snapshot's chunks (evaluated by its loader) are named by path.
    const file = url.startsWith("file://") ? new URL(url).pathname + ".map" : url.startsWith("/") ? `${url}.map` : ""
    maps.set(url, file !== "" && fs.existsSync(file) ? new SourceMap(JSON.parse(fs.readFileSync(file, "utf8"))) : undefined)
  }
  return maps.get(url)
}
const originalOf = (f: CallFrame): string => {
  const map = sourceMapOf(f.url)
  if (map === undefined) return f.url
  const e = map.findEntry(f.lineNumber, f.columnNumber) as { originalSource?: string }
  return e.originalSource ?? f.url
}
const partOf = (f: CallFrame): string => {
  if (f.functionName === "(idle)") return "waiting (idle: kernel, children, I/O)"
  if (f.functionName === "(garbage collector)") return "V8 GC"
  if (f.functionName === "(program)") return "V8 (compile, runtime)"
  if (f.functionName === "(root)") return "V8 (compile, runtime)"
  if (f.url.startsWith("node:")) return "Node internals"
  if (f.url === "") return "native builtins"
  const src = originalOf(f)
  if (/node_modules\/effect\//.test(src) || /@effect\//.test(src)) return "effect"
  if (/@grpc|protobufjs|@protobufjs|lodash\.camelcase|\/long\//.test(src)) return "gRPC + protobufjs"
  if (/@kubernetes/.test(src)) return "Kubernetes client"
  if (/node_modules\//.test(src)) return "other dependencies"
  if (/\/src\//.test(src) || /bin\/rds-csi/.test(src)) return "rds-csi"
  return "other"
}
const labelOf = (f: CallFrame): string => {
  const src = originalOf(f).replace(/^.*?(node_modules\/|\/src\/)/, (_, p: string) => p === "/src/" ? "src/" : "")
  return `${f.functionName || "(anonymous)"} ${src}`
}

const load = (run: string) => {
  const prof = JSON.parse(fs.readFileSync(path.join(keep, `${run}.cpuprofile`), "utf8")) as Profile
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const partCache = new Map<number, string>()
  const part = (id: number) => {
    if (!partCache.has(id)) partCache.set(id, partOf(byId.get(id)!.callFrame))
    return partCache.get(id)!
  }
  return { prof, byId, part }
}
type Loaded = ReturnType<typeof load>

/** Self time (ms) by part and by function within [from, to] (µs, monotonic), from the samples. */
const window = ({ prof, byId, part }: Loaded, from: number, to: number) => {
  const parts = new Map<string, number>()
  const fns = new Map<string, number>()
  let t = prof.startTime
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i]!
    const dt = (prof.timeDeltas[i + 1] ?? 0) / 1000
    if (t < from || t > to) continue
    const id = prof.samples[i]!
    parts.set(part(id), (parts.get(part(id)) ?? 0) + dt)
    const f = byId.get(id)!.callFrame
    if (!f.functionName.startsWith("(")) fns.set(labelOf(f), (fns.get(labelOf(f)) ?? 0) + dt)
  }
  return { parts, fns }
}

const ms = (n: number) => `${Math.round(n)}`
const lines: Array<string> = []
const out = (s = "") => {
  lines.push(s)
  console.log(s)
}
const partNames = ["rds-csi", "effect", "gRPC + protobufjs", "Kubernetes client", "other dependencies", "Node internals", "native builtins", "V8 (compile, runtime)", "V8 GC", "waiting (idle: kernel, children, I/O)", "other"]
for (const run of ["cold", "warm"] as const) {
  const loaded = load(run)
  const { prof } = loaded
  out(`### ${run === "cold" ? "Cold run (empty compile cache)" : "Warm run (the compile cache the cold run left)"} under --cpu-prof: wall time by part, ms`)
  out()
  out(`| step | wall | ${partNames.join(" | ")} |`)
  out(`| --- | ---: | ${partNames.map(() => "---:").join(" | ")} |`)
  const steps = marks.filter((m) => m.run === run)
  for (const m of steps) {
    // Start-up begins before the profiler does (Node's own boot): count from the profile's start.
    const { parts } = window(loaded, Math.max(m.startMono, prof.startTime), m.endMono)
    out(`| ${m.what}${m.ok ? "" : " (FAILED)"} | ${ms((m.endMono - m.startMono) / 1000)} | ${partNames.map((p) => ms(parts.get(p) ?? 0)).join(" | ")} |`)
  }
  out()
  out(`(the profile starts ${ms((prof.startTime - steps[0]!.startMono) / 1000)} ms after the spawn: Node's own boot before the profiler runs)`)
  for (const m of steps) {
    const { fns } = window(loaded, Math.max(m.startMono, prof.startTime), m.endMono)
    const top = [...fns.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
    out()
    out(`busiest functions (self ms), ${run}, ${m.what}: ${top.map(([f, t]) => `${f} ${ms(t)}`).join("; ")}`)
  }
  out()
}

// ------------------------------------------------------------------ strace, per RPC
interface Proc { forkAt?: number; execAt?: number; exitAt?: number; argv?: string; parent?: number; callAt?: number; call?: string }
const text = fs.readFileSync(path.join(keep, "strace.txt"), "utf8").split("\n")
const procs = new Map<number, Proc>()
const opens: Array<{ pid: number; at: number; file: string }> = []
const syncs: Array<{ pid: number; at: number }> = []
const proc = (pid: number) => procs.get(pid) ?? procs.set(pid, {}).get(pid)!
for (const l of text) {
  const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(l)
  if (m === null) continue
  const pid = Number(m[1])
  const at = Number(m[2]) * 1000
  const rest = m[3]!
  let k: RegExpExecArray | null
  if ((k = /^(?:clone|clone3|fork|vfork)\((.*)\)\s+=\s+(\d+)/.exec(rest)) !== null && !/CLONE_THREAD/.test(k[1]!)) {
    const child = proc(Number(k[2]))
    child.forkAt = at
    child.parent = pid
  } else if ((k = /^execve\("([^"]*)", \[(.*?)\]/.exec(rest)) !== null && / = 0 /.test(rest)) {
    const p = proc(pid)
    p.execAt = at
    p.argv = k[2]!.replace(/"/g, "").split(", ").slice(0, 3).join(" ")
  } else if ((k = /^(mount|umount2)\((.*)\)\s+=/.exec(rest)) !== null) {
    // A bind, mount or unmount the spawn helper's fork makes itself (no exec): named by its flags.
    const p = proc(pid)
    p.callAt = at
    const args = k[2]!.split(", ")
    p.call = `${k[1]}(2) ${k[1] === "mount" ? [args[2] === "NULL" ? "" : args[2]!.replace(/"/g, ""), args[3]].filter(Boolean).join(" ") : args[1]}`
  } else if (/^\+\+\+ (exited|killed)/.test(rest)) {
    proc(pid).exitAt = at
  } else if ((k = /^openat\([^,]*, "([^"]*)"/.exec(rest)) !== null && !/ = -1 /.test(rest)) {
    opens.push({ pid, at, file: k[1]! })
  } else if (/^f(data)?sync\(/.test(rest)) {
    syncs.push({ pid, at })
  }
}
const children = new Set([...procs.entries()].filter(([, p]) => p.forkAt !== undefined).map(([pid]) => pid))
const warm = marks.filter((m) => m.run === "traced")
out()
out("### Warm run under strace -f: per RPC, processes spawned, files opened, fsyncs")
out()
out("| step | wall ms | spawns: command or system call (fork→exec or call ms, then →exit ms) | files opened by the plugin (by place) | fsync |")
out("| --- | ---: | --- | --- | ---: |")
for (const m of warm) {
  const inside = (at: number) => at >= m.startEpochMs && at <= m.endEpochMs
  const spawned = [...procs.values()].filter((p) => p.forkAt !== undefined && inside(p.forkAt) && (p.execAt ?? p.callAt) !== undefined)
  const spawnText = spawned.map((p) => {
    const at = (p.execAt ?? p.callAt)!
    return `${p.argv ?? p.call} (${ms(at - p.forkAt!)}, ${p.exitAt === undefined ? "?" : ms(p.exitAt - at)})`
  }).join("; ") || "none"
  const mine = opens.filter((o) => inside(o.at) && !children.has(o.pid))
  const places = new Map<string, number>()
  for (const o of mine) {
    const place = o.file.startsWith("/sys/") ? "/sys" : o.file.startsWith("/proc/") ? o.file.replace(/^\/proc\/(self|\d+)\//, "/proc/…/") : path.dirname(o.file)
    places.set(place, (places.get(place) ?? 0) + 1)
  }
  const placeText = [...places.entries()].sort((a, b) => b[1] - a[1]).map(([p, n]) => `${p} ${n}`).join(", ") || "none"
  const fsyncs = syncs.filter((s) => inside(s.at) && !children.has(s.pid)).length
  out(`| ${m.what}${m.ok ? "" : " (FAILED)"} | ${ms(m.endEpochMs - m.startEpochMs)} | ${spawnText} | ${mine.length}: ${placeText} | ${fsyncs} |`)
}
fs.writeFileSync(path.join(keep, "summary.md"), lines.join("\n") + "\n")
console.log(`\n(VM run ${Math.round(vm.wallMs / 1000)} s; profiles, strace and this summary in bench/out/profile/)`)
