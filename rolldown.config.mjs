// The production build (`npm run build`): src/cli.ts and what it imports, bundled and
// tree-shaken into dist/ with its dependencies (Effect, gRPC and protobufjs, and the Kubernetes
// client in a chunk loaded only when events are on). Node then reads a few files instead of
// thousands (over 9p in the e2e VM) and never loads its TypeScript stripper: start-up and
// memory both drop (SPEC §8). Dependencies not listed stay in node_modules.
//
// Memory (issue 12, measured with bench/memory): client-node's generated models count as having
// side effects, so tree-shaking kept all of them (-3.5 MiB RSS once declared pure); what its
// KubeConfig imports but we never run (undici, proxies, cloud auth) loads on first use
// (scripts/lazy-externals.mjs, -15 MiB); and the chunks are ASCII without JSDoc, because V8
// keeps a source text with any character beyond Latin-1 at two bytes per character (-4 MiB).
import { defineConfig } from "rolldown"
import { lazyExternals, notLazy } from "./scripts/lazy-externals.mjs"

const bundled = (id) =>
  id === "effect" || id.startsWith("effect/") || id.startsWith("@effect/platform-node") ||
  id.startsWith("@grpc/") || id.startsWith("protobufjs") || id.startsWith("@protobufjs/") || id === "long" ||
  id === "lodash.camelcase" || id.startsWith("@js-sdsl/") || id.startsWith("@kubernetes/client-node")

export default defineConfig({
  // The node plugin's start-up path (src/nodeEntry.ts: no CLI library) and the full command line.
  input: { "rds-csi": "src/cli.ts", node: "src/nodeEntry.ts" },
  platform: "node",
  external: notLazy((id, _importer, isResolved) => !isResolved && !id.startsWith(".") && !id.startsWith("/") && !id.startsWith("node:") && !bundled(id)),
  plugins: [lazyExternals()],
  treeshake: { moduleSideEffects: [{ test: /@kubernetes\/client-node\/dist\/gen\//, sideEffects: false }] },
  output: {
    dir: "dist",
    format: "esm",
    entryFileNames: "[name].mjs",
    chunkFileNames: "[name]-[hash].mjs",
    sourcemap: true,
    charset: "ascii",
    comments: { legal: true, annotation: false, jsdoc: false }
  }
})
