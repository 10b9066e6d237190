/**
 * Host side of the node-plugin e2e scenarios: ONE VM boot per test file runs the named
 * scenarios in sequence against the real `rds-csi node` (test/e2e/guest/node-plugin.sh), and
 * each scenario becomes its own vitest test that prints what it checked — with the device names
 * and timings the guest saw — and fails on the first failed check it recorded.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { guestLines, REPO, runInVm, type VmRun } from "./vm/runInVm.ts"

/**
 * Fills Node's compile cache on the host (a few seconds) with what the guest will load: the
 * plugin (through bin/rds-csi.js, so the same sources or bundle) and the guest runner's CSI
 * client. Under TCG compiling is most of a plugin start, and these tests start it five times.
 * Best effort: without the cache the guest only starts slower.
 */
const prewarmCompileCache = (dir: string): void => {
  const node = path.join(REPO, "node_modules/node/bin/node")
  const env = { ...process.env, NODE_COMPILE_CACHE: dir }
  for (const args of [[path.join(REPO, "bin/rds-csi.js"), "node", "--help"], ["--input-type=module", "-e", `await import(${JSON.stringify(path.join(REPO, "test/csi/client.ts"))})`]]) {
    try {
      execFileSync(node, args, { env, stdio: "ignore", timeout: 60_000 })
    } catch {
      // a colder start in the guest, nothing worse
    }
  }
}

interface ScenarioResult {
  readonly name: string
  readonly title: string
  readonly ok: boolean
  readonly ms: number
  readonly checks: ReadonlyArray<{ readonly what: string; readonly ok: boolean; readonly detail: string }>
  readonly timings: Readonly<Record<string, number>>
  readonly devices: Readonly<Record<string, string>>
  readonly error?: string
}

const report = (r: ScenarioResult): string =>
  [
    `scenario ${r.name}: ${r.title} — ${r.ok ? "passed" : "FAILED"} in ${r.ms} ms`,
    `  devices: ${Object.entries(r.devices).map(([k, v]) => `${k} = ${v}`).join("; ") || "(none)"}`,
    `  timings (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join("; ")}`,
    ...r.checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"} ${c.what}${c.detail === "" ? "" : ` — ${c.detail.slice(0, 240)}`}`),
    ...(r.error === undefined ? [] : [`  error: ${r.error}`])
  ].join("\n")

/**
 * Boots one VM for `names` (in this order) and declares one test per scenario. `script` is the
 * guest runner (default the node plugin's; the controller's drives the whole driver).
 */
export const describeScenarios = (title: string, names: ReadonlyArray<string>, timeoutSeconds: number, script = "test/e2e/guest/node-plugin.sh"): void => {
  describe(title, () => {
    let run: VmRun | undefined
    beforeAll(async () => {
      run = await runInVm({
        command: (out) => {
          prewarmCompileCache(path.join(out, "node-compile-cache"))
          return ["bash", script, out, ...names]
        },
        timeoutSeconds,
        memoryMb: 1024
      })
      const start = path.join(run.outDir, "plugin-start.json")
      const stop = path.join(run.outDir, "plugin-stop.json")
      console.log([
        `VM run ${run.wallMs} ms, guest exit ${run.exitCode}`,
        fs.existsSync(start) ? `first plugin start → Probe ready: ${fs.readFileSync(start, "utf8").trim()}` : "no plugin start recorded",
        fs.existsSync(stop) ? `final SIGTERM: ${fs.readFileSync(stop, "utf8").trim()}` : "no plugin stop recorded",
        ...guestLines(run.console, "[guest").filter((l) => !l.includes("] ok ") && !l.includes("] FAIL"))
      ].join("\n"))
    })
    afterAll(() => {
      if (run !== undefined && process.env["E2E_KEEP"] === undefined) fs.rmSync(run.outDir, { recursive: true, force: true })
      else if (run !== undefined) console.log(`kept ${run.outDir} (E2E_KEEP)`)
    })

    for (const name of names) {
      it(name, () => {
        assert.isDefined(run, "the VM did not run")
        const file = path.join(run!.outDir, `scenario-${name}.json`)
        const tail = () => run!.console.split("\n").slice(-40).join("\n")
        assert.isTrue(fs.existsSync(file), `the guest wrote no result for ${name} (VM exit ${run!.exitCode}); console tail:\n${tail()}`)
        const result = JSON.parse(fs.readFileSync(file, "utf8")) as ScenarioResult
        console.log(report(result))
        assert.isAbove(result.checks.length, 0, "a scenario that checked nothing proves nothing")
        const failed = result.checks.filter((c) => !c.ok)
        assert.deepStrictEqual(failed, [], `failed checks in ${name}`)
        assert.isUndefined(result.error, `${name} stopped: ${result.error}`)
        assert.isTrue(result.ok)
      })
    }
  })
}
