/**
 * Runs INSIDE the VM (Node 24, as root) after node-plugin.sh has exported the nvmet-tcp
 * subsystems on 127.0.0.1:4420: starts the real `rds-csi node` and runs the named scenarios
 * one after another against it over its CSI socket. Each scenario writes OUT/scenario-NAME.json
 * (checks, timings, device names); the host-side tests (test/e2e/node-plugin-*.test.ts) assert
 * on those files one test per scenario. Between scenarios, whatever a failed scenario left
 * staged is unstaged so the next one starts clean.
 *
 *   node node-plugin.guest.ts OUT_DIR SCENARIO...
 */
import * as fs from "node:fs"
import {
  call, checkQuietLogs, log, type Plugin, type Recorder, RUN_DIR, scenario, startPlugin, STATE_DIR, sweepLeftovers
} from "./harness.ts"
import { badContext, foreign, neverFormat } from "./scenarios-safety.ts"
import { idempotency, lifecycle, restart, twoVolumes } from "./scenarios-volumes.ts"
import { hostileContext, rebootRecords, sharedSubsystem, swappedBlock } from "./scenarios-hardening.ts"

export interface Env {
  /** The plugin instance currently serving the socket (scenarios restart it); undefined before the first start. */
  plugin: Plugin
  readonly outDir: string
  readonly start: (options?: { readonly pathPrefix?: string; readonly env?: Readonly<Record<string, string>> }) => Promise<Plugin>
}

interface Scenario {
  readonly title: string
  readonly body: (env: Env, r: Parameters<Parameters<typeof scenario>[3]>[0]) => Promise<void>
  /** It starts the plugin itself (after preparing the host); first in a run, that saves a plugin start. */
  readonly startsPlugin?: true
  /** It changes the kernel's connections behind the plugin's back on purpose: recovery lines in the log are expected. */
  readonly injectsFaults?: true
}

const SCENARIOS: Record<string, Scenario> = {
  lifecycle: { title: "stage ext4, xfs, raw block; publish; write; unpublish; unstage (disconnected); stage again → data intact", body: lifecycle },
  idempotency: { title: "every RPC twice → same result; unstage of a never-staged volume → OK", body: idempotency },
  "two-volumes": { title: "two volumes on one target, different NQNs: unstaging one leaves the other connected", body: twoVolumes },
  "bad-context": { title: "bad volume context → clear gRPC error within the connect timeout, no leftover connection", body: badContext },
  restart: { title: "plugin SIGKILLed while a volume is staged and published → Probe OK, unpublish/unstage from the state files", body: restart },
  "never-format": { title: "a device holding data is never formatted, even when stage is retried after the plugin died midway", body: neverFormat },
  foreign: { title: "connections outside the managed NQN prefix are never touched (orphan reconciler every 2 s)", body: foreign, startsPlugin: true },
  "hostile-context": { title: "volume contexts that would inject connect options, or name a host → INVALID_ARGUMENT, nothing connected", body: hostileContext },
  "shared-subsystem": { title: "two namespaces of one subsystem staged at once, one failing → the other keeps the connection; unstage one by one", body: sharedSubsystem },
  "swapped-block": { title: "two raw-block volumes trade device names while the plugin is down → publish gives each its own disk", body: swappedBlock, injectsFaults: true },
  "reboot-records": { title: "records of an earlier boot → never reconnected or re-bound by the plugin; a deleted pod's target not recreated; unstage OK", body: rebootRecords, injectsFaults: true }
}

const [outDir, ...names] = process.argv.slice(2) as [string, ...Array<string>]
const unknown = names.filter((n) => !(n in SCENARIOS))
if (unknown.length > 0) {
  console.error(`unknown scenario(s) ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(", ")}`)
  process.exit(2)
}
fs.mkdirSync(STATE_DIR, { recursive: true })

const env: Env = {
  plugin: undefined as unknown as Plugin,
  outDir,
  start: async (options = {}) => {
    const plugin = await startPlugin(outDir, options)
    const first = `${outDir}/plugin-start.json`
    if (!fs.existsSync(first)) fs.writeFileSync(first, JSON.stringify({ readyMs: plugin.readyMs }) + "\n")
    return plugin
  }
}

/** A plugin that answers Probe: the current one, or a new one. */
const ensurePlugin = async (): Promise<void> => {
  if (env.plugin !== undefined && (await call(() => env.plugin.client.Probe({}, { deadlineMs: 3000 }))).code === 0) return
  if (env.plugin !== undefined) {
    log("the plugin does not answer: starting a new one")
    await env.plugin.stop("SIGKILL")
  }
  env.plugin = await env.start()
}

/** Leaves no managed volume or connection behind a scenario, whatever it did. */
const sweep = async (): Promise<void> => {
  await ensurePlugin()
  await sweepLeftovers(env.plugin.client)
}

const started = performance.now()
let failed = 0
try {
  for (const name of names) {
    const s = SCENARIOS[name]!
    if (s.startsPlugin !== true) await ensurePlugin()
    const since = new Date().toISOString()
    const body = async (r: Recorder) => {
      await s.body(env, r)
      // Unless it injects a fault on purpose, whatever a scenario does, the plugin must log no trouble.
      if (s.injectsFaults !== true) checkQuietLogs(outDir, r, since)
    }
    if (!(await scenario(outDir, name, s.title, body))) failed++
    await sweep()
  }
} catch (e) {
  log(`guest runner failed: ${(e as Error)?.stack ?? String(e)}`)
  failed++
} finally {
  const how = await env.plugin?.stop("SIGTERM")
  log(`plugin stopped (${how}); socket ${fs.existsSync(`${RUN_DIR}/csi.sock`) ? "LEFT BEHIND" : "removed"}`)
  fs.writeFileSync(`${outDir}/plugin-stop.json`, JSON.stringify({ how, socketRemoved: !fs.existsSync(`${RUN_DIR}/csi.sock`) }) + "\n")
}
log(`${names.length - failed}/${names.length} scenarios passed in ${Math.round(performance.now() - started)} ms`)
process.exit(failed === 0 ? 0 : 1)
