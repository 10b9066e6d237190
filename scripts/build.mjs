// npm run build: bundles the plugin into dist/ (rolldown.config.mjs) and copies the CSI proto
// next to it (proto-loader reads it at run time). dist/ is generated: never committed.
import { cpSync, mkdirSync, rmSync } from "node:fs"
import { build } from "rolldown"
import config from "../rolldown.config.mjs"

const root = new URL("..", import.meta.url).pathname
rmSync(`${root}dist`, { recursive: true, force: true })
await build(config)
mkdirSync(`${root}dist/proto`, { recursive: true })
cpSync(`${root}src/csi/proto/csi.proto`, `${root}dist/proto/csi.proto`)
console.log("build: dist/rds-csi.mjs")
