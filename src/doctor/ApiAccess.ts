/**
 * Doctor check: the API server answers, and this identity may do what the plugin does there
 * (SelfSubjectAccessReview per verb and resource: the server's own answer, no guessing from
 * RBAC objects). Without a kubeconfig or an in-cluster service account it is skipped with a
 * warning: the plugin then runs without events.
 *
 * May import: effect, kube/KubeClient (the contract; the live layer is passed in), ./Check.ts.
 */
import { Effect, Layer } from "effect"
import { type AccessCheck, KubeClient, type KubeError, REQUIRED_ACCESS } from "../kube/KubeClient.ts"
import { type CheckResult, fail, ok, warn } from "./Check.ts"

const NAME = "API server access"
const APPLY_RBAC = "kubectl apply -k deploy/base (ClusterRole and ClusterRoleBinding rds-csi-node) and run as ServiceAccount rds-csi/rds-csi-node"

/** What the node plugin does on the API server (SPEC §4.6, deploy/base/rbac.yaml); one list for doctor and the start-up check. */
export { REQUIRED_ACCESS } from "../kube/KubeClient.ts"

export type Answers =
  | { readonly _tag: "NoConfig"; readonly why: string }
  | { readonly _tag: "Unusable"; readonly error: KubeError }
  | { readonly _tag: "Asked"; readonly server: string; readonly results: ReadonlyArray<{ readonly check: AccessCheck; readonly answer: boolean | KubeError }> }

const label = (c: AccessCheck) => `${c.verb} ${c.resource}`

/** Pure: the verdict from the answers. */
export const decideAccess = (answers: Answers): CheckResult => {
  switch (answers._tag) {
    case "NoConfig":
      return warn(NAME, `not checked: ${answers.why}`, "pass --kubeconfig (or KUBECONFIG) with the plugin's credentials, or run doctor in the DaemonSet's pod")
    case "Unusable":
      return fail(NAME, `configuration unusable: ${answers.error.message}`, "fix --kubeconfig / KUBECONFIG, or the pod's service account token mount")
    case "Asked": {
      const errors = answers.results.flatMap((r) => (typeof r.answer === "boolean" ? [] : [r.answer]))
      const first = errors[0]
      if (first !== undefined) {
        const fix = first.reason === "Forbidden"
          ? `the server refused the credentials or SelfSubjectAccessReview itself (${first.status ?? "?"}): check the token; ${APPLY_RBAC}`
          : first.reason === "Transport" || first.reason === "Timeout"
          ? `make ${answers.server} reachable from this node (firewall, DNS, hostNetwork) and check it is up`
          : `look at the API server's answer; ${APPLY_RBAC}`
        return fail(NAME, `${answers.server}: ${first.message}`, fix)
      }
      const denied = answers.results.filter((r) => r.answer === false).map((r) => label(r.check))
      if (denied.length > 0) return fail(NAME, `${answers.server}: may not ${denied.join(", ")}`, APPLY_RBAC)
      return ok(NAME, `${answers.server}: may ${answers.results.map((r) => label(r.check)).join(", ")}`)
    }
  }
}

/** Asks every REQUIRED_ACCESS question; stops after the first when the server cannot be reached. */
export const ask: Effect.Effect<Answers, never, KubeClient> = Effect.gen(function*() {
  const kube = yield* KubeClient
  const question = (check: AccessCheck) =>
    kube.canI(check).pipe(
      Effect.map((r): boolean | KubeError => r.allowed),
      Effect.catch((e) => Effect.succeed(e)),
      Effect.map((answer) => ({ check, answer }))
    )
  const [head, ...rest] = REQUIRED_ACCESS
  const first = yield* question(head!)
  if (typeof first.answer !== "boolean") return { _tag: "Asked", server: kube.server, results: [first] } as const
  const others = yield* Effect.forEach(rest, question, { concurrency: 4 })
  return { _tag: "Asked", server: kube.server, results: [first, ...others] } as const
})

/** `client` is the KubeClient to ask through, or why there is none. */
export const check = (client: Layer.Layer<KubeClient, KubeError> | { readonly none: string }): Effect.Effect<CheckResult> =>
  ("none" in client
    ? Effect.succeed<Answers>({ _tag: "NoConfig", why: client.none })
    : ask.pipe(
      Effect.provide(client),
      Effect.catch((error) => Effect.succeed<Answers>({ _tag: "Unusable", error }))
    )).pipe(Effect.map(decideAccess), Effect.withSpan("Doctor.apiAccess"))
