/** ResourceProbe: scrapes one side's Prometheus endpoints (one per instance) for process CPU and resident memory, and keeps the recent series the resource checks read. */
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import type { Probe, ProbeContext } from '../analysis/probe.js'
import { describeFailure, type ControlPlaneHttp } from './http.js'
import { renderTemplate, templateValues } from './template.js'

export type Side = 'stable' | 'canary'

/** One instance's figures at one scrape; null figures with an `error` when the scrape or the parse failed. */
export interface InstanceReading {
  /** The endpoint as shown in reasons: its URL without any query. */
  readonly endpoint: string
  /** process_cpu_seconds_total: user + system CPU seconds since the process started. */
  readonly cpuSeconds: number | null
  /** process_resident_memory_bytes. */
  readonly rssBytes: number | null
  /** process_start_time_seconds when exported: a change means the instance restarted (its counters began again). */
  readonly startTime: number | null
  readonly error: string | null
}

export interface ResourceSample {
  /** When the scrapes were sent (epoch ms). */
  readonly at: number
  /** Requests the proxy had sent this side when the scrapes were sent (cumulative). */
  readonly served: number
  readonly instances: readonly InstanceReading[]
}

/** The probe's result: the recent samples of one side, oldest first, restarted whenever its endpoints or the rollout change. */
export interface ResourceSeries {
  readonly side: Side
  readonly intervalMs: number
  readonly samples: readonly ResourceSample[]
}

export interface ResourceProbeOptions {
  readonly side: Side
  /** Endpoint URL templates ({{stable_url}}/metrics, or fixed URLs). */
  readonly endpoints: readonly string[]
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Samples kept: enough for the longest span a check looks at. */
  readonly maxSamples: number
  readonly http: ControlPlaneHttp
}

export const CPU_METRIC = 'process_cpu_seconds_total'
export const MEMORY_METRIC = 'process_resident_memory_bytes'
const START_METRIC = 'process_start_time_seconds'

export class ResourceProbe implements Probe<ResourceSeries> {
  readonly id: string
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly #options: ResourceProbeOptions
  #samples: ResourceSample[] = []
  #seriesKey = ''

  constructor(options: ResourceProbeOptions) {
    this.#options = options
    this.id = `resources.${options.side}`
    this.intervalMs = options.intervalMs
    this.timeoutMs = options.timeoutMs
  }

  async run(context: ProbeContext): Promise<ResourceSeries> {
    const { side } = this.#options
    const values = templateValues(context.rollout)
    const urls: string[] = []
    for (const template of this.#options.endpoints) {
      const rendered = renderTemplate(template, values)
      if (!rendered.ok) throw new Error(`analysis.resources.${side}: ${rendered.error}`)
      urls.push(rendered.value)
    }
    // A new rollout, or endpoints that moved with a promotion, is another
    // process: its counters cannot be compared with the old one's.
    const key = `${context.rollout.generation} ${urls.join(' ')}`
    if (key !== this.#seriesKey) {
      this.#seriesKey = key
      this.#samples = []
    }
    const served = context.servedRequests(side)
    const at = context.now()
    const instances = await Promise.all(urls.map((url) => scrapeProcessMetrics(this.#options.http, url, context.signal)))
    this.#samples.push({ at, served, instances })
    if (this.#samples.length > this.#options.maxSamples) this.#samples.splice(0, this.#samples.length - this.#options.maxSamples)
    return { side, intervalMs: this.intervalMs, samples: this.#samples.slice() }
  }
}

/** Scrapes one endpoint and reads the standard process metrics (prom-client, the Go, Python and Java clients all export them). */
export async function scrapeProcessMetrics(http: ControlPlaneHttp, url: string, signal: AbortSignal): Promise<InstanceReading> {
  const endpoint = displayEndpoint(url)
  const failed = (error: string): InstanceReading => ({ endpoint, cpuSeconds: null, rssBytes: null, startTime: null, error })
  let text: string
  try {
    // The classic text format: OpenMetrics renames counter families, and every client still serves 0.0.4.
    const res = await http.call(url, { signal, headers: { accept: 'text/plain;version=0.0.4;q=1, */*;q=0.1' } })
    if (res.status !== 200) return failed(`HTTP ${res.status}`)
    text = res.body
  } catch (error) {
    return failed(describeFailure(error, signal))
  }
  let families: ReturnType<typeof parsePrometheusTextFormat>
  try {
    families = parsePrometheusTextFormat(text)
  } catch (error) {
    return failed(`not a Prometheus exposition: ${(error as Error).message.slice(0, 120)}`)
  }
  const read = (name: string): number | null => {
    const family = families.find((f) => f.name === name)
    const raw = family?.metrics.find((m) => m.labels === undefined || Object.keys(m.labels).length === 0)?.value ?? family?.metrics[0]?.value
    if (raw === undefined) return null
    const value = Number(raw)
    return Number.isFinite(value) ? value : null
  }
  const cpuSeconds = read(CPU_METRIC)
  const rssBytes = read(MEMORY_METRIC)
  const missing = [cpuSeconds === null ? CPU_METRIC : null, rssBytes === null ? MEMORY_METRIC : null].filter((m) => m !== null)
  if (missing.length > 0) return { ...failed(`no ${missing.join(' or ')} in the exposition`), cpuSeconds, rssBytes }
  return { endpoint, cpuSeconds, rssBytes, startTime: read(START_METRIC), error: null }
}

/** An endpoint URL as reasons show it: scheme, host, port and path, never a query (it may carry a token). */
export function displayEndpoint(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return '(not a URL)'
  }
}
