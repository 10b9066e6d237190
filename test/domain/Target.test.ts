import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { canonicalAddress, targetAddress } from "../../src/domain/Target.ts"
import { volumeTarget } from "../../src/domain/Volume.ts"

const F = "volume_context.nvmeAddress"
const rule = <A>(r: Result.Result<A, { readonly field: string; readonly rule: string }>) =>
  Result.isFailure(r) ? `${r.failure.field}: ${r.failure.rule}` : "ok"
const address = (value: string) => Result.getOrThrow(targetAddress(value, F))

describe("targetAddress", () => {
  it("accepts IPv4 and IPv6 literals, brackets removed", () => {
    assert.strictEqual(address("10.42.0.5"), "10.42.0.5")
    assert.strictEqual(address("[fd00::5]"), "fd00::5")
    assert.strictEqual(address("fe80::1%eth0"), "fe80::1%eth0")
  })

  // nvme-cli resolves a name and the kernel reports the resolved address in sysfs (traddr=), so a
  // name never matched: every stage waited 30 s for its controller and left it behind.
  it("rejects host names: sysfs reports the resolved address, which could never be matched", () => {
    const name = `${F}: must be an IPv4 or IPv6 address, not a host name (sysfs reports the address nvme-cli resolved it to, so the connection could never be matched)`
    for (const hostile of ["rds.example.com", "rds", "localhost", "rds-1.storage.svc.cluster.local"]) {
      assert.strictEqual(rule(targetAddress(hostile, F)), name, hostile)
    }
  })

  it("rejects what would reach the kernel's connect option string", () => {
    const unsafe = `${F}: must not contain ',', '=', whitespace or control characters (they would reach the kernel's connect option string)`
    for (
      const hostile of [
        "10.0.0.1,nr_io_queues=1",
        "10.0.0.1,duplicate_connect",
        "fd00::1,hostnqn=nqn.2014-08.org.evil:x",
        "fe80::1%eth0,nr_io_queues=1",
        "fe80::1%eth0=1",
        "10.0.0.1 ",
        "10.0.0.1\ntrsvcid=1",
        "10.0.0.1\u0000"
      ]
    ) assert.strictEqual(rule(targetAddress(hostile, F)), unsafe, JSON.stringify(hostile))
  })

  it("names the field and the rule for malformed literals", () => {
    assert.strictEqual(rule(targetAddress("", F)), `${F}: is required`)
    assert.strictEqual(rule(targetAddress("[]", F)), `${F}: is required`)
    assert.strictEqual(rule(targetAddress("10.0.0.300", F)), `${F}: is not a valid IPv4 address`)
    assert.strictEqual(rule(targetAddress("fd00::1::2", F)), `${F}: is not a valid IPv6 address`)
  })
})

describe("canonicalAddress", () => {
  // The kernel echoes traddr as nvme-cli gave it; controllers are matched to volumes by string.
  it("gives every spelling of an IPv6 address one form, and leaves IPv4 and the zone alone", () => {
    for (const spelling of ["FD00::5", "fd00:0:0::5", "fd00:0000:0000:0000:0000:0000:0000:0005", "[FD00:0::0005]"]) {
      assert.strictEqual(address(spelling), "fd00::5", spelling)
      assert.strictEqual(canonicalAddress(spelling.replace(/^\[|\]$/g, "")), "fd00::5", spelling)
    }
    assert.strictEqual(canonicalAddress("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1")
    assert.strictEqual(canonicalAddress("FE80:0::1%Eth0"), "fe80::1%Eth0")
    assert.strictEqual(canonicalAddress("::ffff:10.0.0.5"), "::ffff:10.0.0.5")
    assert.strictEqual(canonicalAddress("10.0.0.5"), "10.0.0.5")
    assert.strictEqual(canonicalAddress("not an address"), "not an address")
  })
})

describe("volumeTarget", () => {
  const ctx = { nqn: "nqn.2000-02.com.mikrotik:pvc-1", nvmeAddress: "10.0.0.5", nvmePort: "4420" }

  it("checks every value that reaches `nvme connect`, naming the key it came from", () => {
    assert.match(rule(volumeTarget({ ...ctx, nqn: "nqn.2000-02.com.mikrotik:pvc-1,duplicate_connect" })), /^volume_context\.nqn: must not contain ','/)
    assert.match(rule(volumeTarget({ ...ctx, nvmeAddress: "10.0.0.1,nr_io_queues=1" })), /^volume_context\.nvmeAddress: must not contain ','/)
    assert.match(rule(volumeTarget({ nqn: ctx.nqn, rdsAddress: "rds.example.com", nvmePort: "4420" })), /^volume_context\.rdsAddress: must be an IPv4 or IPv6 address, not a host name/)
  })

  it("stores IPv6 canonical, as SysfsLive reports traddr", () => {
    const t = Result.getOrThrow(volumeTarget({ ...ctx, nvmeAddress: "[FD00:0:0::5]" }))
    assert.strictEqual(t.address, "fd00::5")
  })
})
