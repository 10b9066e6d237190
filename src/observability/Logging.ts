/**
 * Structured JSON logs, one object per line on stdout: time, level, message, then the log
 * annotations flattened (volume, nqn, node, rpc, duration, ...), span durations in ms, and the
 * cause when there is one. Minimum level from settings.
 *
 * May import: Settings.
 */
import { Cause, Layer, Logger, References } from "effect"
import type { NodeSettings } from "../Settings.ts"

const LEVELS = { trace: "Trace", debug: "Debug", info: "Info", warn: "Warn", error: "Error" } as const

const render = (value: unknown): unknown => {
  if (value instanceof Error) return value.message
  if (typeof value === "bigint") return value.toString()
  return value
}

/** One JSON line per log call; extra message parts beyond the first go to `details`. */
export const jsonLogger = Logger.make<unknown, void>(({ message, logLevel, cause, fiber, date }) => {
  const parts = Array.isArray(message) ? message : [message]
  const [first, ...rest] = parts
  const line: Record<string, unknown> = {
    time: date.toISOString(),
    level: logLevel.toLowerCase(),
    message: typeof first === "string" ? first : JSON.stringify(render(first))
  }
  for (const [k, v] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) line[k] = render(v)
  const now = date.getTime()
  for (const span of fiber.getRef(References.CurrentLogSpans)) line[`${span[0]}_ms`] = now - span[1]
  if (rest.length > 0) line["details"] = rest.map(render)
  if (cause.reasons.length > 0) line["cause"] = Cause.pretty(cause)
  process.stdout.write(`${JSON.stringify(line)}\n`)
})

/** Replaces the default logger with the JSON one at the configured minimum level. */
export const layer = (settings: Pick<NodeSettings, "logLevel">): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.layer([jsonLogger]),
    Layer.succeed(References.MinimumLogLevel, LEVELS[settings.logLevel])
  )
