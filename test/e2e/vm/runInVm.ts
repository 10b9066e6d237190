/**
 * Host-side helper for e2e tests: boots a throw-away VM through run-in-vm.sh (one at a time —
 * the machine has 2 cores) and returns the guest command's exit code, its output directory
 * (a read-write share the guest writes results into) and the serial console.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const VM_DIR = path.dirname(new URL(import.meta.url).pathname)
export const REPO = path.resolve(VM_DIR, "../../..")

export interface VmRun {
  readonly exitCode: number
  readonly outDir: string
  readonly console: string
  readonly wallMs: number
}

export interface VmOptions {
  /** argv of the guest command (runs as root in the guest, cwd = the repository). */
  readonly command: ReadonlyArray<string> | ((outDir: string) => ReadonlyArray<string>)
  readonly timeoutSeconds?: number
  readonly memoryMb?: number
  /** Extra kernel parameters, e.g. `nvme_core.multipath=N`. */
  readonly kernelAppend?: string
}

export const runInVm = (options: VmOptions): Promise<VmRun> => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-e2e-"))
  const command = typeof options.command === "function" ? options.command(outDir) : options.command
  const timeout = options.timeoutSeconds ?? 300
  const started = Date.now()
  return new Promise((resolve) => {
    execFile(
      "bash",
      [path.join(VM_DIR, "run-in-vm.sh"), "-q", "-t", String(timeout), "-m", String(options.memoryMb ?? 768), "-o", outDir, "--", ...command],
      { cwd: REPO, env: { ...process.env, E2E_APPEND: options.kernelAppend ?? "" }, timeout: (timeout + 30) * 1000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout) => {
        const consoleLog = fs.existsSync(path.join(outDir, "console.log")) ? fs.readFileSync(path.join(outDir, "console.log"), "utf8") : stdout
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 125
        resolve({ exitCode: code, outDir, console: consoleLog, wallMs: Date.now() - started })
      }
    )
  })
}

/** The guest's own lines of a console log, without the host timestamps. */
export const guestLines = (consoleLog: string, marker = "[guest]"): ReadonlyArray<string> =>
  consoleLog.split("\n").filter((l) => l.includes(marker)).map((l) => l.replace(/^\[host [^\]]*\] /, ""))
