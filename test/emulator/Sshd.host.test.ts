/**
 * The whole emulator behind the real OpenSSH sshd (Debian's openssh-server), driven by the
 * system `ssh` client with the generated client key and the host key pinned — what a
 * controller sees of an RDS. Host project: needs /usr/sbin/sshd and ssh; without sshd the
 * test is skipped, and says so.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Emulator, startEmulator } from "../../src/emulator/Emulator.ts"

const SSHD = "/usr/sbin/sshd"
const missing = fs.existsSync(SSHD) ? undefined : `${SSHD} is not installed (Debian: apt-get install openssh-server)`
const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })))

/** `ssh ... '<command>'` with the emulator's client key and its host key pinned. */
const ssh = (emu: Emulator, command: string) =>
  Effect.promise(() => {
    const known = path.join(emu.dir, "known_hosts")
    const hostKey = fs.readFileSync(emu.hostKeyPub, "utf8").trim().split(" ").slice(0, 2).join(" ")
    fs.writeFileSync(known, `[127.0.0.1]:${emu.sshPort} ${hostKey}\n`)
    const args = [
      "-i", emu.clientKey ?? "",
      "-o", `UserKnownHostsFile=${known}`,
      "-o", "StrictHostKeyChecking=yes",
      "-o", "BatchMode=yes",
      "-o", "IdentitiesOnly=yes",
      "-p", String(emu.sshPort),
      `${emu.user}@127.0.0.1`,
      command
    ]
    return new Promise<{ stdout: string; stderr: string; code: number }>((resolve) =>
      execFile("ssh", args, (error, stdout, stderr) =>
        resolve({ stdout, stderr, code: error === null ? 0 : typeof error.code === "number" ? error.code : -1 })
      )
    )
  })

describe("emulator behind sshd", () => {
  if (missing !== undefined) {
    it.skip(`SKIPPED: ${missing}`, () => {})
    console.warn(`Sshd.host.test.ts skipped: ${missing}`)
    return
  }

  it.live("ssh runs RouterOS commands: output, exit statuses, and controls that slow the RDS down", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-emu-ssh-"))
      dirs.push(dir)
      const emu = yield* startEmulator({ dir, sshPort: 0, poolSize: 20 * 2 ** 30 })
      assert.deepStrictEqual(emu.controllerFlags.slice(0, 4), ["--rds-address", `127.0.0.1:${emu.sshPort}`, "--rds-user", os.userInfo().username])

      const add = yield* ssh(
        emu,
        "/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=10G slot=pvc-1 nvme-tcp-export=yes " +
          "nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1"
      )
      assert.deepStrictEqual([add.stdout, add.code], ["", 0], add.stderr)
      const print = yield* ssh(emu, "/disk print detail where slot=pvc-1")
      assert.strictEqual(print.stdout, (yield* emu.run("/disk print detail where slot=pvc-1")).output)
      assert.match(print.stdout, /^type=file slot="pvc-1" /)
      const full = yield* ssh(emu, "/disk add type=file file-path=/storage-pool/k8s/pvc-2.img file-size=11G slot=pvc-2")
      assert.deepStrictEqual([full.stdout, full.code], ["failure: not enough space\n", 1])

      yield* emu.control("delay 1500")
      const start = Date.now()
      yield* ssh(emu, "/disk print detail where slot=pvc-1")
      assert.isAtLeast(Date.now() - start, 1500)
      yield* emu.control("delay 0")

      const log = fs.readFileSync(path.join(dir, "commands.log"), "utf8")
      assert.match(log, /exit=1 \/disk add type=file file-path=\/storage-pool\/k8s\/pvc-2\.img/)
      assert.match(fs.readFileSync(path.join(dir, "sshd.log"), "utf8"), /forced-command/)
    }).pipe(Effect.provide(NodeServices.layer)))
})
