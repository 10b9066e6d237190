/**
 * Integration-test support: the machine's kubectl as the cluster admin (fixtures, describe),
 * and the plugin's Kubernetes side (KubeClient → PvcLookup + EventRecorder → EventPoster)
 * running as the node's ServiceAccount against a given server URL (the real one or a
 * FaultProxy in front of it).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Layer, Logger, ManagedRuntime } from "effect"
import { inject } from "vitest"
import type { NodeId } from "../../src/domain/Ids.ts"
import { layerWith } from "../../src/kube/EventPosterLive.ts"
import * as EventRecorderLive from "../../src/kube/EventRecorder.ts"
import type { RecorderOptions } from "../../src/kube/EventRecorder.ts"
import * as KubeClientLive from "../../src/kube/KubeClientLive.ts"
import * as PvcLookupLive from "../../src/kube/PvcLookup.ts"
import { Settings, testSettings } from "../../src/Settings.ts"

export const kube = inject("kube")
export const DRIVER = "rds.csi.srvlab.io"

export const kubectl = (args: ReadonlyArray<string>, input?: string): string =>
  execFileSync("kubectl", ["--kubeconfig", kube.adminKubeconfig, ...args], { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] })

export const apply = (yaml: string): string => kubectl(["apply", "-f", "-"], yaml)

/** A kubeconfig file for the test server with `token`, as an operator would pass with --kubeconfig. */
export const writeKubeconfig = (token: string): string => {
  const file = join(mkdtempSync(join(tmpdir(), "rds-csi-kubeconfig-")), "kubeconfig")
  writeFileSync(file, [
    "apiVersion: v1", "kind: Config",
    `clusters: [{name: t, cluster: {server: "${kube.server}", certificate-authority: "${kube.caFile}"}}]`,
    `users: [{name: u, user: {token: ${token}}}]`,
    "contexts: [{name: t, context: {cluster: t, user: u}}]",
    "current-context: t", ""
  ].join("\n"))
  return file
}

/** A unique, DNS-safe suffix per call. */
let seq = 0
export const unique = (prefix: string): string => `${prefix}-${process.pid.toString(36)}-${Date.now().toString(36)}-${(seq++).toString(36)}`

export const ensureNamespace = (ns: string): void => {
  apply(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`)
}

/** A PVC bound (pre-bound, as a static PV is) to a PV of our driver; `withUid` puts the claim's uid into claimRef. */
export const volumeFixture = (
  ns: string,
  opts: { pvName: string; pvcName: string; volumeId: string; withUid?: boolean; withoutPvc?: boolean }
) => {
  if (opts.withoutPvc !== true) {
    apply(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: ${opts.pvcName}, namespace: ${ns}}
spec: {accessModes: [ReadWriteOnce], storageClassName: "", volumeName: ${opts.pvName}, resources: {requests: {storage: 1Gi}}}
`)
  }
  const uid = opts.withoutPvc === true ? "" : kubectl(["get", "pvc", "-n", ns, opts.pvcName, "-o", "jsonpath={.metadata.uid}"]).trim()
  apply(`apiVersion: v1
kind: PersistentVolume
metadata: {name: ${opts.pvName}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  csi: {driver: ${DRIVER}, volumeHandle: ${opts.volumeId}, volumeAttributes: {nqn: "nqn.2000-02.com.mikrotik:${opts.volumeId}", nvmeAddress: 10.0.0.5, nvmePort: "4420"}}
  claimRef: {namespace: ${ns}, name: ${opts.pvcName}${opts.withUid === true ? `, uid: ${uid}` : ""}}
`)
  return { uid }
}

export const nodeFixture = (name: string): string => {
  apply(`apiVersion: v1\nkind: Node\nmetadata: {name: ${name}}\n`)
  return kubectl(["get", "node", name, "-o", "jsonpath={.metadata.uid}"]).trim()
}

export interface ApiEvent {
  readonly type: string
  readonly reason: string
  readonly message: string
  readonly count: number
  readonly involvedObject: { kind: string; name: string; namespace?: string; uid: string }
  readonly source: { component?: string; host?: string }
  readonly reportingComponent?: string
  readonly reportingInstance?: string
  readonly metadata: { name: string; namespace: string }
}

/** Events about one object, as the server has them. */
export const eventsFor = (kind: string, name: string, ns: string): Array<ApiEvent> =>
  (JSON.parse(kubectl(["get", "events", "-n", ns, "--field-selector", `involvedObject.kind=${kind},involvedObject.name=${name}`, "-o", "json"])) as {
    items: Array<ApiEvent>
  }).items

/** The Events section of `kubectl describe`. */
export const describeEvents = (args: ReadonlyArray<string>): string => {
  const out = kubectl(["describe", ...args])
  return out.slice(out.indexOf("Events:"))
}

/** Collects the plugin's log lines; it logs nothing to the console. */
export const logSink = () => {
  const lines: Array<string> = []
  const logger = Logger.make((o) => {
    const parts = Array.isArray(o.message) ? o.message : [o.message]
    lines.push(`${o.logLevel}: ${parts.map(String).join(" ")}`)
  })
  return { lines, layer: Logger.layer([logger]) as Layer.Layer<never> }
}

/**
 * The plugin's Kubernetes side for `nodeName`, as the node ServiceAccount, against `server`.
 * Dispose the runtime to drain the recorder.
 */
export const pluginRuntime = (options: {
  readonly server?: string
  readonly nodeName: string
  readonly recorder?: Partial<RecorderOptions>
  readonly requestTimeout?: Duration.Duration
  readonly logs?: Layer.Layer<never>
}) => {
  const settings = Settings.layer(testSettings({ nodeId: options.nodeName as NodeId, events: true, driverName: DRIVER }))
  const client = KubeClientLive.layerFromConnection({
    server: options.server ?? kube.server,
    caFile: kube.caFile,
    token: kube.nodeToken,
    requestTimeout: options.requestTimeout ?? Duration.seconds(5)
  })
  const services = layerWith.pipe(
    Layer.provideMerge(Layer.mergeAll(EventRecorderLive.layer(options.recorder ?? {}), PvcLookupLive.layer)),
    Layer.provideMerge(client),
    Layer.provideMerge(settings),
    Layer.provideMerge(options.logs ?? logSink().layer)
  )
  return ManagedRuntime.make(services)
}
