// rolldown plugin: packages client-node's KubeConfig imports only for what rds-csi never does
// by default (its undici fetch path, SOCKS/HTTP proxies, Azure/GCP and OIDC auth providers) become
// stand-ins that require() the package on first use; and client-node's `import http from
// "node:http"` becomes a require (an ES import of node:http loads Node's internal undici).
import { createRequire } from "node:module"

const LAZY = ["undici", "socks", "socks-proxy-agent", "hpagent", "jsonpath-plus", "openid-client"]
const fromClientNode = (importer) => importer !== undefined && importer.includes("/node_modules/@kubernetes/client-node/")

/** Wraps the config's `external` so the stand-ins' packages reach the plugin instead. */
export const notLazy = (external) => (id, importer, isResolved) => !(LAZY.includes(id) && fromClientNode(importer)) && external(id, importer, isResolved)

export const lazyExternals = () => ({
  name: "rds-csi:lazy-externals",
  resolveId(id, importer) {
    if (!fromClientNode(importer)) return null
    if (LAZY.includes(id)) return `\0lazy:${id}`
    if (id === "node:http") return "\0require:node:http"
    return null
  },
  load(id) {
    if (id === "\0require:node:http") return `import { createRequire } from "node:module"\nexport default createRequire(import.meta.url)("node:http")`
    if (!id.startsWith("\0lazy:")) return null
    const pkg = id.slice("\0lazy:".length)
    const names = Object.keys(createRequire(`${process.cwd()}/`)(pkg)).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== "default")
    return [
      `import { createRequire } from "node:module"`,
      `let m`,
      `const load = () => (m ??= createRequire(import.meta.url)(${JSON.stringify(pkg)}))`,
      `const lazy = (name) => new Proxy(function () {}, {`,
      `  construct: (_, args) => Reflect.construct(load()[name], args),`,
      `  apply: (_, self, args) => Reflect.apply(load()[name], self, args),`,
      `  get: (_, key) => { const v = load()[name][key]; return typeof v === "function" ? v.bind(load()[name]) : v }`,
      `})`,
      ...names.map((n) => `export const ${n} = lazy(${JSON.stringify(n)})`)
    ].join("\n")
  }
})
