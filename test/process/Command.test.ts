/**
 * runCommand on real processes (sh from the host), both ways it runs them: through the spawn
 * helper (perl forks) and Node's own spawn. Output and exit codes as they are, LC_ALL=C, a
 * missing binary, a signal, the timeout's SIGTERM → SIGKILL, interruption (which must not return
 * before the child is gone), many at once, and a helper that dies under a running command.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { FORCE_KILL_AFTER, runCommand, runDirect, runThrough } from "../../src/process/Command.ts"
import { startSpawnHelper } from "../../src/process/SpawnHelper.ts"

const ways = {
  "through the spawn helper": (command: string, args: ReadonlyArray<string>, timeout: Duration.Duration) =>
    Effect.suspend(() => {
      const helper = startSpawnHelper()
      assert.isDefined(helper, "perl is on PATH on every Debian: the helper must start")
      return runThrough(helper!, command, args, timeout)
    }),
  "with Node's own spawn": runDirect
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe.each(Object.entries(ways))("runCommand %s", (_, run) => {
  const sh = (script: string, timeout = Duration.seconds(10)) => run("sh", ["-c", script], timeout)

  it.live("a non-zero exit is an output: both streams and the code, byte for byte, LC_ALL=C", () =>
    Effect.gen(function*() {
      const out = yield* sh(`printf 'out ü\\n'; printf "$LC_ALL" >&2; exit 3`)
      assert.deepStrictEqual(out, { exitCode: 3, stdout: "out ü\n", stderr: "C" })
    }))

  it.live("output larger than a pipe's buffer arrives whole", () =>
    Effect.gen(function*() {
      const out = yield* sh("head -c 300000 /dev/zero | tr '\\0' x")
      assert.strictEqual(out.exitCode, 0)
      assert.strictEqual(out.stdout.length, 300000)
    }))

  it.live("a missing binary is NotInstalled; a NUL in an argument is SpawnFailed, nothing forked", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(run("rds-csi-no-such-tool", [], Duration.seconds(5)))
      assert.strictEqual(missing._tag, "NotInstalled")
      const nul = yield* Effect.flip(run("sh", ["-c", "true\0"], Duration.seconds(5)))
      assert.strictEqual(nul._tag, "SpawnFailed")
    }))

  it.live("a child killed by a signal is SpawnFailed naming the signal", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(sh("kill -KILL $$"))
      assert.deepStrictEqual(e, { _tag: "SpawnFailed", detail: "sh was killed by SIGKILL" })
    }))

  it.live("timeout: SIGTERM, then SIGKILL for one that ignores it; a grandchild holding the pipes does not keep it waiting", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const e = yield* Effect.flip(sh("trap '' TERM; sleep 30 & sleep 30", Duration.millis(300)))
      const took = Date.now() - started
      assert.deepStrictEqual(e, { _tag: "Timeout" })
      assert.isAtLeast(took, 300 + Duration.toMillis(FORCE_KILL_AFTER) - 50)
      assert.isBelow(took, 300 + Duration.toMillis(FORCE_KILL_AFTER) + 1500)
    }))

  it.live("interrupted: the child is stopped and gone before the interruption returns", () =>
    Effect.gen(function*() {
      const pidFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-cmd-")), "pid")
      const fiber = yield* Effect.forkChild(sh(`echo $$ > ${pidFile}; exec sleep 30`))
      let pid = 0
      while (pid === 0) {
        yield* Effect.sleep(Duration.millis(20))
        pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8").trim() || 0) : 0
      }
      assert.isTrue(alive(pid))
      yield* Fiber.interrupt(fiber)
      // Reaped by Node already: kill(pid, 0) fails once the child is gone.
      assert.isFalse(alive(pid))
      fs.rmSync(path.dirname(pidFile), { recursive: true })
    }))

  it.live("twenty at once, each with its own output", () =>
    Effect.gen(function*() {
      const outs = yield* Effect.all(Array.from({ length: 20 }, (_, i) => sh(`sleep 0.0${i % 5}; echo ${i}; echo e${i} >&2; exit ${i}`)), { concurrency: "unbounded" })
      assert.deepStrictEqual(outs, Array.from({ length: 20 }, (_, i) => ({ exitCode: i, stdout: `${i}\n`, stderr: `e${i}\n` })))
    }))
})

/** The helper, once it answers (runCommand spawns directly until then). */
const readyHelper = Effect.gen(function*() {
  const helper = startSpawnHelper()
  assert.isDefined(helper)
  for (let i = 0; i < 250 && !helper!.ready; i++) yield* Effect.sleep(Duration.millis(20))
  assert.isTrue(helper!.ready, "the helper answers within 5 s")
  return helper!
})

describe("the spawn helper", () => {
  it.live("runCommand uses it once it answers (perl is on PATH): the command's parent is not this process", () =>
    Effect.gen(function*() {
      yield* readyHelper
      const out = yield* runCommand("sh", ["-c", "echo $PPID"], Duration.seconds(10))
      assert.notStrictEqual(Number(out.stdout.trim()), process.pid)
    }))

  it.live("killed under a running command: that command fails (SpawnFailed), the next one gets a new helper", () =>
    Effect.gen(function*() {
      const helper = yield* readyHelper
      const running = yield* Effect.forkChild(Effect.flip(runThrough(helper, "sleep", ["5"], Duration.seconds(10))))
      const parent = yield* runThrough(helper, "sh", ["-c", "echo $PPID"], Duration.seconds(10))
      process.kill(Number(parent.stdout.trim()), "SIGKILL")
      const e = yield* Fiber.join(running)
      assert.strictEqual(e._tag, "SpawnFailed")
      const next = yield* readyHelper
      assert.notStrictEqual(next, helper)
      const again = yield* runCommand("sh", ["-c", "echo $PPID"], Duration.seconds(10))
      assert.notStrictEqual(Number(again.stdout.trim()), Number(parent.stdout.trim()))
      assert.notStrictEqual(Number(again.stdout.trim()), process.pid)
    }))
})

describe("the spawn helper's environment", () => {
  it.live("a command sees this process's environment as it is now: a variable set, changed or removed since the last command counts", () =>
    Effect.gen(function*() {
      yield* readyHelper
      const show = runCommand("sh", ["-c", `printf '%s|%s' "\${RDS_CSI_ENV_PROBE-unset}" "$LC_ALL"`], Duration.seconds(10))
      const saved = process.env.RDS_CSI_ENV_PROBE
      try {
        delete process.env.RDS_CSI_ENV_PROBE
        assert.strictEqual((yield* show).stdout, "unset|C")
        assert.strictEqual((yield* show).stdout, "unset|C", "the same environment twice (the encoded line reused)")
        process.env.RDS_CSI_ENV_PROBE = "one two"
        assert.strictEqual((yield* show).stdout, "one two|C")
        process.env.RDS_CSI_ENV_PROBE = "ü=3"
        assert.strictEqual((yield* show).stdout, "ü=3|C")
        delete process.env.RDS_CSI_ENV_PROBE
        assert.strictEqual((yield* show).stdout, "unset|C")
      } finally {
        if (saved === undefined) delete process.env.RDS_CSI_ENV_PROBE
        else process.env.RDS_CSI_ENV_PROBE = saved
      }
    }))
})
