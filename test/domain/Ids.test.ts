import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { nodeId, nqn, volumeId } from "../../src/domain/Ids.ts"

const rule = <A>(r: Result.Result<A, { readonly field: string; readonly rule: string }>) =>
  Result.isFailure(r) ? `${r.failure.field}: ${r.failure.rule}` : "ok"

describe("Nqn", () => {
  it("accepts the reverse-domain and UUID forms", () => {
    assert.strictEqual(rule(nqn("nqn.2000-02.com.mikrotik:pvc-1234")), "ok")
    assert.strictEqual(rule(nqn("nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")), "ok")
    assert.strictEqual(rule(nqn("nqn.2024-01.io.example")), "ok")
  })
  it("names the field and the rule", () => {
    assert.strictEqual(rule(nqn("")), "volume_context.nqn: is required")
    assert.strictEqual(rule(nqn("iqn.2000-02.com.x:y")), "volume_context.nqn: must start with 'nqn.'")
    assert.strictEqual(rule(nqn("nqn.2000-13.com.x:y")), "volume_context.nqn: has an invalid month in its date (yyyy-mm)")
    assert.match(rule(nqn("nqn.com.x")), /must be 'nqn.yyyy-mm/)
    assert.strictEqual(rule(nqn(`nqn.2000-02.com.x:${"a".repeat(220)}`)), "volume_context.nqn: must be at most 223 bytes")
  })
  // libnvme writes `nqn=<nqn>,…` to /dev/nvme-fabrics unescaped: these would add kernel connect options.
  it("rejects what would reach the kernel's connect option string (',', '=', whitespace, control characters, NUL)", () => {
    const unsafe = "volume_context.nqn: must not contain ',', '=', whitespace or control characters (they would reach the kernel's connect option string)"
    for (
      const hostile of [
        "nqn.2000-02.com.mikrotik:pvc-1,duplicate_connect",
        "nqn.2000-02.com.mikrotik:pvc=1",
        "nqn.2000-02.com.mikrotik:pvc-1,hostnqn=nqn.2014-08.org.evil:x",
        "nqn.2000-02.com.mikrotik:pvc 1",
        "nqn.2000-02.com.mikrotik:pvc-1\ntraddr=10.9.9.9",
        "nqn.2000-02.com.mikrotik:pvc-1\t",
        "nqn.2000-02.com.mikrotik:pvc-1\u0000",
        "nqn.2000-02.com.mikrotik:pvc-1\x7f"
      ]
    ) assert.strictEqual(rule(nqn(hostile)), unsafe, JSON.stringify(hostile))
    assert.strictEqual(rule(nqn("nqn.2000-02.com.mikrotik:pvc,1", "--host-nqn")), unsafe.replace("volume_context.nqn", "--host-nqn"))
  })
})

describe("VolumeId and NodeId", () => {
  it("rejects what would escape a file name or a log field", () => {
    assert.strictEqual(rule(volumeId("pvc-1")), "ok")
    assert.strictEqual(rule(volumeId("a/b")), "volume_id: must be printable ASCII without spaces or '/'")
    assert.strictEqual(rule(volumeId("x".repeat(129))), "volume_id: must be at most 128 bytes")
    assert.strictEqual(rule(nodeId("Worker_1")), "node_id: must be a DNS subdomain: lower-case letters, digits, '-' and '.'")
  })
})
