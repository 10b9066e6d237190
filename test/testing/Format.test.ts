import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Layer, Schema } from "effect"
import { ensureFilesystem, type FormatRefused } from "../../src/mount/Format.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import { DeviceResolver } from "../../src/nvme/DeviceResolver.ts"
import { NvmeTransport } from "../../src/nvme/NvmeTransport.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import {
  BlkidFault,
  KernelModel,
  MounterTest,
  NvmeCliTest,
  Signature,
  StageStoreTest,
  stateLayers,
  SysfsTest
} from "../../src/testing/index.ts"
import * as Nvme from "../../src/testing/KernelNvme.ts"
import { ADDR, env, GiB, NQN, NQN2, PORT, STAGING, target } from "./fixtures.ts"

// Every way blkid can misbehave that the brief names, plus "tell the truth". A blkid that
// answers "exit 2, nothing" for a device holding data is indistinguishable from an empty
// device and out of reach of any blkid-based rule; it is deliberately not generated.
const FAULTS = {
  truth: undefined,
  exit1: BlkidFault.exit(1),
  exit4: BlkidFault.exit(4, "", "blkid: ambivalent result (probably more filesystems on the device)"),
  exit8: BlkidFault.exit(8, "", "blkid: invalid parameter"),
  timeout: BlkidFault.timeout,
  garbage: BlkidFault.garbage,
  exit2Type: BlkidFault.exit(2, "TYPE=ext4\n", ""),
  exit2PtType: BlkidFault.exit(2, "PTTYPE=dos\n", ""),
  exit2Junk: BlkidFault.exit(2, "\u0000\u00ff junk\n", "")
} as const
type FaultKey = keyof typeof FAULTS
const faultKeys = Object.keys(FAULTS) as Array<FaultKey>

const CONTENTS = {
  ext4: Signature.filesystem("ext4", "11111111-2222-4333-8444-555555555555", 0),
  xfs: Signature.filesystem("xfs", "66666666-7777-4888-8999-aaaaaaaaaaaa", 0),
  btrfs: Signature.filesystem("btrfs", "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff", 0),
  gpt: Signature.partitionTable("gpt"),
  dos: Signature.partitionTable("dos", "0x1234abcd")
} as const

const literal = <const A extends string>(values: ReadonlyArray<A>) => Arbitrary.schema(Schema.Literals(values as [A, ...Array<A>]))

const scenario = {
  content: literal(Object.keys(CONTENTS) as Array<keyof typeof CONTENTS>),
  files: Arbitrary.array(Arbitrary.schema(Schema.String), { maxLength: 3 }),
  requested: literal(["ext4", "xfs"] as const),
  // One entry per ensureFilesystem call: how blkid behaves on that call.
  plan: Arbitrary.array(literal(faultKeys), { minLength: 1, maxLength: 5 }),
  // A fault armed for every probe before the plan runs ("truth" = none).
  always: literal(faultKeys)
}

/** Exports NQN with `signature` and `files`, attaches it, returns `/dev/<head>`. */
const device = (signature: Signature, files: Record<string, string>) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN, namespaces: [{ nsid: 1, sizeBytes: GiB, signature, files }] })
    const { device } = yield* (yield* NvmeTransport).attach(target(), () => Effect.void)
    return `/dev/${device.name}`
  })

/** Runs ensureFilesystem once per plan entry, arming that entry's fault first; returns which calls formatted. */
const runPlan = (dev: string, requested: "ext4" | "xfs", plan: ReadonlyArray<FaultKey>, always: FaultKey) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    const alwaysFault = FAULTS[always]
    if (alwaysFault !== undefined) yield* k.injectBlkid(alwaysFault, "always")
    const formatted: Array<boolean> = []
    for (const key of plan) {
      const fault = FAULTS[key]
      if (fault !== undefined) yield* k.injectBlkid(fault, 1)
      const r = yield* Effect.result(ensureFilesystem(dev, requested))
      formatted.push(r._tag === "Success" && r.success.formatted)
    }
    return formatted
  })

describe("Format.ensureFilesystem over the kernel model", () => {
  it.effect.prop("never formats a device that holds a file system or a partition table, whatever blkid does", scenario, ({ content, files, requested, plan, always }) =>
    Effect.gen(function*() {
      const data = Object.fromEntries(files.map((f, i) => [`/file-${i}`, f]))
      const dev = yield* device(CONTENTS[content], data)
      const formatted = yield* runPlan(dev, requested, plan, always)
      const k = yield* KernelModel
      const ns = yield* k.namespace(NQN)
      assert.deepStrictEqual(formatted.filter(Boolean), [])
      assert.deepStrictEqual(yield* k.mkfsLog, [])
      assert.deepStrictEqual(ns.files, data, "data intact")
      assert.strictEqual(ns.signature._tag, CONTENTS[content]._tag)
    }).pipe(Effect.provide(env)), { timeout: 60_000, arbitrary: { runs: 300 } })

  it.effect.prop("formats a proven-empty device at most once, and only on a truthful probe", { plan: scenario.plan, requested: scenario.requested, always: scenario.always }, ({ plan, requested, always }) =>
    Effect.gen(function*() {
      const dev = yield* device(Signature.empty, {})
      const formatted = yield* runPlan(dev, requested, plan, always)
      const k = yield* KernelModel
      const log = yield* k.mkfsLog
      assert.isAtMost(log.length, 1)
      assert.isTrue(log.every((r) => r.outcome === "formatted"))
      const first = formatted.indexOf(true)
      if (always !== "truth") assert.strictEqual(first, -1, "no probe told the truth")
      else assert.strictEqual(first, plan.indexOf("truth"), "the first truthful probe formats")
      if (first >= 0) assert.deepStrictEqual([log[0]?.previous?._tag, log[0]?.filesLost, log[0]?.fsType], ["Empty", 0, requested])
    }).pipe(Effect.provide(env)), { timeout: 60_000, arbitrary: { runs: 200 } })

  it.effect("a device that vanished probes as exit 2 with an error (blkid cannot open it): refused, mkfs never runs", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* device(CONTENTS.ext4, { "/keep": "me" })
      yield* k.loseControllers(NQN)
      const probe = yield* (yield* Mounter).probe(dev)
      assert.deepStrictEqual([probe.exitCode, probe.stdout], [2, ""])
      const r = yield* Effect.flip(ensureFilesystem(dev, "ext4"))
      assert.strictEqual(r._tag, "FormatRefused")
      assert.include(r.message, "blkid exit 2 with an error")
      assert.deepStrictEqual(yield* k.mkfsLog, [], "mkfs was never called")
      assert.deepStrictEqual((yield* k.namespace(NQN)).files, { "/keep": "me" })
    }).pipe(Effect.provide(env)))
})

/** The fixtures' env, with a Mounter that runs `afterProbe` once, after the first probe. */
const envProbeOnce = (afterProbe: (device: string) => Effect.Effect<void, never, KernelModel>) => {
  let fired = false
  const hooks: MounterTest.MounterHooks = {
    afterProbe: (device) => Effect.suspend(() => (fired ? Effect.void : ((fired = true), afterProbe(device))))
  }
  return Layer.mergeAll(NvmeTransport.layer, DeviceResolver.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(NvmeCliTest.layer, SysfsTest.layer, MounterTest.layerWith(hooks), StageStoreTest.layer)),
    Layer.provideMerge(stateLayers),
    Layer.provideMerge(Settings.layer(testSettings()))
  )
}

const NQN_X = "nqn.2000-02.com.mikrotik:pvc-x"
const OTHER = { "/db": "another volume's data" }

/** `nvme connect` of `nqn` straight on the model (a hook cannot use NvmeTransport: it is built on the Mounter's peers). */
const connect = (nqn: string) =>
  Effect.flatMap(KernelModel, (k) =>
    k.syscall((s) => {
      const t = target(nqn)
      Nvme.connect(s, { nqn: t.nqn, address: t.address, port: t.port, ctrlLossTmo: t.ctrlLossTmo, reconnectDelay: t.reconnectDelay, keepAliveTmo: t.keepAliveTmo, hostNqn: undefined, hostId: undefined })
    })).pipe(Effect.orDie)

/**
 * The empty volume NQN attached as /dev/nvme1n1 (259:3) while a stale mount of NQN_X pins
 * nvme-subsys0 but not its path's minor 0: when NQN goes and NQN2 connects, NQN2's head takes
 * the name nvme1n1 with the dev_t 259:2, the kernel's renumbering onto another volume's disk.
 */
const emptyVolumeBesideAPinnedMinor = Effect.gen(function*() {
  const k = yield* KernelModel
  const m = yield* Mounter
  const transport = yield* NvmeTransport
  const ns = (signature: Signature, files: Record<string, string> = {}) => [{ nsid: 1, sizeBytes: GiB, signature, files }]
  yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN_X, namespaces: ns(CONTENTS.xfs) })
  yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN, namespaces: ns(Signature.empty) })
  yield* k.exportSubsystem({ address: ADDR, port: PORT, nqn: NQN2, namespaces: ns(CONTENTS.ext4, OTHER) })
  const x = yield* transport.attach(target(NQN_X), () => Effect.void)
  yield* m.makeDirectory(STAGING)
  yield* m.mount(`/dev/${x.device.name}`, STAGING, { fsType: "xfs", options: [], bind: false, readOnly: false })
  const { device } = yield* transport.attach(target(NQN), () => Effect.void)
  yield* k.loseControllers(NQN_X)
  return `/dev/${device.name}`
})

/** Between probe and mkfs: NQN's controllers are lost and NQN2 connects. */
const renumberOntoNqn2 = Effect.gen(function*() {
  yield* (yield* KernelModel).loseControllers(NQN)
  yield* connect(NQN2)
})

const refusal = (e: FormatRefused) => [e._tag, e.reason, e.probedDevT, e.currentDevT]

describe("Format: mkfs only on the block device that was probed", () => {
  it.effect("a renumbering between probe and mkfs puts another volume's disk at the name: refused, both dev_ts named, that disk intact", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const m = yield* Mounter
      const dev = yield* emptyVolumeBesideAPinnedMinor
      assert.deepStrictEqual([dev, yield* m.deviceNumber(dev)], ["/dev/nvme1n1", "259:3"])
      const e = yield* Effect.flip(ensureFilesystem(dev, "ext4"))
      assert.strictEqual((yield* k.deviceOf(NQN2))?.devT, "259:2", "NQN2's disk is now at the probed name")
      assert.strictEqual(yield* m.deviceNumber(dev), "259:2")
      assert.deepStrictEqual(e._tag === "FormatRefused" ? refusal(e) : [e._tag], ["FormatRefused", "DeviceChanged", "259:3", "259:2"])
      assert.include(e.message, "259:3")
      assert.include(e.message, "259:2")
      assert.deepStrictEqual(yield* k.mkfsLog, [], "mkfs never ran")
      assert.deepStrictEqual((yield* k.namespace(NQN2)).files, OTHER)
    }).pipe(Effect.provide(envProbeOnce(() => renumberOntoNqn2))))

  it.effect("the node gone between probe and mkfs: refused as changed, mkfs never runs", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* device(Signature.empty, {})
      const e = yield* Effect.flip(ensureFilesystem(dev, "xfs"))
      assert.deepStrictEqual(e._tag === "FormatRefused" ? refusal(e) : [e._tag], ["FormatRefused", "DeviceChanged", "259:1", undefined])
      assert.deepStrictEqual(yield* k.mkfsLog, [])
    }).pipe(Effect.provide(envProbeOnce(() => Effect.asVoid(Effect.flatMap(KernelModel, (k) => k.loseControllers(NQN)))))))

  it.effect("a caller's expected dev_t that the node no longer has: refused before blkid runs", () =>
    Effect.gen(function*() {
      const k = yield* KernelModel
      const dev = yield* device(Signature.empty, {})
      yield* k.injectBlkid(BlkidFault.timeout, "always")
      const e = yield* Effect.flip(ensureFilesystem(dev, "ext4", "259:7"))
      assert.deepStrictEqual(e._tag === "FormatRefused" ? refusal(e) : [e._tag], ["FormatRefused", "DeviceChanged", "259:7", "259:1"])
      yield* k.clearFaults
      assert.deepStrictEqual(yield* ensureFilesystem(dev, "ext4", "259:1"), { formatted: true, verdict: { _tag: "Empty" } })
      assert.deepStrictEqual((yield* k.mkfsLog).map((r) => [r.device, r.outcome]), [["/dev/nvme0n1", "formatted"]])
    }).pipe(Effect.provide(env)))
})
