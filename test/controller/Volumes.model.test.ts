/**
 * Model-based property test of the controller (issue 11): random sequences of create, delete,
 * publish, unpublish and expand on three volumes (single-node file system, single-node block,
 * multi-node reader), two nodes, concurrent publishes of one volume to both nodes, and SSH
 * faults injected at any command of an RPC: the connection dropping before or after the RDS ran
 * the command, a timeout after it ran, the RDS refusing the key. Runs on the emulator's
 * interpreter through the production use cases. The CO retries what failed transiently; once it
 * has (no faults, each pending intent replayed), the invariants must hold:
 *  1. never two nodes published (an OK publish not followed by any unpublish of that node) for a
 *     single-node volume — checked after every step, races included;
 *  2. no disk without its backing file, no backing file without its disk;
 *  3. every volume that exists is at least as large as every size a create or expand returned
 *     OK for, and every OK reply reported at least what was asked;
 *  4. a single-node volume published to a node is fenced to that node's host NQN, and a volume
 *     published nowhere admits any host; a deleted volume leaves nothing behind;
 *  5. no defect: every failure is a typed error.
 * `npm run test:model -- RUNS [SEED] controller` runs any number with a seed and prints it.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Arbitrary, Cause, Effect, Exit, Schema } from "effect"
import { testControllerSettings } from "../../src/controller/ControllerSettings.ts"
import { Volumes } from "../../src/controller/Volumes.ts"
import { controllerServices } from "../../src/controllerMain.ts"
import type { NodeId, Nqn } from "../../src/domain/Ids.ts"
import type { Slot } from "../../src/rds/Commands.ts"
import { makeRdsTest, type RdsFault } from "../../src/testing/RdsClientTest.ts"

const RUNS = Number(process.env["MODEL_RUNS"] ?? 300)
const SEED = process.env["MODEL_SEED"] === undefined || process.env["MODEL_SEED"] === "" ? Math.floor(Math.random() * 2 ** 31) : Number(process.env["MODEL_SEED"])
const MiB = 1024 ** 2
const SIZES = [100 * MiB, 1024 * MiB + 1, 1536 * MiB, 3000 * MiB + 7] as const
const FAULTS: ReadonlyArray<RdsFault> = ["drop-before", "drop-after", "timeout-after", "auth"]

type V = 0 | 1 | 2
type N = 0 | 1
const NAMES: Record<V, Slot> = { 0: "pvc-fs" as Slot, 1: "pvc-blk" as Slot, 2: "pvc-rox" as Slot }
const SINGLE: Record<V, boolean> = { 0: true, 1: true, 2: false }
const HOSTS: Record<N, Nqn> = {
  0: "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-4000-8000-000000000001" as Nqn,
  1: "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-4000-8000-000000000002" as Nqn
}
const NODES: Record<N, { readonly name: NodeId; readonly hostNqn: Nqn }> = {
  0: { name: "node-a" as NodeId, hostNqn: HOSTS[0] },
  1: { name: "node-b" as NodeId, hostNqn: HOSTS[1] }
}

interface Fault {
  readonly kind: RdsFault
  /** Which command of the RPC fails (0 = its first). */
  readonly at: number
}
type Command =
  | { readonly _tag: "Create" | "Expand"; readonly v: V; readonly size: number; readonly fault: Fault | undefined }
  | { readonly _tag: "Delete"; readonly v: V; readonly fault: Fault | undefined }
  | { readonly _tag: "Publish" | "Unpublish"; readonly v: V; readonly n: N; readonly fault: Fault | undefined }
  | { readonly _tag: "Race"; readonly v: V }

const WEIGHTS: ReadonlyArray<readonly [Command["_tag"], number]> = [["Create", 25], ["Delete", 10], ["Publish", 25], ["Unpublish", 15], ["Expand", 15], ["Race", 6]]
const TOTAL = WEIGHTS.reduce((n, [, w]) => n + w, 0)
const toCommand = ([roll, v, n, f]: readonly [number, V, N, number]): Command => {
  let r = roll % TOTAL
  const tag = WEIGHTS.find(([, w]) => (r -= w) < 0)![0]
  // Two steps in five run into a fault at one of the RPC's first three commands.
  const fault = f % 5 < 2 ? { kind: FAULTS[f % FAULTS.length]!, at: Math.floor(f / 5) % 3 } : undefined
  switch (tag) {
    case "Create": case "Expand": return { _tag: tag, v, size: SIZES[roll % SIZES.length]!, fault }
    case "Delete": return { _tag: tag, v, fault }
    case "Publish": case "Unpublish": return { _tag: tag, v, n, fault }
    case "Race": return { _tag: tag, v }
  }
}
const step = Arbitrary.schema(Schema.Tuple([
  Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 999 })),
  Schema.Literals([0, 1, 2]),
  Schema.Literals([0, 1]),
  Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 99 }))
]))
const commands = Arbitrary.flatMap(
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 6, maximum: 30 }))),
  (len) => Arbitrary.array(Arbitrary.map(step, toCommand), { minLength: len, maxLength: len })
)

/** A failure the CO retries (the operation's outcome may be unknown), as opposed to a final answer. */
const transient = (tag: string) => tag === "RdsUnavailable" || tag === "VolumeBusy"

const stats = { sequences: 0, steps: 0, faults: 0, outcomes: new Map<string, number>() }

const sequence = (cmds: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    let armed: Fault | undefined
    let count = 0
    const rds = makeRdsTest({
      poolBytes: 8 * 1024 * MiB,
      fault: () => {
        const f = armed
        const at = count++
        if (f === undefined || at !== f.at) return undefined
        stats.faults++
        return f.kind
      }
    })
    const volumes = yield* Effect.provide(Effect.service(Volumes), controllerServices(testControllerSettings(), rds.layer))
    const settings = testControllerSettings()
    // What the CO wants and what it was told.
    const exists = new Map<V, { required: number }>() // intent: the volume should exist (create asked)
    const wantGone = new Set<V>()
    const asked = new Map<V, number>() // the largest size an OK create/expand was asked for
    const published = new Map<V, Set<N>>() // OK publish, not undone by an OK unpublish
    const pendingPublish = new Map<V, Map<N, "publish" | "unpublish">>()
    const trace: Array<string> = []
    const pub = (v: V) => published.get(v) ?? published.set(v, new Set()).get(v)!
    const pending = (v: V) => pendingPublish.get(v) ?? pendingPublish.set(v, new Map()).get(v)!

    const run = <A, E extends { readonly _tag: string }>(label: string, fault: Fault | undefined, e: Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        armed = fault
        count = 0
        const exit = yield* Effect.exit(e)
        armed = undefined
        if (Exit.isFailure(exit) && !Cause.hasFails(exit.cause)) assert.fail(`${label}: not a typed error: ${Cause.pretty(exit.cause)}`)
        const outcome = Exit.isSuccess(exit) ? "ok" : Cause.findErrorOption(exit.cause).pipe((o) => o._tag === "Some" ? o.value._tag : "none")
        trace.push(`${label}: ${outcome}`)
        stats.outcomes.set(outcome, (stats.outcomes.get(outcome) ?? 0) + 1)
        return exit
      })

    const create = (v: V, size: number, fault: Fault | undefined) =>
      Effect.gen(function*() {
        // Names are unique per PVC (pvc-<uuid>): the same name comes back only once the CO has
        // finished deleting it, so a pending delete is completed first.
        if (wantGone.has(v)) yield* remove(v, undefined)
        const exit = yield* run(`create ${NAMES[v]} ${size}`, fault, volumes.create({ name: NAMES[v], requiredBytes: size, limitBytes: undefined, params: settings.defaults }))
        if (Exit.isSuccess(exit)) {
          assert.isAtLeast(exit.value.capacityBytes, size, "3: an OK create reports at least what was asked")
          exists.set(v, { required: Math.max(size, exists.get(v)?.required ?? 0) })
          asked.set(v, Math.max(asked.get(v) ?? 0, size))
          wantGone.delete(v)
        } else if (transient(Cause.findErrorOption(exit.cause).pipe((o) => o._tag === "Some" ? o.value._tag : ""))) {
          // The CO retries this create: it may or may not have happened.
          if (!exists.has(v)) exists.set(v, { required: size })
        } else if (!asked.has(v)) exists.delete(v) // a final answer (ALREADY_EXISTS, RESOURCE_EXHAUSTED): the CO gives up
      })

    const remove = (v: V, fault: Fault | undefined) =>
      Effect.gen(function*() {
        const exit = yield* run(`delete ${NAMES[v]}`, fault, volumes.remove(NAMES[v]))
        exists.delete(v)
        asked.delete(v)
        wantGone.add(v)
        if (Exit.isSuccess(exit)) {
          published.delete(v)
          pendingPublish.delete(v)
        }
      })

    const publish = (v: V, n: N, fault: Fault | undefined) =>
      Effect.gen(function*() {
        const exit = yield* run(`publish ${NAMES[v]} ${NODES[n].name}`, fault, volumes.publish({ id: NAMES[v], slot: NAMES[v], contextNqn: undefined, node: NODES[n], singleNode: SINGLE[v] }))
        if (Exit.isSuccess(exit)) {
          pub(v).add(n)
          pending(v).delete(n)
        } else if (transient(Cause.findErrorOption(exit.cause).pipe((o) => o._tag === "Some" ? o.value._tag : ""))) pending(v).set(n, "publish")
        else pending(v).delete(n)
      })

    const unpublish = (v: V, n: N, fault: Fault | undefined) =>
      Effect.gen(function*() {
        const exit = yield* run(`unpublish ${NAMES[v]} ${NODES[n].name}`, fault, volumes.unpublish(NAMES[v], NODES[n]))
        // Whatever the answer, the node may no longer count as published: an unpublish whose reply
        // was lost may have opened the fence (the CO unstaged the node before asking, and retries).
        pub(v).delete(n)
        if (Exit.isSuccess(exit)) pending(v).delete(n)
        else pending(v).set(n, "unpublish")
      })

    const checkSingleNode = (where: string) => {
      for (const v of [0, 1] as const) assert.isAtMost(pub(v).size, 1, `1: ${NAMES[v]} published to ${[...pub(v)].join(",")} (${where})\n${trace.join("\n")}`)
    }

    for (const cmd of cmds) {
      switch (cmd._tag) {
        case "Create": yield* create(cmd.v, cmd.size, cmd.fault); break
        case "Delete": yield* remove(cmd.v, cmd.fault); break
        case "Publish": yield* publish(cmd.v, cmd.n, cmd.fault); break
        case "Unpublish": yield* unpublish(cmd.v, cmd.n, cmd.fault); break
        case "Expand": {
          const exit = yield* run(`expand ${NAMES[cmd.v]} ${cmd.size}`, cmd.fault, volumes.expand({ id: NAMES[cmd.v], requiredBytes: cmd.size, limitBytes: undefined }))
          if (Exit.isSuccess(exit)) {
            assert.isAtLeast(exit.value, cmd.size, "3: an OK expand reports at least what was asked")
            asked.set(cmd.v, Math.max(asked.get(cmd.v) ?? 0, cmd.size))
          }
          break
        }
        case "Race": {
          // Both nodes at once: at most one may be told OK (the other is ABORTED or FAILED_PRECONDITION).
          yield* Effect.all([publish(cmd.v, 0, undefined), publish(cmd.v, 1, undefined)], { concurrency: "unbounded" })
          break
        }
      }
      checkSingleNode(`after ${trace[trace.length - 1]}`)
    }

    // Settle: the CO retries every pending intent without faults.
    for (const v of [0, 1, 2] as const) {
      if (wantGone.has(v)) yield* remove(v, undefined)
      const intent = exists.get(v)
      if (intent !== undefined) yield* create(v, intent.required, undefined)
      for (const [n, op] of [...pending(v)]) {
        if (op === "unpublish") yield* unpublish(v, n, undefined)
        else yield* publish(v, n, undefined)
      }
    }
    checkSingleNode("settled")
    for (const line of trace) if (line.endsWith(": defect")) assert.fail(`5: ${line}`)

    const state = rds.state()
    const files = new Set(state.files.filter((f) => f.type === "file").map((f) => `/${f.name}`))
    const disks = new Map(state.disks.map((d) => [d.slot, d]))
    const context = `\n${trace.join("\n")}\nstate: ${JSON.stringify(state)}`
    for (const d of state.disks) assert.isTrue(files.has(d.filePath), `2: disk ${d.slot} without its file${context}`)
    for (const f of files) assert.isTrue(state.disks.some((d) => d.filePath === f), `2: file ${f} without a disk${context}`)
    for (const v of [0, 1, 2] as const) {
      const disk = disks.get(NAMES[v])
      if (wantGone.has(v)) {
        assert.isUndefined(disk, `4: ${NAMES[v]} deleted but its disk remains${context}`)
        continue
      }
      if (!exists.has(v)) continue
      assert.isDefined(disk, `${NAMES[v]} created but missing${context}`)
      const size = state.files.find((f) => `/${f.name}` === disk!.filePath)?.size ?? 0
      assert.isAtLeast(size, asked.get(v) ?? 0, `3: ${NAMES[v]} smaller than asked${context}`)
      const nodes = [...pub(v)]
      if (SINGLE[v] && nodes.length === 1) assert.strictEqual(disk!.allowHostName, HOSTS[nodes[0]!], `4: ${NAMES[v]} not fenced to ${nodes[0]}${context}`)
      if (nodes.length === 0) assert.strictEqual(disk!.allowHostName, "", `4: ${NAMES[v]} published nowhere but fenced${context}`)
    }
    stats.sequences++
    stats.steps += cmds.length
  })

describe("controller Volumes, model-based", () => {
  afterAll(() => {
    console.log(`controller model: ${stats.sequences} sequences, ${stats.steps} steps, ${stats.faults} injected SSH faults, seed ${SEED} (MODEL_SEED=${SEED} replays it); outcomes ${JSON.stringify(Object.fromEntries(stats.outcomes))}`)
  })
  it.effect.prop("invariants hold for random operations and SSH faults", [commands], ([cmds]) => sequence(cmds), {
    timeout: 600_000,
    arbitrary: { runs: RUNS, seed: SEED }
  })
})
