/**
 * effect/cli flags: the helpers every command's flags are made with (a description that names
 * the environment variable and the default; flag, then environment, then default), and the
 * flags of `rds-csi node`, made from the table in NodeOptions.ts (which NodeArgs.ts reads too).
 *
 * May import: NodeOptions.
 */
import { Config } from "effect"
import { Flag } from "effect/cli"
import { type NodeOption, NODE_OPTIONS, type NodeOptions, type ValueOf } from "./NodeOptions.ts"

export const described = (description: string, env: string, fallback?: string) =>
  `${description} Env: ${env}.${fallback === undefined ? "" : ` Default: ${fallback}.`}`

export const text = (name: string, env: string, description: string, fallback: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(described(description, env, fallback)),
    Flag.withFallbackConfig(Config.String(env)),
    Flag.withDefault(fallback)
  )

export const optionalText = (name: string, env: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(described(description, env, "unset")),
    Flag.withFallbackConfig(Config.String(env)),
    Flag.optional
  )

export const flag = (name: string, env: string, description: string, fallback: boolean) =>
  Flag.Boolean(name).pipe(
    Flag.withDescription(described(description, env, String(fallback))),
    Flag.withFallbackConfig(Config.Boolean(env)),
    Flag.withDefault(fallback)
  )

const int = (name: string, env: string, description: string, fallback: number) =>
  Flag.Int(name).pipe(
    Flag.withDescription(described(description, env, String(fallback))),
    Flag.withFallbackConfig(Config.Int(env)),
    Flag.withDefault(fallback)
  )

const required = (name: string, env: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(described(description, env)), Flag.withFallbackConfig(Config.String(env)))

const toFlag = (o: NodeOption): Flag.Flag<unknown> => {
  switch (o.kind) {
    case "text":
      return o.fallback === undefined ? required(o.name, o.env, o.description) : text(o.name, o.env, o.description, o.fallback)
    case "optional":
      return optionalText(o.name, o.env, o.description)
    case "boolean":
      return flag(o.name, o.env, o.description, o.fallback)
    case "int":
      return int(o.name, o.env, o.description, o.fallback)
    case "repeated":
      return Flag.String(o.name).pipe(Flag.withDescription(described(o.description, o.env, o.fallbackText)), Flag.atLeast(0))
  }
}

/** The flags of `rds-csi node`. */
export const nodeFlags = Object.fromEntries(Object.entries(NODE_OPTIONS).map(([key, o]) => [key, toFlag(o)])) as {
  readonly [K in keyof NodeOptions]: Flag.Flag<ValueOf<NodeOptions[K]>>
}
