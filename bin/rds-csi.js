#!/usr/bin/env -S node --max-semi-space-size=1
// Entry point of the `rds-csi` command. It runs the bundled build (dist/, made by
// `npm run build`: tree-shaken chunks, no TypeScript stripping at start-up, a third of the
// memory) when there is one, and the TypeScript sources directly (Node 24 strips the types)
// when there is none or RDS_CSI_FROM_SOURCE=1. In a checkout, a dist/ older than src/ is
// reported (not silently run) a few seconds after start: walking src/ costs ~0.8 s of start-up
// under emulation, which the plugin's readiness must not pay (npm scripts build first). A 1 MiB young generation keeps the
// long-running plugin's heap small (SPEC §8: RSS idle ≤ 80 MiB); V8 takes it only at process
// start, so `node bin/rds-csi.js` needs NODE_OPTIONS=--max-semi-space-size=1 (the DaemonSet sets it).
// node:fs only, up to the restart from the blob below, and taken from Node rather than imported
// (an ES import of it reads its `promises` getter, which loads node:fs/promises, readline and
// os): the other modules load after that point, if at all.
const { accessSync, constants, cpSync, existsSync, readdirSync, readFileSync, realpathSync, statSync } = process.getBuiltinModule("node:fs")

const [major] = process.versions.node.split(".").map(Number)
if (major < 24) {
  process.stderr.write(
    `rds-csi needs Node.js 24 or newer (this is ${process.version}); run it through npx or npm scripts, which use the node@24 devDependency.\n`
  )
  process.exit(1)
}

const root = new URL("..", import.meta.url)
const bundle = new URL("dist/rds-csi.mjs", root)

/** The NODE_OPTIONS tokens, and they with this process's own Node flags. */
const nodeOptions = (process.env.NODE_OPTIONS ?? "").split(/\s+/).filter((f) => f !== "")
const given = [...process.execArgv, ...nodeOptions]
const isBlobFlag = (f) => f === "--snapshot-blob" || f.startsWith("--snapshot-blob=")
/** `flags` without the node plugin's start-up ones: --jitless and --snapshot-blob (=path, or path as the next token). */
const withoutPluginFlags = (flags) => flags.filter((f, i) => f !== "--jitless" && !isBlobFlag(f) && flags[i - 1] !== "--snapshot-blob")

/**
 * Any command but `rds-csi node` started under the node plugin's start-up flags (the image's
 * NODE_OPTIONS are the DaemonSet's; `kubectl exec` into the node plugin's pod has them too)
 * starts again at once without them (execve: same PID, same stdio), they and its children: under
 * --jitless there is no WebAssembly, which the controller's SSH library needs, and the blob holds
 * the node plugin only. The node plugin is the one started on every node at every restart; the
 * controller and `rds-csi doctor` pay one more Node boot instead.
 */
if (process.argv[2] !== "node" && withoutPluginFlags(given).length !== given.length) {
  const env = { ...process.env, NODE_OPTIONS: withoutPluginFlags(nodeOptions).join(" ") }
  process.execve(process.execPath, [process.execPath, ...withoutPluginFlags(process.execArgv), ...process.argv.slice(1)], env)
}

/**
 * `rds-csi node` not started from the start-up snapshot (NODE_OPTIONS that name no blob: a
 * manifest of one's own, `docker run -e NODE_OPTIONS=…`, a checkout run by hand) starts again at
 * once, in the same process (execve: same PID, same stdio), as the DaemonSet starts it: from dist/node.blob, V8's interpreter only, no parse of
 * Node's bundled root certificates (deploy/README.md, "The node plugin's NODE_OPTIONS"). One more
 * bare Node boot buys, under TCG, a first start in 1.7 s instead of 3.2 s and 67 MiB instead of
 * 90 MiB with 100 volumes (bench/README.md, round 8: runs W and U). Only with a blob `npm run
 * build` made for this Node and this dist/ (dist/node.blob.json); RDS_CSI_SNAPSHOT=0 keeps the
 * bundle. The flags the process was given (NODE_OPTIONS, its own) stay; the added ones go on its
 * command line, not to its children.
 */
const snapshotFlags = () => {
  if (process.argv[2] !== "node" || process.env.RDS_CSI_SNAPSHOT === "0" || process.env.RDS_CSI_FROM_SOURCE === "1") return undefined
  if (given.some((f) => isBlobFlag(f) || f.startsWith("--build-snapshot"))) return undefined
  const blob = new URL("dist/node.blob", root).pathname
  if (!existsSync(blob)) return undefined
  try {
    const made = JSON.parse(readFileSync(`${blob}.json`, "utf8"))
    if (made.node !== process.version || made.arch !== process.arch || made.platform !== process.platform) return undefined
    if (realpathSync(made.dist) !== realpathSync(new URL("dist", root).pathname)) return undefined
  } catch {
    return undefined // no blob, or not this build's
  }
  return ["--jitless", "--use-openssl-ca", `--snapshot-blob=${blob}`].filter((f) => !given.includes(f))
}
const again = snapshotFlags()
if (again !== undefined) process.execve(process.execPath, [process.execPath, ...process.execArgv, ...again, ...process.argv.slice(1)], process.env)

/** Newest modification time under `dir` (ms), for the staleness check of dist/. */
const newest = async (dir) => {
  const { readdir, stat } = await import("node:fs/promises")
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
  const { enableCompileCache } = await import("node:module")
  const { tmpdir } = await import("node:os")
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
