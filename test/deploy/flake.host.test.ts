/**
 * flake.nix parses (`nix-instantiate --parse`: syntax only; evaluating it needs nixpkgs from the
 * network) and names what the issue asks for: a dev shell with Node 24, nvme-cli, qemu and
 * kubectl, and the package on Node 24 with production dependencies only. Without nix-instantiate
 * the test installs nix-bin when it can (root, apt) and otherwise skips, saying why.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { ROOT } from "./render.ts"

const has = () => spawnSync("sh", ["-c", "command -v nix-instantiate"]).status === 0
let skipReason: string | undefined

beforeAll(() => {
  if (has()) return
  const root = process.getuid?.() === 0
  const apt = spawnSync("sh", ["-c", "command -v apt-get"]).status === 0
  if (root && apt) {
    process.stderr.write("[flake] nix-instantiate missing: apt-get install nix-bin\n")
    spawnSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin"], { stdio: "inherit", timeout: 280_000 })
  }
  if (!has()) {
    skipReason = root && apt ? "apt-get install nix-bin did not provide nix-instantiate" : "no nix-instantiate, and installing nix-bin needs root and apt-get"
    process.stderr.write(`[flake] skipped: ${skipReason}\n`)
  }
}, 300_000)

describe("flake.nix", () => {
  it("parses, and names the dev shell's tools and the package's Node", (ctx) => {
    if (skipReason !== undefined) ctx.skip(skipReason)
    const r = spawnSync("nix-instantiate", ["--parse", path.join(ROOT, "flake.nix")], { encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.length).toBeGreaterThan(0)
    const text = fs.readFileSync(path.join(ROOT, "flake.nix"), "utf8")
    for (const name of ["devShells", "packages", "nodejs_24", "nvme-cli", "qemu", "kubectl", "buildNpmPackage", "--omit=dev"]) expect(text, name).toContain(name)
  })
})
