// The node plugin's V8 start-up snapshot, dist/node.blob (scripts/build.mjs calls this after the
// ES build). A start from it begins with Effect, gRPC, protobufjs and our modules already
// evaluated in the heap instead of reading, compiling and running ~480 KB of JavaScript: issue 12
// measured the start-up path at ~0.3–0.6 s less to "ready" under TCG (bench/README.md).
//
// What it is built from: the CommonJS build of src/nodeEntry.ts (dist/snapshot-*.cjs, the same
// rolldown configuration as the ES build, in the format a snapshot builder can evaluate) and
// scripts/snapshot-entry.cjs, which loads those chunks and sets the main function. The DaemonSet
// starts the plugin with NODE_OPTIONS naming the blob; without it, bin/rds-csi.js runs the ES
// build as before. A blob only loads in the Node it was built by (same release, checked by
// Node): the image builds it in its build stage on the same base image, a checkout with
// `npm run build`, both at the path they run from (the chunks' module-level paths are fixed in it;
// from elsewhere the main function runs the script as if there were no blob).
import { execFileSync } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { build } from "rolldown"
import config from "../rolldown.config.mjs"

/**
 * The built-ins' code cache. Node builds the blob with V8's code cache of every built-in module
 * (388 in Node 24.21, 3.4 MB), and keeps all of it in memory in every process started from the
 * blob. Without it (Node's `withoutCodeCache`) the ~80 built-ins the plugin loads after the
 * start (http2, tls, net, child_process and their internals) compile from source: ~0.8 s of a
 * start under TCG (bench/README.md, round 7). So the build keeps the cache and trims it to the
 * built-ins one real start compiled (scripts/build.mjs: `trimCodeCache` with the ids from
 * `compiledBuiltins`): ~0.5 MB. (With a code cache Node also keeps the bytecode V8 holds when
 * the blob is made, FunctionCodeHandling::kKeep rather than kClear: ~0.9 MB more V8 data.)
 * RDS_CSI_SNAPSHOT_CODE_CACHE=none builds the blob without any (the comparison in
 * bench/README.md), =all keeps every entry.
 */
export const codeCacheMode = (value) => {
  if (value === undefined || value === "") return "trim"
  if (value === "trim" || value === "all" || value === "none") return value
  throw new Error(`RDS_CSI_SNAPSHOT_CODE_CACHE: must be trim, all or none (got '${value}')`)
}
export const CODE_CACHE = codeCacheMode(process.env.RDS_CSI_SNAPSHOT_CODE_CACHE)

/**
 * The V8 flags the blob is built with and every start from it runs with (the DaemonSet's
 * --jitless): nothing compiled for a JIT goes into the heap, and the built-ins' code cache is
 * only accepted by a process with the same flags (V8's flag hash).
 */
export const BLOB_V8_FLAGS = ["--jitless"]

const MAGIC = 0x0143da19
const WITHOUT_CODE_CACHE = 1

/**
 * Where the built-ins' code cache sits in a blob, in the layout of Node's SnapshotData::ToBlob
 * (src/node_snapshotable.cc): a u32 magic; the metadata (a u8 type, the Node version, arch and
 * platform as u64-length strings, u32 flags); V8's startup data (i32 size, bytes); Node's
 * isolate and environment records; last, the code cache: a u64 count, then per built-in its id
 * and its data, each a u64 length and bytes. The records between V8's data and the code cache
 * have no length of their own, so the cache is found as the one place from which a walk of
 * well-formed entries ends exactly at the end of the file. Throws, naming what did not match,
 * for any other layout: the blob is only ever read by the Node that wrote it.
 */
export const codeCacheOf = (blob) => {
  const fail = (what) => {
    throw new Error(`${what}: not the start-up snapshot layout of Node 24 (scripts/snapshot.mjs codeCacheOf)`)
  }
  if (blob.length < 64 || blob.readUInt32LE(0) !== MAGIC) fail("bad magic")
  let at = 5
  const string = () => {
    const length = Number(blob.readBigUInt64LE(at))
    const text = blob.toString("latin1", at + 8, at + 8 + length)
    at += 8 + length
    return text
  }
  const version = string()
  const arch = string()
  const platform = string()
  if (`v${version}` !== process.version || arch !== process.arch || platform !== process.platform) {
    fail(`made by Node ${version} ${arch} ${platform}, read by ${process.version} ${process.arch} ${process.platform}`)
  }
  const flags = blob.readUInt32LE(at)
  const v8End = at + 8 + blob.readInt32LE(at + 4)
  const u64 = (offset) => offset + 8 <= blob.length ? Number(blob.readBigUInt64LE(offset)) : -1
  const walk = (start) => {
    const count = u64(start)
    if (count < 0 || count > 4096) return undefined
    const entries = []
    let offset = start + 8
    for (let i = 0; i < count; i++) {
      const idLength = u64(offset)
      if (idLength < 1 || idLength > 256 || offset + 8 + idLength > blob.length) return undefined
      const id = blob.toString("latin1", offset + 8, offset + 8 + idLength)
      if (!/^[a-z0-9_./-]+$/i.test(id)) return undefined
      const size = u64(offset + 8 + idLength)
      const end = offset + 16 + idLength + size
      if (size < 0 || end > blob.length) return undefined
      entries.push({ id, begin: offset, end, size })
      offset = end
    }
    return offset === blob.length ? entries : undefined
  }
  for (let start = v8End; start <= blob.length - 8; start++) {
    const entries = walk(start)
    if (entries !== undefined) return { withoutCodeCache: (flags & WITHOUT_CODE_CACHE) !== 0, start, entries }
  }
  return fail("no code cache ends the file")
}

/**
 * Rewrites the blob at `file` keeping the code cache of the built-ins in `keep` only; returns
 * the entries kept and dropped. The rest of the blob is byte for byte the same.
 */
export const trimCodeCache = (file, keep) => {
  const blob = readFileSync(file)
  const { start, entries, withoutCodeCache } = codeCacheOf(blob)
  if (withoutCodeCache) throw new Error(`${file} was built without a code cache: nothing to trim`)
  const kept = entries.filter((e) => keep.has(e.id))
  const count = Buffer.alloc(8)
  count.writeBigUInt64LE(BigInt(kept.length))
  writeFileSync(file, Buffer.concat([blob.subarray(0, start), count, ...kept.map((e) => blob.subarray(e.begin, e.end))]))
  return { kept, dropped: entries.filter((e) => !keep.has(e.id)) }
}

/**
 * The built-ins a process compiled after its start, from its output under
 * NODE_DEBUG_NATIVE=CODE_CACHE (Node's lines "Compiling <id> with code cache" and "… without
 * code cache").
 */
export const compiledBuiltins = (output) =>
  new Set([...output.matchAll(/^Compiling (\S+) with(?:out)? code cache/gm)].map((m) => m[1]))

/** Every built-in module's export names, from a plain process of this Node (the builder may not load most of them). */
const builtinNames = () =>
  execFileSync(process.execPath, ["--no-warnings", "-e", `
    const { builtinModules } = require("node:module")
    const names = {}
    for (const id of builtinModules) {
      try { names[id.replace(/^node:/, "")] = Object.getOwnPropertyNames(process.getBuiltinModule(id)) } catch {}
    }
    process.stdout.write(JSON.stringify(names))`], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } })

/** Builds dist/snapshot-*.cjs and dist/node.blob under `root` (a path ending in "/"). */
export const buildSnapshot = async (root) => {
  const dist = `${root}dist`
  await build({
    ...config,
    input: { "snapshot-node": "src/nodeEntry.ts" },
    output: { ...config.output, format: "cjs", entryFileNames: "[name].cjs", chunkFileNames: "snapshot-[name]-[hash].cjs" }
  })
  const entry = readFileSync(`${root}scripts/snapshot-entry.cjs`, "utf8")
    .replace(`/* @DIST@ */ ""`, JSON.stringify(dist))
    .replace("/* @BUILTINS@ */ {}", builtinNames())
  writeFileSync(`${dist}/snapshot-entry.cjs`, entry)
  const builderConfig = `${dist}/snapshot-config.json`
  writeFileSync(builderConfig, JSON.stringify({ builder: `${dist}/snapshot-entry.cjs`, withoutCodeCache: CODE_CACHE === "none" }))
  try {
    execFileSync(process.execPath, [...BLOB_V8_FLAGS, "--snapshot-blob", `${dist}/node.blob`, "--build-snapshot-config", builderConfig], {
      cwd: dist,
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "inherit", "inherit"]
    })
  } finally {
    rmSync(builderConfig, { force: true })
  }
  // What bin/rds-csi.js checks before it starts `rds-csi node` from the blob on its own.
  writeFileSync(`${dist}/node.blob.json`, JSON.stringify({ node: process.version, arch: process.arch, platform: process.platform, dist }) + "\n")
}
