/**
 * The API server's JSON and failures, in the KubeClient's terms: a failed request (an HTTP
 * status with its Status body and Retry-After, a socket or TLS error, a timeout) as one
 * KubeError; a PersistentVolume, Pod or Event (client-node's model types, whose field names are
 * the wire names) as the domain records KubeClient returns; metav1.Time. Pure: KubeClientLive.ts
 * makes the requests.
 *
 * May import: effect, @kubernetes/client-node (model types only), ./KubeClient.ts, ./KubeHttp.ts.
 */
import type { CoreV1Event, V1PersistentVolume, V1Pod } from "@kubernetes/client-node"
import { Duration } from "effect"
import { kubeError, type KubeError, type KubeErrorReason, type KubeEvent, type PersistentVolume, type PodOnNode } from "./KubeClient.ts"
import { HttpStatusError } from "./KubeHttp.ts"

/** The KubeError reason an HTTP status stands for. */
export const reasonOf = (status: number): KubeErrorReason =>
  status === 404 ? "NotFound"
  : status === 401 || status === 403 ? "Forbidden"
  : status === 409 || status === 410 ? "Conflict"
  : status === 429 ? "TooManyRequests"
  : status >= 500 ? "ServerError"
  : "Invalid"

/** Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: string | undefined, nowMs: number): Duration.Duration | undefined => {
  if (value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Duration.seconds(seconds)
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Duration.millis(Math.max(0, at - nowMs))
}

const statusMessage = (body: unknown): string => {
  const parsed = typeof body === "string" ? (() => { try { return JSON.parse(body) as unknown } catch { return body } })() : body
  if (typeof parsed === "object" && parsed !== null && "message" in parsed && typeof parsed.message === "string") return parsed.message
  return typeof parsed === "string" ? parsed.slice(0, 300) : ""
}

/** Maps whatever a request failed with (a status, a socket or TLS error, a timeout) to a KubeError. */
export const toKubeError = (operation: string, e: unknown): KubeError => {
  if (e instanceof HttpStatusError) {
    const retryAfter = e.headers["retry-after"]
    return kubeError(reasonOf(e.status), operation, statusMessage(e.body) || `HTTP ${e.status}`, {
      status: e.status,
      retryAfter: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now())
    })
  }
  const err = e as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } }
  if (err?.name === "TimeoutError") return kubeError("Timeout", operation, err.message ?? "timed out")
  const cause = err?.cause?.code ?? err?.code
  const detail = [err?.message, err?.cause?.message].filter((s) => s !== undefined && s !== "").join(": ")
  return kubeError("Transport", operation, cause === undefined ? detail : `${cause}: ${detail}`)
}

export const fromPv = (pv: V1PersistentVolume): PersistentVolume => {
  const csi = pv.spec?.csi
  const claim = pv.spec?.claimRef
  return {
    name: pv.metadata?.name ?? "",
    uid: pv.metadata?.uid ?? "",
    resourceVersion: pv.metadata?.resourceVersion ?? "",
    csi: csi === undefined ? undefined : { driver: csi.driver, volumeHandle: csi.volumeHandle },
    claimRef: claim?.name === undefined ? undefined : { namespace: claim.namespace ?? "", name: claim.name, uid: claim.uid || undefined }
  }
}

export const fromPod = (p: V1Pod): PodOnNode => {
  const owner = p.metadata?.ownerReferences?.find((o) => o.controller === true)
  return {
    namespace: p.metadata?.namespace ?? "",
    name: p.metadata?.name ?? "",
    uid: p.metadata?.uid ?? "",
    controller: owner === undefined ? undefined : { kind: owner.kind, name: owner.name }
  }
}

export const fromEvent = (e: CoreV1Event): KubeEvent => ({
  name: e.metadata.name ?? "",
  namespace: e.metadata.namespace ?? "",
  involvedObject: {
    apiVersion: e.involvedObject.apiVersion ?? "",
    kind: e.involvedObject.kind ?? "",
    name: e.involvedObject.name ?? "",
    namespace: e.involvedObject.namespace ?? "",
    uid: e.involvedObject.uid ?? ""
  },
  type: e.type === "Warning" ? "Warning" : "Normal",
  reason: e.reason ?? "",
  message: e.message ?? "",
  count: e.count ?? 1,
  firstTimestamp: e.firstTimestamp === undefined ? 0 : new Date(e.firstTimestamp).getTime(),
  lastTimestamp: e.lastTimestamp === undefined ? 0 : new Date(e.lastTimestamp).getTime(),
  source: { component: e.source?.component ?? "", host: e.source?.host ?? "" },
  reportingComponent: e.reportingComponent ?? "",
  reportingInstance: e.reportingInstance ?? ""
})

/** metav1.Time is RFC 3339 with second precision. */
export const rfc3339 = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z")
