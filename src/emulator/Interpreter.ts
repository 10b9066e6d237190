/**
 * The RDS emulator's RouterOS shell, as a pure function: a state and one command line in; the
 * printed output, the exit status, the next state and the Actions a backend must carry out
 * (nothing is done here). The daemon applies the actions, then commits the state.
 *
 * Output rules (README): errors print one line and exit 1 — parse errors with RouterOS's
 * texts, `failure: ...` for refused changes, `no such item` for a number naming nothing;
 * `[find ...]` matching nothing is a silent success. `print detail` of a `where` made only of
 * `=` tests matching exactly one item prints it without an index (the captured single-disk
 * sample); every other listing is indexed. With `flags` (a control switch, off by default as in
 * the captured samples) listings are always indexed under a `Flags:` header.
 *
 * May import: effect, ./Backend (types), ./CommandLine, ./Model, ./Records, ./Render, ./Mutations.
 */
import { Result } from "effect"
import type { Action } from "./Backend.ts"
import { type Condition, parseCommandLine, type Target } from "./CommandLine.ts"
import { type EmulatorState, formatUptime } from "./Model.ts"
import { addDisk, type Change, removeDisks, removeFiles, setDisks } from "./Mutations.ts"
import { DISK_BREAK_BEFORE, DISK_FLAGS, diskItems, fileItems, filterItems, type Item } from "./Records.ts"
import { formatSize, renderDetail, renderItem } from "./Render.ts"

export interface ExecContext {
  /** Epoch milliseconds, for creation times. */
  readonly now: number
  /** When the emulator started (uptime). */
  readonly bootedAt: number
  /** Print listings RouterOS-7 style: `Flags:` header, flag letters, always indexed. */
  readonly flags: boolean
}

export interface Outcome {
  /** What the command printed, `\n`-terminated lines; `""` for none. */
  readonly output: string
  readonly exitCode: number
  readonly state: EmulatorState
  readonly actions: ReadonlyArray<Action>
}

const failed = (state: EmulatorState, text: string): Outcome => ({ output: `${text}\n`, exitCode: 1, state, actions: [] })
const printed = (state: EmulatorState, output: string): Outcome => ({ output, exitCode: 0, state, actions: [] })

const list = (items: ReadonlyArray<Item>, where: ReadonlyArray<Condition>, disk: boolean, ctx: ExecContext): Result.Result<string, string> =>
  Result.map(filterItems(items, where), (matched) => {
    const exact = where.length > 0 && where.every((c) => c.op === "=") && matched.length === 1
    const indexed = ctx.flags || !exact
    return renderDetail(matched.map((i) => i.record), {
      indexed,
      breakBefore: (key, n) => matched[n]?.ref._tag === "Disk" && DISK_BREAK_BEFORE.has(key),
      ...(ctx.flags ? { flags: { legend: disk ? DISK_FLAGS : [], letters: matched.map((i) => i.flags) } } : {})
    })
  })

/** `/system resource print`: a plausible RDS2216 (values are fixed but for uptime and the pool). */
const resource = (ctx: ExecContext): string =>
  renderItem([
    ["uptime", formatUptime(ctx.now - ctx.bootedAt)],
    ["version", "7.19.4 (stable)"],
    ["build-time", "2025-07-28 10:54:11"],
    ["factory-software", "7.16"],
    ["free-memory", formatSize(29 * 2 ** 30 + 412 * 2 ** 20)],
    ["total-memory", formatSize(32 * 2 ** 30)],
    ["cpu", "ARM64"],
    ["cpu-count", "16"],
    ["cpu-load", "1%"],
    ["architecture-name", "arm64"],
    ["board-name", "RDS2216"],
    ["platform", "MikroTik"]
  ])

/** The items a `set`/`remove` acts on, or `no such item`. */
export const resolveTarget = (items: ReadonlyArray<Item>, target: Target): Result.Result<ReadonlyArray<Item>, string> => {
  if (target._tag === "Find") return filterItems(items, target.where)
  const out: Array<Item> = []
  for (const n of target.items) {
    const item = n.startsWith("*")
      ? items.find((i) => i.ref._tag === "Disk" && i.ref.id === parseInt(n.slice(1), 16))
      : items[Number(n)]
    if (item === undefined) return Result.fail("no such item")
    if (!out.includes(item)) out.push(item)
  }
  return Result.succeed(out)
}

const applyChange = (state: EmulatorState, change: Change): Outcome =>
  Result.isFailure(change)
    ? failed(state, change.failure)
    : { output: "", exitCode: 0, state: change.success.state, actions: change.success.actions }

/** Runs one command line against `state`. Never throws. */
export const execute = (state: EmulatorState, line: string, ctx: ExecContext): Outcome => {
  const parsed = parseCommandLine(line)
  if (Result.isFailure(parsed)) return failed(state, parsed.failure.message)
  const cmd = parsed.success
  switch (cmd._tag) {
    case "Empty":
      return printed(state, "")
    case "Print": {
      if (cmd.menu === "system/resource") return printed(state, resource(ctx))
      if (!cmd.detail) return failed(state, "failure: the RDS emulator prints only `print detail`")
      const out = list(cmd.menu === "disk" ? diskItems(state) : fileItems(state), cmd.where, cmd.menu === "disk", ctx)
      return Result.isFailure(out) ? failed(state, out.failure) : printed(state, out.success)
    }
    case "Add":
      return applyChange(state, addDisk(state, cmd.args, ctx.now))
    case "Set": {
      const targets = resolveTarget(diskItems(state), cmd.target)
      if (Result.isFailure(targets)) return failed(state, targets.failure)
      return applyChange(state, setDisks(state, targets.success, cmd.args))
    }
    case "Remove": {
      const targets = resolveTarget(cmd.menu === "disk" ? diskItems(state) : fileItems(state), cmd.target)
      if (Result.isFailure(targets)) return failed(state, targets.failure)
      return applyChange(state, cmd.menu === "disk" ? removeDisks(state, targets.success) : removeFiles(state, targets.success))
    }
  }
}
