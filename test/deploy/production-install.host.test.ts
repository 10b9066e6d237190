/**
 * What the container image holds, installed the way the Dockerfile installs it, run by Node 24:
 * the files the image stage copies from the context (tracked in git, less what .dockerignore
 * leaves out), dist/ as the build stage makes it (`node scripts/build.mjs` over only the files
 * that stage copies), `npm ci` with the
 * Dockerfile's own flags (production dependencies only, no install scripts), then the
 * CLI's help, `rds-csi doctor`, and `rds-csi node` started until ready and stopped with SIGTERM.
 * This proves the production dependency set is enough: no dev-only import at run time, the
 * @effect/platform-node deep imports load without their optional peers, and the lazily imported
 * Kubernetes client is there; then the same from the start-up snapshot with the DaemonSet's
 * NODE_OPTIONS, which leave every other command as it was. Then with the root file system
 * read-only (a private mount namespace, as root), only the work dir writable: nothing writes
 * outside mounted volumes. Both stages run in one directory, as the Dockerfile's (/opt/rds-csi).
 * (No container engine runs here; the image build itself is not run.)
 */
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { daemonSetNodeOptions } from "./nodeOptions.ts"
import { ROOT } from "./render.ts"

const NODE24 = path.join(ROOT, "node_modules/node/bin/node")
const dockerfile = fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8")
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

/** The build stage: from the first FROM to the image's (the last). */
const buildStage = dockerfile.slice(dockerfile.indexOf("FROM "), dockerfile.lastIndexOf("\nFROM "))
/** The image's stage: the last FROM (the ones before it only build). */
const imageStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "))
/** The context sources of a stage's COPY lines (`COPY a b ./dest` → a, b); `--from=` copies come from the build stage. */
const copiedBy = (stage: string) => [...stage.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1))
const copied = copiedBy(imageStage)
const fromBuild = [...imageStage.matchAll(/^COPY\s+--from=build\s+(\S+)\s+(\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const)
/** The flags of the image stage's `npm ci`. */
const npmCiFlags = (/npm ci((?:\s+--[a-z-=]+)+)/.exec(imageStage)?.[1] ?? "").trim().split(/\s+/)
/** What .dockerignore excludes after its allow-list (`!x`): plain paths only, which is all it uses. */
const ignored = fs.readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n")
  .map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("!") && l !== "*")
/** The build context's files a stage copies: tracked in git, less what .dockerignore leaves out. */
const contextFiles = (sources: ReadonlyArray<string>) =>
  execFileSync("git", ["ls-files", "-z", "--", ...sources], { cwd: ROOT, encoding: "utf8" }).split("\0")
    .filter((f) => f !== "" && !ignored.some((i) => f === i || f.startsWith(i.endsWith("/") ? i : i + "/")))
    .filter((f) => fs.existsSync(path.join(ROOT, f)))
const copyInto = (dir: string, files: ReadonlyArray<string>) => {
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f))
  }
}
let dir = ""

beforeAll(() => {
  // Both stages work in the same directory, as both of the Dockerfile's do (/opt/rds-csi): V8's
  // code cache and the start-up snapshot name the paths they were made at.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-prod-"))
  // The build stage: only what it copies (a build that needs another file fails here, as the
  // image's would), with the dev dependencies its `npm ci` installs (the checkout's).
  copyInto(dir, contextFiles(copiedBy(buildStage)))
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"))
  const b = spawnSync(NODE24, ["scripts/build.mjs"], { cwd: dir, encoding: "utf8", timeout: 120_000 })
  if (b.status !== 0) throw new Error(`build failed:\n${b.stdout}\n${b.stderr}`)
  const built = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-built-"))
  for (const [from] of fromBuild) fs.renameSync(path.join(dir, path.relative("/opt/rds-csi", from)), path.join(built, path.relative("/opt/rds-csi", from)))
  // The image stage: a fresh directory at the same path.
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir)
  copyInto(dir, contextFiles(copied))
  const r = spawnSync("npm", ["ci", ...npmCiFlags, "--prefer-offline"], { cwd: dir, encoding: "utf8", timeout: 240_000 })
  if (r.status !== 0) throw new Error(`npm ci ${npmCiFlags.join(" ")} failed:\n${r.stdout}\n${r.stderr}`)
  for (const [from, to] of fromBuild) fs.renameSync(path.join(built, path.relative("/opt/rds-csi", from)), path.join(dir, to))
  fs.rmSync(built, { recursive: true, force: true })
}, 300_000)

afterAll(() => {
  if (dir !== "") fs.rmSync(dir, { recursive: true, force: true })
})

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawnSync(NODE24, [path.join(dir, "bin/rds-csi.js"), ...args], { cwd: dir, encoding: "utf8", timeout: 60_000, env: { PATH: process.env["PATH"] ?? "", ...env } })

/**
 * Runs `rds-csi node` until ready, checks /metrics and /healthz, stops it; `wrap` prefixes the
 * command (unshare); `nodeOptions` as the DaemonSet's (the start-up snapshot) or none.
 */
const runNode = async (work: string, wrap: (argv: ReadonlyArray<string>) => ReadonlyArray<string> = (a) => a, nodeOptions = "", env: Record<string, string> = {}) => {
  const port = await freePort()
  const argv = wrap([NODE24, path.join(dir, "bin/rds-csi.js"), "node", "--metrics-address", `127.0.0.1:${port}`])
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: dir,
    env: {
      PATH: process.env["PATH"] ?? "",
      CSI_ENDPOINT: `unix://${work}/csi.sock`,
      NODE_ID: "prod-test",
      STATE_DIR: `${work}/state`,
      ALLOWED_PATH_ROOTS: work,
      // events on: EventPosterLive and client-node are imported; no API server, so it says so and goes on
      KUBECONFIG: `${work}/no-such-kubeconfig`,
      NODE_OPTIONS: nodeOptions,
      ...env
    }
  })
  let out = ""
  child.stdout.on("data", (c) => (out += c))
  child.stderr.on("data", (c) => (out += c))
  const exited = new Promise<number | null>((ok) => child.on("exit", (code) => ok(code)))
  // The Kubernetes client loads once the plugin is ready (it then says it has no configuration).
  const done = () => out.includes("rds-csi node ready") && out.includes("Kubernetes events disabled")
  for (let i = 0; i < 300 && !done() && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100))
  expect(out).toContain("rds-csi node ready")
  expect(out).toContain("Kubernetes events disabled")
  expect((await get(`http://127.0.0.1:${port}/metrics`)).status).toBe(200)
  expect((await get(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
  child.kill("SIGTERM")
  // A graceful stop on SIGTERM is a clean exit (the DaemonSet's rolling update expects 0).
  expect(await exited).toBe(0)
  expect(out).toMatch(/"CSI server stopped".*"graceful":true/)
  expect(out).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)|EROFS/)
  return out
}

const freePort = () =>
  new Promise<number>((ok) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => ok(port))
    })
  })

const get = (url: string) =>
  new Promise<{ status: number; body: string }>((ok, ko) => {
    http.get(url, (res) => {
      let body = ""
      res.on("data", (c) => (body += c))
      res.on("end", () => ok({ status: res.statusCode ?? 0, body }))
    }).on("error", ko)
  })

describe("production install (Dockerfile's COPY and npm ci) run by Node 24", () => {
  it("the image holds package.json, the lock file, bin/ and the build stage's dist/ (no sources), installed with --omit=dev --ignore-scripts", () => {
    expect(copied).toEqual(["package.json", "package-lock.json", "bin"])
    expect(fromBuild).toEqual([["/opt/rds-csi/dist", "./dist"]])
    expect(npmCiFlags).toEqual(expect.arrayContaining(["--omit=dev", "--ignore-scripts"]))
    expect(fs.existsSync(path.join(dir, "src"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "dist/rds-csi.mjs"))).toBe(true)
    expect(fs.existsSync(path.join(dir, "dist/proto/csi.proto"))).toBe(true)
    expect(fs.existsSync(path.join(dir, "dist/proto/csi-codecs.cjs"))).toBe(true)
    expect(fs.readdirSync(path.join(dir, "dist/.compile-cache")).length).toBeGreaterThan(0)
  })

  it("installs the production dependencies and no dev tool: no vitest, no TypeScript, no Node binary package", () => {
    for (const name of Object.keys(pkg.dependencies)) expect(fs.existsSync(path.join(dir, "node_modules", name)), name).toBe(true)
    // @types/node arrives anyway (client-node depends on @types/stream-buffers, which needs it): types, never loaded.
    // js-yaml is a dev dependency of ours (the manifest tests) and a production one of client-node's.
    const alsoProduction = new Set(["js-yaml"])
    const present = Object.keys(pkg.devDependencies).filter((name) => fs.existsSync(path.join(dir, "node_modules", name)))
    expect(present.filter((name) => !name.startsWith("@types/") && !alsoProduction.has(name))).toEqual([])
    // grpc-js is the tests' and the build's client; the plugin serves gRPC on node:http2 itself.
    for (const tool of ["vitest", "typescript", "@effect/vitest", "node", "@grpc/grpc-js", "@grpc/proto-loader"]) expect(present, tool).not.toContain(tool)
    expect(fs.existsSync(path.join(dir, "node_modules/.bin/node"))).toBe(false)
  })

  it("rds-csi --help, node --help and doctor --help", () => {
    expect(spawnSync(NODE24, ["--version"], { encoding: "utf8" }).stdout).toMatch(/^v24\./)
    const top = cli(["--help"])
    expect(top.status, top.stderr).toBe(0)
    expect(top.stdout).toMatch(/\bnode\b/)
    expect(top.stdout).toMatch(/\bdoctor\b/)
    const node = cli(["node", "--help"])
    expect(node.status, node.stderr).toBe(0)
    expect(node.stdout).toContain("--managed-nqn-prefix")
    const doctor = cli(["doctor", "--help"])
    expect(doctor.status, doctor.stderr).toBe(0)
    expect(doctor.stdout).toContain("--kubelet-dir")
  })

  it("rds-csi doctor runs every check (exit 0 or 1, never a crash)", () => {
    const r = cli(["doctor"])
    expect(r.stderr).toBe("")
    expect([0, 1]).toContain(r.status)
    expect(r.stdout).toMatch(/^(OK|WARN|FAIL) +API server access/m)
  })

  it("rds-csi node starts (Kubernetes client loaded lazily), serves /metrics, and stops gracefully on SIGTERM: from the bundle with RDS_CSI_SNAPSHOT=0", async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-prod-run-"))
    const out = await runNode(work, undefined, "", { RDS_CSI_SNAPSHOT: "0" })
    expect(out).toMatch(/"rds-csi node starting".*"startedFrom":"bundle"/)
    fs.rmSync(work, { recursive: true, force: true })
  })

  it("without NODE_OPTIONS naming the blob (a manifest of one's own, the image's before round 9), rds-csi node starts itself again from it, as the DaemonSet would", async () => {
    expect(JSON.parse(fs.readFileSync(path.join(dir, "dist/node.blob.json"), "utf8"))).toEqual({ node: process.version, arch: process.arch, platform: process.platform, dist: path.join(dir, "dist") })
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-prod-again-"))
    const out = await runNode(work, undefined, "--max-semi-space-size=1 --use-openssl-ca")
    expect(out).toMatch(/"rds-csi node starting".*"startedFrom":"snapshot"/)
    fs.rmSync(work, { recursive: true, force: true })
  })

  it("with the DaemonSet's NODE_OPTIONS it starts from the build's start-up snapshot (dist/node.blob), the same way", async () => {
    expect(daemonSetNodeOptions(dir)).toContain(`--snapshot-blob=${dir}/dist/node.blob`)
    expect(fs.statSync(path.join(dir, "dist/node.blob")).size).toBeGreaterThan(1_000_000)
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-prod-snap-"))
    const out = await runNode(work, undefined, daemonSetNodeOptions(dir))
    expect(out).toMatch(/"rds-csi node starting".*"startedFrom":"snapshot"/)
    fs.rmSync(work, { recursive: true, force: true })
  })

  it("the same NODE_OPTIONS leave every other command to the CLI as without the blob (kubectl exec inherits them)", () => {
    const env = { NODE_OPTIONS: daemonSetNodeOptions(dir) }
    const help = cli(["--help"], env)
    expect(help.status, help.stderr).toBe(0)
    expect(help.stdout).toMatch(/\bdoctor\b/)
    const doctor = cli(["doctor"], env)
    expect(doctor.stderr).toBe("")
    expect(doctor.stdout).toMatch(/^(OK|WARN|FAIL) +API server access/m)
    // A node line the start-up path leaves to the full CLI (a bad value): the CLI's own answer.
    const bad = cli(["node", "--endpoint", "tcp://0.0.0.0:9", "--node-id", "n"], env)
    expect(bad.status).toBe(2)
    expect(bad.stderr.trim()).toBe("rds-csi node: --endpoint: must be unix:///absolute/path (got 'tcp://0.0.0.0:9')")
    // Node's -e has no script to run from the snapshot: said, not silently ignored.
    const e = spawnSync(NODE24, ["-e", "console.log(1)"], { encoding: "utf8", env: { PATH: process.env["PATH"] ?? "", ...env } })
    expect(e.status).toBe(9)
    expect(e.stderr).toContain("run -e, -p or the REPL with NODE_OPTIONS unset")
  })

  const isRoot = process.getuid?.() === 0
  const unshare = spawnSync("unshare", ["--version"]).status === 0
  if (!isRoot || !unshare) process.stderr.write(`[production-install] read-only root test skipped: needs root and unshare (root: ${isRoot}, unshare: ${unshare})\n`)
  it.skipIf(!isRoot || !unshare)("with the root file system read-only and only the work dir writable: node runs and doctor's state-dir check passes", async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "rds-csi-prod-ro-"))
    // A private mount namespace: a tmpfs on the work dir (the DaemonSet's volumes), then / read-only.
    const wrap = (argv: ReadonlyArray<string>) => [
      "unshare", "-m", "sh", "-c",
      `mount --make-rprivate / && mount -t tmpfs -o size=16m tmpfs "$0" && mount -o remount,bind,ro / && exec "$@"`,
      work, ...argv
    ]
    const out = await runNode(work, wrap, daemonSetNodeOptions(dir))
    expect(out).toMatch(/"startedFrom":"snapshot"/)
    const argv = wrap([NODE24, path.join(dir, "bin/rds-csi.js"), "doctor", "--state-dir", `${work}/state`])
    const doctor = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", env: { PATH: process.env["PATH"] ?? "", NODE_OPTIONS: daemonSetNodeOptions(dir) } })
    expect(doctor.stderr).toBe("")
    expect(doctor.stdout).toMatch(/^OK +state dir +\S+ missing; the plugin creates it/m)
    const readOnly = spawnSync("unshare", ["-m", "sh", "-c", `mount --make-rprivate / && mount -o remount,bind,ro / && touch "$0/probe"`, work], { encoding: "utf8" })
    expect(readOnly.stderr, "the namespace really is read-only").toMatch(/Read-only file system/)
    fs.rmSync(work, { recursive: true, force: true })
  })
})
