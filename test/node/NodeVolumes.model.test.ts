/**
 * Model-based property test of the node plugin (issue 2): random sequences of stage, publish,
 * unpublish, unstage, link down/up, controller loss (and with it renumbering), plugin restart,
 * health-monitor ticks and writes, run on the in-memory kernel through the production
 * composition. After every step and after the sequence settles, the invariants must hold:
 *  1. a device holding a file system or partition table is never formatted, and no data is lost;
 *  2. every path published (and not unpublished) reaches the volume's current device once the
 *     link is back, or its RPC failed with a typed error (never a defect);
 *  3. a successful unstage leaves no connection that no other volume uses;
 *  4. a connection outside the managed prefix is never touched;
 *  5. after a node reboot, the monitor never connects a volume recorded in the earlier boot (only
 *     a stage does), and never recreates the target of a pod deleted meanwhile;
 *  6. a published raw-block target never reaches a device that is another volume's;
 *  7. no connection is removed while a volume staged in this boot uses it (volumes 4 and 5 share
 *     one subsystem, staged concurrently, one of them sometimes failing);
 *  8. a record left "unstaging" (a failed detach) is never remounted by the monitor;
 *  9. after a monitor pass, a volume whose old device a container still holds (a private copy of
 *     the mount, then the volume moved to another device) never has a normal VolumeCondition.
 * Added for the review of issue 10: Reboot (with a pod deleted), Swap (two volumes' devices
 * trade names), StagePair (concurrent stages on one subsystem), CrashUnstage, Container (a pod's
 * container copies a published file-system mount privately), StopContainers.
 * `npm run test:model -- RUNS [SEED]` runs any number with a seed and prints it.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Arbitrary, Cause, Context, Effect, Exit, Layer, Scope, Schema } from "effect"
import { HealthMonitor } from "../../src/node/HealthMonitor.ts"
import { HealthView } from "../../src/node/HealthView.ts"
import { entryAt } from "../../src/node/MountOps.ts"
import { NodeVolumes } from "../../src/node/NodeVolumes.ts"
import { StageStore } from "../../src/node/StageStore.ts"
import { Mounter } from "../../src/mount/Mounter.ts"
import { NvmeCli } from "../../src/nvme/NvmeCli.ts"
import type { Nqn } from "../../src/domain/Ids.ts"
import type { VolumeCapability } from "../../src/domain/Volume.ts"
import { Duration } from "effect"
import { TestClock } from "effect/testing"
import { BlkidFault, KernelModel, NvmeCliTest, Signature } from "../../src/testing/index.ts"
import { BLOCK_MAJOR } from "../../src/testing/KernelState.ts"
import { ADDRESS, block, drive, ext4, nqnOf, plugin, PORT, stageRequest, stagingOf, stateLayer, targetOf, volumeIdOf, xfs } from "./harness.ts"

const RUNS = Number(process.env["MODEL_RUNS"] ?? 1000)
const SEED = process.env["MODEL_SEED"] === undefined || process.env["MODEL_SEED"] === "" ? Math.floor(Math.random() * 2 ** 31) : Number(process.env["MODEL_SEED"])
const GiB = 1024 ** 3
const FOREIGN = { address: "10.0.0.99", nqn: "nqn.2014-08.org.example:boot-disk" }
const CAPS: Record<number, VolumeCapability> = { 1: ext4, 2: xfs, 3: block }

type V = 1 | 2 | 3
type Pod = 0 | 1
type Command =
  | { readonly _tag: "Stage"; readonly v: V; readonly fs: "ext4" | "xfs" }
  | { readonly _tag: "BlkidFault"; readonly fault: number }
  | { readonly _tag: "Unstage" | "Lose"; readonly v: V }
  | { readonly _tag: "Publish" | "Unpublish" | "Write"; readonly v: V; readonly pod: Pod }
  | { readonly _tag: "LinkDown" | "LinkUp" | "Restart" | "Tick" | "Swap" | "StopContainers" }
  | { readonly _tag: "Container"; readonly v: V; readonly pod: Pod }
  | { readonly _tag: "CrashUnstage"; readonly v: V }
  | { readonly _tag: "Reboot"; readonly deletePod: boolean }
  | { readonly _tag: "StagePair"; readonly secondFails: boolean }
  | { readonly _tag: "UnstagePair"; readonly which: 4 | 5 }

// Weighted so sequences mostly build volumes up (stage, publish) between faults.
const WEIGHTS: ReadonlyArray<readonly [Command["_tag"], number]> = [
  ["Stage", 20], ["Publish", 20], ["Unpublish", 7], ["Unstage", 7], ["LinkDown", 6], ["LinkUp", 8],
  ["Lose", 8], ["Restart", 6], ["Tick", 10], ["Write", 8], ["BlkidFault", 6],
  ["Reboot", 3], ["Swap", 4], ["StagePair", 5], ["UnstagePair", 3], ["CrashUnstage", 3], ["Container", 5], ["StopContainers", 2]
]
const BLKID_FAULTS = [BlkidFault.exit(1), BlkidFault.exit(4), BlkidFault.exit(8), BlkidFault.timeout, BlkidFault.garbage, BlkidFault.exit(2, "", "blkid: error: cannot open")]
const TOTAL = WEIGHTS.reduce((n, [, w]) => n + w, 0)
const toCommand = ([roll, v, pod]: readonly [number, number, number]): Command => {
  let r = roll % TOTAL
  const tag = WEIGHTS.find(([, w]) => (r -= w) < 0)![0]
  switch (tag) {
    case "Stage": return { _tag: tag, v: v as V, fs: pod === 0 ? "ext4" : "xfs" }
    case "BlkidFault": return { _tag: tag, fault: roll % BLKID_FAULTS.length }
    case "Unstage": case "Lose": case "CrashUnstage": return { _tag: tag, v: v as V }
    case "Publish": case "Unpublish": case "Write": case "Container": return { _tag: tag, v: v as V, pod: pod as Pod }
    case "Reboot": return { _tag: tag, deletePod: pod === 1 }
    case "StagePair": return { _tag: tag, secondFails: pod === 1 }
    case "UnstagePair": return { _tag: tag, which: pod === 0 ? 4 : 5 }
    default: return { _tag: tag }
  }
}
const step = Arbitrary.schema(Schema.Tuple([
  Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 999 })),
  Schema.Literals([1, 2, 3]),
  Schema.Literals([0, 1])
]))
// The length is drawn first: left to itself the array arbitrary stays near its minimum.
const commands = Arbitrary.flatMap(
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 8, maximum: 40 }))),
  (n) => Arbitrary.array(Arbitrary.map(step, toCommand), { minLength: n, maxLength: n })
)

const settings = {
  connectAttempts: 2,
  connectBackoff: Duration.millis(100),
  connectTimeout: Duration.seconds(5),
  deviceWaitTimeout: Duration.millis(300),
  recoveryAttempts: 2
}

const NODE_ERRORS = new Set([
  "InvalidArgument", "VolumeNotFound", "FailedPrecondition", "IncompatibleRequest", "VolumeBusy", "SafetyRefusal",
  "ConnectFailed", "DeviceNotFound", "SysfsError", "NvmeCliError", "MountError", "FormatRefused", "StageStoreError"
])

const liveControllers = (nqn: string) =>
  Effect.map(Effect.flatMap(KernelModel, (k) => k.view), (v) =>
    v.controllers.filter((c) => c.nqn === nqn && c.state !== "removed"))

const sequence = (cmds: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const k = yield* KernelModel
    yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(1), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
    yield* k.exportSubsystem({
      address: ADDRESS, port: PORT, nqn: nqnOf(2),
      namespaces: [{ nsid: 1, sizeBytes: GiB, signature: Signature.filesystem("xfs", "data-uuid", 0), files: { "/data.txt": "precious" } }]
    })
    yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(3), namespaces: [{ nsid: 1, sizeBytes: GiB }] })
    yield* k.exportSubsystem({ address: FOREIGN.address, port: PORT, nqn: FOREIGN.nqn, namespaces: [{ nsid: 1, sizeBytes: GiB }] })
    // Volumes 4 and 5: two namespaces of ONE subsystem (nsid pinning), sharing its controllers.
    yield* k.exportSubsystem({ address: ADDRESS, port: PORT, nqn: nqnOf(4), namespaces: [{ nsid: 1, sizeBytes: GiB }, { nsid: 2, sizeBytes: GiB }] })
    // The host's own NVMe-oF disk, connected before the plugin starts (and at every boot).
    const bootDisk = Effect.gen(function*() {
      const cli = yield* NvmeCli
      yield* cli.connect({ nqn: FOREIGN.nqn as Nqn, address: FOREIGN.address, port: PORT, ctrlLossTmo: -1, reconnectDelay: 2, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
    }).pipe(Effect.provide(NvmeCliTest.layer))
    yield* bootDisk

    let scope = yield* Scope.make()
    let ctx = yield* Layer.buildWithScope(plugin(settings), scope)
    const inPlugin = <A, E>(self: Effect.Effect<A, E, NodeVolumes | HealthMonitor | StageStore | Mounter>) =>
      drive(Effect.provideContext(self, ctx))
    const published = new Set<string>()
    const trace: Array<string> = []
    /** Volumes recorded in an earlier boot and not staged or unstaged since, with their NQN. */
    const earlierBoot = new Map<string, string>()
    /** Targets of a pod deleted during a reboot: nothing may recreate them (until a new publish). */
    const deletedTargets = new Set<string>()
    /** Volumes whose unstage failed after the unmount: the monitor must not remount them. */
    const halfUnstaged = new Set<string>()
    const records = Effect.suspend(() => inPlugin(Context.get(ctx, StageStore).list).pipe(Effect.flatMap((e) => e), Effect.orDie))
    const cliByHand = (nqn: string) =>
      Effect.flatMap(NvmeCli, (cli) =>
        cli.connect({ nqn: nqn as Nqn, address: ADDRESS, port: PORT, ctrlLossTmo: -1, reconnectDelay: 2, keepAliveTmo: undefined, hostNqn: undefined, hostId: undefined })
      ).pipe(Effect.provide(NvmeCliTest.layer), Effect.exit)
    const pairRequest = (which: 4 | 5, nsid: number) => ({
      ...stageRequest(which, ext4),
      target: { ...stageRequest(4).target, namespace: { nsid, nguid: undefined, uuid: undefined } }
    })
    let nextPid = 1000
    // 9. after a pass of the monitor: a volume whose old device a container holds is never "normal".
    const honestCondition = (after: string) =>
      Effect.gen(function*() {
        const held = yield* k.syscall((st) => [...st.containers.values()].flatMap((c) => c.mounts.map((m) => `${BLOCK_MAJOR}:${m.device.minor}`))).pipe(Effect.orDie)
        if (held.length === 0) return
        const view = Context.get(ctx, HealthView)
        for (const v of [1, 2] as const) {
          const device = yield* k.deviceOf(nqnOf(v))
          const health = yield* view.get(volumeIdOf(v))
          if (device === undefined || health === undefined) continue
          const heldOld = (yield* records).find((r) => r.volumeId === volumeIdOf(v))?.supersededDevTs?.some((d) => held.includes(d) && d !== device.devT)
          if (heldOld === true) {
            assert.isTrue(health.condition.abnormal, `volume ${v}'s old device is held by a container, yet its condition is normal after ${after}: ${health.condition.message}\n${trace.join("\n")}`)
          }
        }
      })
    const settled = (id: string) => {
      earlierBoot.delete(id)
      halfUnstaged.delete(id)
    }

    const checkExit = (what: string, exit: Exit.Exit<unknown, { readonly _tag: string }>) => {
      if (Exit.isSuccess(exit)) return trace.push(`${what}: ok`)
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "None") assert.fail(`${what} died: ${Cause.pretty(exit.cause)}\n${trace.join("\n")}`)
      else {
        assert.isTrue(NODE_ERRORS.has(error.value._tag), `${what}: unexpected error ${error.value._tag}`)
        trace.push(`${what}: ${error.value._tag}`)
      }
      return undefined
    }

    const invariants = (after: string) =>
      Effect.gen(function*() {
        for (const m of yield* k.mkfsLog) {
          if (m.outcome === "formatted") {
            assert.strictEqual(m.previous?._tag, "Empty", `formatted a non-empty device after ${after}\n${trace.join("\n")}`)
            assert.strictEqual(m.filesLost, 0)
          }
        }
        assert.strictEqual((yield* k.namespace(nqnOf(2))).files["/data.txt"], "precious", `data lost after ${after}`)
        assert.strictEqual((yield* liveControllers(FOREIGN.nqn)).length, 1, `foreign connection touched after ${after}\n${trace.join("\n")}`)
        const all = yield* records
        const bootId = yield* k.syscall((st) => st.bootId).pipe(Effect.orDie)
        // 5. no connect for an earlier boot's record (unless a volume of this boot shares its NQN).
        for (const [id, nqn] of earlierBoot) {
          if (all.some((r) => r.nqn === nqn && !earlierBoot.has(r.volumeId))) continue
          assert.deepStrictEqual((yield* liveControllers(nqn)).map((c) => c.name), [], `${id} (earlier boot) connected after ${after}\n${trace.join("\n")}`)
        }
        const mounter = Context.get(ctx, Mounter)
        for (const t of deletedTargets) {
          assert.strictEqual(yield* mounter.pathKind(t), "missing", `${t} of a deleted pod recreated after ${after}\n${trace.join("\n")}`)
        }
        // 6. a raw-block target never reaches another volume's device.
        const others = new Set<string>()
        for (const [nqn, nsid] of [[nqnOf(1), 1], [nqnOf(2), 1], [nqnOf(4), 1], [nqnOf(4), 2]] as const) {
          const d = yield* k.deviceOf(nqn, nsid)
          if (d !== undefined) others.add(d.devT)
        }
        const mounts = yield* mounter.mountinfo
        for (const pod of [0, 1] as const) {
          if (entryAt(mounts, targetOf(3, pod)) === undefined) continue
          const reached = yield* mounter.deviceNumber(targetOf(3, pod))
          assert.isFalse(reached !== undefined && others.has(reached), `block target of volume 3 reaches another volume's ${reached} after ${after}\n${trace.join("\n")}`)
        }
        // 7. the shared subsystem stays connected while a volume of this boot uses it.
        if (all.some((r) => r.nqn === nqnOf(4) && r.complete && r.unstaging !== true && r.bootId === bootId)) {
          assert.isAbove((yield* liveControllers(nqnOf(4))).length, 0, `shared subsystem disconnected under a staged volume after ${after}\n${trace.join("\n")}`)
        }
        // 8. a half-unstaged volume is never remounted.
        for (const id of halfUnstaged) {
          const r = all.find((x) => x.volumeId === id)
          if (r?.unstaging !== true) continue
          assert.isUndefined(entryAt(mounts, r.stagingPath), `${id} remounted while unstaging after ${after}\n${trace.join("\n")}`)
        }
      })

    for (const cmd of cmds) {
      const label = JSON.stringify(cmd)
      switch (cmd._tag) {
        case "Stage":
          // Volumes 1 and 2 are staged as either file system (2 holds xfs data: ext4 must be refused).
          if (checkExit(label, yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) => nv.stage(stageRequest(cmd.v, cmd.v === 3 ? block : cmd.fs === "ext4" ? ext4 : xfs))))) !== undefined) {
            settled(volumeIdOf(cmd.v))
          }
          break
        case "BlkidFault":
          yield* k.injectBlkid(BLKID_FAULTS[cmd.fault]!, 1)
          trace.push(label)
          break
        case "Publish": {
          const exit = yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) =>
            nv.publish({ volumeId: volumeIdOf(cmd.v), stagingPath: stagingOf(cmd.v), targetPath: targetOf(cmd.v, cmd.pod), capability: CAPS[cmd.v]!, readOnly: false })))
          checkExit(label, exit)
          if (Exit.isSuccess(exit)) {
            published.add(`${cmd.v}/${cmd.pod}`)
            deletedTargets.delete(targetOf(cmd.v, cmd.pod))
          }
          break
        }
        case "Unpublish": {
          const exit = yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) => nv.unpublish({ volumeId: volumeIdOf(cmd.v), targetPath: targetOf(cmd.v, cmd.pod) })))
          checkExit(label, exit)
          if (Exit.isSuccess(exit)) published.delete(`${cmd.v}/${cmd.pod}`)
          break
        }
        case "Unstage": {
          const exit = yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) => nv.unstage({ volumeId: volumeIdOf(cmd.v), stagingPath: stagingOf(cmd.v) })))
          checkExit(label, exit)
          if (Exit.isSuccess(exit)) {
            settled(volumeIdOf(cmd.v))
            assert.deepStrictEqual((yield* liveControllers(nqnOf(cmd.v))).map((c) => c.name), [], `connection left after ${label}\n${trace.join("\n")}`)
            assert.isFalse(published.has(`${cmd.v}/0`) || published.has(`${cmd.v}/1`), "unstage succeeded while published")
          }
          break
        }
        case "LinkDown":
          yield* k.linkDown(ADDRESS, PORT)
          trace.push(label)
          break
        case "LinkUp":
          yield* k.linkUp(ADDRESS, PORT)
          trace.push(label)
          break
        case "Lose":
          yield* k.loseControllers(nqnOf(cmd.v))
          trace.push(label)
          break
        case "Restart":
          yield* Scope.close(scope, Exit.void)
          scope = yield* Scope.make()
          ctx = yield* Layer.buildWithScope(plugin(settings), scope)
          trace.push(label)
          break
        case "Reboot": {
          yield* Scope.close(scope, Exit.void)
          yield* k.reboot
          yield* bootDisk
          if (cmd.deletePod) {
            yield* k.removeTree("/var/lib/kubelet/pods/pod-1").pipe(Effect.ignore)
            for (const v of [1, 2, 3]) deletedTargets.add(targetOf(v, 1))
          }
          scope = yield* Scope.make()
          ctx = yield* Layer.buildWithScope(plugin(settings), scope)
          for (const r of yield* records) earlierBoot.set(r.volumeId, r.nqn)
          halfUnstaged.clear()
          published.clear() // kubelet publishes again after it stages again
          trace.push(label)
          break
        }
        case "Swap": {
          // Volumes 1 and 3 (file system and raw block) lose their controllers and come back in
          // the other order: names and numbers trade places.
          const ids = new Set((yield* records).map((r) => r.volumeId))
          if (!ids.has(volumeIdOf(1)) || !ids.has(volumeIdOf(3)) || earlierBoot.has(volumeIdOf(1)) || earlierBoot.has(volumeIdOf(3))) {
            trace.push(`${label}: skipped`)
            break
          }
          yield* k.loseControllers(nqnOf(1))
          yield* k.loseControllers(nqnOf(3))
          yield* cliByHand(nqnOf(3))
          yield* cliByHand(nqnOf(1))
          trace.push(label)
          break
        }
        case "StagePair": {
          // Both at once, as kubelet does for two pods' volumes.
          const stageOne = (which: 4 | 5, nsid: number) => Effect.exit(Effect.flatMap(NodeVolumes, (nv) => nv.stage(pairRequest(which, nsid))))
          const both = yield* drive(Effect.provideContext(Effect.all([stageOne(4, 1), stageOne(5, cmd.secondFails ? 7 : 2)], { concurrency: 2 }), ctx))
          assert.isTrue(Exit.isSuccess(both), `${label} died`)
          const [e4, e5] = (both as Exit.Success<readonly [Exit.Exit<void, { readonly _tag: string }>, Exit.Exit<void, { readonly _tag: string }>], never>).value
          if (checkExit(`${label} 4`, e4) !== undefined) settled(volumeIdOf(4))
          if (checkExit(`${label} 5`, e5) !== undefined) settled(volumeIdOf(5))
          break
        }
        case "UnstagePair": {
          const exit = yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) => nv.unstage({ volumeId: volumeIdOf(cmd.which), stagingPath: stagingOf(cmd.which) })))
          if (checkExit(label, exit) !== undefined) settled(volumeIdOf(cmd.which))
          break
        }
        case "CrashUnstage": {
          yield* k.failNvme("disconnect", { reason: "Failed", detail: "injected: disconnect failed" }, 1)
          const exit = yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) => nv.unstage({ volumeId: volumeIdOf(cmd.v), stagingPath: stagingOf(cmd.v) })))
          yield* k.clearFaults
          if (checkExit(label, exit) !== undefined) settled(volumeIdOf(cmd.v))
          else {
            const r = (yield* records).find((x) => x.volumeId === volumeIdOf(cmd.v))
            const mounter = Context.get(ctx, Mounter)
            if (r?.unstaging === true && entryAt(yield* mounter.mountinfo, r.stagingPath) === undefined) halfUnstaged.add(r.volumeId)
          }
          break
        }
        case "Tick":
          checkExit(label, yield* inPlugin(Effect.flatMap(HealthMonitor, (m) => m.tick)))
          yield* honestCondition(label)
          break
        case "Container": {
          // File systems only (volumes 1 and 2): a runtime's private copy of the published mount.
          const path = targetOf(cmd.v, cmd.pod)
          if (cmd.v === 3 || !published.has(`${cmd.v}/${cmd.pod}`)) {
            trace.push(`${label}: skipped`)
            break
          }
          const started = yield* Effect.exit(k.startContainer(nextPid++, `pod-${cmd.pod}`, path))
          trace.push(`${label}: ${Exit.isSuccess(started) ? "started" : "skipped"}`)
          break
        }
        case "StopContainers":
          for (const pid of yield* k.syscall((st) => [...st.containers.keys()]).pipe(Effect.orDie)) yield* k.stopContainer(pid)
          trace.push(label)
          break
        case "Write":
          // Through the pod's path, as an application would; a stale or blocked path may fail.
          yield* Effect.ignore(k.writeFile(`${targetOf(cmd.v, cmd.pod)}/app.log`, label))
          break
      }
      yield* invariants(label)
    }

    // Settle: the network is back; kubelet's periodic NodeGetVolumeStats and the monitor run —
    // after the monitor's backoff from a failed recovery (at most 5 min) has run out: until then
    // stats reports the failure instead of starting another full recovery.
    yield* k.linkUp(ADDRESS, PORT)
    yield* TestClock.adjust("5 minutes")
    const store = Context.get(ctx, StageStore)
    for (const r of yield* inPlugin(store.list).pipe(Effect.flatMap((e) => e))) {
      const path = r.accessType === "Block" ? r.publishedTargets[0]?.path : r.stagingPath
      if (path !== undefined) checkExit(`settle stats ${r.volumeId}`, yield* inPlugin(Effect.flatMap(NodeVolumes, (nv) => nv.stats({ volumeId: r.volumeId as never, volumePath: path as never }))))
    }
    checkExit("settle tick", yield* inPlugin(Effect.flatMap(HealthMonitor, (m) => m.tick)))
    yield* honestCondition("settle")
    yield* invariants("settle")

    const mounter = Context.get(ctx, Mounter)
    for (const key of published) {
      const [v, pod] = key.split("/").map(Number) as [number, number]
      const device = yield* k.deviceOf(nqnOf(v))
      assert.isDefined(device, `volume ${v} has no device after settling\n${trace.join("\n")}`)
      const path = targetOf(v, pod)
      const reached = v === 3
        ? yield* mounter.deviceNumber(path)
        : entryAt(yield* mounter.mountinfo, path)?.devT
      assert.strictEqual(reached, device!.devT, `${path} does not reach ${device!.name} after settling\n${trace.join("\n")}`)
    }
    yield* Scope.close(scope, Exit.void)
    stats.sequences++
    stats.steps += cmds.length
    for (const t of trace) stats.outcomes.set(t.replace(/^.*: /, ""), (stats.outcomes.get(t.replace(/^.*: /, "")) ?? 0) + 1)
    stats.published += published.size
  }).pipe(Effect.provide(stateLayer))

const stats = { sequences: 0, steps: 0, published: 0, outcomes: new Map<string, number>() }

describe("NodeVolumes, model-based", () => {
  afterAll(() => {
    // Printed so a run that generated nothing interesting is visible.
    console.log(`model: ${stats.sequences} sequences, ${stats.steps} steps, seed ${SEED} (MODEL_SEED=${SEED} replays it), ${stats.published} paths checked after settling; outcomes ${JSON.stringify(Object.fromEntries(stats.outcomes))}`)
  })
  it.effect.prop("invariants hold for random operation and fault sequences", [commands], ([cmds]) => sequence(cmds), {
    timeout: 600_000,
    arbitrary: { runs: RUNS, seed: SEED }
  })
})
