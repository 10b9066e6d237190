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
 * Without V8's code cache in the blob (Node's `withoutCodeCache`): 3.7 MB instead of 8.5, and an
 * idle plugin ~4 MiB smaller in RSS (Node keeps the blob in memory, and a code cache of its
 * built-ins too), for ~0.3 s more start-up under TCG (those built-ins compile from source).
 * RDS_CSI_SNAPSHOT_CODE_CACHE=1 builds it with, for the comparison (bench/README.md).
 */
const WITH_CODE_CACHE = process.env.RDS_CSI_SNAPSHOT_CODE_CACHE === "1"

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
  writeFileSync(builderConfig, JSON.stringify({ builder: `${dist}/snapshot-entry.cjs`, withoutCodeCache: !WITH_CODE_CACHE }))
  try {
    // --jitless as the DaemonSet runs it: nothing compiled for a JIT goes into the heap.
    execFileSync(process.execPath, ["--jitless", "--snapshot-blob", `${dist}/node.blob`, "--build-snapshot-config", builderConfig], {
      cwd: dist,
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "inherit", "inherit"]
    })
  } finally {
    rmSync(builderConfig, { force: true })
  }
}
