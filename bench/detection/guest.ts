/**
 * bench/detection, guest side (INSIDE the VM, started by test/e2e/guest/resilience.sh with
 * GUEST_MAIN=this file): the real plugin with events on the host's API server, shipped health
 * interval and state watch; a watcher polls
 * sysfs every millisecond; the host's event watch says when each event arrived (host clock,
 * converted with an offset measured over the control forward before every trial).
 *
 *   detection: subsystem unlinked for 2.5 s (fault A), TRIALS times:
 *     controller leaves live (sysfs) → ConnectionFailure arrives at the API server
 *     controller live again (sysfs)  → ConnectionRecovery arrives
 *   renumbering: outage longer than ctrlLossTmo 5 s (fault C), TRIALS times:
 *     new namespace device in sysfs → published path on it, a write + fsync + read through it works
 *     controller deleted (sysfs) → StaleMountDetected arrives; target back → working path
 *
 * Writes OUT/detection.json (every trial); the host prints the medians.
 *   node guest.ts OUT_DIR NAMESPACE TRIALS
 */
import * as fs from "node:fs"
import { attachedOf, ctrlsOf, log, mountsAt, type Plugin, Recorder, STATE_DIR, startPlugin } from "../../test/e2e/guest/harness.ts"
import { clockOffset, seenOnHost } from "../../test/e2e/guest/hostLink.ts"
import {
  checkIo, type Env, gone, live, notLive, nvmet, resilienceFlags, sleep, stageAndPublish, tearDown, volume, withoutFlag, writeThrough
} from "../../test/e2e/guest/resilience-common.ts"

const [outDir, namespace, trialsArg] = process.argv.slice(2) as [string, string, string]
const TRIALS = Number(trialsArg ?? "5")
fs.mkdirSync(STATE_DIR, { recursive: true })
const now = () => performance.timeOrigin + performance.now()
const env: Env = {
  plugin: undefined as unknown as Plugin,
  outDir,
  namespace,
  // The shipped health interval (issue 12 measures detection at the defaults), not the harness's 1 s.
  start: (options = {}) =>
    startPlugin(outDir, { editFlags: (d) => withoutFlag(resilienceFlags(`${outDir}/guest-node.kubeconfig`, options.orphanDryRun === true)(d), "--health-interval") })
}

/** Polls sysfs every ~1 ms until `ok` holds for the controllers of `nqn`; the guest time it first did. */
const watch = async (nqn: string, ok: (c: ReturnType<typeof ctrlsOf>) => boolean, timeoutMs: number): Promise<number | undefined> => {
  const limit = now() + timeoutMs
  while (now() < limit) {
    if (ok(ctrlsOf(nqn))) return now()
    await sleep(1)
  }
  return undefined
}

/** The host time of guest time `t`, with the offset measured just before. */
const toHost = (t: number, offset: number) => t + offset

interface Detection {
  trial: number
  offsetRttMs: number
  failureMs?: number
  recoveryMs?: number
  /** sysfs change → the monitor logs it (and posts): the sampling part; the rest is the post. */
  failureSeenMs?: number
  recoverySeenMs?: number
}
interface Renumber {
  trial: number
  oldDevice: string
  newDevice: string
  renumberToWorkingMs?: number
  backToWorkingMs?: number
  deletedToStaleEventMs?: number
  deletedToWorkingMs?: number
  /** new device → the plugin logs "stale mount detected" (its nvme connect returned and it found the device). */
  renumberToDetectedMs?: number
  /** "stale mount detected" → the published path works (umount, mount, bind). */
  detectedToWorkingMs?: number
  intact: boolean
}

/** The plugin's log lines for `volume` whose message starts with `prefix`, as epoch ms (guest clock). */
const logTimes = (plugin: Plugin, volume: string, prefix: string): ReadonlyArray<number> =>
  plugin.logText().split("\n").filter((l) => l.startsWith("{")).flatMap((l) => {
    const e = JSON.parse(l) as { time: string; message: string; volume?: string }
    return e.volume === volume && e.message.startsWith(prefix) ? [Date.parse(e.time)] : []
  })
/** The first of `times` at or after `t` (log times have 1 ms resolution). */
const firstAfter = (times: ReadonlyArray<number>, t: number): number | undefined => times.find((x) => x >= Math.floor(t))

const r = new Recorder("detection", "bench")
const results = { trials: TRIALS, detection: [] as Array<Detection>, renumber: [] as Array<Renumber>, pluginReadyMs: 0, errors: [] as Array<string> }
try {
  env.plugin = await env.start()
  results.pluginReadyMs = env.plugin.readyMs

  // ---- detection: fault A
  const a = volume(env, "res-bench-a")
  await stageAndPublish(env, r, a)
  await sleep(2000)
  for (let i = 1; i <= TRIALS; i++) {
    const { offsetMs, rttMs } = await clockOffset()
    const t0 = now()
    await nvmet("unlink", a.nqn)
    const down = await watch(a.nqn, notLive, 5000)
    const cf = down === undefined ? undefined : await seenOnHost("ConnectionFailure", a.vol, toHost(t0, offsetMs), 20_000)
    await sleep(2500 - (now() - t0))
    await nvmet("link", a.nqn)
    const up = await watch(a.nqn, live, 30_000)
    const cr = up === undefined ? undefined : await seenOnHost("ConnectionRecovery", a.vol, toHost(t0, offsetMs), 20_000)
    const lostLog = down === undefined ? undefined : firstAfter(logTimes(env.plugin, a.vol, "connection lost"), down)
    const backLog = up === undefined ? undefined : firstAfter(logTimes(env.plugin, a.vol, "connection recovered"), up)
    const d: Detection = {
      trial: i, offsetRttMs: Math.round(rttMs),
      ...(cf === undefined || down === undefined ? {} : { failureMs: Math.round(cf - toHost(down, offsetMs)) }),
      ...(cr === undefined || up === undefined ? {} : { recoveryMs: Math.round(cr - toHost(up, offsetMs)) }),
      ...(lostLog === undefined || down === undefined ? {} : { failureSeenMs: Math.round(lostLog - down) }),
      ...(backLog === undefined || up === undefined ? {} : { recoverySeenMs: Math.round(backLog - up) })
    }
    results.detection.push(d)
    log(`detection trial ${i}: ${JSON.stringify(d)}`)
    await sleep(1500)
  }
  await tearDown(env, r, a)

  // ---- renumbering: fault C
  const c = volume(env, "res-bench-c")
  await stageAndPublish(env, r, c, { ctrlLossTmo: "5", reconnectDelay: "1" })
  for (let i = 1; i <= TRIALS; i++) {
    const { offsetMs } = await clockOffset()
    const before = attachedOf(c.nqn)!
    const data = writeThrough(c, `trial-${i}`)
    await nvmet("unlink", c.nqn)
    await watch(c.nqn, notLive, 5000)
    const deleted = await watch(c.nqn, gone, 30_000)
    const back = now()
    await nvmet("link", c.nqn)
    // The new namespace device, then a published path on it that works.
    let renumbered: number | undefined
    let fresh: ReturnType<typeof attachedOf>
    const limit = now() + 60_000
    while (now() < limit) {
      fresh = attachedOf(c.nqn)
      if (fresh !== undefined && fresh.ns.devT !== before.ns.devT) {
        renumbered = now()
        break
      }
      await sleep(1)
    }
    let working: number | undefined
    while (renumbered !== undefined && now() < limit) {
      const t = mountsAt(c.target)[0]
      if (t?.devT === fresh!.ns.devT) {
        try {
          writeThrough(c, `probe-${i}`)
          working = now()
          break
        } catch {
          // not yet
        }
      }
      await sleep(1)
    }
    const stale = deleted === undefined ? undefined : await seenOnHost("StaleMountDetected", c.vol, toHost(deleted, offsetMs), 30_000)
    const checksBefore = r.checks.length
    try {
      checkIo(r, c, [data], `renumber trial ${i}`)
    } catch {
      // recorded
    }
    const intact = r.checks.slice(checksBefore).every((x) => x.ok)
    const detectedLog = renumbered === undefined ? undefined : firstAfter(logTimes(env.plugin, c.vol, "stale mount detected"), deleted ?? renumbered)
    const n: Renumber = {
      trial: i,
      oldDevice: `${before.ctrl.name} /dev/${before.ns.name} (${before.ns.devT})`,
      newDevice: fresh === undefined ? "none" : `${fresh.ctrl.name} /dev/${fresh.ns.name} (${fresh.ns.devT})`,
      intact,
      ...(renumbered === undefined || working === undefined ? {} : { renumberToWorkingMs: Math.round(working - renumbered) }),
      ...(working === undefined ? {} : { backToWorkingMs: Math.round(working - back) }),
      ...(working === undefined || deleted === undefined ? {} : { deletedToWorkingMs: Math.round(working - deleted) }),
      ...(stale === undefined || deleted === undefined ? {} : { deletedToStaleEventMs: Math.round(stale - toHost(deleted, offsetMs)) }),
      ...(detectedLog === undefined || renumbered === undefined ? {} : { renumberToDetectedMs: Math.round(detectedLog - renumbered) }),
      ...(detectedLog === undefined || working === undefined ? {} : { detectedToWorkingMs: Math.round(working - detectedLog) })
    }
    results.renumber.push(n)
    log(`renumber trial ${i}: ${JSON.stringify(n)}`)
    await sleep(1500)
  }
  await tearDown(env, r, c)
} catch (e) {
  results.errors.push((e as Error)?.stack ?? String(e))
  log(`bench failed: ${(e as Error)?.stack ?? String(e)}`)
} finally {
  await env.plugin?.stop("SIGTERM")
}
results.errors.push(...r.checks.filter((x) => !x.ok).map((x) => `${x.what}: ${x.detail}`))
fs.writeFileSync(`${outDir}/detection.json`, JSON.stringify(results, null, 2) + "\n")
process.exit(results.errors.length === 0 ? 0 : 1)
