/** Decision-speed benchmark: how fast and with how much blast radius a breach is rolled back, beside a Flagger-style policy. */
import { replayFailure, replayHealthy, secondsOf, type FlaggerChecks, type FlaggerPolicy, type Second } from './decision-flagger.js'
import { seededRng } from './lib/random.js'
import { runChecksBench } from './decision-checks.js'
import { runRollout, startTraffic, stopTraffic, type RunPlan, type RunResult, type Traffic } from './decision-harness.js'
import type { SideBehaviour, UpstreamPlan } from './decision-traffic.js'

export interface DecisionBenchOptions {
  /** Fewer and shorter runs, for trying the harness out. */
  readonly quick: boolean
  /** Only the simulations (no real-time runs): minutes less, for working on the checks. */
  readonly simOnly?: boolean
}

/**
 * The analysis section of the real-time runs (today's gate, in the app):
 * issue 3's interval and minRequests, the SPEC example's checks, and
 * confidence at its old default (0.999, the deprecated alias of
 * falseRollbackRate 0.001), written out. The simulations
 * (decision-checks.ts) run today's gate and the sequential checks side by side.
 */
const ANALYSIS = {
  interval: '250ms',
  window: '30s',
  minRequests: 20,
  maxErrorRate: 0.01,
  maxErrorRateIncrease: 0.005,
  maxP99: '500ms',
  maxP99Ratio: 1.5,
  minP99Delta: '5ms',
  confidence: 0.999,
} as const
/** The same loop with no check configured: every verdict passes (recording runs for the Flagger-style replay). */
const NO_CHECKS = { interval: '250ms', window: '30s', minRequests: 20 } as const
const STEPS = [5, 25, 50, 100] as const
/** Failure scenarios stay at 5%: the step outlasts the run. */
const HELD_AT_5 = { steps: STEPS, stepDuration: '10m', bake: '10m' } as const
const HEALTHY_ROLLOUT = { steps: STEPS, stepDuration: '2s', bake: '2s' } as const

const RATE = 1_000
const LEAD_IN_MS = 500
const BACKGROUND_ERRORS = 0.005
/** Every response waits latencyScale * (5ms + Exp(mean 5ms)): p50 ~8.5ms, p99 ~28ms at scale 1. */
const LATENCY = { baseMs: 5, tailMs: 5 } as const
const HEALTHY: SideBehaviour = { errorRatio: BACKGROUND_ERRORS, latencyScale: 1 }
/** A failure run that ends before the canary turned bad (a false rollback) is replaced, at most this many times per scenario. */
const MAX_REPLACEMENTS = 2

const FLAGGER_SAME_CHECKS: FlaggerChecks = { maxErrorRate: 0.01, maxErrorRateIncrease: 0.005, maxP99Ms: 500, maxP99Ratio: 1.5, minP99DeltaMs: 5 }
const FLAGGER_BUILT_INS: FlaggerChecks = { maxErrorRate: 0.01, maxErrorRateIncrease: null, maxP99Ms: 500, maxP99Ratio: null, minP99DeltaMs: 5 }
const flaggerPolicy = (checks: FlaggerChecks): FlaggerPolicy => ({ intervalS: 60, windowS: 60, scrapeS: 15, threshold: 5, checks })
const REPLAYS = 500

interface Target {
  readonly maxRollbackMs: number
  readonly maxServed: number | null
}

interface FailureScenario {
  readonly key: 'hard' | 'soft' | 'latency'
  readonly title: string
  readonly bad: SideBehaviour
  readonly target: Target | null
  /** A run gives up this long after the canary turned bad (quick mode: at most QUICK_GIVE_UP_MS). */
  readonly giveUpAfterBadMs: number
}

const QUICK_GIVE_UP_MS = 10_000

const FAILURES: readonly FailureScenario[] = [
  { key: 'hard', title: 'Hard failure: canary answers 100% 5xx', bad: { errorRatio: 1, latencyScale: 1 }, target: { maxRollbackMs: 1_000, maxServed: 50 }, giveUpAfterBadMs: 5_000 },
  { key: 'soft', title: 'Soft failure: canary 3% 5xx vs stable 0.5%', bad: { errorRatio: 0.03, latencyScale: 1 }, target: null, giveUpAfterBadMs: 20_000 },
  { key: 'latency', title: 'Latency regression: canary p99 ×3 (its whole latency distribution ×3; errors stay 0.5%)', bad: { errorRatio: BACKGROUND_ERRORS, latencyScale: 3 }, target: { maxRollbackMs: 10_000, maxServed: null }, giveUpAfterBadMs: 12_000 },
]

interface Sizes {
  readonly failureRuns: Readonly<Record<FailureScenario['key'], number>>
  readonly replacements: number
  readonly healthyRuns: number
  /** Healthy canary time at 5% before it turns bad. */
  readonly badAfterMs: number
  readonly recordHealthyMs: number
  readonly recordBadMs: number
}

const FULL: Sizes = {
  failureRuns: { hard: 5, soft: 3, latency: 3 },
  replacements: MAX_REPLACEMENTS,
  healthyRuns: 20,
  badAfterMs: 3_000,
  recordHealthyMs: 2_000,
  recordBadMs: 5_000,
}
const QUICK: Sizes = {
  failureRuns: { hard: 1, soft: 1, latency: 1 },
  replacements: 0,
  healthyRuns: 2,
  badAfterMs: 2_000,
  recordHealthyMs: 2_000,
  recordBadMs: 3_000,
}

interface FailureOutcome {
  readonly scenario: FailureScenario
  /** Runs in which the canary turned bad (or the run broke). */
  readonly runs: readonly (RunResult | Error)[]
  /** Runs rolled back while the canary was still healthy, before it turned bad. */
  readonly falseRollbacks: readonly RunResult[]
  readonly recording: RunResult | Error
}

/** Runs every scenario and returns the markdown section for bench/RESULTS.md. */
export async function runDecisionBench(options: DecisionBenchOptions): Promise<string> {
  const sizes = options.quick ? QUICK : FULL
  const log = (line: string): void => void process.stderr.write(`${line}\n`)
  let realTime = ''
  if (options.simOnly !== true) {
    const startedAt = Date.now()
    const traffic = await startTraffic()
    const failures: FailureOutcome[] = []
    const healthy: (RunResult | Error)[] = []
    try {
      // Not reported: warms the JIT (fastify, undici, the stats) in the proxy thread and the workers, so no run pays for it.
      await attempt('warm-up (not reported)', traffic, healthyPlan({ ...HELD_AT_5 }, 2_000))
      for (const scenario of FAILURES) {
        const upstream = plan(scenario.bad)
        const recording = await attempt(`${scenario.key}: recording for the Flagger-style replay`, traffic, {
          upstream,
          rate: RATE,
          rollout: HELD_AT_5,
          analysis: NO_CHECKS,
          leadInMs: LEAD_IN_MS,
          badAfterMs: sizes.recordHealthyMs,
          stopAfterBadMs: sizes.recordBadMs,
          timeoutMs: sizes.recordHealthyMs + sizes.recordBadMs + 10_000,
          scrapeEveryMs: 1_000,
        })
        const runs: (RunResult | Error)[] = []
        const falseRollbacks: RunResult[] = []
        const wanted = sizes.failureRuns[scenario.key]
        while (runs.length < wanted && falseRollbacks.length <= sizes.replacements) {
          const r = await attempt(`${scenario.key}: run ${runs.length + 1}`, traffic, {
            upstream,
            rate: RATE,
            rollout: HELD_AT_5,
            analysis: ANALYSIS,
            leadInMs: LEAD_IN_MS,
            badAfterMs: sizes.badAfterMs,
            stopAfterBadMs: null,
            timeoutMs: sizes.badAfterMs + giveUp(scenario, sizes),
            scrapeEveryMs: null,
          })
          if (ok(r) && r.upstream.switchedAt === null && r.phase === 'rolled_back') falseRollbacks.push(r)
          else runs.push(r)
        }
        failures.push({ scenario, runs, falseRollbacks, recording })
      }
      for (let i = 0; i < sizes.healthyRuns; i++) healthy.push(await attempt(`healthy: run ${i + 1}`, traffic, healthyPlan(HEALTHY_ROLLOUT, 30_000)))
    } finally {
      await stopTraffic(traffic)
    }
    realTime = report({ failures, healthy, sizes, quick: options.quick, realMs: Date.now() - startedAt })
  }
  const simulated = runChecksBench({ quick: options.quick, log })
  const head = options.simOnly === true ? '## Decision speed (issues 3 and 9)\n\nReal-time runs skipped in this run (`--sim-only`).\n\n' : ''
  return `${head}${realTime}${simulated}`
}

function giveUp(scenario: FailureScenario, sizes: Sizes): number {
  return sizes === QUICK ? Math.min(QUICK_GIVE_UP_MS, scenario.giveUpAfterBadMs) : scenario.giveUpAfterBadMs
}

function plan(bad: SideBehaviour): UpstreamPlan {
  return { ...LATENCY, stable: HEALTHY, canary: HEALTHY, canaryBad: bad }
}

function healthyPlan(rollout: Record<string, unknown>, timeoutMs: number): RunPlan {
  return { upstream: plan(HEALTHY), rate: RATE, rollout, analysis: ANALYSIS, leadInMs: LEAD_IN_MS, badAfterMs: null, stopAfterBadMs: null, timeoutMs, scrapeEveryMs: 1_000 }
}

/** One run; a harness failure is reported in the section rather than losing the other runs. */
async function attempt(label: string, traffic: Traffic, runPlan: RunPlan): Promise<RunResult | Error> {
  const started = Date.now()
  try {
    const result = await runRollout(traffic, runPlan)
    process.stderr.write(`decision bench: ${label}: ${summaryLine(result)} [${fmtMs(Date.now() - started)}]\n`)
    return result
  } catch (error) {
    process.stderr.write(`decision bench: ${label}: harness error ${String(error)}\n`)
    return error instanceof Error ? error : new Error(String(error))
  }
}

function summaryLine(r: RunResult): string {
  const bad = r.upstream.firstBadResponseAt
  const zero = r.zeroAt === null || bad === null ? '' : `, weight 0 ${fmtMs(r.zeroAt - bad)} after the first bad response, ${r.badServed} bad canary requests`
  const f = r.final
  const why = r.phase === 'rolled_back' && (bad === null || r.zeroAt === null) ? ` “${r.reason ?? ''}”` : ''
  return `${r.phase}${zero}${why} (${achievedRate(r).toFixed(0)} req/s; window p99 stable ${f.stableP99Ms ?? '-'} ms, canary ${f.canaryP99Ms ?? '-'} ms; loop delay p99 ${r.loopDelayP99Ms.toFixed(1)} ms; load ${r.loadAverage.toFixed(1)})`
}

function achievedRate(r: RunResult): number {
  return (r.load.completed / r.load.durationMs) * 1000
}

// ---------------------------------------------------------------- figures

interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly n: number
}

function spread(values: readonly number[]): Spread | null {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return null
  const sorted = [...finite].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length }
}

function fmtSpread(s: Spread | null, fmt: (v: number) => string): string {
  if (s === null) return 'n/a'
  if (s.n === 1) return fmt(s.median)
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`
}

function fmtMs(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
}

const fmtS = (s: number): string => fmtMs(s * 1000)
const fmtN = (n: number): string => Math.round(n).toLocaleString('en-US')

function ok(r: RunResult | Error): r is RunResult {
  return !(r instanceof Error)
}

/** Which checks a rollback reason names (the gate joins several failing checks with "; "). */
function checksIn(reason: string | null): string[] {
  if (reason === null) return []
  const out: string[] = []
  for (const part of reason.split('; ')) {
    if (/^canary error rate .*\): increase /.test(part)) out.push('error-rate increase')
    else if (/^canary error rate .* > max/.test(part)) out.push('error rate')
    else if (/^canary p99 .* is [\d.]+x /.test(part)) out.push('p99 ratio')
    else if (/^canary p99 .* > max/.test(part)) out.push('p99')
  }
  return out.length === 0 ? ['other'] : out
}

/** "error rate + error-rate increase at 5%: 3; p99 ratio at 50%: 1" */
function tally(items: readonly { readonly weight: number; readonly reason: string | null }[]): string {
  const counts = new Map<string, number>()
  for (const item of items) {
    const key = `${checksIn(item.reason).join(' + ')} at ${item.weight}%`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ')
}

/** The weight in force when the rollout was rolled back. */
function weightBeforeZero(r: RunResult): number {
  const zero = r.publishes.findIndex((p) => p.weight === 0)
  return zero > 0 ? r.publishes[zero - 1]!.weight : 0
}

/** Healthy and bad seconds at 5% of a recording run, as the Prometheus scrape saw them. */
function recordedSeconds(recording: RunResult): { healthy: Second[]; bad: Second[] } {
  const switchedAt = recording.upstream.switchedAt ?? Number.POSITIVE_INFINITY
  const start = recording.rolloutStartedAt
  return {
    healthy: secondsOf(recording.scrapes, (from, to) => from.at >= start + 500 && to.at <= switchedAt && to.weight === 5),
    // The second straddling the switch is left out; so is the first half second after it (responses in flight).
    bad: secondsOf(recording.scrapes, (from, to) => from.at >= switchedAt + 500 && to.weight === 5),
  }
}

interface FlaggerFigures {
  readonly rollback: Spread | null
  readonly firstFail: Spread | null
  readonly served: Spread | null
  readonly neverRolledBack: number
  readonly failedBeforeSwitch: number
  readonly replays: number
}

function flaggerFigures(healthy: readonly Second[], bad: readonly Second[], checks: FlaggerChecks, seed: number): FlaggerFigures {
  const rng = seededRng(seed)
  const rollback: number[] = []
  const firstFail: number[] = []
  const served: number[] = []
  let never = 0
  let failedBeforeSwitch = 0
  for (let i = 0; i < REPLAYS; i++) {
    const r = replayFailure(healthy, bad, flaggerPolicy(checks), rng)
    failedBeforeSwitch += r.failedBeforeSwitch
    if (r.firstFailAfterS !== null) firstFail.push(r.firstFailAfterS)
    if (r.rollbackAfterS === null) never++
    else {
      rollback.push(r.rollbackAfterS)
      served.push(r.canaryServed)
    }
  }
  return { rollback: spread(rollback), firstFail: spread(firstFail), served: spread(served), neverRolledBack: never, failedBeforeSwitch, replays: REPLAYS }
}

// ---------------------------------------------------------------- report

interface ReportInput {
  readonly failures: readonly FailureOutcome[]
  readonly healthy: readonly (RunResult | Error)[]
  readonly sizes: Sizes
  readonly quick: boolean
  readonly realMs: number
}

function report(input: ReportInput): string {
  const { failures, healthy, sizes, quick } = input
  const out: string[] = []
  const allRuns = [...failures.flatMap((f) => [...f.runs, ...f.falseRollbacks]), ...healthy].filter(ok)
  const rates = spread(allRuns.map(achievedRate))
  out.push('## Decision speed (issues 3 and 9)')
  out.push('')
  out.push(
    `Real app (\`buildApp\`) on loopback, ${fmtN(RATE)} req/s offered open loop (achieved ${fmtSpread(rates, (v) => v.toFixed(0))} req/s), ` +
      'analysis every 250 ms over a 30 s window, `minRequests: 20`, the SPEC example\'s checks, `confidence: 0.999` (the deprecated alias of `falseRollbackRate: 0.001`, the default). ' +
      `In the failure scenarios the canary serves ${sizes.badAfterMs / 1000} s healthy at 5% (0.5% background 5xx on both sides), then turns bad. ` +
      'Times run from the canary\'s first bad response (timestamped by the canary upstream itself) to the publication of the weight-0 routing snapshot. ' +
      `${quick ? '**Quick mode**: fewer runs, not for the record. ' : ''}Real-time runs (the app's own sequential checks) took ${fmtMs(input.realMs)}, on a shared 2-core machine ` +
      `(1-minute load average ${fmtSpread(spread(allRuns.map((r) => r.loadAverage)), (v) => v.toFixed(1))}; the proxy thread's event-loop delay p99 ${fmtSpread(spread(allRuns.map((r) => r.loopDelayP99Ms)), (v) => `${v.toFixed(1)} ms`)} per run).`,
  )
  out.push('')
  // Every healthy canary observed, in the healthy runs and before the switch in the failure runs, feeds the Flagger-style replays.
  const healthySeconds = [
    ...failures.flatMap((f) => (ok(f.recording) ? recordedSeconds(f.recording).healthy : [])),
    ...healthy.filter(ok).flatMap((r) => secondsOf(r.scrapes, (from, to) => from.at >= r.rolloutStartedAt + 500 && to.weight === 5)),
  ]
  const verdicts: string[] = []
  for (const f of failures) out.push(...failureSection(f, healthySeconds, sizes, verdicts))
  out.push(...healthySection(healthy, failures, verdicts))
  out.push('### Targets')
  out.push('')
  out.push(...verdicts.map((v) => `- ${v}`))
  out.push('')
  out.push(...methodSection(sizes))
  return `${out.join('\n')}\n`
}

function failureSection(f: FailureOutcome, healthySeconds: readonly Second[], sizes: Sizes, verdicts: string[]): string[] {
  const out: string[] = [`### ${f.scenario.title}`, '']
  const runs = f.runs.filter(ok)
  const broken = f.runs.filter((r) => !ok(r)) as Error[]
  const rolled = runs.filter((r) => r.zeroAt !== null && r.upstream.firstBadResponseAt !== null)
  const sinceBad = (t: number | null, r: RunResult): number => (t ?? NaN) - (r.upstream.firstBadResponseAt ?? NaN)
  const detect = spread(rolled.map((r) => sinceBad(r.detectedAt, r)))
  const zero = spread(rolled.map((r) => sinceBad(r.zeroAt, r)))
  const served = spread(rolled.map((r) => r.badServed))
  const servedByZero = spread(rolled.map((r) => r.badServedByZero))
  const publishLag = spread(rolled.filter((r) => r.detectedAt !== null).map((r) => Math.max(0, r.zeroAt! - r.detectedAt!)))

  let flaggerSame: FlaggerFigures | null = null
  let flaggerBuiltIn: FlaggerFigures | null = null
  let recordingNote: string
  if (ok(f.recording)) {
    const { bad } = recordedSeconds(f.recording)
    if (healthySeconds.length > 0 && bad.length > 0) {
      flaggerSame = flaggerFigures(healthySeconds, bad, FLAGGER_SAME_CHECKS, 1)
      flaggerBuiltIn = flaggerFigures(healthySeconds, bad, FLAGGER_BUILT_INS, 2)
      recordingNote = `Flagger-style columns: ${REPLAYS} replays drawn from ${bad.length} bad seconds of this scenario's recording run and ${healthySeconds.length} healthy seconds at 5% (recording and healthy runs).`
    } else recordingNote = 'Flagger-style columns: the recording runs produced no usable seconds.'
  } else recordingNote = `Flagger-style columns: the recording run failed (${f.recording.message}).`

  const flaggerCell = (fig: FlaggerFigures | null, pick: (x: FlaggerFigures) => Spread | null, fmt: (v: number) => string): string => {
    if (fig === null) return 'n/a'
    const s = pick(fig)
    const never = fig.neverRolledBack > 0 ? `${s === null ? '' : '; '}not rolled back in ${fig.neverRolledBack}/${fig.replays} replays (20 min horizon)` : ''
    return `${s === null ? '' : fmtSpread(s, fmt)}${never}`
  }
  const t = f.scenario.target
  const met = (r: RunResult): boolean => {
    if (t === null || r.zeroAt === null || r.upstream.firstBadResponseAt === null) return false
    return r.zeroAt - r.upstream.firstBadResponseAt <= t.maxRollbackMs && (t.maxServed === null || r.badServed <= t.maxServed)
  }
  const runsTotal = f.runs.length
  const allMet = runsTotal > 0 && runs.length === runsTotal && runs.every(met)
  const targetText = t === null ? 'none (reported only)' : `≤ ${fmtMs(t.maxRollbackMs)}${t.maxServed === null ? '' : ` and ≤ ${t.maxServed} canary requests`}`
  const targetCell = t === null ? '—' : `${runs.filter(met).length}/${runsTotal} runs: **${allMet ? 'yes' : 'no'}**`
  const ms = (pick: (r: RunResult) => number | null): string => fmtSpread(spread(runs.map(pick).filter((v): v is number => v !== null)), (v) => `${v.toFixed(0)} ms`)
  out.push(`| ${runsTotal} run${runsTotal === 1 ? '' : 's'}: median (min–max) | canary-proxy | Flagger-style, same checks | Flagger, built-in checks only |`)
  out.push('|---|---|---|---|')
  out.push(`| first bad response → failing verdict | ${fmtSpread(detect, fmtMs)} | first failed check: ${flaggerCell(flaggerSame, (x) => x.firstFail, fmtS)} | first failed check: ${flaggerCell(flaggerBuiltIn, (x) => x.firstFail, fmtS)} |`)
  out.push(`| first bad response → weight 0 | **${fmtSpread(zero, fmtMs)}** | **${flaggerCell(flaggerSame, (x) => x.rollback, fmtS)}** | ${flaggerCell(flaggerBuiltIn, (x) => x.rollback, fmtS)} |`)
  out.push(`| requests served by the bad canary (blast radius) | **${fmtSpread(served, fmtN)}**, of which arrived by the weight-0 publish: ${fmtSpread(servedByZero, fmtN)} | **${flaggerCell(flaggerSame, (x) => x.served, fmtN)}** | ${flaggerCell(flaggerBuiltIn, (x) => x.served, fmtN)} |`)
  out.push(`| failing verdict → weight-0 snapshot published | ${fmtSpread(publishLag, fmtMs)} | routing change taken as instant | |`)
  out.push(`| proxy window when the run ended: stable p50 / p99 | ${ms((r) => r.final.stableP50Ms)} / ${ms((r) => r.final.stableP99Ms)} | | |`)
  out.push(`| proxy window when the run ended: canary p50 / p99 | ${ms((r) => r.final.canaryP50Ms)} / ${ms((r) => r.final.canaryP99Ms)} | | |`)
  out.push(`| target: ${targetText} | ${targetCell} | | |`)
  out.push('')
  const notes: string[] = []
  const notRolled = runs.filter((r) => r.zeroAt === null)
  if (notRolled.length > 0) {
    notes.push(
      `${notRolled.length} run(s) not rolled back within ${fmtMs(giveUp(f.scenario, sizes))} of turning bad; their last verdicts: ${notRolled.map((r) => `“${r.final.lastDecision ?? r.phase}”`).join('; ')}.`,
    )
  }
  if (f.falseRollbacks.length > 0) {
    notes.push(
      `${f.falseRollbacks.length} further run(s) were rolled back while the canary was still healthy, before it turned bad, and were replaced: ${f.falseRollbacks.map((r) => `“${r.reason ?? ''}”`).join('; ')}.`,
    )
  }
  if (broken.length > 0) notes.push(`${broken.length} run(s) lost to a harness error: ${broken.map((e) => e.message).join('; ')}.`)
  const example = rolled.find((r) => r.reason !== null)
  if (example !== undefined) notes.push(`Example verdict: “${example.reason ?? ''}”.`)
  if (flaggerSame !== null && flaggerSame.failedBeforeSwitch > 0) notes.push(`Flagger-style (same checks): ${flaggerSame.failedBeforeSwitch} checks failed on healthy traffic before the switch over ${REPLAYS} replays.`)
  notes.push(recordingNote)
  out.push(notes.join(' '))
  out.push('')
  if (t !== null) {
    const name = f.scenario.key === 'hard' ? 'Hard failure' : 'Latency regression'
    verdicts.push(
      `${name} rolled back ${targetText}: **${allMet ? 'met' : 'not met'}** (${runs.filter(met).length}/${runsTotal} runs; weight 0 after ${fmtSpread(zero, fmtMs)}${t.maxServed === null ? '' : `, ${fmtSpread(served, fmtN)} canary requests`}${notRolled.length > 0 ? `; ${notRolled.length} not rolled back within ${fmtMs(giveUp(f.scenario, sizes))}` : ''}).`,
    )
  }
  return out
}

function healthySection(results: readonly (RunResult | Error)[], failures: readonly FailureOutcome[], verdicts: string[]): string[] {
  const out: string[] = ['### Healthy canary: 0.5% background 5xx on both sides, same latency', '']
  const runs = results.filter(ok)
  const broken = results.filter((r) => !ok(r)) as Error[]
  const rolledBack = runs.filter((r) => r.phase === 'rolled_back')
  const completed = runs.filter((r) => r.phase === 'succeeded')
  const duration = spread(completed.map((r) => (r.publishes.find((p) => p.weight === 0)?.at ?? NaN) - r.rolloutStartedAt))

  // Flagger-style: as many rollouts, each step judged once on a 1 m window drawn from the seconds recorded at that weight.
  const byWeight = new Map<number, Second[]>()
  for (const r of runs) {
    for (const s of secondsOf(r.scrapes, (from) => from.at >= r.rolloutStartedAt)) {
      if (s.weight <= 0) continue
      const list = byWeight.get(s.weight) ?? []
      list.push(s)
      byWeight.set(s.weight, list)
    }
  }
  let flagger = 'n/a (no recorded seconds at every step)'
  let flaggerDuration = 'n/a'
  if (STEPS.every((w) => (byWeight.get(w)?.length ?? 0) > 0)) {
    const rng = seededRng(3)
    let failedChecks = 0
    let rolled = 0
    let durationS = 0
    for (let i = 0; i < results.length; i++) {
      const r = replayHealthy(byWeight, STEPS, flaggerPolicy(FLAGGER_SAME_CHECKS), rng)
      failedChecks += r.failedChecks
      if (r.rolledBack) rolled++
      durationS = r.durationS
    }
    flagger = `${rolled}/${results.length} (${failedChecks} of ${results.length * STEPS.length} checks failed; 4 checks cannot reach threshold 5)`
    flaggerDuration = `≥ ${fmtS(durationS)} (one 1 m analysis per step; promotion not counted)`
  }
  const falseInFailureRuns = failures.flatMap((f) => f.falseRollbacks)
  const met = rolledBack.length === 0 && runs.length === results.length
  out.push(`| ${results.length} rollouts, steps ${STEPS.join('/')}, 2 s each + 2 s bake | canary-proxy | Flagger-style, same checks |`)
  out.push('|---|---|---|')
  out.push(`| rolled back (false positives) | **${rolledBack.length}/${results.length}** | ${flagger} |`)
  out.push(`| completed (succeeded) | ${completed.length}/${results.length} | |`)
  out.push(`| start → succeeded | ${fmtSpread(duration, fmtMs)} | ${flaggerDuration} |`)
  out.push(`| target: never rolled back | **${met ? 'yes' : 'no'}** | |`)
  out.push('')
  const notes: string[] = []
  for (const r of rolledBack) {
    const at = r.publishes.find((p) => p.weight === 0)
    notes.push(`False rollback at ${weightBeforeZero(r)}%, ${at === undefined ? '?' : fmtMs(at.at - r.rolloutStartedAt)} into the rollout (event-loop delay p99 ${r.loopDelayP99Ms.toFixed(0)} ms): “${r.reason ?? ''}”.`)
  }
  if (falseInFailureRuns.length > 0) {
    notes.push(`The failure scenarios' healthy 5% phases add ${falseInFailureRuns.length} false rollback(s) (${tally(falseInFailureRuns.map((r) => ({ weight: weightBeforeZero(r), reason: r.reason })))}).`)
  }
  const stuck = runs.filter((r) => r.phase !== 'succeeded' && r.phase !== 'rolled_back')
  if (stuck.length > 0) notes.push(`${stuck.length} run(s) neither succeeded nor rolled back within 30 s (phase ${stuck.map((r) => r.phase).join(', ')}).`)
  if (broken.length > 0) notes.push(`${broken.length} run(s) lost to a harness error: ${broken.map((e) => e.message).join('; ')}.`)
  if (notes.length > 0) {
    out.push(...notes.map((n) => `- ${n}`))
    out.push('')
  }
  verdicts.push(
    `Healthy canary never rolled back in ${results.length} runs${results.length < 20 ? ' (quick mode: the target asks for 20)' : ''}: **${met ? 'met' : 'not met'}** (${rolledBack.length} rolled back, ${completed.length} completed${falseInFailureRuns.length > 0 ? `; plus ${falseInFailureRuns.length} false rollback(s) in the failure scenarios' healthy phase` : ''}).`,
  )
  return out
}

function methodSection(sizes: Sizes): string[] {
  return [
    '### Method',
    '',
    '- **Harness** (bench/decision-harness.ts, bench/decision-traffic.ts): each run builds the real app with `configFromObject` + `buildApp` (silent logs, temp state dir), ' +
      'between two node:http upstreams on loopback (one worker thread) and an open-loop undici load generator (another worker thread: requests go out on schedule whether or not earlier ones were answered). ' +
      `The proxy serves ${LEAD_IN_MS / 1000} s of stable-only traffic, then the bench starts the rollout (\`act start\`). ` +
      'Every response waits `scale × (5 ms + Exp(mean 5 ms))` (p99 ≈ 28 ms at scale 1, ≈ 84 ms at scale 3); a share (errorRatio) are 503. Routing is the proxy\'s weighted random pick (no sticky key). One unreported warm-up run first, so no run pays for the JIT.',
    '- **canary-proxy column**: the canary upstream timestamps its first response under the bad behaviour and every request it receives after turning bad. The bench wraps `controller.ref.publish` to timestamp the weight-0 snapshot (from then the data plane routes new requests to stable); ' +
      'the failing verdict\'s own `at` is the detection time (ms resolution, same clock); both happen in the same synchronous call, so detection → publish is ~0. Blast radius = requests the bad canary received, including those already routed when weight 0 was published (the load runs on 200 ms after the rollback so they land). ' +
      'A failure run rolled back while its canary was still healthy is a false positive: it is reported and replaced (at most twice per scenario).',
    `- **Flagger-style columns** (bench/decision-flagger.ts), from the same harness: per failure scenario a *recording run* holds the canary at 5% with no check configured (${sizes.recordHealthyMs / 1000} s healthy, then ${sizes.recordBadMs / 1000} s bad) and reads the proxy's Prometheus counters every second ` +
      '(`canary_proxy_requests_total` by status class, `canary_proxy_request_duration_seconds_bucket`, from the app\'s registry as `/metrics` serves them). ' +
      `Each of ${REPLAYS} replays draws a timeline second by second, with replacement, from recorded seconds (scaled to exactly 1 s): 3 min of healthy ones at 5% (recording and healthy runs), then the scenario's bad ones. ` +
      'Prometheus scrapes it every 15 s (random phase). The controller ticks every 60 s (random phase) over a 1 m window: error share = increase of 5xx / increase of all requests; p99 = `histogram_quantile(0.99, …)` with Prometheus\' bucket interpolation; range selector left-open (Prometheus 3). ' +
      'A failing check increments failedChecks. The tick that starts with failedChecks ≥ 5 rolls back (Flagger\'s scheduler tests the threshold before that tick\'s analysis), so the rollback comes one interval after the fifth failure. The routing change itself is taken as instant, and the canary stays at 5% (failing checks halt advancement). ' +
      '"Same checks" applies our four thresholds without a confidence test (the two relative ones would be custom metric templates against the primary, as in flagger#739). "Built-in checks only" is the documentation\'s request-success-rate ≥ 99% and request-duration p99 ≤ 500 ms. ' +
      'Healthy column: as many rollouts, each step judged once on a 1 m window drawn from the seconds recorded at that weight in the healthy runs (relative checks skipped at 100%, where the primary has no traffic).',
    '- **Figures**: median (min–max) over the runs (canary-proxy), the replays (Flagger-style) or the simulated rollouts.',
    '',
    '### Config used',
    '',
    '```yaml',
    'rollout:',
    `  steps: [${STEPS.join(', ')}]`,
    '  stepDuration: 10m   # failure scenarios: held at 5%; healthy runs: 2s',
    '  bake: 10m           # healthy runs: 2s',
    'analysis:',
    ...Object.entries(ANALYSIS).map(([k, v]) => `  ${k}: ${v}`),
    '```',
    '',
  ]
}
