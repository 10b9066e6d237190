// The production build (`npm run build`): src/cli.ts and what it imports, bundled and
// tree-shaken into dist/. Effect and @effect/platform-node are bundled (only the modules the
// plugin uses are kept); the other dependencies stay in node_modules (gRPC and the Kubernetes
// client load files and native-ish pieces at run time). Node then parses one file instead of
// thousands and never loads its TypeScript stripper: start-up and memory both drop (SPEC §8).
import { defineConfig } from "rolldown"

const bundled = (id) =>
  id === "effect" || id.startsWith("effect/") || id.startsWith("@effect/platform-node") ||
  id.startsWith("@grpc/") || id.startsWith("protobufjs") || id.startsWith("@protobufjs/") || id === "long" ||
  id === "lodash.camelcase" || id.startsWith("@js-sdsl/")

export default defineConfig({
  input: { "rds-csi": "src/cli.ts" },
  platform: "node",
  external: (id, _importer, isResolved) => !isResolved && !id.startsWith(".") && !id.startsWith("/") && !id.startsWith("node:") && !bundled(id),
  output: {
    dir: "dist",
    format: "esm",
    entryFileNames: "[name].mjs",
    chunkFileNames: "[name]-[hash].mjs",
    sourcemap: true
  }
})
