/**
 * Shared pieces of the resilience scenarios (INSIDE the VM): the plugin's flags with events on
 * the host's API server, one volume staged and published, data written and read back through
 * the published path, target faults through nvmet.sh, waits on sysfs and on /metrics.
 *
 * May import: node built-ins, ./harness.ts, ./hostLink.ts.
 */
import * as fs from "node:fs"
import {
  attachedOf, call, codeName, type Ctrl, ctrlsOf, ctx, mountCap, mountsAt, must, type Ns, pattern, type Plugin, PREFIX, readAt,
  type Recorder, REPO, sha, stagingPath, targetPath, waitFor, writeSynced
} from "./harness.ts"
import { type Metrics, scrape } from "./hostLink.ts"

export const NODE_NAME = "e2e-guest"
export const METRICS_ADDRESS = "127.0.0.1:9810"
export const HEALTH_INTERVAL = "1s"
export const LONG = { deadlineMs: 120_000 }
const NVMET = `${REPO}/test/e2e/vm/nvmet.sh`
const KiB = 1024

export interface Env {
  plugin: Plugin
  readonly outDir: string
  /** Namespace of the PVCs the host created, one per volume ID. */
  readonly namespace: string
  /** Starts a plugin instance with events on (and the orphan dry run when asked). */
  readonly start: (options?: { readonly orphanDryRun?: boolean }) => Promise<Plugin>
}

/** Drops `--name value` / `--name=value` from a flag list. */
export const withoutFlag = (flags: ReadonlyArray<string>, name: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === name) {
      i++
      continue
    }
    if (flags[i]!.startsWith(`${name}=`)) continue
    out.push(flags[i]!)
  }
  return out
}

/** The harness's flags with events on (as the plugin's ServiceAccount), the monitor every 1 s, metrics on. */
export const resilienceFlags = (kubeconfig: string, orphanDryRun: boolean) => (defaults: ReadonlyArray<string>): ReadonlyArray<string> => [
  ...withoutFlag(withoutFlag(defaults, "--events"), "--health-interval"),
  "--events=true", "--kubeconfig", kubeconfig,
  "--health-interval", HEALTH_INTERVAL,
  "--metrics-address", METRICS_ADDRESS,
  ...(orphanDryRun ? ["--orphan-dry-run"] : [])
]

export const nvmet = (...args: ReadonlyArray<string>) => must("bash", [NVMET, ...args])

/** Regular expression source matching `s` literally. */
export const lit = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")

export const metrics = (): Promise<Metrics> => scrape(METRICS_ADDRESS)

/** Polls /metrics until `ok` holds (bounded); the last scrape either way. */
export const metricsUntil = async (ok: (m: Metrics) => boolean, timeoutMs: number): Promise<{ readonly m: Metrics; readonly ok: boolean }> => {
  let last = await metrics()
  const hit = await waitFor(async () => {
    last = await metrics()
    return ok(last) ? last : undefined
  }, timeoutMs, 100)
  return { m: last, ok: hit !== undefined }
}

export const mountIdAt = (p: string): string | undefined =>
  fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === p)?.split(" ")[0]

export interface Vol {
  readonly vol: string
  readonly nqn: string
  readonly staging: string
  readonly target: string
  readonly pvc: { readonly kind: "pvc"; readonly namespace: string; readonly name: string }
}

export const volume = (env: Env, name: string): Vol => ({
  vol: name,
  nqn: `${PREFIX}${name}`,
  staging: stagingPath(name),
  target: targetPath(name),
  pvc: { kind: "pvc", namespace: env.namespace, name }
})

export interface Attached {
  readonly ctrl: Ctrl
  readonly ns: Ns
  readonly stagingMountId: string
  readonly targetMountId: string
}

/** Stages (ext4) and publishes `v`; checks sysfs and mountinfo; returns the device and mount IDs. */
export const stageAndPublish = async (env: Env, r: Recorder, v: Vol, context: Record<string, string> = {}): Promise<Attached> => {
  const c = env.plugin.client
  const cap = mountCap("ext4")
  r.ok(`${v.vol}: stage`, await call(() => c.NodeStageVolume({ volume_id: v.vol, staging_target_path: v.staging, volume_capability: cap, volume_context: ctx(v.nqn, context) }, LONG)))
  r.ok(`${v.vol}: publish`, await call(() => c.NodePublishVolume({ volume_id: v.vol, staging_target_path: v.staging, target_path: v.target, volume_capability: cap, readonly: false }, LONG)))
  const a = attachedOf(v.nqn)
  r.check(a !== undefined, `${v.vol}: one live controller and one namespace head in sysfs`, JSON.stringify(a ?? ctrlsOf(v.nqn)))
  const target = mountsAt(v.target)
  r.check(target.length === 1 && target[0]!.devT === a!.ns.devT, `${v.vol}: published path mounted from /dev/${a!.ns.name} (${a!.ns.devT})`, JSON.stringify(target))
  r.device(`${v.vol} staged`, `${a!.ctrl.name} /dev/${a!.ns.name} (${a!.ns.devT})`)
  return { ctrl: a!.ctrl, ns: a!.ns, stagingMountId: mountIdAt(v.staging) ?? "", targetMountId: mountIdAt(v.target) ?? "" }
}

export interface Written {
  readonly file: string
  readonly sha: string
  readonly size: number
}

/** Writes a 256 KiB pattern file through the published path and fsyncs it. */
export const writeThrough = (v: Vol, tag: string): Written => {
  const data = pattern(`${v.vol}/${tag}`, 256 * KiB)
  const file = `${v.target}/${tag}.bin`
  writeSynced(file, data)
  return { file, sha: sha(data), size: data.length }
}

/** Reads back each file through the published path, then writes and reads a new one. */
export const checkIo = (r: Recorder, v: Vol, files: ReadonlyArray<Written>, label: string): void => {
  for (const f of files) {
    let got = "unreadable"
    try {
      got = sha(readAt(f.file, f.size))
    } catch (e) {
      got = (e as Error).message
    }
    r.check(got === f.sha, `${label}: ${f.file} reads back intact through the published path`, `sha ${got} (written ${f.sha})`)
  }
  let wrote = ""
  try {
    const w = writeThrough(v, `after-${label.replace(/\W+/g, "-")}`)
    wrote = sha(readAt(w.file, w.size)) === w.sha ? "ok" : "read back differs"
  } catch (e) {
    wrote = (e as Error).message
  }
  r.check(wrote === "ok", `${label}: a new write + fsync through the published path succeeds and reads back`, wrote)
  const opts = mountsAt(v.target)[0]?.options.split(",") ?? []
  r.check(opts.includes("rw"), `${label}: published path still mounted read-write (ext4 did not turn read-only)`, opts.join(","))
}

/** Unpublish then unstage, each retried while ABORTED (an operation such as a recovery holds the volume), as kubelet does. */
export const tearDown = async (env: Env, r: Recorder, v: Vol, label = v.vol): Promise<void> => {
  const c = env.plugin.client
  const retrying = async (what: string, rpc: () => Promise<unknown>) => {
    const start = performance.now()
    let aborted = 0
    for (;;) {
      const o = await call(rpc)
      if (o.code !== 10 || performance.now() - start > 90_000) {
        r.check(o.code === 0, `${label}: ${what} → OK${aborted > 0 ? ` (after ${aborted} ABORTED while the volume was busy)` : ""}`,
          o.code === 0 ? `${Math.round(performance.now() - start)} ms` : `${codeName(o.code)}: ${o.details}`)
        r.time(`${label} ${what}`, Math.round(performance.now() - start))
        return
      }
      aborted++
      await new Promise((res) => setTimeout(res, 500))
    }
  }
  await retrying("unpublish", () => c.NodeUnpublishVolume({ volume_id: v.vol, target_path: v.target }, LONG))
  r.check(mountsAt(v.target).length === 0, `${label}: published path unmounted`, v.target)
  await retrying("unstage", () => c.NodeUnstageVolume({ volume_id: v.vol, staging_target_path: v.staging }, LONG))
  r.check(mountsAt(v.staging).length === 0, `${label}: staging path unmounted`, v.staging)
  r.check(ctrlsOf(v.nqn).length === 0, `${label}: no controller of ${v.nqn} left`, JSON.stringify(ctrlsOf(v.nqn)))
}

/** Waits until a controller of `nqn` is in a state `ok` accepts; the time it took, or undefined. */
export const waitCtrl = async (nqn: string, ok: (ctrls: ReadonlyArray<Ctrl>) => boolean, timeoutMs: number): Promise<number | undefined> => {
  const start = performance.now()
  const hit = await waitFor(() => ok(ctrlsOf(nqn)) ? true : undefined, timeoutMs, 5)
  return hit === undefined ? undefined : Math.round(performance.now() - start)
}

export const notLive = (ctrls: ReadonlyArray<Ctrl>): boolean => ctrls.length > 0 && ctrls.every((c) => c.state !== "live")
export const gone = (ctrls: ReadonlyArray<Ctrl>): boolean => ctrls.length === 0
export const live = (ctrls: ReadonlyArray<Ctrl>): boolean => ctrls.some((c) => c.state === "live")

export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, Math.max(0, ms)))
