/**
 * bench/memory/heap.ts: a V8 .heapsnapshot split by part of the program (effect, gRPC +
 * protobufjs, client-node, undici, our src, Node's own modules, ...). Two kinds of memory are
 * attributed, the rest of the heap is reported as data:
 *  - source: each Script's source string (V8 keeps it for lazy compilation). A bundled chunk is
 *    split by its source map, line by line, between the files its lines come from.
 *  - code: each function's SharedFunctionInfo, closures and what hangs off them through V8's
 *    internal edges (bytecode, constant pools, scope infos, feedback), claimed once, breadth
 *    first. A function is placed by its closure's position through the chunk's source map (a
 *    chunk's top-level code and rolldown's helpers map to no file: their own row); a
 *    function that never got a closure falls to its chunk's parts pro rata.
 *
 * May import: node built-ins only.
 */
import { readFileSync } from "node:fs"
import { SourceMap } from "node:module"
import { fileURLToPath } from "node:url"

/** The part a file (an absolute path, node: URL or a bundle's source) belongs to. */
export const partOf = (file: string): string => {
  if (file === "" || file.startsWith("node:") || !file.includes("/")) return "Node.js internals"
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]
  if (pkg === undefined) return /\/(src|bin)\//.test(file) ? "rds-csi src" : "other"
  if (pkg === "effect" || pkg.startsWith("@effect/")) return "effect"
  if (/^(@grpc\/|protobufjs|@protobufjs\/|long$|lodash\.camelcase|@js-sdsl\/)/.test(pkg)) return "gRPC + protobufjs"
  if (pkg === "@kubernetes/client-node") return "client-node"
  if (pkg === "undici") return "undici (client-node's HTTP)"
  return `pkg ${pkg}`
}

export interface Split {
  readonly source: number
  readonly code: number
}
type Shares = ReadonlyArray<readonly [string, number]>

/**
 * How a script's lines divide between parts (bundles through their .map), and a line → part
 * lookup. The text is read from the file: a snapshot keeps only the first 1024 characters of a string.
 */
const scriptParts = (url: string) => {
  const file = url.startsWith("file:") ? fileURLToPath(url) : url
  let map: SourceMap | undefined, source: string | undefined
  try {
    if ((file.endsWith(".mjs") || file.endsWith(".cjs")) && file.includes("/dist/")) {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, "utf8")))
      source = readFileSync(file, "utf8")
    }
  } catch { map = undefined }
  if (map === undefined || source === undefined) return { shares: [[partOf(file), 1]] as Shares, at: (_l: number, _c: number) => partOf(file) }
  const at = (line: number, col: number) => {
    const e = map.findEntry(line, col) as { originalSource?: string }
    return e.originalSource === undefined ? "chunks: top-level code, bundler helpers" : partOf(e.originalSource)
  }
  const bytes = new Map<string, number>()
  source.split("\n").forEach((text, line) => {
    const p = at(line, Math.max(0, text.search(/\S/)))
    bytes.set(p, (bytes.get(p) ?? 0) + text.length + 1)
  })
  return { shares: [...bytes].map(([p, b]) => [p, b / source.length] as const), at }
}

/**
 * The file a nameless script was read from: the start-up snapshot's loader (scripts/snapshot-entry.cjs)
 * evaluates each chunk wrapped in a function, and such a script has no name in the heap, only its
 * source (of which a snapshot keeps the first 1024 characters).
 */
const WRAPPER = "(function (exports, require, module, __filename, __dirname) {"
/** Names a wrapped chunk's script by its source's start; each chunk file is read once. */
const chunkNamer = (chunks: ReadonlyArray<string>) => {
  const wrapped = chunks.map((file) => [file, `${WRAPPER}${readFileSync(file, "utf8")}`] as const)
  return (source: string): string | undefined =>
    source.startsWith(WRAPPER) ? wrapped.find(([, text]) => text.startsWith(source))?.[0] : undefined
}

/**
 * Source and code bytes by part, the heap's total (its self sizes), and the rest as data.
 * `chunks`: the start-up snapshot's chunk files (dist/snapshot-*.cjs), to name their scripts.
 */
export const attribute = (snapshotFile: string, chunks: ReadonlyArray<string> = []) => {
  const s = JSON.parse(readFileSync(snapshotFile, "utf8")) as {
    snapshot: { meta: { node_fields: Array<string>; edge_fields: Array<string>; node_types: [Array<string>]; edge_types: [Array<string>] } }
    nodes: Array<number>; edges: Array<number>; strings: Array<string>; locations: Array<number>
  }
  const { meta } = s.snapshot
  const chunkOf = chunkNamer(chunks)
  const NF = meta.node_fields.length, EF = meta.edge_fields.length, N = s.nodes, E = s.edges, S = s.strings
  const count = N.length / NF
  const type = (n: number) => meta.node_types[0][N[n * NF]!]!
  const name = (n: number) => S[N[n * NF + 1]!]!
  const size = (n: number) => N[n * NF + 3]!
  const firstEdge = new Uint32Array(count + 1)
  for (let n = 0, e = 0; n < count; n++) { firstEdge[n] = e; e += N[n * NF + 4]! * EF }
  firstEdge[count] = E.length
  const edgeType = (e: number) => meta.edge_types[0][E[e]!]!
  const edgeName = (e: number) => (edgeType(e) === "element" || edgeType(e) === "hidden" ? "" : S[E[e + 1]!]!)
  const target = (e: number) => E[e + 2]! / NF
  const edge = (n: number, label: string) => {
    for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += EF) if (edgeName(e) === label) return target(e)
    return undefined
  }

  const out = new Map<string, { source: number; code: number }>()
  const add = (part: string, kind: "source" | "code", bytes: number) => {
    const o = out.get(part) ?? { source: 0, code: 0 }
    o[kind] += bytes
    out.set(part, o)
  }
  const claimed = new Uint8Array(count)
  // Scripts: the targets of the SharedFunctionInfos' "script" edges.
  const scripts = new Map<number, ReturnType<typeof scriptParts>>()
  const scriptOf = new Map<number, number>() // SFI → Script
  for (let n = 0; n < count; n++) {
    if (type(n) !== "code") continue
    const sc = edge(n, "script")
    if (sc === undefined || type(sc) !== "code") continue
    scriptOf.set(n, sc)
    if (scripts.has(sc)) continue
    const src = edge(sc, "source")
    const parts = scriptParts(name(sc) !== "" || src === undefined ? name(sc) : chunkOf(name(src)) ?? "")
    scripts.set(sc, parts)
    for (const m of [sc, ...(src === undefined ? [] : [src]), ...[edge(sc, "line_ends")].filter((x) => x !== undefined)]) {
      claimed[m] = 1
      for (const [p, share] of parts.shares) add(p, m === src ? "source" : "code", size(m) * share)
    }
  }
  // Where each closure is (line, column), by node index.
  const position = new Map<number, readonly [number, number]>()
  for (let i = 0; i < s.locations.length; i += 4) position.set(s.locations[i]! / NF, [s.locations[i + 2]!, s.locations[i + 3]!])
  // Seeds: every SFI with a script, placed by the first of its closures that has a position.
  const placed = new Map<number, string>()
  for (let n = 0; n < count; n++) {
    if (type(n) !== "closure") continue
    const sfi = edge(n, "shared"), pos = position.get(n)
    if (sfi === undefined || pos === undefined || placed.has(sfi)) continue
    const sc = scriptOf.get(sfi)
    if (sc !== undefined) placed.set(sfi, scripts.get(sc)!.at(pos[0], pos[1]))
  }
  // Owner of a seed: a part, or a script whose parts share it. Breadth first over internal edges.
  const owner = new Map<number, string | number>()
  let queue: Array<number> = []
  for (const [sfi, sc] of scriptOf) { owner.set(sfi, placed.get(sfi) ?? sc); claimed[sfi] = 1; queue.push(sfi) }
  for (let n = 0; n < count; n++) {
    const sfi = type(n) === "closure" ? edge(n, "shared") : undefined
    if (sfi !== undefined && owner.has(sfi)) { owner.set(n, owner.get(sfi)!); claimed[n] = 1; queue.push(n) }
  }
  while (queue.length > 0) {
    const next: Array<number> = []
    for (const n of queue) {
      const o = owner.get(n)!
      const credit = (bytes: number) => {
        if (typeof o === "string") add(o, "code", bytes)
        else for (const [p, share] of scripts.get(o)!.shares) add(p, "code", bytes * share)
      }
      credit(size(n))
      for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += EF) {
        const t = target(e), ty = type(t)
        if (claimed[t] || edgeType(e) === "weak" || !(ty === "code" || ty === "hidden" || ty === "array")) continue
        if (type(n) === "closure" && edgeName(e) !== "feedback_cell") continue
        claimed[t] = 1
        owner.set(t, o)
        next.push(t)
      }
    }
    queue = next
  }
  let total = 0, attributed = 0
  for (let n = 0; n < count; n++) total += size(n)
  for (const v of out.values()) attributed += v.source + v.code
  return { parts: out, total, data: total - attributed }
}
