/**
 * The lexical side of a RouterOS command line, for the emulator's parser (CommandLine.ts): a
 * scanner over one line (words, bare and quoted values with RouterOS's backslash escapes) and
 * ParseError, the refusal RouterOS prints, with its own texts and 1-based columns.
 *
 * May import: effect.
 */
import { Data, Result } from "effect"

/** A line RouterOS would refuse before running anything; `message` is RouterOS's text. */
export class ParseError extends Data.TaggedError("ParseError")<{
  readonly kind: "Syntax" | "BadCommand" | "ExpectedEnd"
  readonly column: number
  readonly word: string
}> {
  override get message(): string {
    const at = `(line 1 column ${this.column})`
    switch (this.kind) {
      case "Syntax":
        return `syntax error ${at}`
      case "BadCommand":
        return `bad command name ${this.word} ${at}`
      case "ExpectedEnd":
        return `expected end of command ${at}`
    }
  }
}

const ESCAPES: Readonly<Record<string, string>> = {
  "\"": "\"", "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "a": "\x07", "b": "\b", "f": "\f", "v": "\v",
  "$": "$", "?": "?", "_": " "
}
export const isSpace = (c: string | undefined) => c === " " || c === "\t"
const WORD = /[A-Za-z0-9._*,-]/

export class Scanner {
  i = 0
  readonly s: string
  constructor(s: string) {
    this.s = s
  }
  get eof(): boolean {
    return this.i >= this.s.length
  }
  peek(): string | undefined {
    return this.s[this.i]
  }
  get column(): number {
    return this.i + 1
  }
  skipWs(): void {
    while (isSpace(this.peek())) this.i++
  }
  /** A run of name characters (menu, command, key, bare number list). */
  word(): string {
    const start = this.i
    while (!this.eof && WORD.test(this.s[this.i]!)) this.i++
    return this.s.slice(start, this.i)
  }
  /** A value: quoted, or bare up to white space or `]`. */
  value(): Result.Result<string, ParseError> {
    if (this.peek() !== "\"") {
      const start = this.i
      while (!this.eof && !isSpace(this.peek()) && this.peek() !== "]" && this.peek() !== "\"" && this.peek() !== ";") this.i++
      return Result.succeed(this.s.slice(start, this.i))
    }
    this.i++
    let out = ""
    for (;;) {
      if (this.eof) return Result.fail(syntax(this.s.length + 1))
      const c = this.s[this.i]!
      if (c === "\"") {
        this.i++
        const after = this.peek()
        if (after !== undefined && !isSpace(after) && after !== "]") return Result.fail(syntax(this.column))
        return Result.succeed(out)
      }
      if (c !== "\\") {
        out += c
        this.i++
        continue
      }
      const next = this.s[this.i + 1]
      const hex = this.s.slice(this.i + 1, this.i + 3)
      if (next !== undefined && ESCAPES[next] !== undefined) {
        out += ESCAPES[next]
        this.i += 2
      } else if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out += String.fromCharCode(parseInt(hex, 16))
        this.i += 3
      } else {
        return Result.fail(syntax(this.column))
      }
    }
  }
}

export const syntax = (column: number) => new ParseError({ kind: "Syntax", column, word: "" })
export const expectedEnd = (column: number) => new ParseError({ kind: "ExpectedEnd", column, word: "" })
