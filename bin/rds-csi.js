#!/usr/bin/env -S node --max-semi-space-size=1
// Entry point of the `rds-csi` command. It runs the bundled build (dist/, made by
// `npm run build`: tree-shaken chunks, no TypeScript stripping at start-up, a third of the
// memory) when there is one, and the TypeScript sources directly (Node 24 strips the types)
// when there is none or RDS_CSI_FROM_SOURCE=1. In a checkout, a dist/ older than src/ is
// reported (not silently run) a few seconds after start: walking src/ costs ~0.8 s of start-up
// under emulation, which the plugin's readiness must not pay (npm scripts build first). A 1 MiB young generation keeps the
// long-running plugin's heap small (SPEC §8: RSS idle ≤ 80 MiB); V8 takes it only at process
// start, so `node bin/rds-csi.js` needs NODE_OPTIONS=--max-semi-space-size=1 (the DaemonSet sets it).
import { accessSync, constants, cpSync, existsSync, readdirSync, statSync } from "node:fs"
import { readdir, stat } from "node:fs/promises"
import { enableCompileCache } from "node:module"
import { tmpdir } from "node:os"

const [major] = process.versions.node.split(".").map(Number)
if (major < 24) {
  process.stderr.write(
    `rds-csi needs Node.js 24 or newer (this is ${process.version}); run it through npx or npm scripts, which use the node@24 devDependency.\n`
  )
  process.exit(1)
}

const root = new URL("..", import.meta.url)
const bundle = new URL("dist/rds-csi.mjs", root)

/** Newest modification time under `dir` (ms), for the staleness check of dist/. */
const newest = async (dir) => {
  let t = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) t = Math.max(t, (await stat(`${e.parentPath}/${e.name}`)).mtimeMs)
  }
  return t
}

const useBundle = process.env.RDS_CSI_FROM_SOURCE !== "1" && existsSync(bundle)
// RDS_CSI_STALE_CHECK=0 skips it where a checkout runs the plugin as the image does (the image has
// no src/): the e2e harness and the benches, whose timings the walk would otherwise land in.
if (useBundle && process.env.RDS_CSI_STALE_CHECK !== "0" && existsSync(new URL("src", root))) {
  setTimeout(() => {
    newest(new URL("src", root).pathname).then((t) => {
      if (statSync(bundle).mtimeMs < t) process.stderr.write("rds-csi: WARNING: dist/ is older than src/: this runs the old build (npm run build refreshes it)\n")
    }, () => {})
  }, 5000).unref()
}
// V8's code cache for the bundle: a start skips compiling it (seconds under emulation).
// `npm run build` leaves one next to the bundle (dist/.compile-cache), so even a node's first
// start is not a cold one. Where dist/ is writable (a checkout) Node reads and extends it in
// place; where it is not (the image's read-only root) it is copied once into the temp dir, which
// then keeps what later starts compile too (the controller's chunks, which the build does not
// run). NODE_COMPILE_CACHE, when set, wins, and is seeded the same way when it holds no file yet.
const seed = (dir, shipped) => {
  try {
    // Node has already made its versioned subdirectory when NODE_COMPILE_CACHE is set: "empty" =
    // no file in it yet (two short listings, not a recursive walk: this runs on every start).
    const empty = !existsSync(dir) || readdirSync(dir).every((sub) => {
      try {
        return readdirSync(`${dir}/${sub}`).length === 0
      } catch {
        return false // a file: not empty
      }
    })
    if (empty && existsSync(shipped)) cpSync(shipped, dir, { recursive: true })
  } catch {
    // a read-only or missing directory: start without the seed
  }
}
const writable = (dir) => {
  try {
    accessSync(dir, constants.W_OK)
    return true
  } catch {
    return false
  }
}
if (useBundle) {
  const shipped = new URL("dist/.compile-cache", root).pathname
  const dir = process.env.NODE_COMPILE_CACHE
  if (dir !== undefined && dir !== "") seed(dir, shipped)
  else if (existsSync(shipped) && writable(shipped)) enableCompileCache(shipped)
  else {
    const tmp = `${tmpdir()}/rds-csi-compile-cache`
    seed(tmp, shipped)
    enableCompileCache(tmp)
  }
}
// `rds-csi node` with a plain command line (what the DaemonSet gives) starts without the CLI
// library and the other commands (src/nodeEntry.ts); any other line, or one it does not take
// (help, a mistake), goes to the full CLI.
const fast = process.argv[2] === "node" &&
  (await import(useBundle ? new URL("dist/node.mjs", root).href : new URL("src/nodeEntry.ts", root).href)).runNodeFast(process.argv.slice(3), process.env, useBundle ? "bundle" : "sources")
if (!fast) (await import(useBundle ? bundle.href : new URL("src/cli.ts", root).href)).runCli()
