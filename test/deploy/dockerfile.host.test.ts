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

  it(".dockerignore lets in only what the Dockerfile copies, and leaves the test layers out", () => {
    const lines = fs.readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"))
    expect(lines).toEqual(["*", "!package.json", "!package-lock.json", "!bin/", "!src/", "!rolldown.config.mjs", "!scripts/build.mjs", "src/testing/"])
  })
})
