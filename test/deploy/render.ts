/**
 * Renders a kustomization with the machine's kubectl (`kubectl kustomize`, kustomize built in)
 * and parses the YAML into plain objects. js-yaml is the YAML parser @kubernetes/client-node
 * (a production dependency) already brings; its typed loadAllYaml would drop unknown fields,
 * which is what these tests must see.
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { loadAll } from "js-yaml"

export const ROOT = path.resolve(import.meta.dirname, "../..")
/** The machine's kubectl (Debian's 1.20 on a new machine; any later one renders the same), or $KUBECTL. */
export const KUBECTL = process.env["KUBECTL"] ?? "kubectl"

// Rendered objects are read field by field; a loose type keeps the assertions readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = Record<string, any>

/** `kubectl kustomize deploy/<dir>` as YAML text. */
export const renderText = (dir: string): string =>
  execFileSync(KUBECTL, ["kustomize", path.join(ROOT, "deploy", dir)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

/** The rendered objects. */
export const render = (dir: string): ReadonlyArray<K8sObject> => (loadAll(renderText(dir)) as Array<K8sObject>).filter((o) => o !== null)

/** The one object of this kind (and name, when given); fails when there is not exactly one. */
export const one = (objects: ReadonlyArray<K8sObject>, kind: string, name?: string): K8sObject => {
  const found = objects.filter((o) => o["kind"] === kind && (name === undefined || o["metadata"]["name"] === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? "" : ` ${name}`}, found ${found.length}`)
  return found[0]!
}
