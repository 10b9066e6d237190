/**
 * The command line of `rds-csi node` read without the CLI library: the start-up path of every
 * plugin start. effect/cli's parser, its help renderer (an Intl.Segmenter built at import) and
 * the Schema machinery behind its flags cost over a second of a start under emulation and a few
 * MiB that stay resident (issue 12).
 *
 * It reads only plain lines, the kind a DaemonSet gives: `--name value` and `--name=value` for
 * the options in NodeOptions.ts, a boolean alone or as `--name=LITERAL`, a plain decimal for the
 * integers, then the environment and the defaults. Anything else — help, version, an unknown or
 * repeated flag, a value that looks like a flag, a missing required option, a value the CLI
 * would have to judge — is not guessed at: the answer is `undefined` and the caller hands the
 * line to the full CLI (cli.ts), which says what is wrong as it always has. On the lines it
 * accepts it gives exactly what effect/cli gives (test/NodeArgs.test.ts compares both on random
 * lines).
 *
 * May import: NodeOptions.
 */
import { Option } from "effect"
import { type NodeOption, NODE_OPTIONS, type Parsed } from "./NodeOptions.ts"

/** What effect/cli (and Config.Boolean) accept for a boolean. */
const TRUE = new Set(["true", "yes", "on", "1", "y"])
const FALSE = new Set(["false", "no", "off", "0", "n"])
/** A plain decimal: no sign, no leading zero, no exponent, well inside a safe integer. */
const PLAIN_INT = /^(0|[1-9][0-9]{0,8})$/

const byName = new Map<string, readonly [string, NodeOption]>(Object.entries(NODE_OPTIONS).map(([key, o]) => [o.name, [key, o]] as const))

/** One option's value from what the line gave (`undefined`: not given), the environment, the default; `undefined` = not for this reader. */
const valueOf = (o: NodeOption, given: ReadonlyArray<string> | undefined, env: Readonly<Record<string, string | undefined>>): unknown => {
  if (o.kind === "repeated") return given ?? []
  const fromEnv = env[o.env]
  // effect's environment provider treats an empty variable as unset.
  const raw = given?.[0] ?? (fromEnv === "" ? undefined : fromEnv)
  switch (o.kind) {
    case "text":
      return raw ?? o.fallback
    case "optional":
      return raw === undefined ? Option.none() : Option.some(raw)
    case "boolean":
      return raw === undefined ? o.fallback : TRUE.has(raw) ? true : FALSE.has(raw) ? false : undefined
    case "int":
      return raw === undefined ? o.fallback : PLAIN_INT.test(raw) ? Number(raw) : undefined
  }
}

/** The parsed options, or `undefined` when the line is not a plain one (then the full CLI reads it). */
export const parseNodeArgs = (argv: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>>): Parsed | undefined => {
  const given = new Map<string, Array<string>>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith("--")) return undefined
    const eq = arg.indexOf("=")
    const found = byName.get(eq < 0 ? arg.slice(2) : arg.slice(2, eq))
    if (found === undefined) return undefined
    const [key, option] = found
    const next = argv[i + 1]
    let raw: string
    if (eq >= 0) raw = arg.slice(eq + 1)
    else if (option.kind === "boolean") {
      // `--events no` is a value to effect/cli, `--events x` an error: only a flag or the end may follow here.
      if (next !== undefined && !next.startsWith("--")) return undefined
      raw = "true"
    } else {
      if (next === undefined || next.startsWith("-")) return undefined
      raw = next
      i++
    }
    const values = given.get(key) ?? []
    if (values.length > 0 && option.kind !== "repeated") return undefined
    values.push(raw)
    given.set(key, values)
  }
  const parsed: Record<string, unknown> = {}
  for (const [key, option] of Object.entries(NODE_OPTIONS)) {
    const value = valueOf(option, given.get(key), env)
    if (value === undefined) return undefined
    parsed[key] = value
  }
  return parsed as Parsed
}
