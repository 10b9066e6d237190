/**
 * Every metric named in a query of the Grafana dashboard or a PrometheusRule alert is one the
 * plugin exports. The exported names come from the running code, not from grepping it: the
 * metric modules (src/observability/Metrics.ts, src/kube/EventRecorder.ts, and the controller's
 * src/observability/ControllerMetrics.ts) are imported, each
 * exported Metric is updated once, and effect's Prometheus exporter formats the registry, which
 * yields the names Prometheus will see, histograms' _bucket/_sum/_count included. Queries are
 * reduced to their metric names by stripping strings, label matchers, ranges and label lists
 * and dropping PromQL's own words; a name that is neither ours nor PromQL fails the test.
 */
import { Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { loadAll } from "js-yaml"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import * as EventRecorder from "../../src/kube/EventRecorder.ts"
import * as ControllerMetrics from "../../src/observability/ControllerMetrics.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import { type K8sObject, ROOT } from "./render.ts"

/** PromQL functions, aggregations, keywords and Grafana's template functions. */
const PROMQL = new Set([
  "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
  "rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes", "histogram_quantile", "abs", "absent",
  "absent_over_time", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "label_replace", "label_join",
  "sort", "sort_desc", "time", "timestamp", "vector", "scalar", "avg_over_time", "min_over_time", "max_over_time",
  "sum_over_time", "count_over_time", "last_over_time", "present_over_time", "predict_linear",
  "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"
])

/** The metric names a PromQL expression reads. */
export const metricNamesIn = (expr: string): ReadonlyArray<string> => {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ") // strings
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // ranges, subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ") // label lists
    .replace(/\boffset\s+\S+/g, " ")
    .replace(/\$\{?\w+\}?/g, " ") // Grafana variables
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, " ") // numbers
  return [...new Set(stripped.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [])].filter((t) => !PROMQL.has(t))
}

interface Query {
  readonly where: string
  readonly expr: string
}

const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, "deploy/monitoring/grafana-dashboard.json"), "utf8")) as K8sObject
const rules = (loadAll(fs.readFileSync(path.join(ROOT, "deploy/monitoring/prometheusrule.yaml"), "utf8")) as Array<K8sObject>).filter((o) => o !== null)

const panelsOf = (panels: ReadonlyArray<K8sObject>): Array<K8sObject> => panels.flatMap((p) => [p, ...panelsOf(p["panels"] ?? [])])

const dashboardQueries: ReadonlyArray<Query> = [
  ...panelsOf(dashboard["panels"]).flatMap((p) => (p["targets"] ?? []).map((t: K8sObject) => ({ where: `panel '${p["title"]}' ${t["refId"]}`, expr: t["expr"] }))),
  // label_values(metric, label): the metric is a query too
  ...dashboard["templating"]["list"].filter((v: K8sObject) => v["type"] === "query").map((v: K8sObject) => {
    const m = /^label_values\((\w+),\s*\w+\)$/.exec(v["definition"])
    return { where: `variable $${v["name"]}`, expr: m?.[1] ?? v["definition"] }
  })
]
const ruleQueries: ReadonlyArray<Query> = rules.flatMap((rule) => rule["spec"]["groups"].flatMap((g: K8sObject) =>
  g["rules"].map((r: K8sObject) => ({ where: `alert ${r["alert"] ?? r["record"]}`, expr: r["expr"] }))))

let exported = new Set<string>()

beforeAll(async () => {
  const metrics = [...Object.values(Metrics), ...Object.values(EventRecorder), ...Object.values(ControllerMetrics)].filter(Metric.isMetric) as Array<Metric.Metric<number, unknown>>
  const text = await Effect.runPromise(Effect.forEach(metrics, (m) => Metric.update(m, 0), { discard: true }).pipe(Effect.andThen(PrometheusMetrics.format())))
  exported = new Set(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]))
})

describe("metrics the dashboard and the alerts query", () => {
  it("the plugin exports its metrics under rds_csi_, histograms with _bucket, _sum and _count", () => {
    expect([...exported].every((n) => n.startsWith("rds_csi_"))).toBe(true)
    for (const suffix of ["_bucket", "_sum", "_count"]) expect(exported.has(`rds_csi_volume_operation_duration_seconds${suffix}`), suffix).toBe(true)
    expect(exported.has("rds_csi_events_posted_total")).toBe(true)
    expect(exported.has("rds_csi_events_dropped_total")).toBe(true)
  })

  it("the extraction finds the metric names and only them", () => {
    expect(metricNamesIn(`histogram_quantile(0.99, sum by (le, operation) (rate(a_bucket{node=~"$node", x!="y z"}[$__rate_interval])))`)).toEqual(["a_bucket"])
    expect(metricNamesIn(`sum by (node) (increase(b_total{why!~"no_object|spam"}[10m])) / on (node) group_left c > 0.5 offset 5m`)).toEqual(["b_total", "c"])
    expect(metricNamesIn(`up == 0 and kube_pod_info`)).toEqual(["up", "kube_pod_info"])
  })

  for (const [source, queries] of [["dashboard", dashboardQueries], ["PrometheusRule", ruleQueries]] as const) {
    it(`every ${source} query reads at least one metric, and only metrics the plugin exports`, () => {
      expect(queries.length).toBeGreaterThan(0)
      const unknown: Array<string> = []
      for (const q of queries) {
        const names = metricNamesIn(q.expr)
        expect(names.length, `${q.where}: ${q.expr}`).toBeGreaterThan(0)
        for (const n of names) if (!exported.has(n)) unknown.push(`${q.where}: ${n}`)
      }
      expect(unknown).toEqual([])
    })
  }

  it("the dashboard shows every metric the plugin exports (a new metric needs a panel)", () => {
    const used = new Set(dashboardQueries.flatMap((q) => metricNamesIn(q.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, "")))
    const families = new Set([...exported].map((n) => n.replace(/_(bucket|sum|count)$/, "")))
    expect([...families].filter((f) => !used.has(f))).toEqual([])
  })

  it("the dashboard is well formed: unique panel ids, every query panel has targets with unique refIds on the datasource variable", () => {
    const panels = panelsOf(dashboard["panels"])
    expect(new Set(panels.map((p) => p["id"])).size).toBe(panels.length)
    for (const p of panels.filter((p) => p["type"] !== "row")) {
      expect(p["targets"].length, p["title"]).toBeGreaterThan(0)
      expect(new Set(p["targets"].map((t: K8sObject) => t["refId"])).size).toBe(p["targets"].length)
      expect(p["datasource"]).toEqual({ type: "prometheus", uid: "${datasource}" })
    }
  })
})
