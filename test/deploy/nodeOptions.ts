/**
 * The node plugin's NODE_OPTIONS as the DaemonSet gives them (deploy/base/daemonset.yaml), read
 * from it so the tests, the e2e harness and the benches run the plugin as it ships: the V8 flags
 * and the start-up snapshot, whose image path (/opt/rds-csi/) becomes the tree at `root`.
 *
 * May import: node built-ins.
 */
import * as fs from "node:fs"
import * as path from "node:path"

const REPO = path.resolve(import.meta.dirname, "../..")

export const daemonSetNodeOptions = (root: string = REPO): string => {
  const yaml = fs.readFileSync(path.join(REPO, "deploy/base/daemonset.yaml"), "utf8")
  const m = /- name: NODE_OPTIONS\n\s+value: (.+)\n/.exec(yaml)
  if (m === null) throw new Error("deploy/base/daemonset.yaml: no NODE_OPTIONS value for the node plugin")
  return m[1]!.trim().replaceAll("/opt/rds-csi/", `${root.replace(/\/$/, "")}/`)
}
