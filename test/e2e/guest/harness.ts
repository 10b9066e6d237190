/**
 * Guest-side helpers for the node-plugin e2e scenarios (runs INSIDE the VM, as root, with the
 * project's Node 24): start and kill the real `rds-csi node` process, reach it through the CSI
 * client on its unix socket, read the kernel's facts independently of the plugin (sysfs,
 * /proc/self/mountinfo, blkid), and record each scenario's checks, timings and device names as
 * one JSON file the host-side test asserts on.
 *
 * Nothing here uses the plugin's own code to verify the plugin: facts come from the kernel.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { type CsiClient, makeCsiClient } from "../../csi/client.ts"
import { daemonSetNodeOptions } from "../../deploy/nodeOptions.ts"

export const REPO = path.resolve(import.meta.dirname, "../../..")
export const NODE = process.execPath
export const PREFIX = "nqn.2014-08.io.rds-csi.e2e:managed:"

/** NODE_OPTIONS as the node DaemonSet gives them, the start-up snapshot's path being this checkout. */
export const DAEMONSET_NODE_OPTIONS: string = daemonSetNodeOptions(REPO)
export const FOREIGN = "nqn.2014-08.io.rds-csi.e2e:foreign-"
export const RUN_DIR = "/run/rds-csi-e2e"
export const SOCKET = `${RUN_DIR}/csi.sock`
export const STATE_DIR = `${RUN_DIR}/state`
export const KUBELET = "/var/lib/kubelet"
/** --connect-timeout given to every plugin instance (scenario 6 measures against it). */
export const CONNECT_TIMEOUT_MS = 8000
export const ORPHAN_INTERVAL_MS = 2000
/** --health-interval: short, so that monitor ticks land inside the RPCs (races show up). */
export const HEALTH_INTERVAL_MS = 500

const t0 = performance.now()
export const since = (start: number): number => Math.round(performance.now() - start)
export const uptime = (): string => `+${(since(t0) / 1000).toFixed(1)}s`
export const log = (line: string): void => console.log(`[guest ${uptime()}] ${line}`)

// ------------------------------------------------------------------ processes

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** execFile, never a shell; a non-zero exit is a result, not an exception. */
export const run = (cmd: string, args: ReadonlyArray<string>, timeoutMs = 60_000): Promise<Ran> => {
  const start = performance.now()
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs, env: { ...process.env, LC_ALL: "C" } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 127
      resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: since(start) })
    })
  })
}

/** Runs and fails loudly on a non-zero exit (for the test's own setup steps). */
export const must = async (cmd: string, args: ReadonlyArray<string>): Promise<Ran> => {
  const r = await run(cmd, args)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 400)}`)
  return r
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `probe` every `everyMs` until it returns a value; undefined after `timeoutMs`. */
/**
 * This process's gRPC client path, run once before the first plugin starts (a Probe to a socket
 * nobody serves): a cold client costs seconds here under emulation, which the first readiness
 * measured would otherwise include (a kubelet-side prober is a long-running, warm process).
 */
let clientWarm: Promise<void> | undefined
const warmClient = (): Promise<void> =>
  clientWarm ??= (async () => {
    const client = makeCsiClient(path.join(RUN_DIR, "warm-up-nobody.sock"))
    await call(() => client.Probe({}, { deadlineMs: 1000 }))
    client.close()
  })()

/** Whether a server accepts connections on the unix socket `file` (a plain connect, closed at once). */
const accepting = (file: string): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(file)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

export const waitFor = async <A>(probe: () => A | undefined | Promise<A | undefined>, timeoutMs: number, everyMs = 50): Promise<A | undefined> => {
  const limit = performance.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (performance.now() >= limit) return undefined
    await sleep(everyMs)
  }
}

// ------------------------------------------------------------------ kernel facts

const read = (p: string): string | undefined => {
  try {
    return fs.readFileSync(p, "utf8").trim()
  } catch {
    return undefined
  }
}
const ls = (p: string): ReadonlyArray<string> => {
  try {
    return fs.readdirSync(p)
  } catch {
    return []
  }
}

export interface Ctrl {
  readonly name: string
  readonly state: string
  readonly nqn: string
  readonly address: string
}

/** Every NVMe controller in /sys/class/nvme. */
export const controllers = (): ReadonlyArray<Ctrl> =>
  ls("/sys/class/nvme").filter((n) => /^nvme\d+$/.test(n)).flatMap((name) => {
    const d = `/sys/class/nvme/${name}`
    const state = read(`${d}/state`)
    const nqn = read(`${d}/subsysnqn`)
    return state === undefined || nqn === undefined ? [] : [{ name, state, nqn, address: read(`${d}/address`) ?? "" }]
  })

/** Controllers of `nqn`, including ones being deleted (sysfs still shows them). */
export const ctrlsOf = (nqn: string): ReadonlyArray<Ctrl> => controllers().filter((c) => c.nqn === nqn)

export interface Ns {
  readonly name: string
  readonly devT: string
  readonly nsid: number
  readonly nqn: string
}

/** The namespace heads (`nvmeSnN`) of the subsystems with `nqn`, from /sys/class/nvme-subsystem. */
export const namespacesOf = (nqn: string): ReadonlyArray<Ns> =>
  ls("/sys/class/nvme-subsystem").flatMap((sub) => {
    const d = `/sys/class/nvme-subsystem/${sub}`
    if (read(`${d}/subsysnqn`) !== nqn) return []
    return ls(d).filter((e) => /^nvme\d+n\d+$/.test(e)).flatMap((name) => {
      const devT = read(`${d}/${name}/dev`)
      const nsid = read(`${d}/${name}/nsid`)
      return devT === undefined ? [] : [{ name, devT, nsid: Number(nsid), nqn }]
    })
  })

/** The one live controller and namespace of `nqn`, or undefined. */
export const attachedOf = (nqn: string): { readonly ctrl: Ctrl; readonly ns: Ns } | undefined => {
  const live = ctrlsOf(nqn).filter((c) => c.state === "live")
  const ns = namespacesOf(nqn)
  return live.length === 1 && ns.length === 1 ? { ctrl: live[0]!, ns: ns[0]! } : undefined
}

/** True when sysfs shows no controller and no subsystem for `nqn`. */
export const goneFromSysfs = (nqn: string): boolean =>
  ctrlsOf(nqn).length === 0 && !ls("/sys/class/nvme-subsystem").some((s) => read(`/sys/class/nvme-subsystem/${s}/subsysnqn`) === nqn)

export interface Mnt {
  readonly devT: string
  readonly mountPoint: string
  readonly options: string
  readonly fsType: string
  readonly source: string
}

/** /proc/self/mountinfo, minimally parsed (our paths have no escapes). */
export const mounts = (): ReadonlyArray<Mnt> =>
  (read("/proc/self/mountinfo") ?? "").split("\n").filter((l) => l !== "").map((l) => {
    const [left, right = ""] = l.split(" - ")
    const f = left!.split(" ")
    const r = right.split(" ")
    return { devT: f[2]!, mountPoint: f[4]!, options: f[5]!, fsType: r[0]!, source: r[1]! }
  })

export const mountsAt = (p: string): ReadonlyArray<Mnt> => mounts().filter((m) => m.mountPoint === p)

/** `major:minor` of a block device node (or of what a bind-mounted file reaches). */
export const rdevOf = (p: string): string | undefined => {
  try {
    const st = fs.statSync(p, { bigint: true })
    if (!st.isBlockDevice()) return undefined
    const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & 0xfffff000n)
    const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xffffff00n)
    return `${major}:${minor}`
  } catch {
    return undefined
  }
}

/** `blkid -p` of a device: its TYPE and UUID (probe, no cache), or the exit code when none. */
export const blkid = async (device: string): Promise<{ readonly type?: string; readonly uuid?: string; readonly code: number }> => {
  const r = await run("blkid", ["-p", "-o", "export", device])
  const kv = new Map(r.stdout.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const))
  const type = kv.get("TYPE")
  const uuid = kv.get("UUID")
  return { code: r.code, ...(type === undefined ? {} : { type }), ...(uuid === undefined ? {} : { uuid }) }
}

export const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex").slice(0, 16)

/** A deterministic, non-repeating pattern of `size` bytes for `seed`. */
export const pattern = (seed: string, size: number): Buffer => {
  const out = Buffer.alloc(size)
  let block = createHash("sha256").update(seed).digest()
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off)
    block = createHash("sha256").update(block).digest()
  }
  return out
}

/** Writes `data` to a file (or a block device node at `offset`) and fsyncs it. */
export const writeSynced = (p: string, data: Uint8Array, offset?: number): void => {
  const fd = fs.openSync(p, offset === undefined ? "w" : "r+")
  try {
    fs.writeSync(fd, data, 0, data.length, offset ?? 0)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads `length` bytes at `offset` with O_DIRECT off but from a fresh open (block) or a file. */
export const readAt = (p: string, length: number, offset = 0): Buffer => {
  const fd = fs.openSync(p, "r")
  try {
    const b = Buffer.alloc(length)
    fs.readSync(fd, b, 0, length, offset)
    return b
  } finally {
    fs.closeSync(fd)
  }
}

// ------------------------------------------------------------------ CSI requests

export const ctx = (nqn: string, extra: Record<string, string> = {}): Record<string, string> => ({
  nqn,
  nvmeAddress: "127.0.0.1",
  nvmePort: "4420",
  ctrlLossTmo: "30",
  reconnectDelay: "1",
  ...extra
})
export const mountCap = (fsType: string, mode = "SINGLE_NODE_WRITER") => ({ mount: { fs_type: fsType }, access_mode: { mode } })
export const blockCap = (mode = "SINGLE_NODE_WRITER") => ({ block: {}, access_mode: { mode } })
export const stagingPath = (vol: string): string => `${KUBELET}/plugins/kubernetes.io/csi/rds.csi.srvlab.io/${vol}/globalmount`
export const targetPath = (vol: string, pod = "pod-1"): string => `${KUBELET}/pods/${pod}/volumes/kubernetes.io~csi/${vol}/mount`
/** Kubelet's paths for raw block: it creates the staging directory, the plugin the target file. */
export const blockStagingPath = (vol: string): string => `${KUBELET}/plugins/kubernetes.io/csi/volumeDevices/staging/${vol}`
export const blockTargetPath = (vol: string, pod = "pod-1"): string => `${KUBELET}/plugins/kubernetes.io/csi/volumeDevices/publish/${vol}/${pod}`
export const stateFileOf = (vol: string): string => `${STATE_DIR}/${encodeURIComponent(vol)}.json`

export interface Outcome<A> {
  readonly code: number
  readonly details: string
  readonly response: A | undefined
  readonly ms: number
}

const GRPC_CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED"
]
export const codeName = (code: number): string => GRPC_CODES[code] ?? String(code)

/** One RPC, timed; a gRPC error is an outcome, not an exception. */
export const call = async <A>(rpc: () => Promise<A>): Promise<Outcome<A>> => {
  const start = performance.now()
  try {
    const response = await rpc()
    return { code: 0, details: "", response, ms: since(start) }
  } catch (e) {
    const err = e as { code?: number; details?: string; message?: string }
    return { code: err.code ?? -1, details: err.details ?? err.message ?? String(e), response: undefined, ms: since(start) }
  }
}

// ------------------------------------------------------------------ the plugin process

export interface Plugin {
  readonly pid: number
  readonly logFile: string
  /** Spawn → first Probe answering ready. */
  readonly readyMs: number
  readonly client: CsiClient
  /** Sends `signal` and waits for the exit (bounded); returns the exit code or signal name. */
  readonly stop: (signal: "SIGTERM" | "SIGKILL") => Promise<string>
  readonly logText: () => string
}

let instance = 0

/**
 * Starts `rds-csi node` with the e2e flags (+ `extraFlags`; `pathPrefix` goes in front of PATH)
 * and waits until Probe answers ready. Its JSON log goes to OUT/plugin-N.log.
 */
export const startPlugin = async (outDir: string, options: {
  readonly extraFlags?: ReadonlyArray<string>
  readonly pathPrefix?: string
  /** Rewrites the flags after `node` (the CLI rejects a flag given twice, so replacing a default, e.g. --events, needs this). */
  readonly editFlags?: (flags: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Bound on spawn → Probe ready (default 60 s; a TCG guest on a busy host can need more). */
  readonly readyTimeoutMs?: number
  /** Extra environment for the plugin (NODE_OPTIONS for a CPU profile, NODE_COMPILE_CACHE for a cold start). */
  readonly env?: Readonly<Record<string, string>>
  /** A command the plugin runs under (strace for the per-RPC counts of bench/profile); `pid` is then the plugin's, not the wrapper's. */
  readonly wrap?: ReadonlyArray<string>
} = {}): Promise<Plugin> => {
  await warmClient()
  instance++
  const logFile = path.join(outDir, `plugin-${instance}.log`)
  const fd = fs.openSync(logFile, "a")
  const args = [
    path.join(REPO, "bin/rds-csi.js"), "node",
    "--endpoint", `unix://${SOCKET}`,
    "--node-id", "e2e-guest",
    "--allowed-path-root", KUBELET,
    "--state-dir", STATE_DIR,
    "--managed-nqn-prefix", PREFIX,
    "--events=false",
    "--orphan-interval", `${ORPHAN_INTERVAL_MS / 1000}s`,
    "--connect-timeout", `${CONNECT_TIMEOUT_MS / 1000}s`,
    "--health-interval", `${HEALTH_INTERVAL_MS}ms`,
    ...(options.extraFlags ?? [])
  ]
  const env = {
    ...process.env,
    // As in the image, which has no src/: no walk of the sources 5 s after start (bin/rds-csi.js).
    RDS_CSI_STALE_CHECK: "0",
    // The DaemonSet's V8 options, not the harness's own Node's (PLUGIN_NODE_OPTIONS overrides them).
    NODE_OPTIONS: process.env["PLUGIN_NODE_OPTIONS"] || DAEMONSET_NODE_OPTIONS,
    ...(options.pathPrefix === undefined ? {} : { PATH: `${options.pathPrefix}:${process.env["PATH"] ?? ""}` }),
    ...options.env
  }
  const start = performance.now()
  const spawnedAt = Date.now()
  const argv = options.editFlags === undefined ? args : [...args.slice(0, 2), ...options.editFlags(args.slice(2))]
  const [command, ...wrapArgs] = [...(options.wrap ?? []), NODE]
  const child: ChildProcess = spawn(command!, [...wrapArgs, ...argv], { cwd: REPO, env, stdio: ["ignore", fd, fd] })
  fs.closeSync(fd)
  let exited: string | undefined
  const exit = new Promise<string>((resolve) => child.once("exit", (code, signal) => {
    exited = code !== null ? `exit ${code}` : `signal ${signal}`
    resolve(exited)
  }))
  // A client only once the socket accepts (a plain connect, cheap): grpc-js backs off (1 s,
  // growing) after a refused connection, so a client made before the socket is served would see
  // the plugin ready seconds late; and a client made every 50 ms against the socket a killed
  // plugin left behind takes the one emulated vCPU from the start being measured (seconds of a
  // restart, which a kubelet-side prober never costs). One client then, until it fails.
  let probe: CsiClient | undefined
  const ready = await waitFor(async () => {
    if (exited !== undefined) throw new Error(`plugin ${instance} ended before it was ready (${exited}); log:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`)
    if (probe === undefined) {
      if (!(await accepting(SOCKET))) return undefined
      probe = makeCsiClient(SOCKET)
    }
    // A deadline long enough for a slow answer: one cut short costs a new client and a second try.
    const r = await call(() => probe!.Probe({}, { deadlineMs: 10_000 }))
    if (r.code !== 0) {
      probe.close()
      probe = undefined
    }
    return r.code === 0 && r.response?.ready?.value === true ? true : undefined
  }, options.readyTimeoutMs ?? 60_000, 50)
  probe?.close()
  const client = makeCsiClient(SOCKET)
  if (ready === undefined) {
    child.kill("SIGKILL")
    throw new Error(`plugin ${instance} not ready within ${(options.readyTimeoutMs ?? 60_000) / 1000} s; log:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`)
  }
  const readyMs = since(start)
  // Where the time went: the plugin's own "ready" log line against the spawn's wall clock.
  const lines = fs.readFileSync(logFile, "utf8").split("\n")
  const readyLine = lines.find((l) => l.includes('"rds-csi node ready"'))
  const loggedReady = readyLine === undefined ? undefined : Date.parse((JSON.parse(readyLine) as { time: string }).time) - spawnedAt
  // From the start-up snapshot (the DaemonSet's NODE_OPTIONS) or the bundle: said in each start's line.
  const startingLine = lines.find((l) => l.includes('"rds-csi node starting"'))
  const startedFrom = startingLine === undefined ? undefined : (JSON.parse(startingLine) as { startedFrom?: string }).startedFrom
  log(`plugin ${instance} (pid ${child.pid}) answers Probe ready ${readyMs} ms after spawn (it logged "ready" at ${loggedReady} ms; started from ${startedFrom})` +
    (options.pathPrefix === undefined ? "" : ` (PATH prefix ${options.pathPrefix})`))
  // Under a wrapper (strace), the plugin is the wrapper's child: signals go to it directly.
  const pid = options.wrap === undefined ? child.pid! : Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/)[0])
  return {
    pid,
    logFile,
    readyMs,
    client,
    logText: () => fs.readFileSync(logFile, "utf8"),
    stop: async (signal) => {
      client.close()
      if (exited !== undefined) return exited
      if (options.wrap === undefined) child.kill(signal)
      else process.kill(pid, signal)
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
      const how = await exit
      clearTimeout(timer)
      return how
    }
  }
}

// ------------------------------------------------------------------ scenario records

export interface Check {
  readonly what: string
  readonly ok: boolean
  readonly detail: string
}

export interface ScenarioResult {
  readonly name: string
  readonly title: string
  readonly ok: boolean
  readonly ms: number
  readonly checks: ReadonlyArray<Check>
  readonly timings: Readonly<Record<string, number>>
  readonly devices: Readonly<Record<string, string>>
  readonly error?: string
}

export class CheckFailed extends Error {}

/** Collects one scenario's checks, timings and device names, and prints each as it happens. */
export class Recorder {
  readonly name: string
  readonly title: string
  readonly checks: Array<Check> = []
  readonly timings: Record<string, number> = {}
  readonly devices: Record<string, string> = {}
  constructor(name: string, title: string) {
    this.name = name
    this.title = title
  }
  /** Records a check; a failed one ends the scenario. */
  check(ok: boolean, what: string, rawDetail = ""): void {
    const detail = rawDetail.replace(/\s*\n\s*/g, " ⏎ ").trim()
    this.checks.push({ what, ok, detail })
    log(`[${this.name}] ${ok ? "ok  " : "FAIL"} ${what}${detail === "" ? "" : ` — ${detail}`}`)
    if (!ok) throw new CheckFailed(`${what}${detail === "" ? "" : `: ${detail}`}`)
  }
  time(label: string, ms: number): void {
    this.timings[label] = ms
  }
  device(label: string, value: string): void {
    this.devices[label] = value
  }
  /** Checks an RPC succeeded, records its time under `label`, returns its response. */
  ok<A>(label: string, o: Outcome<A>): A {
    this.time(label, o.ms)
    this.check(o.code === 0, `${label} → OK`, o.code === 0 ? `${o.ms} ms` : `${codeName(o.code)}: ${o.details} (${o.ms} ms)`)
    return o.response as A
  }
}

/** Runs one scenario, writes OUT/scenario-NAME.json whatever happens, returns whether it passed. */
export const scenario = async (outDir: string, name: string, title: string, body: (r: Recorder) => Promise<void>): Promise<boolean> => {
  const r = new Recorder(name, title)
  log(`==== scenario ${name}: ${title}`)
  const start = performance.now()
  let error: string | undefined
  try {
    await body(r)
  } catch (e) {
    error = e instanceof CheckFailed ? e.message : (e as Error)?.stack ?? String(e)
    if (!(e instanceof CheckFailed)) log(`[${name}] ERROR ${error}`)
  }
  const result: ScenarioResult = {
    name, title, ok: error === undefined && r.checks.length > 0, ms: since(start),
    checks: r.checks, timings: r.timings, devices: r.devices, ...(error === undefined ? {} : { error })
  }
  fs.writeFileSync(path.join(outDir, `scenario-${name}.json`), JSON.stringify(result, null, 2) + "\n")
  log(`==== scenario ${name}: ${result.ok ? "PASSED" : "FAILED"} in ${result.ms} ms, ${r.checks.length} checks; devices ${JSON.stringify(r.devices)}; timings ${JSON.stringify(r.timings)}`)
  return result.ok
}

/**
 * Checks that no plugin instance logged trouble since `sinceIso` while no fault was injected:
 * no error, no lost connection, no stale mount or recovery, no failed monitor tick.
 */
export const checkQuietLogs = (outDir: string, r: Recorder, sinceIso: string): void => {
  const trouble: Array<string> = []
  let lines = 0
  for (const f of fs.readdirSync(outDir).filter((n) => /^plugin-\d+\.log$/.test(n))) {
    for (const line of fs.readFileSync(path.join(outDir, f), "utf8").split("\n")) {
      if (line === "") continue
      const entry = JSON.parse(line) as { time: string; level: string; message: string }
      if (entry.time < sinceIso) continue
      lines++
      // The monitor's start-up line names its recovery concurrency; it is not a recovery.
      if (entry.message.startsWith("health monitor every")) continue
      if (["error", "fatal"].includes(entry.level) || /connection lost|stale mount|recover|tick failed/i.test(entry.message)) {
        trouble.push(`${f}: ${entry.level} ${entry.message}`)
      }
    }
  }
  r.check(trouble.length === 0, `plugin logs quiet: no error, lost connection, stale mount or recovery (${lines} lines, health monitor every ${HEALTH_INTERVAL_MS} ms)`,
    trouble.join(" | ").slice(0, 400))
}

/** Unpublishes and unstages every volume the state files still name, then disconnects any managed controller left. */
export const sweepLeftovers = async (c: CsiClient): Promise<void> => {
  for (const f of fs.readdirSync(STATE_DIR).filter((n) => n.endsWith(".json"))) {
    const rec = JSON.parse(fs.readFileSync(`${STATE_DIR}/${f}`, "utf8")) as { volumeId: string; stagingPath: string; publishedTargets: Array<{ path: string }> }
    for (const t of rec.publishedTargets) await call(() => c.NodeUnpublishVolume({ volume_id: rec.volumeId, target_path: t.path }, { deadlineMs: 60_000 }))
    const u = await call(() => c.NodeUnstageVolume({ volume_id: rec.volumeId, staging_target_path: rec.stagingPath }, { deadlineMs: 60_000 }))
    log(`sweep: unstaged leftover ${rec.volumeId}: ${u.code === 0 ? "OK" : u.details}`)
  }
  for (const ctrl of controllers().filter((x) => x.nqn.startsWith(PREFIX))) {
    log(`sweep: disconnecting leftover ${ctrl.name} ${ctrl.nqn}`)
    await run("nvme", ["disconnect", "-d", ctrl.name])
  }
}
