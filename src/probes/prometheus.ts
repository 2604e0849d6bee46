/**
 * Custom checks (`analysis.checks[]`): a PromQL query per check, templated
 * with the sides' variables, sent to `analysis.prometheus.url` at the
 * check's own interval (HTTP API /api/v1/query), compared with min/max.
 * Probe and check ids are both `checks.<name>`. An empty, NaN, multi-series
 * or failed result, or a stale one, holds; `consecutive` results in a row out
 * of bounds are a proven breach.
 */
import type { Check, GateInput } from '../analysis/check.js'
import type { Finding } from '../analysis/finding.js'
import type { Probe, ProbeContext } from '../analysis/probe.js'
import type { CustomCheckConfig, PrometheusConfig } from '../config/schema.js'
import { formatDuration } from '../core/duration.js'
import { describeFailure, type ControlPlaneHttp } from './http.js'
import { promqlString, renderTemplate, templateValues } from './template.js'

/** One evaluation: the value, or null with the reason it has none. */
export interface QueryOutcome {
  readonly at: number
  readonly value: number | null
  readonly note: string | null
}

/** The probe's result: the rendered query and its latest outcomes, oldest first (as many as `consecutive` needs). */
export interface QueryHistory {
  readonly query: string
  readonly outcomes: readonly QueryOutcome[]
}

export class PrometheusQueryProbe implements Probe<QueryHistory> {
  readonly id: string
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly #check: CustomCheckConfig
  readonly #server: PrometheusConfig
  readonly #http: ControlPlaneHttp
  #outcomes: QueryOutcome[] = []
  #generation: number | null = null

  constructor(check: CustomCheckConfig, server: PrometheusConfig, http: ControlPlaneHttp) {
    this.id = `checks.${check.name}`
    this.intervalMs = check.intervalMs
    this.timeoutMs = Math.min(server.timeoutMs, check.intervalMs)
    this.#check = check
    this.#server = server
    this.#http = http
  }

  async run(context: ProbeContext): Promise<QueryHistory> {
    if (context.rollout.generation !== this.#generation) {
      this.#generation = context.rollout.generation
      this.#outcomes = []
    }
    const at = context.now()
    const rendered = renderTemplate(this.#check.query, templateValues(context.rollout, this.#server.pods, this.#check.intervalMs), promqlString)
    const query = rendered.ok ? rendered.value : this.#check.query
    const outcome = rendered.ok ? await this.#evaluate(query, at, context.signal) : { at, value: null, note: rendered.error }
    this.#outcomes.push(outcome)
    if (this.#outcomes.length > this.#check.consecutive) this.#outcomes.splice(0, this.#outcomes.length - this.#check.consecutive)
    return { query, outcomes: this.#outcomes.slice() }
  }

  async #evaluate(query: string, at: number, signal: AbortSignal): Promise<QueryOutcome> {
    const none = (note: string): QueryOutcome => ({ at, value: null, note })
    const url = `${this.#server.url}/api/v1/query?${new URLSearchParams({ query, time: String(at / 1000) }).toString()}`
    let status: number
    let body: string
    try {
      const res = await this.#http.call(url, { signal, headers: { accept: 'application/json', ...this.#server.headers }, maxBytes: 4 * 1024 * 1024 })
      status = res.status
      body = res.body
    } catch (error) {
      return none(`Prometheus unreachable: ${describeFailure(error, signal)}`)
    }
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      return none(`Prometheus answered ${status} with a body that is not JSON`)
    }
    const reply = json as { status?: unknown; errorType?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } }
    if (reply.status !== 'success') return none(`Prometheus answered ${status}: ${String(reply.errorType ?? 'error')}: ${String(reply.error ?? 'no detail').slice(0, 200)}`)
    const { resultType, result } = reply.data ?? {}
    let raw: unknown
    if (resultType === 'scalar' && Array.isArray(result)) raw = result[1]
    else if (resultType === 'vector' && Array.isArray(result)) {
      if (result.length === 0) return none('no data (the query returned no series)')
      if (result.length > 1) return none(`the query returned ${result.length} series; a check needs one number: aggregate it (sum, max, avg)`)
      raw = (result[0] as { value?: unknown[] }).value?.[1]
    } else return none(`the query returned a ${String(resultType)}; a check needs one number (an instant vector of one series, or a scalar)`)
    const value = typeof raw === 'string' ? Number(raw) : Number.NaN
    if (!Number.isFinite(value)) return none(`no data (the value is ${String(raw)})`)
    return { at, value, note: null }
  }
}

export function customCheck(check: CustomCheckConfig, server: PrometheusConfig): Check {
  const id = `checks.${check.name}`
  const staleMs = 2 * check.intervalMs + Math.min(server.timeoutMs, check.intervalMs)
  const out = (v: number): boolean => (check.min !== null && v < check.min) || (check.max !== null && v > check.max)
  const bounds = [check.min === null ? null : `min ${check.min}`, check.max === null ? null : `max ${check.max}`].filter((b) => b !== null).join(', ')
  return {
    id,
    evaluate(input: GateInput): Finding {
      const defaultThreshold = check.max ?? check.min
      const hold = (reason: string, n = 0, observed: number | null = null): Finding => ({ check: id, verdict: 'insufficient', observed, threshold: defaultThreshold, n, reason: `${id}: ${reason}` })
      const result = input.probes.latest<QueryHistory>(id)
      if (result === null) return hold('no result yet')
      const age = input.now - result.at
      if (age > staleMs) return hold(`the last result is ${formatDuration(age)} old (stale)`)
      if (result.error !== null || result.value === null) return hold(`the query failed: ${result.error ?? 'no value'}`)
      const { outcomes, query } = result.value
      const last = outcomes[outcomes.length - 1]
      if (last === undefined) return hold('no result yet')
      const shown = query.length > 200 ? `${query.slice(0, 200)}…` : query
      if (last.value === null) return hold(`${last.note ?? 'no data'}, from ${shown}`)
      const v = last.value
      const threshold = check.max !== null && v > check.max ? check.max : check.min !== null && v < check.min ? check.min : defaultThreshold
      let run = 0
      for (let i = outcomes.length - 1; i >= 0 && outcomes[i]!.value !== null && out(outcomes[i]!.value!); i--) run++
      const values = outcomes.slice(-Math.max(run, 1)).map((o) => String(o.value))
      const side = check.max !== null && v > check.max ? `> max ${check.max}` : `< min ${check.min}`
      if (run >= check.consecutive) {
        return { check: id, verdict: 'fail', observed: v, threshold, n: run, reason: `${id}: ${v} ${side} in ${run} consecutive result${run === 1 ? '' : 's'} (${values.join(', ')}, every ${formatDuration(check.intervalMs)}) of ${shown}` }
      }
      if (!out(v)) return { check: id, verdict: 'pass', observed: v, threshold, n: 1, reason: `${id}: ${v} within ${bounds}` }
      return hold(`${v} ${side} in ${run} of the ${check.consecutive} consecutive results a breach needs, from ${shown}`, run, v)
    },
  }
}
