/**
 * `rds-csi doctor controller`'s checks over the in-memory emulator (the SSH paths, host key
 * mismatch and refused keys included, are covered against a real sshd in the integration suite).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { testControllerSettings } from "../../src/controller/ControllerSettings.ts"
import { rdsChecks } from "../../src/doctor/Rds.ts"
import { makeRdsTest } from "../../src/testing/RdsClientTest.ts"

const statuses = (rs: ReadonlyArray<{ readonly name: string; readonly status: string }>) => Object.fromEntries(rs.map((r) => [r.name, r.status]))

describe("doctor controller", () => {
  it.effect("a new pool without the volume directory: the path FAILs with the fix; once it exists every check is OK", () =>
    Effect.gen(function*() {
      const rds = makeRdsTest({ poolBytes: 10 * 1024 ** 3 })
      const settings = testControllerSettings({ hostKeyFile: "/etc/rds/host_key.pub", insecureSkipHostKeyCheck: false })
      const before = yield* rdsChecks(settings).pipe(Effect.provide(rds.layer))
      assert.deepStrictEqual(statuses(before), { "rds host key": "ok", "rds ssh": "ok", "rds volume path": "fail", "rds pool": "ok" })
      assert.match(before.find((r) => r.name === "rds volume path")!.fix ?? "", /storage-pool\/k8s/)
      assert.match(before.find((r) => r.name === "rds ssh")!.detail, /RouterOS 7\./)
      assert.match(before.find((r) => r.name === "rds pool")!.detail, /10\.0 GiB free of 10\.0 GiB/)
      // A first volume creates the directory on the emulator (as the RDS keeps it once made).
      const add = rds.admin("/disk add type=file file-path=/storage-pool/k8s/x.img file-size=1G slot=x nvme-tcp-export=no")
      assert.strictEqual(add.exitCode, 0, add.output)
      const after = yield* rdsChecks(settings).pipe(Effect.provide(rds.layer))
      assert.deepStrictEqual(statuses(after), { "rds host key": "ok", "rds ssh": "ok", "rds volume path": "ok", "rds pool": "ok" })
    }))

  it.effect("an unpinned host key is a WARN; an unreachable RDS FAILs with what to check and stops there", () =>
    Effect.gen(function*() {
      const down = makeRdsTest({ fault: () => "drop-before" })
      const results = yield* rdsChecks(testControllerSettings()).pipe(Effect.provide(down.layer))
      assert.deepStrictEqual(statuses(results), { "rds host key": "warn", "rds ssh": "fail" })
      assert.match(results[1]!.fix ?? "", /--rds-address/)
      const refused = makeRdsTest({ fault: () => "auth" })
      const auth = yield* rdsChecks(testControllerSettings()).pipe(Effect.provide(refused.layer))
      assert.match(auth[1]!.fix ?? "", /ssh-keys import/)
    }))
})
