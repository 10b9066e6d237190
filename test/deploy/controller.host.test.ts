/**
 * The controller part of deploy/base as the machine's `kubectl kustomize` renders it (run again
 * with KUBECTL=<kubectl 1.20> for the kustomize inside kubectl 1.20): the Deployment (replicas,
 * rollout, spread, no privilege, probes, the Secret mount, the sidecars' flags and exact images),
 * the settings ConfigMap against the variables `rds-csi controller` reads, and the metrics
 * Service. Its RBAC: controller-rbac.host.test.ts. The API server's own verdict:
 * test/integration/deploy-server.test.ts.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { type K8sObject, one, render, ROOT } from "./render.ts"

const base = render("base")
const overlay = render("overlays/example")
const deployment = one(base, "Deployment", "rds-csi-controller")
const pod = deployment["spec"]["template"]["spec"]
const container = (name: string): K8sObject => {
  const c = pod["containers"].find((c: K8sObject) => c["name"] === name)
  expect(c, name).toBeDefined()
  return c
}
const controller = container("rds-csi-controller")
const SIDECARS = ["csi-provisioner", "csi-attacher", "csi-resizer"] as const
const envOf = (c: K8sObject): Record<string, unknown> => Object.fromEntries((c["env"] ?? []).map((e: K8sObject) => [e["name"], e["value"] ?? e["valueFrom"]]))
const configMap = (objects: ReadonlyArray<K8sObject>): K8sObject => {
  const found = objects.filter((o) => o["kind"] === "ConfigMap" && /^rds-csi-controller-config-[a-z0-9]{10}$/.test(o["metadata"]["name"]))
  expect(found).toHaveLength(1)
  return found[0]!
}

/**
 * Every environment variable `rds-csi controller` reads (each is also a flag). src/Config.ts must
 * read exactly these names; the ConfigMap and the Deployment may set nothing else.
 */
const CONTROLLER_ENV = [
  "CSI_ENDPOINT",
  "RDS_ADDRESS",
  "RDS_USER",
  "RDS_SSH_KEY",
  "RDS_HOST_KEY",
  "RDS_INSECURE_SKIP_HOST_KEY_CHECK",
  "VOLUME_PATH",
  "NVME_ADDRESS",
  "NVME_PORT",
  "NQN_PREFIX",
  "COMMAND_TIMEOUT",
  "KUBECONFIG",
  "METRICS_ADDRESS",
  "LOG_LEVEL",
  "DRIVER_NAME"
] as const

describe("deploy/base: the controller Deployment", () => {
  it("two replicas rolled one at a time without a surge, spread over nodes where possible", () => {
    expect(deployment["apiVersion"]).toBe("apps/v1")
    expect(deployment["metadata"]["namespace"]).toBe("rds-csi")
    expect(deployment["spec"]["replicas"]).toBe(2)
    expect(deployment["spec"]["strategy"]).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } })
    const labels = deployment["spec"]["template"]["metadata"]["labels"]
    expect(labels).toEqual({ "app.kubernetes.io/name": "rds-csi", "app.kubernetes.io/component": "controller" })
    expect(deployment["spec"]["selector"]["matchLabels"]).toEqual(labels)
    // Preferred, not required: a one-node cluster still runs both replicas.
    expect(pod["affinity"]).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: labels } } }
        ]
      }
    })
    expect(pod["priorityClassName"]).toBe("system-cluster-critical")
    expect(pod["nodeSelector"]).toEqual({ "kubernetes.io/os": "linux" })
    expect(pod["serviceAccountName"]).toBe("rds-csi-controller")
  })

  it("no privilege: not root, no host namespaces or paths, read-only root file systems, no capabilities", () => {
    expect(pod["containers"].map((c: K8sObject) => c["name"])).toEqual(["rds-csi-controller", ...SIDECARS, "liveness-probe"])
    expect(pod["securityContext"]).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: "RuntimeDefault" }
    })
    for (const key of ["hostNetwork", "hostPID", "hostIPC"]) expect(pod[key], key).toBeUndefined()
    expect(pod["volumes"].filter((v: K8sObject) => v["hostPath"] !== undefined)).toEqual([])
    for (const c of pod["containers"]) {
      expect(c["securityContext"], c["name"]).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } })
      expect(c["command"], `${c["name"]}: the image's entrypoint`).toBeUndefined()
    }
  })

  it("the controller runs `rds-csi controller` with metrics on 0.0.0.0:9812 and its settings from the generated ConfigMap", () => {
    expect(controller["args"]).toEqual(["controller", "--metrics-address", "0.0.0.0:9812"])
    const env = envOf(controller)
    expect(env["CSI_ENDPOINT"]).toBe("unix:///csi/csi.sock")
    expect(controller["envFrom"]).toEqual([{ configMapRef: { name: configMap(base)["metadata"]["name"] } }])
    expect(controller["ports"]).toEqual([{ name: "metrics", containerPort: 9812, protocol: "TCP" }])
  })

  it("the SSH key and the pinned host key: files of the rds-csi-ssh Secret, mounted read-only, readable by the pod's group only", () => {
    const secret = pod["volumes"].find((v: K8sObject) => v["secret"] !== undefined)
    expect(secret).toEqual({ name: "rds-ssh", secret: { secretName: "rds-csi-ssh", defaultMode: 0o440 } })
    const mountPoint = controller["volumeMounts"].find((m: K8sObject) => m["name"] === "rds-ssh")
    expect(mountPoint).toEqual({ name: "rds-ssh", mountPath: "/etc/rds-csi/ssh", readOnly: true })
    const env = envOf(controller)
    // The keys deploy/README.md tells `kubectl create secret generic rds-csi-ssh` to use.
    expect(env["RDS_SSH_KEY"]).toBe("/etc/rds-csi/ssh/ssh-privatekey")
    expect(env["RDS_HOST_KEY"]).toBe("/etc/rds-csi/ssh/rds-host-key")
    // Only the controller sees the Secret; the sidecars get the socket and nothing else.
    for (const name of [...SIDECARS, "liveness-probe"]) {
      expect(container(name)["volumeMounts"], name).toEqual([{ name: "socket-dir", mountPath: "/csi" }])
    }
  })

  it("probes: liveness on the controller's /healthz, readiness on /readyz, both on the metrics port; the CSI Probe sidecar on 9813", () => {
    expect(controller["livenessProbe"]["httpGet"]).toEqual({ path: "/healthz", port: "metrics" })
    expect(controller["readinessProbe"]["httpGet"]).toEqual({ path: "/readyz", port: "metrics" })
    expect(container("liveness-probe")["args"]).toEqual(["--csi-address=/csi/csi.sock", "--http-endpoint=:9813"])
  })

  it("resources on every container, memory limited; V8's heap is capped below the controller's limit", () => {
    for (const c of pod["containers"]) {
      expect(c["resources"]["requests"]["cpu"], c["name"]).toBeDefined()
      expect(c["resources"]["requests"]["memory"], c["name"]).toBeDefined()
      expect(c["resources"]["limits"]["memory"], c["name"]).toMatch(/^\d+Mi$/)
    }
    expect(controller["resources"]).toEqual({ requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "256Mi" } })
    const heap = /--max-old-space-size=(\d+)/.exec(String(envOf(controller)["NODE_OPTIONS"]))
    expect(Number(heap?.[1])).toBeLessThan(256)
    // Not the node plugin's --jitless: ssh2's chacha20-poly1305 runs on WebAssembly, which it turns off.
    expect(String(envOf(controller)["NODE_OPTIONS"]).split(/\s+/)).not.toContain("--jitless")
  })

  it("one socket for all: an emptyDir at /csi, unix:///csi/csi.sock in the controller and --csi-address=/csi/csi.sock in every sidecar", () => {
    expect(pod["volumes"].find((v: K8sObject) => v["name"] === "socket-dir")).toEqual({ name: "socket-dir", emptyDir: {} })
    expect(controller["volumeMounts"]).toContainEqual({ name: "socket-dir", mountPath: "/csi" })
    for (const name of [...SIDECARS, "liveness-probe"]) expect(container(name)["args"], name).toContain("--csi-address=/csi/csi.sock")
    // /tmp (HOME, Node's compile cache) is the controller's only other writable place.
    expect(controller["volumeMounts"]).toContainEqual({ name: "tmp", mountPath: "/tmp" })
    expect(pod["volumes"].find((v: K8sObject) => v["name"] === "tmp")["emptyDir"]).toBeDefined()
  })

  it("every sidecar elects a leader in the pod's own namespace and gives a CSI call at least 60 s (a few RouterOS commands over SSH)", () => {
    for (const name of SIDECARS) {
      const c = container(name)
      expect(c["args"], name).toContain("--leader-election")
      expect(c["args"], name).toContain("--leader-election-namespace=$(POD_NAMESPACE)")
      expect(envOf(c)["POD_NAMESPACE"], name).toEqual({ fieldRef: { fieldPath: "metadata.namespace" } })
      const timeout = c["args"].find((a: string) => a.startsWith("--timeout="))
      expect(timeout, name).toMatch(/^--timeout=\d+s$/)
      expect(Number(/(\d+)s$/.exec(timeout)?.[1]), name).toBeGreaterThanOrEqual(60)
    }
  })

  it("the sidecars' own flags: provisioner with extra metadata, ext4, no topology, no VolumeAttributesClass; resizer without the in-use handling", () => {
    expect(container("csi-provisioner")["args"]).toEqual([
      "--csi-address=/csi/csi.sock",
      "--leader-election",
      "--leader-election-namespace=$(POD_NAMESPACE)",
      "--timeout=120s",
      "--worker-threads=10",
      "--extra-create-metadata",
      "--default-fstype=ext4",
      "--feature-gates=Topology=false,VolumeAttributesClass=false"
    ])
    expect(container("csi-attacher")["args"]).toEqual([
      "--csi-address=/csi/csi.sock",
      "--leader-election",
      "--leader-election-namespace=$(POD_NAMESPACE)",
      "--timeout=60s"
    ])
    expect(container("csi-resizer")["args"]).toEqual([
      "--csi-address=/csi/csi.sock",
      "--leader-election",
      "--leader-election-namespace=$(POD_NAMESPACE)",
      "--timeout=120s",
      "--handle-volume-inuse-error=false",
      "--feature-gates=VolumeAttributesClass=false"
    ])
  })

  it("images pinned exactly: one sig-storage release train (Kubernetes >= 1.20 for all), the livenessprobe the node DaemonSet uses", () => {
    expect(Object.fromEntries(pod["containers"].map((c: K8sObject) => [c["name"], c["image"]]))).toEqual({
      "rds-csi-controller": "ghcr.io/srvlab/rds-csi:0.1.0",
      "csi-provisioner": "registry.k8s.io/sig-storage/csi-provisioner:v5.2.0",
      "csi-attacher": "registry.k8s.io/sig-storage/csi-attacher:v4.8.1",
      "csi-resizer": "registry.k8s.io/sig-storage/csi-resizer:v1.13.2",
      "liveness-probe": "registry.k8s.io/sig-storage/livenessprobe:v2.15.0"
    })
    const nodeProbe = one(base, "DaemonSet")["spec"]["template"]["spec"]["containers"].find((c: K8sObject) => c["name"] === "liveness-probe")
    expect(container("liveness-probe")["image"]).toBe(nodeProbe["image"])
  })

  it("the metrics Service: headless, selects the controller pods, targets their metrics port", () => {
    const svc = one(base, "Service", "rds-csi-controller-metrics")
    expect(svc["metadata"]["namespace"]).toBe("rds-csi")
    expect(svc["spec"]["clusterIP"]).toBe("None")
    expect(svc["spec"]["selector"]).toEqual(deployment["spec"]["template"]["metadata"]["labels"])
    expect(svc["spec"]["ports"]).toEqual([{ name: "metrics", port: 9812, targetPort: "metrics", protocol: "TCP" }])
  })
})

describe("deploy/base: the controller's settings", () => {
  const configured = (objects: ReadonlyArray<K8sObject>) => [
    ...controller["env"].map((e: K8sObject) => e["name"]).filter((n: string) => n !== "NODE_OPTIONS"),
    ...Object.keys(configMap(objects)["data"])
  ]

  it("the ConfigMap holds the defaults a cluster may change; the RDS's addresses are left to the overlay", () => {
    expect(configMap(base)["data"]).toEqual({
      RDS_USER: "admin",
      RDS_INSECURE_SKIP_HOST_KEY_CHECK: "false",
      VOLUME_PATH: "/storage-pool/k8s",
      NVME_PORT: "4420",
      NQN_PREFIX: "nqn.2000-02.com.mikrotik:",
      COMMAND_TIMEOUT: "30s",
      LOG_LEVEL: "info"
    })
    const example = configMap(overlay)["data"]
    expect(Object.keys(example)).toEqual(expect.arrayContaining(["RDS_ADDRESS", "NVME_ADDRESS"]))
  })

  it("every variable the Deployment and the ConfigMaps set is one `rds-csi controller` reads (CONTROLLER_ENV), each once", () => {
    for (const objects of [base, overlay]) {
      const names = configured(objects)
      expect(new Set(names).size, names.join(" ")).toBe(names.length)
      for (const name of names) expect(CONTROLLER_ENV as ReadonlyArray<string>, name).toContain(name)
    }
  })

  it("CONTROLLER_ENV is exactly the variables `rds-csi controller --help` lists, and every flag in args is one of its flags", () => {
    const r = spawnSync(path.join(ROOT, "node_modules/node/bin/node"), [path.join(ROOT, "bin/rds-csi.js"), "controller", "--help"], { encoding: "utf8" })
    expect(r.stdout).toMatch(/USAGE\s+rds-csi controller/)
    for (const flag of controller["args"].filter((a: string) => a.startsWith("--"))) expect(r.stdout, flag).toContain(`${flag} `)
    const envNames = [...r.stdout.matchAll(/Env: ([A-Z_]+)\./g)].map((m) => m[1])
    expect([...envNames].sort()).toEqual([...CONTROLLER_ENV].sort())
  })
})
