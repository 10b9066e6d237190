import { assert, describe, it } from "@effect/vitest"
import { Duration, Option, Result } from "effect"
import { parseDuration, toSettings } from "../src/Config.ts"

const flags = {
  endpoint: "unix:///var/lib/kubelet/plugins/rds.csi.srvlab.io/csi.sock",
  nodeId: "worker-1",
  driverName: "rds.csi.srvlab.io",
  stateDir: "/var/lib/kubelet/plugins/rds.csi.srvlab.io/state",
  allowedPathRoots: [] as Array<string>,
  managedNqnPrefix: Option.some("nqn.2000-02.com.mikrotik:"),
  kubeconfig: Option.none<string>(),
  events: true,
  metricsAddress: Option.some("0.0.0.0:9810"),
  healthInterval: "2s",
  stateWatchInterval: "100ms",
  orphanInterval: "5m",
  orphanDryRun: false,
  restartPodsOnRecovery: false,
  recoveryConcurrency: 4,
  sysfsRoot: "/sys",
  procRoot: "/proc",
  hostNqn: Option.none<string>(),
  hostId: Option.none<string>(),
  maxVolumesPerNode: 0,
  connectTimeout: "30s",
  connectAttempts: 5,
  commandTimeout: "30s"
}

const error = (r: Result.Result<unknown, { readonly message: string }>) => Result.isFailure(r) ? r.failure.message : "ok"

describe("Config.toSettings", () => {
  it("turns the defaults into settings", () => {
    const r = toSettings(flags, "1.2.3", {})
    assert.isTrue(Result.isSuccess(r))
    if (Result.isSuccess(r)) {
      assert.deepStrictEqual(r.success.allowedPathRoots, ["/var/lib/kubelet"])
      assert.strictEqual(Duration.toMillis(r.success.orphanInterval), 300_000)
      assert.strictEqual(r.success.managedNqnPrefix, "nqn.2000-02.com.mikrotik:")
      assert.strictEqual(r.success.kubeconfig, undefined)
      assert.strictEqual(r.success.version, "1.2.3")
    }
  })

  it("--recovery-concurrency and --restart-pods-on-recovery reach the settings (pod restarts are off unless asked for)", () => {
    const r = toSettings({ ...flags, recoveryConcurrency: 8, restartPodsOnRecovery: true }, "x", {})
    assert.isTrue(Result.isSuccess(r) && r.success.recoveryConcurrency === 8 && r.success.restartPodsOnRecovery)
    const d = toSettings(flags, "x", {})
    assert.isTrue(Result.isSuccess(d) && !d.success.restartPodsOnRecovery)
  })

  it("names the flag and the rule for every bad value", () => {
    assert.strictEqual(error(toSettings({ ...flags, endpoint: "tcp://0.0.0.0:9000" }, "x", {})), "--endpoint: must be unix:///absolute/path (got 'tcp://0.0.0.0:9000')")
    assert.strictEqual(error(toSettings({ ...flags, nodeId: "Worker_1" }, "x", {})), "--node-id: must be a DNS subdomain: lower-case letters, digits, '-' and '.'")
    assert.strictEqual(error(toSettings({ ...flags, allowedPathRoots: ["var/lib"] }, "x", {})), "--allowed-path-root: must be an absolute path (got 'var/lib')")
    assert.strictEqual(error(toSettings({ ...flags, healthInterval: "often" }, "x", {})), "--health-interval: must be a duration like 500ms, 2s, 5m or 1h (got 'often')")
    assert.strictEqual(error(toSettings({ ...flags, metricsAddress: Option.some("9810") }, "x", {})), "--metrics-address: must be HOST:PORT, e.g. 0.0.0.0:9810 (got '9810')")
    assert.strictEqual(error(toSettings({ ...flags, connectAttempts: 0 }, "x", {})), "--connect-attempts: must be between 1 and 100")
    assert.strictEqual(error(toSettings({ ...flags, recoveryConcurrency: 0 }, "x", {})), "--recovery-concurrency: must be 1 or more")
    assert.strictEqual(error(toSettings({ ...flags, recoveryConcurrency: 1.5 }, "x", {})), "--recovery-concurrency: must be 1 or more")
    assert.strictEqual(error(toSettings(flags, "x", { LOG_LEVEL: "loud" })), "LOG_LEVEL: must be one of trace, debug, info, warn, error")
  })

  // Both reach `nvme connect --hostnqn=… --hostid=…` and from there the kernel's connect option string.
  it("checks --host-nqn and --host-id before they reach the kernel's connect option string", () => {
    const unsafe = "must not contain ',', '=', whitespace or control characters (they would reach the kernel's connect option string)"
    const hostNqn = "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    const hostId = "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6"
    const ok = toSettings({ ...flags, hostNqn: Option.some(hostNqn), hostId: Option.some(hostId) }, "x", {})
    assert.deepStrictEqual(Result.map(ok, (s) => [s.hostNqn, s.hostId]), Result.succeed([hostNqn, hostId]))
    assert.strictEqual(error(toSettings({ ...flags, hostNqn: Option.some("nqn.2014-08.org.x:h,duplicate_connect") }, "x", {})), `--host-nqn: ${unsafe}`)
    assert.strictEqual(error(toSettings({ ...flags, hostNqn: Option.some("worker-1") }, "x", {})), "--host-nqn: must start with 'nqn.'")
    assert.strictEqual(error(toSettings({ ...flags, hostId: Option.some(`${hostId},nr_io_queues=1`) }, "x", {})), `--host-id: ${unsafe}`)
    assert.strictEqual(error(toSettings({ ...flags, hostId: Option.some("worker-1") }, "x", {})), "--host-id: must be a UUID (8-4-4-4-12 hex digits), like /etc/nvme/hostid (got 'worker-1')")
  })

  it("reads repeated roots from the flag and comma-separated ones from the environment, normalised", () => {
    const fromFlag = toSettings({ ...flags, allowedPathRoots: ["/var/lib/kubelet/", "/mnt/x"] }, "x", { ALLOWED_PATH_ROOTS: "/ignored" })
    const fromEnv = toSettings(flags, "x", { ALLOWED_PATH_ROOTS: "/a, /b/" })
    assert.deepStrictEqual(Result.isSuccess(fromFlag) && fromFlag.success.allowedPathRoots, ["/var/lib/kubelet", "/mnt/x"])
    assert.deepStrictEqual(Result.isSuccess(fromEnv) && fromEnv.success.allowedPathRoots, ["/a", "/b"])
  })

  it("parses durations", () => {
    const ms = (s: string) => Result.match(parseDuration(s, "f"), { onSuccess: Duration.toMillis, onFailure: () => -1 })
    assert.strictEqual(ms("500ms"), 500)
    assert.strictEqual(ms("1.5s"), 1500)
    assert.strictEqual(ms("2m"), 120_000)
    assert.isTrue(Result.isFailure(parseDuration("0ms", "f")))
    assert.isTrue(Result.isFailure(parseDuration("5 minutes", "f")))
  })
})
