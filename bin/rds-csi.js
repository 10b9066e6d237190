#!/usr/bin/env node
// Entry point of the `rds-csi` command. Node 24 runs the TypeScript sources directly
// (type stripping), so there is no build step and no generated code to ship.
const [major] = process.versions.node.split(".").map(Number)
if (major < 24) {
  process.stderr.write(
    `rds-csi needs Node.js 24 or newer (this is ${process.version}); run it through npx or npm scripts, which use the node@24 devDependency.\n`
  )
  process.exit(1)
}
const { runCli } = await import("../src/cli.ts")
runCli()
