/**
 * Smoke test of the live layers against the real kernel (one VM, about a minute under TCG):
 * NvmeTransport.layer over NvmeCliLive + SysfsLive attaches a kernel nvmet-tcp namespace,
 * blkid proves it empty, ensureFilesystem formats it, it is mounted, bound read-only, written,
 * unmounted, and detached. The guest side is test/e2e/guest/live-layers.guest.ts.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { guestLines, runInVm, type VmRun } from "./vm/runInVm.ts"

interface GuestResult {
  readonly ok: boolean
  readonly totalMs: number
  readonly steps: ReadonlyArray<{ readonly name: string; readonly ms: number; readonly ok: boolean; readonly detail: string }>
  readonly error?: string
}

describe("live layers on a real kernel", () => {
  let run: VmRun | undefined
  afterAll(() => {
    if (run !== undefined && process.env["E2E_KEEP"] === undefined) fs.rmSync(run.outDir, { recursive: true, force: true })
  })

  it("attach, probe, format, mount, bind, write, unmount, detach", async () => {
    run = await runInVm({
      command: (out) => ["bash", "test/e2e/guest/live-layers.sh", path.join(out, "result.json")],
      timeoutSeconds: 300
    })
    const lines = guestLines(run.console)
    console.log(`VM run ${run.wallMs} ms, guest exit ${run.exitCode}\n${lines.join("\n")}`)
    const file = path.join(run.outDir, "result.json")
    assert.isTrue(fs.existsSync(file), `the guest wrote no result; console tail:\n${run.console.split("\n").slice(-40).join("\n")}`)
    const result = JSON.parse(fs.readFileSync(file, "utf8")) as GuestResult
    assert.isTrue(result.ok, `guest failed: ${result.error}\n${lines.join("\n")}`)
    assert.strictEqual(run.exitCode, 0)
    const names = result.steps.map((s) => s.name)
    for (const required of ["attach (connect + wait for the namespace head)", "ensureFilesystem ext4 (formats)", "mount staging", "detach (disconnect + wait until sysfs shows none)"]) {
      assert.include(names, required)
    }
  })
})
