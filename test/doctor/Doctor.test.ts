/**
 * The doctor as a whole: every check in order over the test layers (a healthy node → exit 0;
 * one required failure → exit 1), the printed report's shape, and the real `rds-csi doctor`
 * run on this machine by the Node 24 binary, its report parsed and its exit code checked
 * against its own FAIL lines.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fail, ok, warn } from "../../src/doctor/Check.ts"
import { exitCode, render, runChecks } from "../../src/doctor/Doctor.ts"
import { KubeFake } from "../../src/kube/KubeFake.ts"
import { KernelModel } from "../../src/testing/index.ts"
import { mounterWithTable, mountinfo, options, testHost, tmp } from "./helpers.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")
const NODE24 = fs.existsSync(path.join(ROOT, "node_modules/node/bin/node")) ? path.join(ROOT, "node_modules/node/bin/node") : process.execPath

const NAMES = [
  "nvme-tcp module",
  "sysfs nvme-fabrics",
  "nvme-cli",
  "host NQN",
  "mount tools",
  "spawn helper",
  "kubelet dir",
  "kubelet dir propagation",
  "kubelet plugin dirs",
  "state dir",
  "host /proc",
  "API server access"
]

/** A node that has everything, as temp dirs. */
const healthyNode = () => {
  const root = fs.realpathSync(tmp())
  for (const d of ["sys/module/nvme_tcp", "kubelet/plugins_registry", "kubelet/plugins/rds.csi.srvlab.io/state", "proc/1/fd", "etc/nvme"]) {
    fs.mkdirSync(path.join(root, d), { recursive: true })
  }
  fs.writeFileSync(path.join(root, "proc/1/comm"), "systemd\n")
  fs.writeFileSync(path.join(root, "etc/nvme/hostnqn"), "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001\n")
  return { root, table: mountinfo(`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n`) }
}

describe("doctor over the test layers", () => {
  it.effect("a healthy node: every check OK, in order, exit 0", () =>
    Effect.gen(function*() {
      const { root, table } = healthyNode()
      const results = yield* runChecks(options(root), new KubeFake().layer).pipe(
        Effect.provide(mounterWithTable(table)),
        Effect.provide(testHost()),
        Effect.provide(NodeServices.layer)
      )
      assert.deepStrictEqual(results.map((r) => r.name), NAMES)
      assert.deepStrictEqual(results.filter((r) => r.status !== "ok"), [])
      assert.strictEqual(exitCode(results), 0)
    }))

  it.effect("the same node with nvme-cli 1.x and no API config: one FAIL (exit 1), one WARN (still exit 0 on its own)", () =>
    Effect.gen(function*() {
      const { root, table } = healthyNode()
      const k = yield* KernelModel
      const noApi = yield* runChecks(options(root), { none: "no config" }).pipe(Effect.provide(mounterWithTable(table)))
      assert.deepStrictEqual(noApi.filter((r) => r.status !== "ok").map((r) => [r.name, r.status]), [["API server access", "warn"]])
      assert.strictEqual(exitCode(noApi), 0)
      yield* k.setHost({ nvmeVersion: "nvme version 1.16" })
      const old = yield* runChecks(options(root), { none: "no config" }).pipe(Effect.provide(mounterWithTable(table)))
      assert.deepStrictEqual(old.filter((r) => r.status === "fail").map((r) => r.name), ["nvme-cli"])
      assert.strictEqual(exitCode(old), 1)
    }).pipe(Effect.provide(testHost()), Effect.provide(NodeServices.layer)))
})

describe("the report", () => {
  it("one line per check, the fix indented under each WARN and FAIL, a summary line", () => {
    const text = render([ok("a", "fine"), warn("longer name", "hmm", "do x"), fail("c", "broken", "do y")], "header")
    assert.strictEqual(text, [
      "header",
      "OK    a            fine",
      "WARN  longer name  hmm",
      "                   fix: do x",
      "FAIL  c            broken",
      "                   fix: do y",
      "1 ok, 1 warning(s), 1 failed: rds-csi node will not work on this node until the failures are fixed.",
      ""
    ].join("\n"))
  })
})

/** Runs the real command; parses its report. */
const doctor = (args: ReadonlyArray<string>) => {
  const env = { ...process.env }
  for (const k of ["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "SYSFS_ROOT", "PROC_ROOT", "STATE_DIR", "KUBELET_DIR", "DRIVER_NAME"]) delete env[k]
  const r = spawnSync(NODE24, [path.join(ROOT, "bin/rds-csi.js"), "doctor", ...args], { encoding: "utf8", env, timeout: 60_000 })
  const lines = r.stdout.trimEnd().split("\n")
  const checks: Array<{ status: string; name: string; fix: boolean }> = []
  for (const line of lines.slice(1, -1)) {
    const m = /^(OK|WARN|FAIL) +(\S.*?) {2}/.exec(line)
    if (m !== null) checks.push({ status: m[1]!, name: m[2]!.trim(), fix: false })
    else {
      assert.match(line, /^ +fix: \S/, `a line is a check or a fix: '${line}'`)
      checks[checks.length - 1]!.fix = true
    }
  }
  return { code: r.status, stderr: r.stderr, header: lines[0]!, summary: lines[lines.length - 1]!, checks }
}

describe("rds-csi doctor on this machine (Node 24, live layers)", () => {
  it("defaults: a header, every check in order, a fix under every WARN and FAIL, counts that add up, exit 1 exactly when something FAILed", () => {
    const r = doctor([])
    assert.strictEqual(r.stderr, "")
    assert.match(r.header, /^rds-csi doctor \d+\.\d+\.\d+ on \S+: can this node run rds-csi node\?$/)
    const kubeletExists = fs.existsSync("/var/lib/kubelet")
    assert.deepStrictEqual(r.checks.map((c) => c.name), kubeletExists ? NAMES : NAMES.filter((n) => n !== "kubelet dir propagation" && n !== "kubelet plugin dirs"))
    for (const c of r.checks) assert.strictEqual(c.fix, c.status !== "OK", `${c.name}: a fix line exactly when not OK`)
    const n = (s: string) => r.checks.filter((c) => c.status === s).length
    assert.match(r.summary, new RegExp(`^${n("OK")} ok, ${n("WARN")} warning\\(s\\), ${n("FAIL")} failed: `))
    assert.strictEqual(r.code, n("FAIL") > 0 ? 1 : 0)
    // No API configuration in the environment: the API check is skipped with a warning, never an error.
    assert.deepStrictEqual(r.checks.find((c) => c.name === "API server access")?.status, "WARN")
  })

  it("pointed at prepared roots: the module, sysfs, kubelet dir and state dir checks pass whatever the machine has", () => {
    const root = fs.realpathSync(tmp())
    for (const d of ["sys/module/nvme_tcp", "sys/class/nvme-fabrics", "kubelet/plugins_registry", "state"]) fs.mkdirSync(path.join(root, d), { recursive: true })
    const r = doctor(["--sysfs-root", path.join(root, "sys"), "--kubelet-dir", path.join(root, "kubelet"), "--state-dir", path.join(root, "state")])
    const status = Object.fromEntries(r.checks.map((c) => [c.name, c.status]))
    assert.deepStrictEqual(r.checks.map((c) => c.name), NAMES)
    assert.strictEqual(status["nvme-tcp module"], "OK")
    assert.strictEqual(status["sysfs nvme-fabrics"], "OK")
    assert.strictEqual(status["kubelet dir"], "OK")
    assert.strictEqual(status["kubelet plugin dirs"], "WARN") // no plugins/rds.csi.srvlab.io yet
    assert.strictEqual(status["state dir"], "OK")
    assert.deepStrictEqual(fs.readdirSync(path.join(root, "state")), [], "the probe file is removed")
    assert.strictEqual(r.code, Object.values(status).includes("FAIL") ? 1 : 0)
  })
})
