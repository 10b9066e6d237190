// The production build (`npm run build`): src/cli.ts and what it imports, bundled and
// tree-shaken into dist/ with its dependencies (Effect, gRPC and protobufjs, and the Kubernetes
// client in a chunk loaded only when events are on). Node then reads a few files instead of
// thousands (over 9p in the e2e VM) and never loads its TypeScript stripper: start-up and
// memory both drop (SPEC §8). Dependencies not listed stay in node_modules.
import { defineConfig } from "rolldown"

const bundled = (id) =>
  id === "effect" || id.startsWith("effect/") || id.startsWith("@effect/platform-node") ||
  id.startsWith("@grpc/") || id.startsWith("protobufjs") || id.startsWith("@protobufjs/") || id === "long" ||
  id === "lodash.camelcase" || id.startsWith("@js-sdsl/") || id.startsWith("@kubernetes/client-node")

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
