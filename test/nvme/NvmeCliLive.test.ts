import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Nqn } from "../../src/domain/Ids.ts"
import { NvmeCli } from "../../src/nvme/NvmeCli.ts"
import {
  classifyConnect,
  classifyDisconnect,
  connectArgv,
  decodeListSubsys,
  FORCE_KILL_AFTER,
  NvmeCliLive,
  parseVersion
} from "../../src/nvme/NvmeCliLive.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { captured } from "../fixtures/fixtures.ts"

const nvme = (name: string) => captured("nvme", name)
const list = (out: { exitCode: number; stdout: string; stderr: string }) => {
  const r = decodeListSubsys(out)
  return Result.isSuccess(r) ? r.success : r.failure
}

describe("nvme connect, as nvme-cli 2.3 answered on kernel 6.1", () => {
  it("builds execFile arguments with --opt=value so -1 is a value", () => {
    assert.deepStrictEqual(
      connectArgv({
        nqn: "nqn.2000-02.com.mikrotik:pvc-1" as Nqn,
        address: "10.0.0.5",
        port: 4420,
        ctrlLossTmo: -1,
        reconnectDelay: 5,
        keepAliveTmo: undefined,
        hostNqn: undefined,
        hostId: undefined
      }),
      ["connect", "-t", "tcp", "-a", "10.0.0.5", "-s", "4420", "-n", "nqn.2000-02.com.mikrotik:pvc-1", "--ctrl-loss-tmo=-1", "--reconnect-delay=5"]
    )
    assert.deepStrictEqual(
      connectArgv({
        nqn: "nqn.2000-02.com.mikrotik:pvc-1" as Nqn,
        address: "fd00::5",
        port: 4421,
        ctrlLossTmo: 600,
        reconnectDelay: 2,
        keepAliveTmo: 7,
        hostNqn: "nqn.2014-08.org.nvmexpress:uuid:1",
        hostId: "id-1"
      }).slice(9),
      ["--ctrl-loss-tmo=600", "--reconnect-delay=2", "--keep-alive-tmo=7", "--hostnqn=nqn.2014-08.org.nvmexpress:uuid:1", "--hostid=id-1"]
    )
  })

  it("success prints nothing and exits 0", () => {
    assert.deepStrictEqual(nvme("connect.ok"), { exitCode: 0, stdout: "", stderr: "" })
    assert.deepStrictEqual(classifyConnect(nvme("connect.ok")), { _tag: "Connected" })
    assert.deepStrictEqual(classifyConnect(nvme("connect.ok-hostnqn-kato")), { _tag: "Connected" })
  })

  it("'already connected' (exit 1) is absorbed, also while the existing controller reconnects", () => {
    assert.strictEqual(nvme("connect.already-connected").exitCode, 1)
    assert.deepStrictEqual(classifyConnect(nvme("connect.already-connected")), { _tag: "AlreadyConnected" })
    assert.deepStrictEqual(classifyConnect(nvme("connect.while-connecting")), { _tag: "AlreadyConnected" })
    // nvme-cli before 2.x let the kernel refuse the duplicate with EALREADY
    assert.deepStrictEqual(
      classifyConnect({ exitCode: 114, stdout: "", stderr: "Failed to write to /dev/nvme-fabrics: Operation already in progress\n" }),
      { _tag: "AlreadyConnected" }
    )
  })

  it("refused and unroutable targets are Unreachable; a rejected NQN or a bad option is Failed", () => {
    const reasons = ["connect.refused", "connect.no-route", "connect.unknown-nqn", "connect.bad-option"].map((n) => {
      const v = classifyConnect(nvme(n))
      return v._tag === "Failed" ? `${n}: ${v.reason} (${nvme(n).exitCode})` : `${n}: ${v._tag}`
    })
    assert.deepStrictEqual(reasons, [
      "connect.refused: Unreachable (1)",
      "connect.no-route: Unreachable (1)",
      "connect.unknown-nqn: Failed (1)",
      "connect.bad-option: Failed (1)"
    ])
    const v = classifyConnect(nvme("connect.unknown-nqn"))
    assert.include(v._tag === "Failed" ? v.detail : "", "Input/output error")
  })
})

describe("nvme disconnect", () => {
  it("absorbs nothing-to-disconnect and a controller already gone", () => {
    for (const n of ["disconnect.nqn", "disconnect.nqn-not-connected", "disconnect.ctrl", "disconnect.ctrl-missing"]) {
      assert.deepStrictEqual(classifyDisconnect(nvme(n)), { ok: true }, n)
    }
    assert.include(nvme("disconnect.nqn-not-connected").stdout, "disconnected 0 controller(s)")
    assert.include(nvme("disconnect.ctrl-missing").stderr, "Did not find device nvme42")
    assert.deepStrictEqual(classifyDisconnect({ exitCode: 1, stdout: "", stderr: "Permission denied\n" }), { ok: false, detail: "Permission denied" })
  })
})

describe("nvme list-subsys -o json", () => {
  it("decodes the 2.3 shape: hosts → subsystems → paths, with the connecting state", () => {
    assert.deepStrictEqual(list(nvme("list-subsys-json.connecting")), [
      {
        nqn: "nqn.2014-08.io.rds-csi.e2e:vol2",
        name: "nvme-subsys1",
        paths: [{ name: "nvme1", transport: "tcp", address: "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1", state: "live" }]
      },
      {
        nqn: "nqn.2014-08.io.rds-csi.e2e:vol1",
        name: "nvme-subsys0",
        paths: [{ name: "nvme0", transport: "tcp", address: "traddr=127.0.0.1,trsvcid=4420", state: "connecting" }]
      }
    ])
    const renumbered = list(nvme("list-subsys-json.renumbered"))
    assert.deepStrictEqual(Array.isArray(renumbered) ? renumbered.map((s) => `${s.name} ${s.paths.map((p: { name: string }) => p.name)}`) : renumbered, [
      "nvme-subsys0 nvme2",
      "nvme-subsys1 nvme1"
    ])
    const off = list(captured("nvme/mp-off", "list-subsys-json.two-connected"))
    assert.strictEqual(Array.isArray(off) ? off.length : -1, 2)
  })

  it("nothing connected ('[ ]'), no NVMe module at all (exit 1, 'Failed to scan topology') and empty output are []", () => {
    assert.deepStrictEqual(list(nvme("list-subsys-json.none-connected")), [])
    assert.deepStrictEqual(list(nvme("list-subsys-json.after-disconnect")), [])
    assert.strictEqual(nvme("list-subsys-json.no-fabrics").exitCode, 1)
    assert.deepStrictEqual(list(nvme("list-subsys-json.no-fabrics")), [])
    assert.deepStrictEqual(list({ exitCode: 0, stdout: "", stderr: "" }), [])
  })

  it("tolerates the other 2.x variants: one host object, extra keys, no Paths, and the 1.x alternating form", () => {
    const single = { HostNQN: "h", Subsystems: [{ Name: "nvme-subsys3", NQN: "nqn.a", IOPolicy: "numa", Type: "nvm" }] }
    assert.deepStrictEqual(list({ exitCode: 0, stdout: JSON.stringify(single), stderr: "" }), [{ nqn: "nqn.a", name: "nvme-subsys3", paths: [] }])
    const legacy = {
      Subsystems: [
        { Name: "nvme-subsys0", NQN: "nqn.b" },
        { Paths: [{ Name: "nvme0", Transport: "tcp", Address: "traddr=1.2.3.4 trsvcid=4420", State: "live" }] }
      ]
    }
    assert.deepStrictEqual(list({ exitCode: 0, stdout: JSON.stringify(legacy), stderr: "" }), [
      { nqn: "nqn.b", name: "nvme-subsys0", paths: [{ name: "nvme0", transport: "tcp", address: "traddr=1.2.3.4 trsvcid=4420", state: "live" }] }
    ])
  })

  it("an unknown shape or non-JSON is UnknownOutput; any other failure is Failed", () => {
    const shapes = [`{"subsystems": 3}`, `[{"Subsystems":[{"Name":1}]}]`, `nvme-subsys0 - NQN=x`, `42`].map((stdout) => {
      const r = list({ exitCode: 0, stdout, stderr: "" })
      return Array.isArray(r) ? "decoded" : (r as { reason: string }).reason
    })
    assert.deepStrictEqual(shapes, ["UnknownOutput", "UnknownOutput", "UnknownOutput", "UnknownOutput"])
    const failed = list({ exitCode: 1, stdout: "", stderr: "Permission denied" })
    assert.strictEqual(Array.isArray(failed) ? "decoded" : (failed as { reason: string }).reason, "Failed")
  })
})

describe("nvme version", () => {
  it("keeps the first line", () => {
    assert.strictEqual(parseVersion(nvme("version").stdout), "nvme version 2.3 (git 2.3)")
    assert.strictEqual(parseVersion("garbage"), undefined)
  })
})

describe("NvmeCliLive process plumbing (host nvme-cli, fake binaries on PATH)", () => {
  const withPath = <A, E, R>(dir: string, eff: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const saved = process.env["PATH"]
        process.env["PATH"] = `${dir}:${saved ?? ""}`
        return saved
      }),
      () => eff,
      (saved) => Effect.sync(() => { process.env["PATH"] = saved })
    )
  const cli = (timeout: Duration.Duration) =>
    NvmeCliLive.pipe(Layer.provide(Layer.mergeAll(NodeServices.layer, Settings.layer(testSettings({ commandTimeout: timeout })))))
  const fakeNvme = (script: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-nvme-"))
    fs.writeFileSync(path.join(dir, "nvme"), `#!/bin/sh\n${script}\n`, { mode: 0o755 })
    return dir
  }

  it.live("runs nvme version through runCommand and keeps the first line (a fake nvme on PATH; the real one: NvmeCliLive.host.test.ts)", () => {
    const dir = fakeNvme(`[ "$1" = version ] || exit 9\necho "nvme version 2.3 (git 2.3)"\necho "libnvme version 1.3 (git 1.3)"`)
    return withPath(dir, Effect.gen(function*() {
      assert.strictEqual(yield* Effect.flatMap(NvmeCli, (c) => c.version), "nvme version 2.3 (git 2.3)")
    })).pipe(Effect.provide(cli(Duration.seconds(10))), Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true }))))
  })

  it.live("a missing binary is NotInstalled", () =>
    Effect.gen(function*() {
      const saved = process.env["PATH"]
      process.env["PATH"] = "/nonexistent-bin"
      const e = yield* Effect.flip(Effect.flatMap(NvmeCli, (c) => c.version)).pipe(
        Effect.ensuring(Effect.sync(() => { process.env["PATH"] = saved }))
      )
      assert.strictEqual(e.reason, "NotInstalled")
    }).pipe(Effect.provide(cli(Duration.seconds(10)))))

  it.live("a hung nvme that ignores SIGTERM is killed: Timeout within timeout + forceKillAfter", () => {
    const dir = fakeNvme("trap '' TERM\nsleep 30")
    return withPath(dir, Effect.gen(function*() {
      const started = Date.now()
      const e = yield* Effect.flip(Effect.flatMap(NvmeCli, (c) => c.listSubsystems))
      const took = Date.now() - started
      assert.strictEqual(e.reason, "Timeout")
      assert.isBelow(took, 300 + Duration.toMillis(FORCE_KILL_AFTER) + 1500)
    })).pipe(Effect.provide(cli(Duration.millis(300))), Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true }))))
  })

  it.live("connect: 'already connected' from the binary is success, stderr never reaches the caller", () => {
    const dir = fakeNvme(`echo "already connected" >&2\nexit 1`)
    return withPath(dir, Effect.flatMap(NvmeCli, (c) =>
      c.connect({
        nqn: "nqn.2000-02.com.mikrotik:pvc-1" as Nqn,
        address: "10.0.0.5",
        port: 4420,
        ctrlLossTmo: -1,
        reconnectDelay: 5,
        keepAliveTmo: undefined,
        hostNqn: undefined,
        hostId: undefined
      }))).pipe(Effect.provide(cli(Duration.seconds(10))), Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true }))))
  })
})
