/**
 * Every API call in test/deploy/api-calls.ts made for real, as the plugin's ServiceAccount
 * (system:serviceaccount:rds-csi:rds-csi-node, bound by deploy/base's RBAC), on the real API
 * server: none is refused. A 404 counts as allowed (the server authorizes before it looks), and a
 * token the server does not know is refused, so the test can tell the difference.
 */
import { Duration, Effect, Option, Result, Stream } from "effect"
import { describe, expect, inject, it } from "vitest"
import { KubeClient, type KubeError } from "../../src/kube/KubeClient.ts"
import * as KubeClientLive from "../../src/kube/KubeClientLive.ts"
import { API_CALLS } from "../deploy/api-calls.ts"

const kube = inject("kube")
const asNode = KubeClientLive.layerFromConnection({ server: kube.server, caFile: kube.caFile, token: kube.nodeToken })

/** The outcome of one call: ok, or the KubeError's reason. */
const outcome = <A>(e: Effect.Effect<A, KubeError>) =>
  e.pipe(Effect.map(() => "ok"), Effect.catchTag("KubeError", (err) => Effect.succeed(err.reason)))

/** Calls each KubeClient method once, as the given identity. */
const callEach = Effect.gen(function*() {
  const c = yield* KubeClient
  const now = Date.now()
  const name = `rds-csi-rbac-${now}`
  const event = {
    name,
    namespace: "default",
    involvedObject: { apiVersion: "v1", kind: "Node", name: "rbac-test-node", namespace: "", uid: "uid-rbac-test" },
    type: "Normal" as const,
    reason: "RbacCheck",
    message: "rds-csi deploy RBAC check",
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    source: { component: "rds-csi-node", host: "rbac-test-node" },
    reportingComponent: "rds-csi-node",
    reportingInstance: "rbac-test-node"
  }
  const list = yield* c.listPersistentVolumes().pipe(Effect.result)
  const rv = Result.isSuccess(list) ? list.success.resourceVersion : "0"
  // A watch the server refuses fails at once; an allowed one stays open with nothing to say.
  const watch = yield* outcome(
    c.watchPersistentVolumes(rv).pipe(Stream.take(1), Stream.runDrain, Effect.timeoutOption(Duration.seconds(2)), Effect.map(Option.getOrUndefined))
  )
  return {
    listPersistentVolumes: Result.isSuccess(list) ? "ok" : list.failure.reason,
    watchPersistentVolumes: watch,
    getPersistentVolume: yield* outcome(c.getPersistentVolume("rds-csi-no-such-pv")),
    getPersistentVolumeClaim: yield* outcome(c.getPersistentVolumeClaim("default", "rds-csi-no-such-pvc")),
    getNode: yield* outcome(c.getNode("rds-csi-no-such-node")),
    podsOnNode: yield* outcome(c.podsOnNode("rbac-test-node")),
    deletePod: yield* outcome(c.deletePod("default", "rds-csi-no-such-pod", "uid-rbac-test")),
    createEvent: yield* outcome(c.createEvent(event)),
    patchEvent: yield* outcome(c.patchEvent("default", name, { count: 2, lastTimestamp: now + 1000, message: event.message })),
    canI: yield* outcome(c.canI({ verb: "create", resource: "events" }))
  } as Record<string, string>
})

describe("the plugin's API calls as its ServiceAccount on the real server", () => {
  it("none is refused: each is ok, or NotFound for an object that does not exist", async () => {
    const results = await Effect.runPromise(callEach.pipe(Effect.provide(asNode)))
    expect(Object.keys(results).sort()).toEqual(API_CALLS.map((c) => c.method).sort())
    expect(results).toEqual({
      listPersistentVolumes: "ok",
      watchPersistentVolumes: "ok",
      getPersistentVolume: "NotFound",
      getPersistentVolumeClaim: "NotFound",
      getNode: "NotFound",
      podsOnNode: "ok",
      deletePod: "NotFound",
      createEvent: "ok",
      patchEvent: "ok",
      canI: "ok"
    })
  })

  it("control: an unknown identity is refused on the same calls (so 'not Forbidden' above means something)", async () => {
    const stranger = KubeClientLive.layerFromConnection({ server: kube.server, caFile: kube.caFile, token: "no-such-token" })
    const results = await Effect.runPromise(callEach.pipe(Effect.provide(stranger)))
    for (const [method, r] of Object.entries(results)) expect(r, method).toBe("Forbidden")
  })
})
