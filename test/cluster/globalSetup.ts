/**
 * vitest globalSetup of the "integration" project: starts the test cluster (cluster.ts) and
 * hands tests the server URL, CA and tokens through `inject("kube")`; stops it at the end.
 *
 * May import: ./cluster.ts, vitest types.
 */
import type { TestProject } from "vitest/node"
import { type KubeTestCluster, startCluster } from "./cluster.ts"

declare module "vitest" {
  export interface ProvidedContext {
    kube: KubeTestCluster
  }
}

export type { KubeTestCluster }

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { cluster, stop } = await startCluster()
  project.provide("kube", cluster)
  return stop
}
