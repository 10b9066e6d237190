// npm run build: bundles the plugin into dist/ (rolldown.config.mjs) and puts the CSI protocol
// next to it, parsed (dist/proto/csi.json: the bundle builds its gRPC definitions from it
// without parsing the .proto at start-up) and as text. dist/ is generated: never committed.
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { build } from "rolldown"
import config from "../rolldown.config.mjs"

const root = new URL("..", import.meta.url).pathname
rmSync(`${root}dist`, { recursive: true, force: true })
await build(config)
mkdirSync(`${root}dist/proto`, { recursive: true })
cpSync(`${root}src/csi/proto/csi.proto`, `${root}dist/proto/csi.proto`)
const { parseCsiProto } = await import("../src/csi/Proto.ts")
writeFileSync(`${root}dist/proto/csi.json`, JSON.stringify(parseCsiProto().toJSON()))
console.log("build: dist/rds-csi.mjs")
