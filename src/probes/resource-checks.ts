/**
 * The resource checks of `analysis.resources`: pure Checks over the two
 * ResourceProbes' latest series (probe ids `resources.stable`,
 * `resources.canary`). What "proven" means for each, and why:
 *
 * - maxMemory, maxMemoryRatio: over the limit in `consecutive` samples in a
 *   row (default 3). Resident memory jumps for a moment with a large request
 *   or before a collection; a leak or an oversized canary stays up. A canary
 *   crossing maxMemory is therefore rolled back within `consecutive`
 *   intervals of crossing it.
 * - maxCpuPerRequestRatio: in each of `consecutive` disjoint intervals in a
 *   row, the canary's CPU seconds per request exceed the ratio times stable's
 *   (stable's over the same span), and the CPU beyond what the ratio allows
 *   exceeds `minCpuExcess` cores per instance. Disjoint intervals, because
 *   one collection pause in an overlapping window would count in every
 *   window that holds it. The excess floor, because a process spends CPU
 *   whether or not it serves (timers, collections, the scrapes themselves):
 *   at a 5% weight that idle work is shared by few requests, and a healthy
 *   canary's CPU per request looks several times stable's. Below the floor
 *   the difference is idle work, as minP99Delta is for latency.
 * - maxMemoryGrowthPerMinute: the least-squares slope of each canary
 *   instance's resident memory over `growthWindow`, with a one-sided
 *   Student-t bound at `confidence`: fail when the lower bound is above the
 *   limit, the last third of the window sits wholly above the first third
 *   (a collector's saw-tooth rises in one tooth and falls in the next), and
 *   the later half alone still grows faster than the limit (a fresh process's
 *   warm-up ramp flattens, a leak does not); pass when the upper bound is
 *   below it. Two points would mostly measure where
 *   in the saw-tooth they fell.
 *
 * Missing, failed or stale scrapes hold (`insufficient`), never fail.
 */
import type { Check, GateInput } from '../analysis/check.js'
import type { Finding } from '../analysis/finding.js'
import type { ResourcesConfig } from '../config/schema.js'
import { formatBytes } from '../core/bytes.js'
import { formatDuration } from '../core/duration.js'
import type { InstanceReading, ResourceSample, ResourceSeries, Side } from './resources.js'
import { fitTrend, slopeBounds } from './trend.js'

export const RESOURCE_CHECK_IDS = ['resources.maxCpuPerRequestRatio', 'resources.maxMemoryRatio', 'resources.maxMemory', 'resources.maxMemoryGrowthPerMinute'] as const
export type ResourceCheckId = (typeof RESOURCE_CHECK_IDS)[number]

export interface ResourceCheckSettings extends ResourcesConfig {
  /** One-sided confidence of the memory growth bound (analysis.confidence). */
  readonly confidence: number
}

/** The checks the config turns on, in a fixed order. */
export function resourceChecks(settings: ResourceCheckSettings): Check[] {
  const checks: Check[] = []
  const make = (id: ResourceCheckId, threshold: number | null, evaluate: (input: GateInput, threshold: number) => Finding): void => {
    if (threshold !== null) checks.push({ id, evaluate: (input) => evaluate(input, threshold) })
  }
  make('resources.maxCpuPerRequestRatio', settings.maxCpuPerRequestRatio, (input, max) => cpuPerRequestRatio(input, settings, max))
  make('resources.maxMemoryRatio', settings.maxMemoryRatio, (input, max) => memoryRatio(input, settings, max))
  make('resources.maxMemory', settings.maxMemoryBytes, (input, max) => maxMemory(input, settings, max))
  make('resources.maxMemoryGrowthPerMinute', settings.maxMemoryGrowthPerMinuteBytes, (input, max) => memoryGrowth(input, settings, max))
  return checks
}

type Held = { readonly problem: string }

/** A scrape result is stale after two missed intervals and a timeout. */
export function staleAfterMs(settings: Pick<ResourcesConfig, 'intervalMs' | 'timeoutMs'>): number {
  return 2 * settings.intervalMs + settings.timeoutMs
}

function seriesOf(input: GateInput, side: Side, settings: ResourcesConfig): ResourceSeries | Held {
  const result = input.probes.latest<ResourceSeries>(`resources.${side}`)
  if (result === null) return { problem: `no ${side} scrape yet` }
  const age = input.now - result.at
  if (age > staleAfterMs(settings)) return { problem: `the last ${side} scrape is ${formatDuration(age)} old (stale)` }
  if (result.error !== null || result.value === null) return { problem: `${side} scrape failed: ${result.error ?? 'no value'}` }
  if (result.value.samples.length === 0) return { problem: `no ${side} scrape yet` }
  return result.value
}

const held = (check: ResourceCheckId, threshold: number, reason: string, n = 0, observed: number | null = null): Finding => ({ check, verdict: 'insufficient', observed, threshold, n, reason })
const isHeld = (value: unknown): value is Held => typeof value === 'object' && value !== null && 'problem' in value

function firstError(sample: ResourceSample, field: 'cpuSeconds' | 'rssBytes'): string | null {
  const bad = sample.instances.find((i) => i[field] === null)
  return bad === undefined ? null : `${bad.endpoint}: ${bad.error ?? 'no value'}`
}

const ratio = (r: number): string => `${r.toFixed(2)}x`
const cpuMs = (seconds: number): string => `${(seconds * 1000).toPrecision(3)} ms`

interface Span {
  readonly from: number
  readonly to: number
  readonly cpu: number
  readonly requests: number
}

/** CPU and requests between two samples of one side, or why they cannot be compared (a failed scrape, a restarted instance). */
function spanBetween(a: ResourceSample, b: ResourceSample): Span | Held {
  if (a.instances.length !== b.instances.length) return { problem: 'the endpoints changed' }
  let cpu = 0
  for (let i = 0; i < b.instances.length; i++) {
    const before: InstanceReading = a.instances[i]!
    const after: InstanceReading = b.instances[i]!
    const error = before.cpuSeconds === null ? before : after.cpuSeconds === null ? after : null
    if (error !== null) return { problem: `${error.endpoint}: ${error.error ?? 'no CPU figure'}` }
    const restarted = (before.startTime !== null && after.startTime !== null && before.startTime !== after.startTime) || after.cpuSeconds! < before.cpuSeconds!
    if (restarted) return { problem: `${after.endpoint} restarted` }
    cpu += after.cpuSeconds! - before.cpuSeconds!
  }
  return { from: a.at, to: b.at, cpu, requests: Math.max(0, b.served - a.served) }
}

function cpuPerRequestRatio(input: GateInput, settings: ResourceCheckSettings, max: number): Finding {
  const id = 'resources.maxCpuPerRequestRatio'
  const k = settings.consecutive
  const canary = seriesOf(input, 'canary', settings)
  if (isHeld(canary)) return held(id, max, canary.problem)
  const stable = seriesOf(input, 'stable', settings)
  if (isHeld(stable)) return held(id, max, stable.problem)
  if (canary.samples.length < k + 1) return held(id, max, `collecting: ${canary.samples.length} canary samples, the CPU check needs ${k + 1}`)
  const spans: Span[] = []
  const last = canary.samples.slice(-(k + 1))
  for (let i = 1; i < last.length; i++) {
    const span = spanBetween(last[i - 1]!, last[i]!)
    if (isHeld(span)) return held(id, max, `canary ${span.problem}`)
    spans.push(span)
  }
  const from = spans[0]!.from
  const to = spans[spans.length - 1]!.to
  const canaryCpu = spans.reduce((s, x) => s + x.cpu, 0)
  const canaryRequests = spans.reduce((s, x) => s + x.requests, 0)
  const instances = last[last.length - 1]!.instances.length
  if (canaryRequests < settings.minRequests) return held(id, max, `canary served ${canaryRequests} requests over the last ${k} samples; the CPU check needs ${settings.minRequests}`, canaryRequests)

  const baseline = stableCpuPerRequest(stable, from, to, settings.minRequests)
  if (isHeld(baseline)) return held(id, max, baseline.problem, canaryRequests)
  const stablePerRequest = baseline.perRequest
  const allowed = (requests: number): number => max * stablePerRequest * requests
  const excessCores = (cpu: number, requests: number, ms: number): number => (cpu - allowed(requests)) / (ms / 1000) / instances
  const canaryPerRequest = canaryCpu / canaryRequests
  const observed = stablePerRequest > 0 ? canaryPerRequest / stablePerRequest : Number.POSITIVE_INFINITY
  const excess = excessCores(canaryCpu, canaryRequests, to - from)
  const perSpan = spans.map((s) => ({
    ratio: s.requests === 0 ? null : stablePerRequest > 0 ? s.cpu / s.requests / stablePerRequest : Number.POSITIVE_INFINITY,
    breach: s.requests > 0 && s.cpu / s.requests > max * stablePerRequest && excessCores(s.cpu, s.requests, s.to - s.from) > settings.minCpuExcess,
  }))
  const what = `canary CPU ${cpuMs(canaryPerRequest)} per request = ${ratio(observed)} stable's ${cpuMs(stablePerRequest)}${baseline.note}`
  const sample = `samples ${perSpan.map((p) => (p.ratio === null ? '-' : ratio(p.ratio))).join(', ')} over ${formatDuration(to - from)}, ${canaryRequests} canary requests`
  if (perSpan.every((p) => p.breach)) {
    return { check: id, verdict: 'fail', observed, threshold: max, n: canaryRequests, reason: `${what} > max ${ratio(max)} in ${k} consecutive samples (${sample}); ${excess.toFixed(3)} cores per instance above what the ratio allows` }
  }
  if (observed <= max || excess <= settings.minCpuExcess) {
    const why = observed <= max ? `<= max ${ratio(max)}` : `above max ${ratio(max)} by only ${excess.toFixed(3)} cores per instance (minCpuExcess ${settings.minCpuExcess}): idle work`
    return { check: id, verdict: 'pass', observed, threshold: max, n: canaryRequests, reason: `${what} ${why} (${sample})` }
  }
  let run = 0
  for (let i = perSpan.length - 1; i >= 0 && perSpan[i]!.breach; i--) run++
  return held(id, max, `${what} > max ${ratio(max)} in ${run} of the ${k} consecutive samples a breach needs (${sample})`, canaryRequests, observed)
}

/**
 * Stable's CPU per request over the canary's span; when stable served too
 * little there (at 100%, in the bake), its latest figure over enough
 * requests (the baseline), named as such in the reason.
 */
function stableCpuPerRequest(stable: ResourceSeries, from: number, to: number, minRequests: number): { readonly perRequest: number; readonly note: string } | Held {
  const spans: Span[] = []
  for (let i = 1; i < stable.samples.length; i++) {
    const a = stable.samples[i - 1]!
    const b = stable.samples[i]!
    const mid = (a.at + b.at) / 2
    if (mid < from || mid > to + stable.intervalMs / 2) continue
    const span = spanBetween(a, b)
    if (isHeld(span)) return { problem: `stable ${span.problem}` }
    spans.push(span)
  }
  const cpu = spans.reduce((s, x) => s + x.cpu, 0)
  const requests = spans.reduce((s, x) => s + x.requests, 0)
  if (requests >= minRequests) return { perRequest: cpu / requests, note: '' }
  let baseCpu = 0
  let baseRequests = 0
  let at = 0
  for (let i = stable.samples.length - 1; i >= 1 && baseRequests < minRequests; i--) {
    const span = spanBetween(stable.samples[i - 1]!, stable.samples[i]!)
    if (isHeld(span) || span.requests === 0 || span.to > from) continue
    baseCpu += span.cpu
    baseRequests += span.requests
    at = span.to
  }
  if (baseRequests >= minRequests) return { perRequest: baseCpu / baseRequests, note: ` (stable's baseline of ${new Date(at).toISOString()}, over ${baseRequests} requests: it serves too little now)` }
  return { problem: `stable served ${requests} requests over the span and has no earlier figure over ${minRequests}; the CPU check needs one` }
}

/** The mean resident memory per instance of one sample, or why there is none. */
function meanRss(sample: ResourceSample): number | Held {
  const error = firstError(sample, 'rssBytes')
  if (error !== null) return { problem: error }
  return sample.instances.reduce((s, i) => s + i.rssBytes!, 0) / sample.instances.length
}

function memoryRatio(input: GateInput, settings: ResourceCheckSettings, max: number): Finding {
  const id = 'resources.maxMemoryRatio'
  const k = settings.consecutive
  const canary = seriesOf(input, 'canary', settings)
  if (isHeld(canary)) return held(id, max, canary.problem)
  const stable = seriesOf(input, 'stable', settings)
  if (isHeld(stable)) return held(id, max, stable.problem)
  const ratios: number[] = []
  let latest: { c: number; s: number } | null = null
  for (const sample of canary.samples.slice(-k).reverse()) {
    const c = meanRss(sample)
    if (isHeld(c)) {
      if (ratios.length === 0) return held(id, max, `canary ${c.problem}`)
      break
    }
    const nearest = stable.samples.reduce<ResourceSample | null>((best, s) => (best === null || Math.abs(s.at - sample.at) < Math.abs(best.at - sample.at) ? s : best), null)
    if (nearest === null || Math.abs(nearest.at - sample.at) > stable.intervalMs) break
    const s = meanRss(nearest)
    if (isHeld(s)) {
      if (ratios.length === 0) return held(id, max, `stable ${s.problem}`)
      break
    }
    latest ??= { c, s }
    ratios.unshift(c / s)
  }
  if (latest === null) return held(id, max, 'no stable sample taken within one interval of the canary one')
  const observed = ratios[ratios.length - 1]!
  const what = `canary resident memory ${formatBytes(latest.c)} = ${ratio(observed)} stable's ${formatBytes(latest.s)} (mean per instance)`
  const sample = `samples ${ratios.map(ratio).join(', ')}`
  if (ratios.length === k && ratios.every((r) => r > max)) return { check: id, verdict: 'fail', observed, threshold: max, n: ratios.length, reason: `${what} > max ${ratio(max)} in ${k} consecutive samples (${sample})` }
  if (observed <= max) return { check: id, verdict: 'pass', observed, threshold: max, n: ratios.length, reason: `${what} <= max ${ratio(max)}` }
  let run = 0
  for (let i = ratios.length - 1; i >= 0 && ratios[i]! > max; i--) run++
  return held(id, max, `${what} > max ${ratio(max)} in ${run} of the ${k} consecutive samples a breach needs (${sample})`, ratios.length, observed)
}

function maxMemory(input: GateInput, settings: ResourceCheckSettings, max: number): Finding {
  const id = 'resources.maxMemory'
  const k = settings.consecutive
  const canary = seriesOf(input, 'canary', settings)
  if (isHeld(canary)) return held(id, max, canary.problem)
  const latest = canary.samples[canary.samples.length - 1]!
  const error = firstError(latest, 'rssBytes')
  if (error !== null) return held(id, max, `canary ${error}`)
  const recent = canary.samples.slice(-k)
  let worst: { endpoint: string; rss: number; run: number; values: number[] } | null = null
  for (let i = 0; i < latest.instances.length; i++) {
    const values: number[] = []
    for (let j = recent.length - 1; j >= 0; j--) {
      const rss = recent[j]!.instances[i]?.rssBytes ?? null
      if (rss === null || rss <= max) break
      values.unshift(rss)
    }
    const rss = latest.instances[i]!.rssBytes!
    if (worst === null || values.length > worst.run || (values.length === worst.run && rss > worst.rss)) worst = { endpoint: latest.instances[i]!.endpoint, rss, run: values.length, values }
  }
  const observed = Math.max(...latest.instances.map((i) => i.rssBytes!))
  const n = recent.length * latest.instances.length
  if (worst !== null && worst.run >= k) {
    return { check: id, verdict: 'fail', observed: worst.rss, threshold: max, n, reason: `canary instance ${worst.endpoint} resident memory ${formatBytes(worst.rss)} > max ${formatBytes(max)} in ${k} consecutive samples (${worst.values.map(formatBytes).join(', ')}, every ${formatDuration(canary.intervalMs)})` }
  }
  if (observed <= max) return { check: id, verdict: 'pass', observed, threshold: max, n, reason: `canary resident memory at most ${formatBytes(observed)} per instance over ${latest.instances.length} instance${latest.instances.length === 1 ? '' : 's'} <= max ${formatBytes(max)}` }
  return held(id, max, `canary instance ${worst!.endpoint} resident memory ${formatBytes(worst!.rss)} > max ${formatBytes(max)} in ${worst!.run} of the ${k} consecutive samples a breach needs`, n, observed)
}

/** Fewer samples than this over the window give no verdict: a slope from a handful of points is mostly noise. */
const MIN_GROWTH_SAMPLES = 8

function memoryGrowth(input: GateInput, settings: ResourceCheckSettings, max: number): Finding {
  const id = 'resources.maxMemoryGrowthPerMinute'
  const canary = seriesOf(input, 'canary', settings)
  if (isHeld(canary)) return held(id, max, canary.problem)
  const latest = canary.samples[canary.samples.length - 1]!
  const error = firstError(latest, 'rssBytes')
  if (error !== null) return held(id, max, `canary ${error}`)
  const windowStart = latest.at - settings.growthWindowMs
  const findings: Finding[] = []
  for (let i = 0; i < latest.instances.length; i++) {
    const endpoint = latest.instances[i]!.endpoint
    const points = canary.samples
      .filter((s) => s.at >= windowStart && s.instances[i]?.rssBytes !== null && s.instances[i] !== undefined)
      .map((s) => ({ minutes: (s.at - windowStart) / 60_000, rss: s.instances[i]!.rssBytes! }))
    const span = points.length === 0 ? 0 : (points[points.length - 1]!.minutes - points[0]!.minutes) * 60_000
    // The window's first sample may fall just outside it (timer jitter): two intervals of slack.
    if (points.length < MIN_GROWTH_SAMPLES || span < settings.growthWindowMs - 2 * canary.intervalMs) {
      findings.push(held(id, max, `collecting: ${points.length} samples of ${endpoint} over ${formatDuration(span)}; the growth check needs ${MIN_GROWTH_SAMPLES} over ${formatDuration(settings.growthWindowMs)}`, points.length))
      continue
    }
    const trend = fitTrend(
      points.map((p) => p.minutes),
      points.map((p) => p.rss),
    )
    const bounds = slopeBounds(trend, settings.confidence)
    const third = Math.max(1, Math.floor(points.length / 3))
    const rising = Math.min(...points.slice(-third).map((p) => p.rss)) > Math.max(...points.slice(0, third).map((p) => p.rss))
    // Still growing at that pace in the later half: a fresh process's warm-up ramp (heap, caches) flattens, a leak does not.
    const later = points.slice(Math.floor(points.length / 2))
    const sustained =
      fitTrend(
        later.map((p) => p.minutes),
        later.map((p) => p.rss),
      ).slope > max
    const level = `${(settings.confidence * 100).toFixed(1).replace(/\.0$/, '')}%`
    const what = `canary instance ${endpoint} memory grows ${formatBytes(trend.slope)}/min (${level} bounds ${formatBytes(bounds.lower)} to ${formatBytes(bounds.upper)}/min) over ${points.length} samples in ${formatDuration(span)}, now ${formatBytes(points[points.length - 1]!.rss)}`
    if (bounds.lower > max && rising && sustained) findings.push({ check: id, verdict: 'fail', observed: trend.slope, threshold: max, n: points.length, reason: `${what} > max ${formatBytes(max)}/min` })
    else if (bounds.upper <= max) findings.push({ check: id, verdict: 'pass', observed: trend.slope, threshold: max, n: points.length, reason: `${what} <= max ${formatBytes(max)}/min` })
    else findings.push(held(id, max, `${what}: not proven ${trend.slope > max ? 'above' : 'below'} max ${formatBytes(max)}/min yet`, points.length, trend.slope))
  }
  return findings.find((f) => f.verdict === 'fail') ?? findings.find((f) => f.verdict === 'insufficient') ?? worstPass(findings)
}

function worstPass(findings: readonly Finding[]): Finding {
  return findings.reduce((a, b) => ((b.observed ?? 0) > (a.observed ?? 0) ? b : a))
}
