/**
 * One RouterOS command line → an AST, for the RDS emulator. Pure. Covers the subset a CSI
 * controller sends (docs: /work/shared/reference/routeros/README.md):
 *
 *   /disk add k=v ...                       /disk print detail [where COND ...]
 *   /disk set [find COND ...] k=v ...       /disk remove [find COND ...] | 0,1 | numbers=0
 *   /file print detail [where COND ...]     /file remove [find COND ...]
 *   /system resource print
 *
 * Menus may be separated by spaces or slashes (`/disk/print`); the leading `/` is optional.
 * COND is `key=value`, `key!=value` or `key~regex`; several are and-ed (with or without `and`).
 * Values are bare (up to white space or `]`) or quoted ("...", with RouterOS's backslash escapes).
 * Errors carry RouterOS's own texts and 1-based columns: `syntax error (line 1 column N)`,
 * `bad command name X (line 1 column N)`, `expected end of command (line 1 column N)`.
 * Argument *values* are checked by the interpreter, not here. Not supported (answered as
 * RouterOS answers unknown input): abbreviations (`/dis pr`), `;`-separated commands, scripting.
 *
 * May import: effect, emulator/CommandScanner.
 */
import { Result } from "effect"
import { expectedEnd, isSpace, ParseError, Scanner, syntax } from "./CommandScanner.ts"

export { ParseError } from "./CommandScanner.ts"

export type MenuName = "disk" | "file" | "system/resource"

export interface Condition {
  readonly key: string
  readonly op: "=" | "!=" | "~"
  readonly value: string
  readonly column: number
}

export interface Arg {
  readonly key: string
  readonly value: string
  readonly column: number
}

/** Which items `set`/`remove` act on: `[find ...]`, or item numbers (`0,1`, `*1A`, `numbers=0`). */
export type Target =
  | { readonly _tag: "Find"; readonly where: ReadonlyArray<Condition> }
  | { readonly _tag: "Numbers"; readonly items: ReadonlyArray<string>; readonly column: number }

export type Parsed =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Print"; readonly menu: MenuName; readonly detail: boolean; readonly where: ReadonlyArray<Condition> }
  | { readonly _tag: "Add"; readonly menu: "disk"; readonly args: ReadonlyArray<Arg> }
  | { readonly _tag: "Set"; readonly menu: "disk"; readonly target: Target; readonly args: ReadonlyArray<Arg> }
  | { readonly _tag: "Remove"; readonly menu: "disk" | "file"; readonly target: Target }

// ---------------------------------------------------------------------------- grammar

/** The properties `print detail` shows for a disk, in RouterOS's order (README single-disk sample). */
export const DISK_FIELDS = [
  "type", "slot", "slot-default", "parent", "fs", "model", "size", "mount-filesystem", "mount-read-only",
  "compress", "sector-size", "raid-master", "nvme-tcp-export", "nvme-tcp-server-port", "nvme-tcp-server-nqn",
  "nvme-tcp-server-allow-host-name", "iscsi-export", "nfs-sharing", "smb-sharing", "media-sharing",
  "media-interface", "swap", "file-path", "file-size", "file-offset"
] as const

export const DISK_ADD_KEYS: ReadonlyArray<string> = [
  "type", "file-path", "file-size", "slot", "nvme-tcp-export", "nvme-tcp-server-port", "nvme-tcp-server-nqn",
  "nvme-tcp-server-allow-host-name"
]
export const DISK_SET_KEYS: ReadonlyArray<string> = ["file-size", "nvme-tcp-server-allow-host-name", "nvme-tcp-export"]
/** Keys a `where` may test: disks (and the pool record the disk menu also lists), files. */
export const DISK_WHERE_KEYS: ReadonlyArray<string> = [...DISK_FIELDS, "mount-point", "name", "free", "use", "creation-time"]
export const FILE_WHERE_KEYS: ReadonlyArray<string> = ["name", "type", "size", "creation-time"]

type CommandName = "add" | "print" | "set" | "remove"
interface MenuNode {
  readonly children: Readonly<Record<string, MenuNode>>
  readonly menu?: MenuName
  readonly commands: ReadonlyArray<CommandName>
}
const TREE: MenuNode = {
  commands: [],
  children: {
    disk: { menu: "disk", commands: ["add", "print", "set", "remove"], children: {} },
    file: { menu: "file", commands: ["print", "remove"], children: {} },
    system: { commands: [], children: { resource: { menu: "system/resource", commands: ["print"], children: {} } } }
  }
}
const whereKeys = (menu: MenuName): ReadonlyArray<string> =>
  menu === "disk" ? DISK_WHERE_KEYS : menu === "file" ? FILE_WHERE_KEYS : []

// ---------------------------------------------------------------------------- parser

/** Conditions up to the end of the line, or up to `]` when `inBrackets`. */
const conditions = (sc: Scanner, menu: MenuName, inBrackets: boolean): Result.Result<ReadonlyArray<Condition>, ParseError> => {
  const out: Array<Condition> = []
  const keys = whereKeys(menu)
  for (;;) {
    sc.skipWs()
    if (sc.eof || (inBrackets && sc.peek() === "]")) break
    const column = sc.column
    const key = sc.word()
    if (key === "") return Result.fail(syntax(column))
    if (key === "and" && out.length > 0) continue
    if (!keys.includes(key)) return Result.fail(expectedEnd(column))
    const c = sc.peek()
    let op: Condition["op"]
    if (c === "=" || c === "~") op = c
    else if (sc.s.startsWith("!=", sc.i)) op = "!="
    else return Result.fail(syntax(sc.column))
    sc.i += op.length
    const value = sc.value()
    if (Result.isFailure(value)) return Result.fail(value.failure)
    out.push({ key, op, value: value.success, column })
  }
  return out.length === 0 ? Result.fail(syntax(sc.column)) : Result.succeed(out)
}

const args = (sc: Scanner, allowed: ReadonlyArray<string>): Result.Result<ReadonlyArray<Arg>, ParseError> => {
  const out: Array<Arg> = []
  for (;;) {
    sc.skipWs()
    if (sc.eof) return Result.succeed(out)
    const column = sc.column
    const key = sc.word()
    if (key === "" || !allowed.includes(key)) return Result.fail(key === "" ? syntax(column) : expectedEnd(column))
    if (sc.peek() !== "=") return Result.fail(syntax(sc.column))
    sc.i++
    const value = sc.value()
    if (Result.isFailure(value)) return Result.fail(value.failure)
    out.push({ key, value: value.success, column })
  }
}

const NUMBERS = /^(\d+|\*[0-9A-Fa-f]+)(,(\d+|\*[0-9A-Fa-f]+))*$/

/** `[find ...]`, `0,1,*1A` or `numbers=...`: the items `set`/`remove` act on. */
const target = (sc: Scanner, menu: MenuName): Result.Result<Target, ParseError> => {
  sc.skipWs()
  const column = sc.column
  if (sc.peek() === "[") {
    sc.i++
    sc.skipWs()
    const fc = sc.column
    const f = sc.word()
    if (f !== "find") return Result.fail(f === "" ? syntax(fc) : new ParseError({ kind: "BadCommand", column: fc, word: f }))
    sc.skipWs()
    const wc = sc.i
    if (sc.word() !== "where") sc.i = wc
    const where = conditions(sc, menu, true)
    if (Result.isFailure(where)) return Result.fail(where.failure)
    if (sc.peek() !== "]") return Result.fail(syntax(sc.column))
    sc.i++
    return Result.succeed({ _tag: "Find", where: where.success })
  }
  let list = sc.word()
  if (list === "numbers") {
    if (sc.peek() !== "=") return Result.fail(syntax(sc.column))
    sc.i++
    const v = sc.value()
    if (Result.isFailure(v)) return Result.fail(v.failure)
    list = v.success
  }
  if (!NUMBERS.test(list)) return Result.fail(list === "" ? syntax(column) : expectedEnd(column))
  return Result.succeed({ _tag: "Numbers", items: list.split(","), column })
}

const endOfLine = (sc: Scanner): Result.Result<void, ParseError> => {
  sc.skipWs()
  return sc.eof ? Result.succeed(undefined) : Result.fail(expectedEnd(sc.column))
}

const print = (sc: Scanner, menu: MenuName): Result.Result<Parsed, ParseError> => {
  let detail = false
  for (;;) {
    sc.skipWs()
    if (sc.eof) return Result.succeed({ _tag: "Print", menu, detail, where: [] })
    const column = sc.column
    const w = sc.word()
    if (w === "detail" && menu !== "system/resource") detail = true
    else if (w === "without-paging") continue
    else if (w === "where" && menu !== "system/resource") {
      const where = conditions(sc, menu, false)
      return Result.map(where, (c): Parsed => ({ _tag: "Print", menu, detail, where: c }))
    } else return Result.fail(w === "" ? syntax(column) : expectedEnd(column))
  }
}

/** Parses one command line (no newline inside). */
export const parseCommandLine = (line: string): Result.Result<Parsed, ParseError> => {
  const sc = new Scanner(line.replace(/[\r\n]+$/, ""))
  sc.skipWs()
  if (sc.peek() === "/") sc.i++
  let node = TREE
  for (;;) {
    sc.skipWs()
    if (sc.eof) return Result.succeed({ _tag: "Empty" })
    const column = sc.column
    const w = sc.word()
    if (w === "") return Result.fail(syntax(column))
    const child = node.children[w]
    const command = node.commands.find((c) => c === w)
    if (child !== undefined) {
      node = child
      if (sc.peek() === "/") sc.i++
      else if (!sc.eof && !isSpace(sc.peek())) return Result.fail(syntax(sc.column))
      continue
    }
    if (command === undefined || node.menu === undefined) return Result.fail(new ParseError({ kind: "BadCommand", column, word: w }))
    if (!sc.eof && !isSpace(sc.peek())) return Result.fail(syntax(sc.column))
    const menu = node.menu
    switch (command) {
      case "print":
        return print(sc, menu)
      case "add":
        return Result.map(args(sc, DISK_ADD_KEYS), (a): Parsed => ({ _tag: "Add", menu: "disk", args: a }))
      case "set": {
        const t = target(sc, menu)
        if (Result.isFailure(t)) return Result.fail(t.failure)
        return Result.map(args(sc, DISK_SET_KEYS), (a): Parsed => ({ _tag: "Set", menu: "disk", target: t.success, args: a }))
      }
      case "remove": {
        const t = target(sc, menu)
        if (Result.isFailure(t)) return Result.fail(t.failure)
        const end = endOfLine(sc)
        if (Result.isFailure(end)) return Result.fail(end.failure)
        return Result.succeed({ _tag: "Remove", menu: menu === "file" ? "file" : "disk", target: t.success })
      }
    }
  }
}
