/** The `{{variable}}` templates of custom PromQL checks and resource endpoint lists: which variables exist, and their values for the rollout as it stands. */
import { isIP } from 'node:net'
import { err, ok, type Result } from '../core/result.js'

/**
 * Every variable a PromQL query may use. `*_url` is the upstream URL as
 * configured, `*_host` its host:port (what Prometheus puts in the `instance`
 * label of a target scraped at that address), `*_hostname` the host alone (a
 * Kubernetes Service name), `*_pod` a regex for the side's pod names (for
 * `pod=~"..."` on cAdvisor metrics), `interval` the check's own interval as a
 * PromQL duration (for `rate(x[{{interval}}])`).
 */
export const QUERY_VARIABLES = ['stable_url', 'canary_url', 'stable_host', 'canary_host', 'stable_hostname', 'canary_hostname', 'stable_pod', 'canary_pod', 'interval'] as const

/** Endpoint lists of `analysis.resources` are URLs: no pods, no interval. */
export const ENDPOINT_VARIABLES = ['stable_url', 'canary_url', 'stable_host', 'canary_host', 'stable_hostname', 'canary_hostname'] as const

export type TemplateVariable = (typeof QUERY_VARIABLES)[number]

/** A variable's value, or why it has none at the moment (no canary yet, a pod pattern that cannot be derived). */
export type TemplateValues = Readonly<Record<string, string | { readonly missing: string }>>

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g

/** The variables a template names that are not in `allowed`, in order of first use. */
export function unknownVariables(template: string, allowed: readonly string[]): string[] {
  const unknown = new Set<string>()
  for (const m of template.matchAll(VARIABLE)) if (!allowed.includes(m[1]!)) unknown.add(m[1]!)
  return [...unknown]
}

/** Fills every variable, each value passed through `escape`; an error names the first variable without a value and why. */
export function renderTemplate(template: string, values: TemplateValues, escape: (value: string) => string = (v) => v): Result<string, string> {
  let problem: string | null = null
  const text = template.replace(VARIABLE, (whole, name: string) => {
    const value = values[name]
    if (value === undefined) {
      problem ??= `{{${name}}} is not a known variable`
      return whole
    }
    if (typeof value !== 'string') {
      problem ??= `{{${name}}} has no value: ${value.missing}`
      return whole
    }
    return escape(value)
  })
  return problem === null ? ok(text) : err(problem)
}

/** A value inside a PromQL double-quoted string (label matcher): backslash, quote and line breaks escaped. */
export function promqlString(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** Milliseconds as a PromQL duration (`15s`, `1500ms`, `2m`). */
export function promqlDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}

export interface SideUrls {
  readonly stableUrl: string
  readonly canaryUrl: string | null
}

/** The values of every variable for the upstreams as they stand; `pods` overrides the derived pod patterns. */
export function templateValues(urls: SideUrls, pods: { readonly stable: string | null; readonly canary: string | null } = { stable: null, canary: null }, intervalMs?: number): TemplateValues {
  const values: Record<string, string | { readonly missing: string }> = {}
  for (const side of ['stable', 'canary'] as const) {
    const url = side === 'stable' ? urls.stableUrl : urls.canaryUrl
    if (url === null) {
      const missing = { missing: 'there is no canary upstream yet' }
      for (const key of ['url', 'host', 'hostname', 'pod']) values[`${side}_${key}`] = missing
      continue
    }
    const parsed = new URL(url)
    values[`${side}_url`] = url.replace(/\/+$/, '')
    values[`${side}_host`] = parsed.host
    values[`${side}_hostname`] = parsed.hostname
    values[`${side}_pod`] = pods[side] ?? derivedPodPattern(parsed.hostname, side)
  }
  values.interval = intervalMs === undefined ? { missing: 'only custom checks have an interval' } : promqlDuration(intervalMs)
  return values
}

/**
 * A Deployment's pods are named `<deployment>-<hash>-<hash>` and its Service
 * usually after the Deployment, so `web-canary.prod.svc` gives `web-canary-.*`.
 * An address (or localhost) names no pods: the variable then has no value,
 * and a check that uses it holds and says to set analysis.prometheus.pods.
 */
function derivedPodPattern(hostname: string, side: 'stable' | 'canary'): string | { readonly missing: string } {
  const bare = hostname.replace(/^\[|\]$/g, '')
  const label = bare.split('.')[0] ?? ''
  if (isIP(bare) !== 0 || label === '' || label === 'localhost') {
    return { missing: `the ${side} upstream's host ${hostname} names no pods: set analysis.prometheus.pods.${side}` }
  }
  return `${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-.*`
}
