/**
 * Guest side of the guest ↔ host link (test/e2e/hostControl.ts), and the plugin's /metrics as
 * the guest scrapes it. Runs INSIDE the VM; the host answers at 10.0.2.100 only through qemu's
 * forwards (run-in-vm.sh -f), and only on loopback there.
 *
 * May import: node built-ins, ./harness.ts, ../hostControl.ts (types only).
 */
import type { ExpectRequest, ExpectResult } from "../hostControl.ts"
import type { Recorder } from "./harness.ts"

export const HOST_ADDR = process.env["E2E_HOST_ADDR"] ?? "10.0.2.100"
export const CONTROL = `http://${HOST_ADDR}:7000`

/**
 * Asks the host to wait until `kubectl describe` shows the expected events (and not the absent
 * ones), and records the answer as a check of this scenario, with the lines kubectl printed.
 */
export const expectOnHost = async (r: Recorder, req: Omit<ExpectRequest, "scenario">): Promise<ExpectResult> => {
  const res = await fetch(`${CONTROL}/expect`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...req, scenario: r.name }),
    signal: AbortSignal.timeout(req.timeoutMs + 30_000)
  })
  const result = (await res.json()) as ExpectResult
  const target = req.target.kind === "pvc" ? `pvc ${req.target.name}` : `node ${req.target.name}`
  r.check(result.ok, `host kubectl describe ${target}: ${req.what}`,
    result.ok ? `after ${result.ms} ms: ${result.matched.join(" | ")}` : `${result.why} ⏎ ${result.events}`)
  return result
}

/** Host clock minus guest clock (ms), from the round trip with the smallest delay among `samples`. */
export const clockOffset = async (samples = 7): Promise<{ readonly offsetMs: number; readonly rttMs: number }> => {
  let best = { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY }
  for (let i = 0; i < samples; i++) {
    const t0 = performance.timeOrigin + performance.now()
    const res = await fetch(`${CONTROL}/time`, { signal: AbortSignal.timeout(10_000) })
    const { now } = (await res.json()) as { now: number }
    const t1 = performance.timeOrigin + performance.now()
    if (t1 - t0 < best.rttMs) best = { offsetMs: now - (t0 + t1) / 2, rttMs: t1 - t0 }
  }
  return best
}

/** Host time at which the host's watch saw a write of event `reason` on object `name` after host time `since`. */
export const seenOnHost = async (reason: string, name: string, since: number, timeoutMs: number): Promise<number | undefined> => {
  const q = new URLSearchParams({ reason, name, since: String(since), timeoutMs: String(timeoutMs) })
  const res = await fetch(`${CONTROL}/seen?${q}`, { signal: AbortSignal.timeout(timeoutMs + 30_000) })
  const { at } = (await res.json()) as { at: number | null }
  return at ?? undefined
}

// ------------------------------------------------------------------ /metrics

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Prometheus text → samples (the subset effect's exporter writes: no escapes in our labels). */
export const parseMetrics = (text: string): ReadonlyArray<Sample> =>
  text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).flatMap((l) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(l)
    if (m === null) return []
    const labels: Record<string, string> = {}
    for (const kv of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!
    return [{ name: m[1]!, labels, value: Number(m[3]) }]
  })

export class Metrics {
  readonly samples: ReadonlyArray<Sample>
  constructor(samples: ReadonlyArray<Sample>) {
    this.samples = samples
  }
  /** The sum of the samples of `name` whose labels include `labels` (0 when none: counters start absent). */
  get(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0)
  }
}

export const scrape = async (address: string): Promise<Metrics> => {
  const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(10_000) })
  return new Metrics(parseMetrics(await res.text()))
}
