/**
 * Guest-side helpers for the scenarios that run the whole driver (the controller e2e and the
 * demo): the project's RDS emulator on the nvmet backend and `rds-csi controller` against it,
 * each a child process with its output in OUT/NAME.log, started and waited for until they
 * answer. Runs INSIDE the VM.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeCsiClient } from "../../csi/client.ts"
import { call, log, NODE, PREFIX, REPO, RUN_DIR, sleep, waitFor } from "./harness.ts"

export const EMU_DIR = "/tmp/rds-emulator"
export const CONTROLLER_SOCKET = `${RUN_DIR}/controller.sock`
export const CFG = "/sys/kernel/config/nvmet"
export const POOL = "100G"
/** The backing files: on tmpfs, not on the guest's overlay /tmp (nvmet exports 0-byte namespaces from overlayfs files). */
export const STORAGE_ROOT = "/run/rds-emulator-storage"

export const children: Array<ChildProcess> = []

/** Spawns a long-running rds-csi command with its output in OUT/NAME.log. */
const spawnLogged = (outDir: string, name: string, args: ReadonlyArray<string>): { readonly child: ChildProcess; readonly logFile: string } => {
  const logFile = path.join(outDir, `${name}.log`)
  const fd = fs.openSync(logFile, "a")
  const child = spawn(NODE, [path.join(REPO, "bin/rds-csi.js"), ...args], { cwd: REPO, stdio: ["ignore", fd, fd] })
  fs.closeSync(fd)
  children.push(child)
  return { child, logFile }
}

export const startEmulator = async (outDir: string): Promise<ReadonlyArray<string>> => {
  const t = performance.now()
  const { logFile } = spawnLogged(outDir, "emulator", ["emulator", "--dir", EMU_DIR, "--ssh-port", "2222", "--backend", "nvmet", "--pool-size", POOL, "--storage-root", STORAGE_ROOT, "--nvme-address", "127.0.0.1"])
  // It prints the controller's flags on one line of stdout once sshd answers.
  const flags = await waitFor(() => {
    const line = fs.readFileSync(logFile, "utf8").split("\n").find((l) => l.startsWith("--rds-address "))
    return line?.split(" ")
  }, 120_000, 200)
  if (flags === undefined) throw new Error(`the emulator printed no controller flags in 120 s:\n${fs.readFileSync(logFile, "utf8").slice(-3000)}`)
  log(`emulator (nvmet backend, pool ${POOL}) ready in ${Math.round(performance.now() - t)} ms: ${flags.join(" ")}`)
  return flags
}

export const startController = async (outDir: string, flags: ReadonlyArray<string>) => {
  const t = performance.now()
  const { child, logFile } = spawnLogged(outDir, "controller", [
    "controller", "--endpoint", `unix://${CONTROLLER_SOCKET}`, ...flags, "--nqn-prefix", PREFIX, "--command-timeout", "60s", "--log-level", "debug"
  ])
  const ready = await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`the controller exited (${child.exitCode}):\n${fs.readFileSync(logFile, "utf8").slice(-3000)}`)
    if (!fs.existsSync(CONTROLLER_SOCKET)) return undefined
    const probe = makeCsiClient(CONTROLLER_SOCKET)
    const r = await call(() => probe.Probe({}, { deadlineMs: 20_000 }))
    probe.close()
    return r.code === 0 && r.response?.ready?.value === true ? true : undefined
  }, 120_000, 200)
  if (ready === undefined) throw new Error(`the controller was not ready in 120 s:\n${fs.readFileSync(logFile, "utf8").slice(-3000)}`)
  log(`controller ready (Probe over SSH) ${Math.round(performance.now() - t)} ms after spawn`)
  return makeCsiClient(CONTROLLER_SOCKET)
}

/** Stops every process started here. */
export const stopAll = async (): Promise<void> => {
  for (const c of children) c.kill("SIGTERM")
  await sleep(500)
}
