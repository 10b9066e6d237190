/**
 * Resilience on a real kernel, with events on a real API server (issue 5): ONE VM boot runs the
 * scenarios in sequence against the real `rds-csi node` (test/e2e/guest/resilience.sh), which
 * posts its events to the real kube-apiserver on the host's loopback, reached from the guest only
 * through qemu's forward (run-in-vm.sh -f). Each scenario is one test here; it passes when every
 * check the guest recorded (sysfs, mountinfo, data, /metrics, VolumeCondition) AND every check
 * the host made with the machine's kubectl (`kubectl describe pvc` / `describe node`) passed.
 * About 4 minutes under TCG.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { type ApiServerForGuest, runGuest, startApiServerForGuest, type VmResult } from "./apiServerVm.ts"
import { guestLines } from "./vm/runInVm.ts"

const NAMESPACE = "e2e-res"
const NODE = "e2e-guest"
// orphans first: it starts the plugin itself (dry run, then normal), which saves a start.
const ALL = ["orphans", "fault-a", "fault-b", "fault-c", "restart", "never", "containers"] as const
// RESILIENCE_ONLY=containers,fault-c runs a subset (the inner loop); CI runs them all.
const only = (process.env["RESILIENCE_ONLY"] ?? "").split(",").filter((x) => x !== "")
const SCENARIOS = only.length === 0 ? ALL : ALL.filter((s) => only.includes(s))
const VOLUMES = ["res-a", "res-b", "res-c", "res-r", "res-rc", "res-n", "res-p"]

interface GuestResult {
  readonly name: string
  readonly title: string
  readonly ok: boolean
  readonly ms: number
  readonly checks: ReadonlyArray<{ readonly what: string; readonly ok: boolean; readonly detail: string }>
  readonly timings: Readonly<Record<string, number>>
  readonly devices: Readonly<Record<string, string>>
  readonly error?: string
}

describe("resilience on a real kernel, events on a real API server", () => {
  let setup: ApiServerForGuest | undefined
  let vm: VmResult | undefined
  const describeAtEnd = new Map<string, string>()

  beforeAll(async () => {
    setup = await startApiServerForGuest({ nodeName: NODE, namespace: NAMESPACE, volumeIds: VOLUMES })
    vm = await runGuest(setup, ["bash", "test/e2e/guest/resilience.sh", setup.outDir, NAMESPACE, ...SCENARIOS], 720)
    // What an operator sees afterwards, for the report.
    const { execFileSync } = await import("node:child_process")
    for (const [key, args] of [["pvc res-c", ["describe", "pvc", "-n", NAMESPACE, "res-c"]], ["pvc res-rc", ["describe", "pvc", "-n", NAMESPACE, "res-rc"]], ["pvc res-n", ["describe", "pvc", "-n", NAMESPACE, "res-n"]], ["node", ["describe", "node", NODE]]] as const) {
      const out = execFileSync("kubectl", ["--kubeconfig", setup.cluster.adminKubeconfig, ...args], { encoding: "utf8" })
      describeAtEnd.set(key, out.slice(out.indexOf("Events:")))
    }
    console.log([
      `VM run ${vm.wallMs} ms, guest exit ${vm.exitCode}`,
      ...guestLines(vm.console, "[guest").filter((l) => !l.includes("] ok ")),
      ...[...describeAtEnd].map(([k, v]) => `---- kubectl describe ${k}\n${v}`)
    ].join("\n"))
  }, 1_800_000)

  afterAll(async () => {
    await setup?.stop()
  })

  for (const name of SCENARIOS) {
    it(name, () => {
      assert.isDefined(vm, "the VM did not run")
      const file = path.join(setup!.outDir, `scenario-${name}.json`)
      const tail = () => vm!.console.split("\n").slice(-40).join("\n")
      assert.isTrue(fs.existsSync(file), `the guest wrote no result for ${name} (VM exit ${vm!.exitCode}); console tail:\n${tail()}`)
      const result = JSON.parse(fs.readFileSync(file, "utf8")) as GuestResult
      const host = setup!.control.checks.get(name) ?? []
      console.log([
        `scenario ${name}: ${result.title} — ${result.ok ? "passed" : "FAILED"} in ${result.ms} ms`,
        `  devices: ${Object.entries(result.devices).map(([k, v]) => `${k} = ${v}`).join("; ") || "(none)"}`,
        `  timings (ms): ${Object.entries(result.timings).map(([k, v]) => `${k} ${v}`).join("; ")}`,
        ...result.checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"} ${c.what}${c.detail === "" ? "" : ` — ${c.detail.slice(0, 400)}`}`),
        ...host.map((c) => `  host ${c.ok ? "ok  " : "FAIL"} ${c.what} — ${c.detail.slice(0, 600)}`),
        ...(result.error === undefined ? [] : [`  error: ${result.error}`])
      ].join("\n"))
      assert.isAbove(result.checks.length, 0, "a scenario that checked nothing proves nothing")
      assert.isAbove(host.length, 0, "the host checked nothing with kubectl for this scenario")
      assert.deepStrictEqual(host.filter((c) => !c.ok), [], `failed host checks in ${name}`)
      assert.deepStrictEqual(result.checks.filter((c) => !c.ok), [], `failed guest checks in ${name}`)
      assert.isUndefined(result.error, `${name} stopped: ${result.error}`)
      assert.isTrue(result.ok)
    })
  }
})
