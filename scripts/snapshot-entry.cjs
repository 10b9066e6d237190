// The script V8's start-up snapshot of the node plugin (dist/node.blob) is built from:
// scripts/snapshot.mjs copies it into dist/ with the two constants below filled in and runs
// `node --build-snapshot-config` on it. It evaluates the CommonJS build of src/nodeEntry.ts
// (dist/snapshot-*.cjs: Effect, gRPC, protobufjs, our modules) so that a start from the blob
// begins with all of it in the heap, and sets what runs then.
//
// A snapshot builder's require() knows only Node's built-in modules, hence the small CommonJS
// loader for the chunks here. Built-ins other than fs, path and url are handed to the chunks as
// stand-ins that load the real module on first use, after the start: the builder cannot keep
// what node:http2, node:net or node:child_process hold (bindings, handles), and a chunk touching
// one while the snapshot is built fails the build with the module's name, rather than starting
// from a half-restored module.
//
// Started from the blob (NODE_OPTIONS=--snapshot-blob=…/dist/node.blob, which the DaemonSet
// sets), Node runs the main function at the bottom instead of the script it was given: for
// `node …/bin/rds-csi.js node <plain flags>` it starts the plugin from the heap; anything else
// (another command, a line the start-up path leaves to the full CLI, a bin/ that is not the one
// this dist/ belongs to) runs the script as Node would have without the blob.
"use strict"
/** dist/ where this was built (the chunks' module-level paths point there). */
const DIST = /* @DIST@ */ ""
/** Every built-in module's export names, read by scripts/snapshot.mjs in a plain Node process. */
const BUILTINS = /* @BUILTINS@ */ {}

const builtinRequire = require
const fs = builtinRequire("node:fs")
const path = builtinRequire("node:path")
const REAL_WHILE_BUILDING = new Set(["fs", "path", "url"])
/** Built-ins evaluated into the snapshot though the chunks do not touch them while it is built (below). */
const PRELOADED_BUILTINS = ["crypto", "net", "os", "fs/promises", "assert"]
let building = true
/** The require() of node_modules packages, once started (the builder has none). */
let packageRequire

const bare = (id) => id.startsWith("node:") ? id.slice(5) : id
const isBuiltin = (id) => id.startsWith("node:") || Object.hasOwn(BUILTINS, id)

/** A built-in that loads on first use after the start (its names are known before, for interop helpers). */
const deferredBuiltin = (id) => {
  let loaded
  const real = () => {
    if (building) {
      // One the snapshot holds anyway (PRELOADED_BUILTINS, below) may be called while it is built,
      // not kept: the warm-up's validation asks node:net whether an address is an IP.
      if (PRELOADED_BUILTINS.includes(bare(id))) return builtinRequire(id)
      throw new Error(`start-up snapshot: the chunks use built-in ${id} while the snapshot is built; it can only be used after the start`)
    }
    return (loaded ??= process.getBuiltinModule(id))
  }
  const names = BUILTINS[bare(id)] ?? []
  return new Proxy({}, {
    get: (_, key) => key === "__esModule" && building ? undefined : real()[key],
    has: (_, key) => building ? names.includes(key) : key in real(),
    ownKeys: () => building ? [...names] : Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_, key) => {
      if (building) return names.includes(key) ? { configurable: true, enumerable: true, writable: false, value: undefined } : undefined
      const d = Reflect.getOwnPropertyDescriptor(real(), key)
      return d === undefined ? undefined : { ...d, configurable: true }
    }
  })
}

const modules = new Map()
const load = (file) => {
  const known = modules.get(file)
  if (known !== undefined) return known.exports
  const module = { exports: {} }
  modules.set(file, module)
  const wrapped = (0, eval)(`(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, "utf8")}\n})\n//# sourceURL=${file}`)
  wrapped.call(module.exports, module.exports, requireFrom(file), module, file, path.dirname(file))
  return module.exports
}
const requireFrom = (from) => (id) => {
  if (isBuiltin(id)) {
    if (!building) return process.getBuiltinModule(id)
    return REAL_WHILE_BUILDING.has(bare(id)) ? builtinRequire(id) : deferredBuiltin(id)
  }
  if (id.startsWith("./") || id.startsWith("../")) return load(path.resolve(path.dirname(from), id))
  if (packageRequire === undefined) throw new Error(`start-up snapshot: ${from} requires ${id} while the snapshot is built (only the chunks of dist/ can be in it)`)
  return packageRequire(id)
}

const { runNodeFast, useStaticCodecs, warmUp } = load(path.join(DIST, "snapshot-node.cjs"))
// The CSI message codecs protobufjs generated (dist/proto/csi-codecs.cjs, 200 KB), evaluated
// here and the server's method definitions made from them: a start from the blob neither reads
// nor compiles them.
useStaticCodecs(load(path.join(DIST, "proto", "csi-codecs.cjs")))
// The first NodeStage, NodePublish, NodeUnpublish and NodeUnstage's pure code (codecs, validation,
// the stage record's schema) run once on made-up values (src/WarmUp.ts): the blob keeps its
// bytecode and the record schema's parser, which the first RPCs after a start would make.
warmUp()
// Built-ins every start loads (http2 brings tls, which brings all of node:crypto; the server's
// listen brings net; fs/promises, os and assert come with them), evaluated here so that they are
// in the heap a start deserializes instead of compiled and run at every start: on this host a
// start gets ready ~20 % sooner and ~0.7 MiB smaller (bench/README.md, round 8). These are the
// ones Node's builder accepts (lib/internal/main/mksnapshot.js); http2, tls, http, child_process
// and cluster it does not, so a start still loads those. The chunks keep their stand-ins for all
// of them (above): our code reaches a built-in only after the start either way.
for (const id of PRELOADED_BUILTINS) builtinRequire(id)

const sameFile = (a, b) => {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b)
  } catch {
    return false
  }
}

builtinRequire("node:v8").startupSnapshot.setDeserializeMainFunction(() => {
  building = false
  const script = process.argv[1]
  if (script === undefined) {
    // `node -e`, `node -p` or the REPL under NODE_OPTIONS naming this blob: nothing to run.
    process.stderr.write(`this Node starts from rds-csi's start-up snapshot (${path.join(DIST, "node.blob")}, named by NODE_OPTIONS), which runs scripts only: run -e, -p or the REPL with NODE_OPTIONS unset\n`)
    process.exit(9)
  }
  // node:module is taken when a package is first required (the Kubernetes client, after ready), not at the start.
  const Module = () => process.getBuiltinModule("node:module")
  if (process.argv[2] === "node" && sameFile(script, path.join(DIST, "..", "bin", "rds-csi.js"))) {
    let required
    packageRequire = (id) => (required ??= Module().createRequire(path.join(DIST, "snapshot-node.cjs")))(id)
    if (runNodeFast(process.argv.slice(3), process.env, "snapshot")) return
  }
  // As Node would have run it without the blob (bin/rds-csi.js then loads the ES build).
  Module().runMain(script)
})
