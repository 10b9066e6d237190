/**
 * Runs INSIDE the VM (Node 24, as root) after resilience.sh has exported the subsystems and
 * brought up the link to the host: starts the real `rds-csi node` with events on the host's
 * kube-apiserver (as the plugin's ServiceAccount, through qemu's forward to the host's loopback),
 * the health monitor every 1 s and /metrics on 127.0.0.1:9810, and runs the named resilience
 * scenarios one after another. Each writes OUT/scenario-NAME.json; the host-side test
 * (test/e2e/resilience.test.ts) asserts on those and on the checks it made itself with kubectl.
 *
 *   node resilience.guest.ts OUT_DIR NAMESPACE SCENARIO...
 */
import * as fs from "node:fs"
import { call, log, type Plugin, PREFIX, type Recorder, RUN_DIR, scenario, startPlugin, STATE_DIR, sweepLeftovers } from "./harness.ts"
import { type Env, nvmet, resilienceFlags } from "./resilience-common.ts"
import { faultA, faultB, faultC, neverReturns } from "./scenarios-outage.ts"
import { orphans, restart } from "./scenarios-restart.ts"
import { containerView } from "./scenarios-containers.ts"

interface Scenario {
  readonly title: string
  readonly body: (env: Env, r: Recorder) => Promise<void>
  /** It starts the plugin itself; first in a run that saves a start (~30 s under TCG). */
  readonly startsPlugin?: true
}

const SCENARIOS: Record<string, Scenario> = {
  "fault-a": { title: "subsystem unlinked from the port for 2.5 s → ConnectionFailure, ConnectionRecovery; same mount, I/O works", body: faultA },
  "fault-b": { title: "port deleted and recreated after 2.5 s → ConnectionFailure, ConnectionRecovery; same mount, I/O works", body: faultB },
  "fault-c": { title: "outage longer than ctrlLossTmo (5 s) → controller deleted, renumbered; the plugin alone recovers; data intact", body: faultC },
  restart: {
    title: "plugin SIGKILLed under two staged volumes, one in fault C → the new instance rebuilds its view, recovers that one, carries on",
    body: restart
  },
  never: { title: "target never returns → RecoveryFailed, VolumeCondition abnormal; unpublish and unstage still succeed", body: neverReturns },
  containers: {
    title: "fault C under two containers: a private mount namespace keeps the dead mount, an rslave one sees the recovered volume; the condition says 'restart the pod' until the private one exits",
    body: containerView
  },
  orphans: {
    title: "managed connection with no volume → OrphanDetected (dry run: only that), then OrphanCleaned on the Node; foreign untouched",
    body: orphans,
    startsPlugin: true
  }
}

const [outDir, namespace, ...names] = process.argv.slice(2) as [string, string, ...Array<string>]
const unknown = names.filter((n) => !(n in SCENARIOS))
if (unknown.length > 0) {
  console.error(`unknown scenario(s) ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(", ")}`)
  process.exit(2)
}
fs.mkdirSync(STATE_DIR, { recursive: true })
const kubeconfig = `${outDir}/guest-node.kubeconfig`
/** Spawn → Probe ready takes 15-60 s under TCG, depending on the host's load. */
const READY_TIMEOUT_MS = 180_000

const env: Env = {
  plugin: undefined as unknown as Plugin,
  outDir,
  namespace,
  start: async (options = {}) => {
    const plugin = await startPlugin(outDir, { editFlags: resilienceFlags(kubeconfig, options.orphanDryRun === true), readyTimeoutMs: READY_TIMEOUT_MS })
    const first = `${outDir}/plugin-start.json`
    if (!fs.existsSync(first)) fs.writeFileSync(first, JSON.stringify({ readyMs: plugin.readyMs }) + "\n")
    return plugin
  }
}

const ensurePlugin = async (): Promise<void> => {
  if (env.plugin !== undefined && (await call(() => env.plugin.client.Probe({}, { deadlineMs: 3000 }))).code === 0) return
  if (env.plugin !== undefined) await env.plugin.stop("SIGKILL")
  env.plugin = await env.start()
}

/** Whatever a scenario left behind: targets back, volumes unstaged, managed connections gone. */
const sweep = async (): Promise<void> => {
  await nvmet("port-up")
  for (const f of fs.readdirSync("/sys/kernel/config/nvmet/subsystems").filter((s) => s.startsWith(PREFIX))) await nvmet("link", f)
  await ensurePlugin()
  await sweepLeftovers(env.plugin.client)
}

const started = performance.now()
let failed = 0
try {
  for (const name of names) {
    if (SCENARIOS[name]!.startsPlugin !== true) await ensurePlugin()
    if (!(await scenario(outDir, name, SCENARIOS[name]!.title, (r) => SCENARIOS[name]!.body(env, r)))) failed++
    await sweep()
  }
} catch (e) {
  log(`guest runner failed: ${(e as Error)?.stack ?? String(e)}`)
  failed++
} finally {
  const how = await env.plugin?.stop("SIGTERM")
  log(`plugin stopped (${how}); socket ${fs.existsSync(`${RUN_DIR}/csi.sock`) ? "LEFT BEHIND" : "removed"}`)
}
log(`${names.length - failed}/${names.length} scenarios passed in ${Math.round(performance.now() - started)} ms`)
process.exit(failed === 0 ? 0 : 1)
