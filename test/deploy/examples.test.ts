/**
 * deploy/examples/static-volume.yaml is what the README points single-writer workloads at: its
 * access mode is ReadWriteOncePod, its pod mounts with HostToContainer, and its volume context
 * is one the plugin accepts (parsed by the same code NodeStage uses).
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { loadAll } from "js-yaml"
import { volumeTarget } from "../../src/domain/Volume.ts"
import { type K8sObject, ROOT } from "./render.ts"

const objects = (loadAll(fs.readFileSync(path.join(ROOT, "deploy/examples/static-volume.yaml"), "utf8")) as Array<K8sObject>).filter((o) => o !== null)
const one = (kind: string) => objects.find((o) => o["kind"] === kind)!

describe("deploy/examples/static-volume.yaml", () => {
  it("PV and PVC are ReadWriteOncePod, the PV is of this driver with a volume context the plugin accepts", () => {
    const pv = one("PersistentVolume")
    assert.deepStrictEqual(pv["spec"]["accessModes"], ["ReadWriteOncePod"])
    assert.deepStrictEqual(one("PersistentVolumeClaim")["spec"]["accessModes"], ["ReadWriteOncePod"])
    assert.strictEqual(pv["spec"]["csi"]["driver"], "rds.csi.srvlab.io")
    const target = volumeTarget(pv["spec"]["csi"]["volumeAttributes"])
    assert.isTrue(Result.isSuccess(target), JSON.stringify(target))
  })

  it("the workload mounts the volume with mountPropagation HostToContainer", () => {
    const mounts = one("StatefulSet")["spec"]["template"]["spec"]["containers"].flatMap((c: K8sObject) => c["volumeMounts"])
    assert.isAbove(mounts.length, 0)
    for (const m of mounts) assert.strictEqual(m["mountPropagation"], "HostToContainer")
  })
})
