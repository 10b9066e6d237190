/**
 * deploy/ rendered by the machine's `kubectl kustomize` (run it again with KUBECTL=<kubectl 1.20>
 * for the kustomize inside kubectl 1.20): the objects the base, the example overlay and the
 * monitoring kustomization produce, the CSIDriver's fields, every image pinned, and the
 * properties the node plugin depends on (least-privilege RBAC, the DaemonSet's security, probes,
 * propagation, host paths and wiring). The controller's Deployment and RBAC:
 * controller.host.test.ts. The API server's own verdict: test/integration/deploy-server.test.ts.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { type K8sObject, one, render, ROOT } from "./render.ts"

const base = render("base")
const overlay = render("overlays/example")
const monitoring = render("monitoring")
const ds = one(base, "DaemonSet", "rds-csi-node")
const pod = ds["spec"]["template"]["spec"]
const container = (name: string): K8sObject => pod["containers"].find((c: K8sObject) => c["name"] === name)
const plugin = container("rds-csi-node")
const volume = (name: string): K8sObject => pod["volumes"].find((v: K8sObject) => v["name"] === name)
const mount = (c: K8sObject, name: string): K8sObject => c["volumeMounts"].find((m: K8sObject) => m["name"] === name)
const configMap = (objects: ReadonlyArray<K8sObject>, prefix: string): K8sObject => {
  const found = objects.filter((o) => o["kind"] === "ConfigMap" && new RegExp(`^${prefix}-[a-z0-9]{10}$`).test(o["metadata"]["name"]))
  expect(found, prefix).toHaveLength(1)
  return found[0]!
}
const nodeConfig = (objects: ReadonlyArray<K8sObject>) => configMap(objects, "rds-csi-node-config")
const controllerConfig = (objects: ReadonlyArray<K8sObject>) => configMap(objects, "rds-csi-controller-config")

describe("deploy/base", () => {
  it("renders exactly these objects, namespaced ones in rds-csi", () => {
    // Only the generated ConfigMaps carry a hash ("controller" alone would look like one).
    const named = (o: K8sObject) => o["kind"] === "ConfigMap" ? o["metadata"]["name"].replace(/-[a-z0-9]{10}$/, "-<hash>") : o["metadata"]["name"]
    expect(base.map((o) => `${o["kind"]}/${named(o)}`).sort()).toEqual([
      "CSIDriver/rds.csi.srvlab.io",
      "ClusterRole/rds-csi-controller",
      "ClusterRole/rds-csi-external-attacher",
      "ClusterRole/rds-csi-external-provisioner",
      "ClusterRole/rds-csi-external-resizer",
      "ClusterRole/rds-csi-node",
      "ClusterRoleBinding/rds-csi-controller",
      "ClusterRoleBinding/rds-csi-external-attacher",
      "ClusterRoleBinding/rds-csi-external-provisioner",
      "ClusterRoleBinding/rds-csi-external-resizer",
      "ClusterRoleBinding/rds-csi-node",
      "ConfigMap/rds-csi-controller-config-<hash>",
      "ConfigMap/rds-csi-node-config-<hash>",
      "DaemonSet/rds-csi-node",
      "Deployment/rds-csi-controller",
      "Namespace/rds-csi",
      "Role/rds-csi-controller-leader-election",
      "RoleBinding/rds-csi-controller-leader-election",
      "Service/rds-csi-controller-metrics",
      "Service/rds-csi-node-metrics",
      "ServiceAccount/rds-csi-controller",
      "ServiceAccount/rds-csi-node"
    ])
    for (const o of base.filter((o) => ["ConfigMap", "DaemonSet", "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"].includes(o["kind"]))) {
      expect(o["metadata"]["namespace"], o["kind"]).toBe("rds-csi")
    }
  })

  it("least privilege: the node ClusterRole's rules exactly, bound to the node ServiceAccount only", () => {
    expect(one(base, "ClusterRole", "rds-csi-node")["rules"]).toEqual([
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
      { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get"] },
      { apiGroups: [""], resources: ["nodes"], verbs: ["get"] },
      { apiGroups: [""], resources: ["pods"], verbs: ["list", "delete"] },
      { apiGroups: ["authorization.k8s.io"], resources: ["selfsubjectaccessreviews"], verbs: ["create"] }
    ])
    const binding = one(base, "ClusterRoleBinding", "rds-csi-node")
    expect(binding["roleRef"]).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "rds-csi-node" })
    expect(binding["subjects"]).toEqual([{ kind: "ServiceAccount", name: "rds-csi-node", namespace: "rds-csi" }])
    expect(pod["serviceAccountName"]).toBe("rds-csi-node")
    // Nothing else is bound to the node's ServiceAccount (the leader-election Role is the controller's).
    const bindings = base.filter((o) => o["kind"] === "ClusterRoleBinding" || o["kind"] === "RoleBinding")
    const toNode = bindings.filter((b) => b["subjects"].some((s: K8sObject) => s["name"] === "rds-csi-node"))
    expect(toNode.map((b) => b["metadata"]["name"])).toEqual(["rds-csi-node"])
  })

  it("CSIDriver: attach required (the controller fences at ControllerPublish), no pod info, persistent volumes only, fsGroup applied by kubelet", () => {
    const driver = one(base, "CSIDriver")
    expect(driver["apiVersion"]).toBe("storage.k8s.io/v1")
    expect(driver["spec"]).toEqual({ attachRequired: true, podInfoOnMount: false, volumeLifecycleModes: ["Persistent"], fsGroupPolicy: "File" })
  })

  it("DaemonSet pod: host network and PID, node-critical, on every Linux node whatever its taints", () => {
    expect(ds["apiVersion"]).toBe("apps/v1")
    expect(pod["hostNetwork"]).toBe(true)
    expect(pod["hostPID"]).toBe(true)
    expect(pod["dnsPolicy"]).toBe("ClusterFirstWithHostNet")
    expect(pod["priorityClassName"]).toBe("system-node-critical")
    expect(pod["nodeSelector"]).toEqual({ "kubernetes.io/os": "linux" })
    expect(pod["tolerations"]).toEqual([{ operator: "Exists" }])
    expect(ds["spec"]["selector"]["matchLabels"]).toEqual(ds["spec"]["template"]["metadata"]["labels"])
  })

  it("security: only the plugin is privileged (and root); every container has a read-only root file system; /tmp and /run are emptyDirs", () => {
    expect(pod["containers"].map((c: K8sObject) => c["name"])).toEqual(["rds-csi-node", "node-driver-registrar", "liveness-probe"])
    expect(plugin["securityContext"]).toEqual({ privileged: true, runAsUser: 0, readOnlyRootFilesystem: true })
    for (const c of pod["containers"].slice(1)) {
      expect(c["securityContext"], c["name"]).toEqual({ runAsUser: 0, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } })
    }
    for (const name of ["tmp", "run"]) {
      expect(mount(plugin, name)["mountPath"]).toBe(`/${name}`)
      expect(volume(name)["emptyDir"]).toBeDefined()
    }
  })

  it("the plugin runs `rds-csi node` with the node name from the downward API, metrics on 0.0.0.0:9810, settings from the ConfigMap", () => {
    expect(plugin["args"]).toEqual(["node", "--metrics-address", "0.0.0.0:9810"])
    const env = Object.fromEntries(plugin["env"].map((e: K8sObject) => [e["name"], e["value"] ?? e["valueFrom"]]))
    expect(env["NODE_ID"]).toEqual({ fieldRef: { fieldPath: "spec.nodeName" } })
    expect(env["CSI_ENDPOINT"]).toBe("unix:///csi/csi.sock")
    const configMap = nodeConfig(base)
    expect(plugin["envFrom"]).toEqual([{ configMapRef: { name: configMap["metadata"]["name"] } }])
    expect(Object.keys(configMap["data"]).sort()).toEqual(["LOG_LEVEL", "MANAGED_NQN_PREFIX"])
  })

  it("every flag in the args and every setting in env/ConfigMap is one `rds-csi node` knows", () => {
    const help = spawnSync(path.join(ROOT, "node_modules/node/bin/node"), [path.join(ROOT, "bin/rds-csi.js"), "node", "--help"], { encoding: "utf8" }).stdout
    for (const flag of plugin["args"].filter((a: string) => a.startsWith("--"))) expect(help, flag).toContain(`${flag} `)
    const envNames = new Set([...help.matchAll(/Env: ([A-Z_]+)\./g)].map((m) => m[1]))
    envNames.add("LOG_LEVEL") // read by Config.toSettings, not a flag
    const configured = [
      ...plugin["env"].map((e: K8sObject) => e["name"]).filter((n: string) => n !== "NODE_OPTIONS"),
      ...Object.keys(nodeConfig(base)["data"]),
      ...Object.keys(nodeConfig(overlay)["data"])
    ]
    for (const name of configured) expect(envNames.has(name), `${name} is read by rds-csi node`).toBe(true)
  })

  it("probes: liveness on the plugin's /healthz, readiness on /readyz, both on the metrics port 9810", () => {
    expect(plugin["ports"]).toEqual([{ name: "metrics", containerPort: 9810, protocol: "TCP" }])
    expect(plugin["livenessProbe"]["httpGet"]).toEqual({ path: "/healthz", port: "metrics" })
    expect(plugin["readinessProbe"]["httpGet"]).toEqual({ path: "/readyz", port: "metrics" })
    expect(container("liveness-probe")["args"]).toEqual(["--csi-address=/csi/csi.sock", "--http-endpoint=:9811"])
  })

  it("resources: requests 20m CPU and 64Mi, limit 256Mi; V8's heap is capped below the limit", () => {
    expect(plugin["resources"]).toEqual({ requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } })
    const options = String(plugin["env"].find((e: K8sObject) => e["name"] === "NODE_OPTIONS")["value"])
    const heap = /--max-old-space-size=(\d+)/.exec(options)
    expect(Number(heap?.[1])).toBeLessThan(256)
    // The interpreter only (bench/README.md, round 5: a quarter less RSS with 100 volumes); the e2e
    // harness and bench/footprint start the plugin with these same options.
    expect(options.split(/\s+/)).toContain("--jitless")
  })

  it("mount propagation: Bidirectional on the kubelet dir for the plugin only, nowhere else", () => {
    expect(mount(plugin, "kubelet-dir")).toEqual({ name: "kubelet-dir", mountPath: "/var/lib/kubelet", mountPropagation: "Bidirectional" })
    const bidirectional = pod["containers"].flatMap((c: K8sObject) =>
      c["volumeMounts"].filter((m: K8sObject) => m["mountPropagation"] === "Bidirectional").map((m: K8sObject) => `${c["name"]}:${m["name"]}`))
    expect(bidirectional).toEqual(["rds-csi-node:kubelet-dir"])
  })

  it("host paths: kubelet dir, plugin dir, registration dir, /dev, /sys, /etc/nvme and /lib/modules (the last two read-only)", () => {
    const hostPaths = Object.fromEntries(pod["volumes"].filter((v: K8sObject) => v["hostPath"]).map((v: K8sObject) => [v["name"], v["hostPath"]["path"]]))
    expect(hostPaths).toEqual({
      "kubelet-dir": "/var/lib/kubelet",
      "plugin-dir": "/var/lib/kubelet/plugins/rds.csi.srvlab.io",
      "registration-dir": "/var/lib/kubelet/plugins_registry",
      dev: "/dev",
      sys: "/sys",
      "etc-nvme": "/etc/nvme",
      "lib-modules": "/lib/modules"
    })
    expect(mount(plugin, "etc-nvme")).toMatchObject({ mountPath: "/etc/nvme", readOnly: true })
    expect(mount(plugin, "lib-modules")).toMatchObject({ mountPath: "/lib/modules", readOnly: true })
    for (const name of ["dev", "sys"]) expect(mount(plugin, name)["mountPath"]).toBe(`/${name}`)
    const declared = new Set(pod["volumes"].map((v: K8sObject) => v["name"]))
    for (const c of pod["containers"]) for (const m of c["volumeMounts"]) expect(declared.has(m["name"]), `${c["name"]} mounts ${m["name"]}`).toBe(true)
  })

  it("wiring: the socket kubelet registers is the one the plugin serves, and the driver name is the CSIDriver's", () => {
    const driver = one(base, "CSIDriver")["metadata"]["name"]
    const pluginDir = volume("plugin-dir")["hostPath"]["path"]
    expect(pluginDir).toBe(`/var/lib/kubelet/plugins/${driver}`)
    for (const c of pod["containers"]) expect(mount(c, "plugin-dir")["mountPath"], c["name"]).toBe("/csi")
    expect(container("node-driver-registrar")["args"]).toContain(`--kubelet-registration-path=${pluginDir}/csi.sock`)
    expect(container("node-driver-registrar")["args"]).toContain("--csi-address=/csi/csi.sock")
    expect(mount(container("node-driver-registrar"), "registration-dir")["mountPath"]).toBe("/registration")
  })

  it("sidecar images are pinned to a release tag; the plugin image to a version", () => {
    for (const c of pod["containers"]) expect(c["image"], c["name"]).toMatch(/:v?\d+\.\d+\.\d+$/)
    expect(container("node-driver-registrar")["image"]).toMatch(/^registry\.k8s\.io\/sig-storage\/csi-node-driver-registrar:v2\./)
    expect(container("liveness-probe")["image"]).toMatch(/^registry\.k8s\.io\/sig-storage\/livenessprobe:v2\./)
  })

  it("every image of every workload (base and overlay) has an exact tag or a digest: no `:latest`, no untagged name", () => {
    for (const [dir, objects] of [["base", base], ["overlays/example", overlay]] as const) {
      const images = objects.filter((o) => o["spec"]?.["template"]?.["spec"] !== undefined).flatMap((o) => {
        const spec = o["spec"]["template"]["spec"]
        return [...(spec["initContainers"] ?? []), ...spec["containers"]].map((c: K8sObject) => [`${dir} ${o["kind"]}/${o["metadata"]["name"]} ${c["name"]}`, c["image"]])
      })
      expect(images.length).toBeGreaterThan(5)
      for (const [where, image] of images) {
        expect(image, where).not.toMatch(/:latest$/)
        expect(image, where).toMatch(/(:v?\d+\.\d+\.\d+$)|(@sha256:[0-9a-f]{64}$)/)
      }
    }
  })

  it("the node plugin and the controller share one image (one release, one tag to change)", () => {
    const controller = one(base, "Deployment", "rds-csi-controller")["spec"]["template"]["spec"]["containers"][0]
    expect(controller["image"]).toBe(plugin["image"])
  })

  it("the metrics Service selects the node pods and targets the plugin's metrics port", () => {
    const svc = one(base, "Service", "rds-csi-node-metrics")
    expect(svc["spec"]["clusterIP"]).toBe("None")
    expect(svc["spec"]["selector"]).toEqual(ds["spec"]["template"]["metadata"]["labels"])
    expect(svc["spec"]["ports"]).toEqual([{ name: "metrics", port: 9810, targetPort: "metrics", protocol: "TCP" }])
  })
})

describe("deploy/overlays/example", () => {
  it("the base with a managed NQN prefix, the RDS's addresses and the image from another registry; nothing else changes", () => {
    const odsPod = one(overlay, "DaemonSet")["spec"]["template"]["spec"]
    expect(odsPod["containers"][0]["image"]).toBe("registry.example.com/storage/rds-csi:0.1.0")
    const cm = nodeConfig(overlay)
    expect(cm["data"]["MANAGED_NQN_PREFIX"]).toBe("nqn.2000-02.com.mikrotik:")
    expect(odsPod["containers"][0]["envFrom"]).toEqual([{ configMapRef: { name: cm["metadata"]["name"] } }])
    expect(cm["metadata"]["name"]).not.toBe(nodeConfig(base)["metadata"]["name"]) // a new hash: the DaemonSet rolls

    const odPod = one(overlay, "Deployment")["spec"]["template"]["spec"]
    expect(odPod["containers"][0]["image"]).toBe("registry.example.com/storage/rds-csi:0.1.0")
    const ccm = controllerConfig(overlay)
    expect(ccm["data"]["RDS_ADDRESS"]).toBe("10.42.1.10")
    expect(ccm["data"]["NVME_ADDRESS"]).toBe("10.42.0.10")
    expect(odPod["containers"][0]["envFrom"]).toEqual([{ configMapRef: { name: ccm["metadata"]["name"] } }])
    expect(ccm["metadata"]["name"]).not.toBe(controllerConfig(base)["metadata"]["name"]) // the Deployment rolls
    // What the controller names volumes with is what the node plugin manages.
    expect(ccm["data"]["NQN_PREFIX"]).toBe(cm["data"]["MANAGED_NQN_PREFIX"])

    const strip = (objs: ReadonlyArray<K8sObject>) =>
      JSON.stringify(objs.filter((o) => !["ConfigMap", "DaemonSet", "Deployment"].includes(o["kind"])))
    expect(strip(overlay)).toBe(strip(base))
    const sidecars = (objs: ReadonlyArray<K8sObject>) => JSON.stringify(one(objs, "Deployment")["spec"]["template"]["spec"]["containers"].slice(1))
    expect(sidecars(overlay)).toBe(sidecars(base))
  })

  it("no Secret is rendered anywhere: the SSH key and host key are created in the cluster, never kept in deploy/", () => {
    for (const objects of [base, overlay, monitoring]) expect(objects.filter((o) => o["kind"] === "Secret")).toEqual([])
  })
})

describe("deploy/monitoring", () => {
  it("a ServiceMonitor for each metrics Service (the node plugins', the controllers'), each selecting its Service's port and no other; a PrometheusRule each; the dashboard ConfigMap for Grafana's sidecar", () => {
    expect(monitoring.map((o) => `${o["apiVersion"]} ${o["kind"]}`).sort()).toEqual([
      "monitoring.coreos.com/v1 PrometheusRule",
      "monitoring.coreos.com/v1 PrometheusRule",
      "monitoring.coreos.com/v1 ServiceMonitor",
      "monitoring.coreos.com/v1 ServiceMonitor",
      "v1 ConfigMap"
    ])
    const services = base.filter((o) => o["kind"] === "Service" && o["metadata"]["name"].endsWith("-metrics"))
    expect(services.map((s) => s["metadata"]["name"]).sort()).toEqual(["rds-csi-controller-metrics", "rds-csi-node-metrics"])
    const selects = (sm: K8sObject, svc: K8sObject) =>
      Object.entries(sm["spec"]["selector"]["matchLabels"]).every(([k, v]) => svc["metadata"]["labels"][k] === v) &&
      sm["spec"]["namespaceSelector"]["matchNames"].includes(svc["metadata"]["namespace"])
    for (const [monitor, service] of [["rds-csi-node", "rds-csi-node-metrics"], ["rds-csi-controller", "rds-csi-controller-metrics"]] as const) {
      const sm = one(monitoring, "ServiceMonitor", monitor)
      const svc = one(base, "Service", service)
      expect(services.filter((s) => selects(sm, s)).map((s) => s["metadata"]["name"]), monitor).toEqual([service])
      expect(sm["spec"]["endpoints"].map((e: K8sObject) => e["port"]), monitor).toEqual([svc["spec"]["ports"][0]["name"]])
    }
    const dashboard = one(monitoring, "ConfigMap")
    expect(dashboard["metadata"]["labels"]["grafana_dashboard"]).toBe("1")
    expect(JSON.parse(dashboard["data"]["grafana-dashboard.json"])["uid"]).toBe("rds-csi-node")
  })

  it("the alerts the issue asks for: connection down > 1 min, failed recoveries, orphans, dropped events", () => {
    const rules: Array<K8sObject> = one(monitoring, "PrometheusRule", "rds-csi-node")["spec"]["groups"].flatMap((g: K8sObject) => g["rules"])
    const byName = Object.fromEntries(rules.map((r) => [r["alert"], r]))
    expect(Object.keys(byName)).toEqual(expect.arrayContaining(["RdsCsiVolumeConnectionDown", "RdsCsiRecoveryFailed", "RdsCsiOrphansFound", "RdsCsiEventsDropped"]))
    expect(byName["RdsCsiVolumeConnectionDown"]["for"]).toBe("1m")
    for (const r of rules) {
      expect(r["labels"]["severity"], r["alert"]).toMatch(/^(critical|warning)$/)
      expect(r["annotations"]["summary"], r["alert"]).toBeTruthy()
    }
  })

  it("the controller's alerts: the RDS not reached, its host key changed, no space, SSH flapping, failing operations", () => {
    const rules: Array<K8sObject> = one(monitoring, "PrometheusRule", "rds-csi-controller")["spec"]["groups"].flatMap((g: K8sObject) => g["rules"])
    expect(rules.map((r) => r["alert"])).toEqual(["RdsCsiRdsUnreachable", "RdsCsiRdsHostKeyMismatch", "RdsCsiRdsNoSpace", "RdsCsiRdsSshReconnects", "RdsCsiControllerOperationErrors"])
    for (const r of rules) {
      expect(r["labels"]["severity"], r["alert"]).toMatch(/^(critical|warning)$/)
      expect(r["annotations"]["summary"], r["alert"]).toBeTruthy()
      // The controller's series carry the replica's pod, never a node (src/observability/ControllerMetrics.ts).
      expect(r["expr"], r["alert"]).not.toContain("node")
    }
  })
})
