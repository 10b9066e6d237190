/**
 * package.json's `allowScripts` (npm 11.16+) names every installed package that has an install
 * script, so `npm ci` runs exactly the reviewed ones: npm 11 only warns about the others, npm 12
 * skips them, and a skipped `node` preinstall would leave the project without its Node 24 (every
 * npm script runs node_modules/node/bin/node). The native builds ssh2 and cpu-features try are
 * refused, as the image's `npm ci --ignore-scripts` refuses them: the tests run the controller's
 * SSH on the same pure-JavaScript path the image ships. Read from node_modules as `npm ci` left it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { ROOT } from "./render.ts"

interface Manifest {
  readonly name: string
  readonly version: string
  readonly scripts?: Record<string, string>
  readonly allowScripts?: Record<string, boolean>
  readonly devDependencies?: Record<string, string>
}

const read = (file: string): Manifest => JSON.parse(fs.readFileSync(file, "utf8")) as Manifest
const pkg = read(path.join(ROOT, "package.json"))
const modules = path.join(ROOT, "node_modules")

/** Every installed package directory (scoped ones included, nested node_modules too). */
const packages = (dir: string): Array<string> =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith(".")).flatMap((e) => {
      const at = path.join(dir, e.name)
      if (e.name.startsWith("@")) return packages(at)
      return fs.existsSync(path.join(at, "package.json")) ? [at, ...packages(path.join(at, "node_modules"))] : []
    })
    : []

/** npm's install scripts: the three lifecycle ones, and the implicit `node-gyp rebuild` of a binding.gyp. */
const hasInstallScript = (dir: string, m: Manifest): boolean =>
  ["preinstall", "install", "postinstall"].some((s) => m.scripts?.[s] !== undefined) || fs.existsSync(path.join(dir, "binding.gyp"))

const decision = (m: Manifest): boolean | undefined => pkg.allowScripts?.[`${m.name}@${m.version}`] ?? pkg.allowScripts?.[m.name]

describe("package.json allowScripts", () => {
  const withScripts = packages(modules).map((dir) => ({ dir, m: read(path.join(dir, "package.json")) })).filter(({ dir, m }) => hasInstallScript(dir, m))

  it("covers every installed package with an install script", () => {
    expect(withScripts.length, "npm ci has not run: node_modules has no package with an install script").toBeGreaterThan(0)
    expect(withScripts.filter(({ m }) => decision(m) === undefined).map(({ m }) => `${m.name}@${m.version}`)).toEqual([])
  })

  it("allows the Node 24 binary package's preinstall, and refuses the native builds the image does not run", () => {
    expect(decision({ name: "node", version: pkg.devDependencies?.["node"] ?? "" })).toBe(true)
    for (const name of ["ssh2", "cpu-features"]) expect(pkg.allowScripts?.[name], name).toBe(false)
    // What npm did with them: Node 24 installed, no native ssh2 crypto built.
    expect(fs.existsSync(path.join(modules, "node/bin/node"))).toBe(true)
    expect(fs.existsSync(path.join(modules, "ssh2/lib/protocol/crypto/build"))).toBe(false)
  })
})
