/**
 * The Dockerfile read as text (no container engine runs here; production-install.host.test.ts runs
 * what it installs): the base pinned to the Node 24 the tests use, the host tools the plugin
 * spawns, `npm ci` for production only, and an entrypoint the DaemonSet's args fit.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { one, render, ROOT } from "./render.ts"

const dockerfile = fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8")
const instructions = dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> }

describe("Dockerfile", () => {
  it("a build stage and the image, both on node:<the tests' Node 24 release>-bookworm-slim", () => {
    const from = instructions.filter((l) => l.startsWith("FROM "))
    expect(from).toEqual([`FROM node:${pkg.devDependencies["node"]}-bookworm-slim AS build`, `FROM node:${pkg.devDependencies["node"]}-bookworm-slim`])
    expect(pkg.devDependencies["node"]).toMatch(/^24\.\d+\.\d+$/)
  })

  it("installs nvme-cli, e2fsprogs, xfsprogs, util-linux and kmod without recommends, and drops the apt lists", () => {
    const apt = instructions.find((l) => l.includes("apt-get install")) ?? ""
    for (const p of ["nvme-cli", "e2fsprogs", "xfsprogs", "util-linux", "kmod"]) expect(apt.split(/\s+/), p).toContain(p)
    expect(apt).toContain("--no-install-recommends")
    expect(apt).toContain("rm -rf /var/lib/apt/lists/*")
  })

  it("production dependencies from the lock file only (npm ci --omit=dev), never npm install", () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev --ignore-scripts/)
    expect(dockerfile).not.toMatch(/npm (install|i) /)
    // The image stage copies the lock file before anything else, and ships the bundle, not the sources.
    const image = instructions.slice(instructions.lastIndexOf(`FROM node:${pkg.devDependencies["node"]}-bookworm-slim`))
    expect(image.indexOf("COPY package.json package-lock.json ./")).toBeLessThan(image.indexOf("COPY --from=build /opt/rds-csi/dist ./dist"))
    expect(image).not.toContain("COPY src ./src")
  })

  it("runs the CLI through the base image's Node; the DaemonSet passes `node ...` as args and sets no command", () => {
    expect(instructions).toContain(`ENTRYPOINT ["node", "/opt/rds-csi/bin/rds-csi.js"]`)
    expect(instructions).toContain("USER root")
    const plugin = one(render("base"), "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    expect(plugin["command"]).toBeUndefined()
    expect(plugin["args"][0]).toBe("node")
  })

  it("the node DaemonSet starts Node from the start-up snapshot the build stage makes, at the path the image holds it", () => {
    const plugin = one(render("base"), "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    const options = String(plugin["env"].find((e: { name: string }) => e.name === "NODE_OPTIONS")["value"]).split(/\s+/)
    expect(options).toContain("--snapshot-blob=/opt/rds-csi/dist/node.blob")
    // Built in the build stage (which fails without it) and shipped with dist/ into the same path.
    expect(instructions).toContain("RUN node scripts/build.mjs && test -s dist/node.blob")
    expect(instructions.filter((l) => l.startsWith("WORKDIR "))).toEqual(["WORKDIR /opt/rds-csi", "WORKDIR /opt/rds-csi"])
    expect(instructions).toContain("COPY --from=build /opt/rds-csi/dist ./dist")
    // The controller runs the CLI as before (its own NODE_OPTIONS, no blob).
    const controller = one(render("base"), "Deployment")["spec"]["template"]["spec"]["containers"].find((c: { name: string }) => c.name === "rds-csi-controller")
    expect(JSON.stringify(controller["env"] ?? [])).not.toContain("snapshot-blob")
  })

  it("the image, the node DaemonSet and the controller run Node with --use-openssl-ca (no parse of its bundled roots at every start; src/kube/KubeHttp.ts defaultRoots)", () => {
    const env = instructions.find((l) => l.startsWith("ENV ")) ?? ""
    expect(/NODE_OPTIONS="([^"]*)"/.exec(env)?.[1]?.split(/\s+/)).toContain("--use-openssl-ca")
    const objects = render("base")
    const plugin = one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    const controller = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"].find((c: { name: string }) => c.name === "rds-csi-controller")
    for (const container of [plugin, controller]) {
      expect(String(container["env"].find((e: { name: string }) => e.name === "NODE_OPTIONS")["value"]).split(/\s+/), container["name"]).toContain("--use-openssl-ca")
    }
  })

  it("the image's own NODE_OPTIONS are the node DaemonSet's: `rds-csi node` as the image starts it boots once, from the blob", () => {
    const env = instructions.find((l) => l.startsWith("ENV ")) ?? ""
    const plugin = one(render("base"), "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    expect(/NODE_OPTIONS="([^"]*)"/.exec(env)?.[1]).toBe(String(plugin["env"].find((e: { name: string }) => e.name === "NODE_OPTIONS")["value"]))
    // Every other command drops --jitless and the blob (bin/rds-csi.js; cli.test.ts, ControllerSsh.test.ts run it).
    expect(fs.readFileSync(path.join(ROOT, "bin", "rds-csi.js"), "utf8")).toMatch(/process\.argv\[2\] !== "node" && withoutPluginFlags/)
  })

  it(".dockerignore lets in only what the Dockerfile copies, and leaves the test layers out", () => {
    const lines = fs.readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"))
    expect(lines).toEqual(["*", "!package.json", "!package-lock.json", "!bin/", "!src/", "!rolldown.config.mjs", "!scripts/build.mjs",
      "!scripts/lazy-externals.mjs", "!scripts/snapshot.mjs", "!scripts/snapshot-entry.cjs", "src/testing/"])
  })

  it("the build stage copies every local file the build imports (scripts/build.mjs and what it reaches)", () => {
    const buildCopies = instructions.slice(0, instructions.lastIndexOf(`FROM node:${pkg.devDependencies["node"]}-bookworm-slim`))
      .filter((l) => l.startsWith("COPY ")).flatMap((l) => l.split(/\s+/).slice(1, -1))
    const copies = (f: string) => buildCopies.some((c) => f === c || f.startsWith(`${c.replace(/\/$/, "")}/`))
    // The build's own modules: relative imports and file reads, followed from scripts/build.mjs.
    const seen = new Set<string>()
    const visit = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      const text = fs.readFileSync(path.join(ROOT, file), "utf8")
      const refs = [...text.matchAll(/(?:from |import\()"(\.{1,2}\/[^"]+)"/g)].map((m) => path.normalize(path.join(path.dirname(file), m[1]!)))
      const reads = [...text.matchAll(/\$\{root\}((?:scripts|src|bin)\/[\w./-]+)/g)].map((m) => m[1]!)
      for (const f of [...refs, ...reads]) if (!f.startsWith("src/") && !f.startsWith("dist/")) visit(f)
    }
    visit("scripts/build.mjs")
    expect([...seen].sort()).toEqual(["bin/rds-csi.js", "rolldown.config.mjs", "scripts/build.mjs", "scripts/lazy-externals.mjs", "scripts/snapshot-entry.cjs", "scripts/snapshot.mjs"])
    for (const f of seen) expect(copies(f), f).toBe(true)
  })
})
