/**
 * NodeArgs.ts, the start-up reader of `rds-csi node`'s command line, against effect/cli's reading
 * of the same line (the flags CliFlags.ts makes from the same table): on random lines and
 * environments, whenever the fast reader takes a line it gives exactly what effect/cli gives;
 * a line it does not take is left to effect/cli (and the cases that matter are pinned below).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, ConfigProvider, Effect, Option, Schema } from "effect"
import { CliOutput, Command } from "effect/cli"
import { nodeFlags } from "../src/CliFlags.ts"
import { parseNodeArgs } from "../src/NodeArgs.ts"
import { NODE_OPTIONS, type Parsed } from "../src/NodeOptions.ts"

type Env = Record<string, string>

/** effect/cli's reading: the parsed flags, or "rejected" (help, version, an error). */
const full = (argv: ReadonlyArray<string>, env: Env) =>
  Effect.gen(function*() {
    let parsed: Parsed | "rejected" = "rejected"
    const node = Command.make("node", nodeFlags, (p) =>
      Effect.sync(() => {
        parsed = p
      }))
    yield* Command.runWith(node, { version: "test", renderErrors: false })(argv).pipe(
      Effect.provide(NodeServices.layer),
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })),
      Effect.provideService(CliOutput.Presenter, { present: () => Effect.void }),
      Effect.ignore
    )
    return parsed as Parsed | "rejected"
  })

/** Options compared by value (Option's own equality is structural too, but the message then shows both). */
const plain = (p: Parsed) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Option.isOption(v) ? Option.getOrUndefined(v) ?? "<none>" : v]))

const names = Object.values(NODE_OPTIONS).map((o) => o.name)
const envs = Object.values(NODE_OPTIONS).map((o) => o.env)
const values = [
  "", "x", "0", "7", "07", "+7", "-3", "1e2", "99999999999", "true", "false", "no", "y", "bogus", "FALSE",
  "/a", "/var/lib/kubelet", "unix:///run/csi.sock", "worker-1", "2s", "100ms", "-1s", " 7", "a=b", "--events", "-x"
] as const
const literal = <const A extends string>(xs: ReadonlyArray<A>) => Arbitrary.schema(Schema.Literals(xs as [A, ...Array<A>]))

/** One piece of a line: a known option in one of three spellings, or something else a user may type. */
const piece = Arbitrary.all({
  what: literal([...names, ...names, "help", "h", "version", "log-level", "unknown", "positional", "double-dash"]),
  form: literal(["separate", "equals", "bare"]),
  value: literal(values)
})
const tokens = (p: { readonly what: string; readonly form: string; readonly value: string }): ReadonlyArray<string> => {
  switch (p.what) {
    case "help":
      return ["--help"]
    case "h":
      return ["-h"]
    case "version":
      return ["--version"]
    case "log-level":
      return ["--log-level", "debug"]
    case "unknown":
      return ["--no-such-flag", p.value]
    case "positional":
      return [p.value]
    case "double-dash":
      return ["--"]
  }
  return p.form === "separate" ? [`--${p.what}`, p.value] : p.form === "equals" ? [`--${p.what}=${p.value}`] : [`--${p.what}`]
}
/** The required two come from the line, the environment or neither, so that many lines are complete. */
const line = Arbitrary.all({
  endpoint: literal(["flag", "env", "none"]),
  nodeId: literal(["flag", "env", "none"]),
  pieces: Arbitrary.array(piece, { maxLength: 6 }),
  env: Arbitrary.array(Arbitrary.all({ name: literal(envs), value: literal(values) }), { maxLength: 4 })
})

let taken = 0
let runs = 0

describe("NodeArgs: the start-up reader of rds-csi node's command line", () => {
  it.effect.prop("whenever it takes a line, it reads it exactly as effect/cli does", { l: line }, ({ l }) =>
    Effect.gen(function*() {
      const env: Env = Object.fromEntries(l.env.map((e) => [e.name, e.value]))
      const argv: Array<string> = []
      if (l.endpoint === "flag") argv.push("--endpoint", "unix:///run/csi.sock")
      if (l.endpoint === "env") env["CSI_ENDPOINT"] = "unix:///env/csi.sock"
      if (l.nodeId === "flag") argv.push("--node-id=worker-1")
      if (l.nodeId === "env") env["NODE_ID"] = "worker-env"
      argv.push(...l.pieces.flatMap(tokens))
      runs++
      const fast = parseNodeArgs(argv, env)
      if (fast === undefined) return
      taken++
      const reference = yield* full(argv, env)
      assert.notStrictEqual(reference, "rejected", `effect/cli rejects ${JSON.stringify(argv)} env ${JSON.stringify(env)}, the fast reader took it`)
      if (reference !== "rejected") assert.deepStrictEqual(plain(fast), plain(reference), `${JSON.stringify(argv)} env ${JSON.stringify(env)}`)
    }), { arbitrary: { runs: 1000 } })

  it("the random lines were not all left to effect/cli (the property above compared real readings)", () => {
    console.log(`NodeArgs: ${taken} of ${runs} random lines taken by the fast reader and compared`)
    assert.isAbove(runs, 0)
    assert.isAbove(taken / runs, 0.1, `${taken} of ${runs} lines taken`)
  })

  it.effect("reads the DaemonSet's line, flags over environment over defaults", () =>
    Effect.gen(function*() {
      const argv = ["--endpoint", "unix:///csi/csi.sock", "--metrics-address=0.0.0.0:9810", "--events=false", "--allowed-path-root", "/a", "--allowed-path-root=/b", "--connect-attempts", "3"]
      const env = { NODE_ID: "worker-2", HEALTH_INTERVAL: "5s", KUBECONFIG: "", EVENTS: "true", ORPHAN_DRY_RUN: "yes" }
      const fast = parseNodeArgs(argv, env)
      assert.isDefined(fast)
      if (fast === undefined) return
      assert.strictEqual(fast.nodeId, "worker-2")
      assert.strictEqual(fast.healthInterval, "5s")
      assert.isTrue(Option.isNone(fast.kubeconfig))
      assert.isFalse(fast.events)
      assert.isTrue(fast.orphanDryRun)
      assert.deepStrictEqual(fast.allowedPathRoots, ["/a", "/b"])
      assert.strictEqual(fast.connectAttempts, 3)
      assert.strictEqual(fast.driverName, NODE_OPTIONS.driverName.fallback)
      assert.deepStrictEqual(plain(fast), plain((yield* full(argv, env)) as Parsed))
    }))

  it("leaves to effect/cli every line it would have to guess at", () => {
    const base = ["--endpoint", "unix:///s.sock", "--node-id", "n"]
    const leaves: ReadonlyArray<ReadonlyArray<string>> = [
      ["--help"], ["-h"], ["--version"], [...base, "--help"], [...base, "--log-level", "debug"], // help, version, global flags
      [...base, "--no-such-flag"], [...base, "extra"], [...base, "--"], // unknown, positional
      [...base, "--events", "no"], [...base, "--events=maybe"], [...base, "--events="], // booleans effect/cli judges
      [...base, "--health-interval", "2s", "--health-interval", "3s"], // repeated
      [...base, "--health-interval", "-1s"], [...base, "--state-dir"], // a value that looks like a flag, a missing value
      [...base, "--max-volumes-per-node", "07"], [...base, "--max-volumes-per-node=1e2"], [...base, "--max-volumes-per-node", "-3"], // not a plain decimal
      ["--endpoint", "unix:///s.sock"] // --node-id missing, no NODE_ID
    ]
    for (const argv of leaves) assert.isUndefined(parseNodeArgs(argv, {}), JSON.stringify(argv))
    assert.isUndefined(parseNodeArgs(base, { EVENTS: "FALSE" }), "an environment value effect/cli rejects")
    assert.isUndefined(parseNodeArgs(base, { CONNECT_ATTEMPTS: "x" }), "an environment value effect/cli rejects")
  })
})
