/**
 * deploy/examples/ read as the README points users at them:
 * - static-volume.yaml, for single-writer workloads: ReadWriteOncePod, HostToContainer, and a
 *   volume context the plugin accepts (parsed by the same code NodeStage uses);
 * - storageclass.yaml: this driver's class, only the Go driver's parameter keys, and parameters
 *   that, as the volume context the controller hands on, the node plugin accepts;
 * - dynamic-volume.yaml: a claim of that class and a pod that mounts it with HostToContainer.
 * The API server's verdict on them: test/integration/deploy-server.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { loadAll } from "js-yaml"
import { fsType, volumeTarget } from "../../src/domain/Volume.ts"
import { type K8sObject, ROOT } from "./render.ts"

const load = (file: string) =>
  (loadAll(fs.readFileSync(path.join(ROOT, "deploy", file), "utf8")) as Array<K8sObject>).filter((o) => o !== null)
const oneIn = (objects: ReadonlyArray<K8sObject>, kind: string): K8sObject => {
  const found = objects.filter((o) => o["kind"] === kind)
  assert.strictEqual(found.length, 1, kind)
  return found[0]!
}
const DRIVER = (load("base/csidriver.yaml")[0]!)["metadata"]["name"] as string

describe("deploy/examples/static-volume.yaml", () => {
  const objects = load("examples/static-volume.yaml")

  it("PV and PVC are ReadWriteOncePod, the PV is of this driver with a volume context the plugin accepts", () => {
    const pv = oneIn(objects, "PersistentVolume")
    assert.deepStrictEqual(pv["spec"]["accessModes"], ["ReadWriteOncePod"])
    assert.deepStrictEqual(oneIn(objects, "PersistentVolumeClaim")["spec"]["accessModes"], ["ReadWriteOncePod"])
    assert.strictEqual(pv["spec"]["csi"]["driver"], DRIVER)
    const target = volumeTarget(pv["spec"]["csi"]["volumeAttributes"])
    assert.isTrue(Result.isSuccess(target), JSON.stringify(target))
  })

  it("the workload mounts the volume with mountPropagation HostToContainer", () => {
    const mounts = oneIn(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"].flatMap((c: K8sObject) => c["volumeMounts"])
    assert.isAbove(mounts.length, 0)
    for (const m of mounts) assert.strictEqual(m["mountPropagation"], "HostToContainer")
  })
})

describe("deploy/examples/storageclass.yaml", () => {
  const sc = oneIn(load("examples/storageclass.yaml"), "StorageClass")
  const params = sc["parameters"] as Record<string, unknown>

  it("provisioned by this driver (the CSIDriver's name), Delete, expandable, bound when the first pod is scheduled", () => {
    assert.strictEqual(sc["apiVersion"], "storage.k8s.io/v1")
    assert.strictEqual(sc["provisioner"], DRIVER)
    assert.strictEqual(sc["reclaimPolicy"], "Delete")
    assert.strictEqual(sc["allowVolumeExpansion"], true)
    assert.strictEqual(sc["volumeBindingMode"], "WaitForFirstConsumer")
  })

  it("only the Go driver's parameter keys, every value a string (the API's map[string]string)", () => {
    const known = ["csi.storage.k8s.io/fstype", "volumePath", "nvmeAddress", "nvmePort", "ctrlLossTmo", "reconnectDelay", "keepAliveTmo"]
    for (const [k, v] of Object.entries(params)) {
      assert.include(known, k)
      assert.strictEqual(typeof v, "string", k)
    }
    assert.strictEqual(params["csi.storage.k8s.io/fstype"], "ext4")
    assert.isTrue(Result.isSuccess(fsType(params["csi.storage.k8s.io/fstype"] as string, "fstype")))
    assert.match(params["volumePath"] as string, /^\/[A-Za-z0-9._/-]+[^/]$/)
  })

  it("as the volume context the controller hands on (plus the NQN), the node plugin accepts it; keepAliveTmo too when set", () => {
    const { ["csi.storage.k8s.io/fstype"]: _fs, volumePath: _path, ...context } = params as Record<string, string>
    const target = volumeTarget({ ...context, nqn: "nqn.2000-02.com.mikrotik:pvc-0b6f0f7e-5f7b-4f43-9d0a-1f2e3d4c5b6a" })
    assert.isTrue(Result.isSuccess(target), JSON.stringify(target))
    if (Result.isSuccess(target)) {
      assert.strictEqual(target.success.ctrlLossTmo, -1)
      assert.strictEqual(target.success.reconnectDelay, 5)
    }
    // The commented-out keepAliveTmo line, uncommented as the README suggests.
    assert.isTrue(Result.isSuccess(volumeTarget({ ...context, keepAliveTmo: "5", nqn: "nqn.2000-02.com.mikrotik:pvc-x" })))
  })
})

describe("deploy/examples/dynamic-volume.yaml", () => {
  const objects = load("examples/dynamic-volume.yaml")
  const sc = oneIn(load("examples/storageclass.yaml"), "StorageClass")

  it("a claim of the example class, ReadWriteOnce (valid from Kubernetes 1.20 on; the attach keeps it on one node)", () => {
    const pvc = oneIn(objects, "PersistentVolumeClaim")
    assert.strictEqual(pvc["spec"]["storageClassName"], sc["metadata"]["name"])
    assert.deepStrictEqual(pvc["spec"]["accessModes"], ["ReadWriteOnce"])
    assert.match(pvc["spec"]["resources"]["requests"]["storage"], /^\d+Gi$/)
    assert.isUndefined(pvc["metadata"]["namespace"]) // applies to any namespace
  })

  it("a pod that mounts the claim with HostToContainer, from a pinned image", () => {
    const pod = oneIn(objects, "Pod")
    const claim = oneIn(objects, "PersistentVolumeClaim")["metadata"]["name"]
    const volume = pod["spec"]["volumes"].find((v: K8sObject) => v["persistentVolumeClaim"]?.["claimName"] === claim)
    assert.isDefined(volume)
    const mounts = pod["spec"]["containers"].flatMap((c: K8sObject) => c["volumeMounts"].filter((m: K8sObject) => m["name"] === volume["name"]))
    assert.isAbove(mounts.length, 0)
    for (const m of mounts) assert.strictEqual(m["mountPropagation"], "HostToContainer")
    for (const c of pod["spec"]["containers"]) assert.match(c["image"], /:\d+\.\d+(\.\d+)?$/)
  })
})
