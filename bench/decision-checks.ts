/** Issue 9's decision scenarios, simulated: the sequential checks beside today's gate and a Flagger-style policy on the same request streams, the false-rollback bound at the threshold, and the targets. */
import { buildChecks } from '../src/analysis/checks/index.js'
import { HEALTHY, simulateRun, type Behaviour, type DeciderName, type Moment, type RunOutcome, type Scenario, type SimAnalysis } from './decision-checks-sim.js'
import type { FlaggerChecks } from './decision-flagger.js'
import { seededRng } from './lib/random.js'
import { binomialLowerBound, binomialUpperBound, errorRollout, latencyRollout, SPEC_STAGES, type RolloutOutcome } from './lib/threshold-sim.js'

/** The SPEC example's checks; interval 250 ms and minRequests 20 as the real-time runs (issue 3); falseRollbackRate at its default. */
export const ANALYSIS: SimAnalysis = {
  intervalMs: 250,
  windowMs: 30_000,
  minRequests: 20,
  maxErrorRate: 0.01,
  maxErrorRateIncrease: 0.005,
  maxP99Ms: 500,
  maxP99Ratio: 1.5,
  minP99DeltaMs: 5,
  falseRollbackRate: 0.001,
  confidence: 0.999,
}
const FLAGGER: FlaggerChecks = { maxErrorRate: 0.01, maxErrorRateIncrease: 0.005, maxP99Ms: 500, maxP99Ratio: 1.5, minP99DeltaMs: 5 }
const STEPS = [5, 25, 50, 100] as const

const bad = (over: Partial<Behaviour>): Behaviour => ({ ...HEALTHY, ...over })
const HARD = bad({ errorRatio: 1 })
const SOFT = bad({ errorRatio: 0.03 })
const SLOW = bad({ latencyScale: 3 })
const TAIL = bad({ tailShare: 0.01, tailMs: 500 })
const DEAD = bad({ dead: true })
const BAD_AFTER_MS = 3_000

/** A canary that turns `b` `after` ms into the stage at `weight`, and stays so. */
function turnsAt(weight: number, after: number, b: Behaviour): Pick<Scenario, 'behaviour' | 'badFrom'> {
  const isBad = (m: Moment): boolean => m.weight > weight || (m.weight === weight && m.inStage >= after)
  return { behaviour: (side, m) => (side === 'canary' && isBad(m) ? b : HEALTHY), badFrom: isBad }
}

const HELD: Pick<Scenario, 'steps' | 'stepMs' | 'bakeMs'> = { steps: STEPS, stepMs: 600_000, bakeMs: 600_000 }
const SPEC_DURATIONS: Pick<Scenario, 'steps' | 'stepMs' | 'bakeMs'> = { steps: STEPS, stepMs: 30_000, bakeMs: 60_000 }
/** A healthy rollout at the SPEC's durations takes ~150 s; failures at 5% are given 60 s (Flagger: 12 min). */
const ROLLOUT_LIMIT = 240_000

interface Case {
  readonly scenario: Scenario
  /** Runs per decider; Flagger's 60 s analyses need minutes, and it gets fewer runs over a longer horizon. */
  readonly runs: number
  readonly flaggerRuns: number
  readonly flaggerLimitMs: number
  /** What a good outcome is: rolled back (a failure), or not rolled back (healthy, shared trouble). */
  readonly expect: 'rollback' | 'no rollback'
}

function cases(quick: boolean): Case[] {
  const n = (full: number): number => (quick ? Math.max(2, Math.round(full / 10)) : full)
  const failure = (key: string, title: string, b: Behaviour, rate = 1000, limitMs = 60_000, runs = 20): Case => ({
    scenario: { key, title, rate, ...HELD, limitMs, ...turnsAt(5, BAD_AFTER_MS, b) },
    runs: n(runs),
    flaggerRuns: n(3),
    flaggerLimitMs: 720_000,
    expect: 'rollback',
  })
  const sharedBurst = (m: Moment): boolean => m.weight === 25 && m.inStage >= 10_000 && m.inStage < 11_000
  const stableBad = (m: Moment): boolean => m.weight > 25 || (m.weight === 25 && m.inStage >= 10_000)
  return [
    { scenario: { key: 'hard-first', title: 'Hard failure from the first request (100% 5xx at 5%)', rate: 1000, ...HELD, limitMs: 20_000, ...turnsAt(5, 0, HARD) }, runs: n(40), flaggerRuns: n(3), flaggerLimitMs: 720_000, expect: 'rollback' },
    failure('hard', 'Hard failure after 3 s at 5% (100% 5xx)', HARD),
    { scenario: { key: 'hard-mid', title: 'Hard failure mid-rollout: 10 s into the 25% step', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, ...turnsAt(25, 10_000, HARD) }, runs: n(20), flaggerRuns: n(3), flaggerLimitMs: 900_000, expect: 'rollback' },
    failure('soft', 'Soft failure after 3 s at 5% (3% 5xx against 0.5%)', SOFT),
    failure('latency', 'Latency x3 after 3 s at 5% (the whole distribution)', SLOW),
    failure('tail', 'Tail regression after 3 s at 5% (1% of requests +500 ms)', TAIL, 1000, 120_000),
    { scenario: { key: 'dies', title: 'Canary dies (connections refused) 10 s into the 50% step', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, ...turnsAt(50, 10_000, DEAD) }, runs: n(20), flaggerRuns: n(3), flaggerLimitMs: 900_000, expect: 'rollback' },
    { scenario: { key: 'dead-1', title: 'Low traffic, dead canary: 1 req/s (5%: one canary request every ~20 s)', rate: 1, ...HELD, limitMs: 600_000, ...turnsAt(5, 0, HARD) }, runs: n(20), flaggerRuns: n(3), flaggerLimitMs: 900_000, expect: 'rollback' },
    { scenario: { key: 'dead-10', title: 'Low traffic, dead canary: 10 req/s', rate: 10, ...HELD, limitMs: 600_000, ...turnsAt(5, 0, HARD) }, runs: n(20), flaggerRuns: n(3), flaggerLimitMs: 900_000, expect: 'rollback' },
    { scenario: { key: 'healthy-1', title: 'Low traffic, healthy canary: 1 req/s, SPEC durations, 10 min', rate: 1, ...SPEC_DURATIONS, limitMs: 600_000, behaviour: () => HEALTHY, badFrom: null }, runs: n(20), flaggerRuns: n(3), flaggerLimitMs: 600_000, expect: 'no rollback' },
    { scenario: { key: 'healthy-10', title: 'Low traffic, healthy canary: 10 req/s, SPEC durations, 10 min', rate: 10, ...SPEC_DURATIONS, limitMs: 600_000, behaviour: () => HEALTHY, badFrom: null }, runs: n(20), flaggerRuns: n(3), flaggerLimitMs: 600_000, expect: 'no rollback' },
    { scenario: { key: 'healthy', title: 'Healthy canary, 0.5% 5xx on both sides, SPEC durations (30 s steps, 60 s bake)', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: () => HEALTHY, badFrom: null }, runs: n(30), flaggerRuns: n(3), flaggerLimitMs: 600_000, expect: 'no rollback' },
    {
      scenario: { key: 'stalls', title: 'Healthy canary with host stalls: the event loop blocked 300 ms every 7 s (both sides), SPEC durations', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: () => HEALTHY, badFrom: null, stall: { everyMs: 7_000, forMs: 300, firstAtMs: 2_000 } },
      runs: n(30),
      flaggerRuns: n(3),
      flaggerLimitMs: 600_000,
      expect: 'no rollback',
    },
    {
      scenario: { key: 'stable-degrades', title: 'Stable degrades: stable 10% 5xx from 10 s into the 25% step, canary healthy', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: (side, m) => (side === 'stable' && stableBad(m) ? bad({ errorRatio: 0.1 }) : HEALTHY), badFrom: null },
      runs: n(20),
      flaggerRuns: n(3),
      flaggerLimitMs: 600_000,
      expect: 'no rollback',
    },
    {
      scenario: { key: 'burst-shared', title: 'A 1 s burst on both sides (50% 5xx, a shared dependency) 10 s into the 25% step', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: (_side, m) => (sharedBurst(m) ? bad({ errorRatio: 0.5 }) : HEALTHY), badFrom: null },
      runs: n(20),
      flaggerRuns: n(3),
      flaggerLimitMs: 600_000,
      expect: 'no rollback',
    },
    {
      scenario: { key: 'burst-canary', title: 'A 1 s burst on the canary alone (50% 5xx) 10 s into the 25% step', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: (side, m) => (side === 'canary' && sharedBurst(m) ? bad({ errorRatio: 0.5 }) : HEALTHY), badFrom: sharedBurst },
      runs: n(20),
      flaggerRuns: n(3),
      flaggerLimitMs: 600_000,
      expect: 'rollback',
    },
    {
      scenario: { key: 'bake-shared', title: 'Bake: both sides x3 slower from 10 s into the bake (a shared dependency slows down)', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: (_side, m) => (m.baking && m.inStage >= 10_000 ? SLOW : HEALTHY), badFrom: null },
      runs: n(20),
      flaggerRuns: n(3),
      flaggerLimitMs: 600_000,
      expect: 'no rollback',
    },
    {
      scenario: { key: 'bake-slow', title: 'Bake: the canary x3 slower at full traffic only (from 10 s into the bake), stable unchanged', rate: 1000, ...SPEC_DURATIONS, limitMs: ROLLOUT_LIMIT, behaviour: (side, m) => (side === 'canary' && m.baking && m.inStage >= 10_000 ? SLOW : HEALTHY), badFrom: (m) => m.baking && m.inStage >= 10_000 },
      runs: n(20),
      flaggerRuns: n(3),
      flaggerLimitMs: 600_000,
      expect: 'rollback',
    },
    {
      scenario: {
        key: 'bake-slow-share',
        title: 'Same, with a 5% stable share kept in the bake (rollout.bakeStableShare: 5, simulated)',
        rate: 1000,
        ...SPEC_DURATIONS,
        bakeStableShare: 5,
        limitMs: ROLLOUT_LIMIT,
        behaviour: (side, m) => (side === 'canary' && m.baking && m.inStage >= 10_000 ? SLOW : HEALTHY),
        badFrom: (m) => m.baking && m.inStage >= 10_000,
      },
      runs: n(20),
      flaggerRuns: 0,
      flaggerLimitMs: 0,
      expect: 'rollback',
    },
    {
      scenario: {
        key: 'bake-shared-share',
        title: 'Both sides x3 slower in the bake, with the 5% stable share',
        rate: 1000,
        ...SPEC_DURATIONS,
        bakeStableShare: 5,
        limitMs: ROLLOUT_LIMIT,
        behaviour: (_side, m) => (m.baking && m.inStage >= 10_000 ? SLOW : HEALTHY),
        badFrom: null,
      },
      runs: n(20),
      flaggerRuns: 0,
      flaggerLimitMs: 0,
      expect: 'no rollback',
    },
  ]
}

// ---------------------------------------------------------------- runs

interface CaseResult {
  readonly c: Case
  readonly byDecider: ReadonlyMap<DeciderName, readonly RunOutcome[]>
  readonly ms: number
}

function runCase(c: Case, index: number): CaseResult {
  const started = Date.now()
  const byDecider = new Map<DeciderName, RunOutcome[]>()
  for (const decider of ['new', 'today', 'flagger'] as const) {
    const runs = decider === 'flagger' ? c.flaggerRuns : c.runs
    const scenario = decider === 'flagger' ? { ...c.scenario, limitMs: c.flaggerLimitMs } : c.scenario
    const out: RunOutcome[] = []
    // The same seeds for every decider: the same streams until their verdicts make the routing differ.
    for (let i = 0; i < runs; i++) out.push(simulateRun(scenario, decider, ANALYSIS, FLAGGER, (index + 1) * 100_000 + i))
    byDecider.set(decider, out)
  }
  return { c, byDecider, ms: Date.now() - started }
}

interface ThresholdRow {
  readonly title: string
  readonly decider: string
  readonly falseRollbackRate: number | null
  readonly runs: number
  readonly rolledBack: number
  readonly looks: number
  readonly detail: string
}

function countSpace(title: string, settings: Parameters<typeof buildChecks>[0], runs: number, seed: number, one: (checks: ReturnType<typeof buildChecks>['checks'], rng: () => number) => RolloutOutcome): ThresholdRow {
  const { checks } = buildChecks(settings)
  let rolledBack = 0
  let looks = 0
  const by = new Map<string, number>()
  for (let i = 0; i < runs; i++) {
    const o = one(checks, seededRng(seed * 1_000_000 + i))
    looks += o.looks
    if (o.rolledBack) {
      rolledBack++
      const key = `${o.check} at ${o.weight}%`
      by.set(key, (by.get(key) ?? 0) + 1)
    }
  }
  const detail = [...by.entries()].map(([k, v]) => `${k}: ${v}`).join('; ')
  return { title, decider: 'new (counts)', falseRollbackRate: settings.falseRollbackRate, runs, rolledBack, looks: looks / runs, detail }
}

function thresholdRows(quick: boolean): ThresholdRow[] {
  const n = (full: number): number => (quick ? Math.round(full / 10) : full)
  const off = { minRequests: 20, maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null, maxP99Ratio: null, minP99DeltaMs: 5, steps: [...STEPS] }
  const atLimit = { canaryErrorRate: 0.01, stableErrorRate: 0.005 }
  const rows: ThresholdRow[] = []
  for (const alpha of [0.001, 0.05]) {
    const all = { ...off, maxErrorRate: 0.01, maxErrorRateIncrease: 0.005, maxP99Ms: 500, maxP99Ratio: 1.5, falseRollbackRate: alpha }
    rows.push(countSpace('canary at 1% (maxErrorRate) and +0.5 points over stable\'s 0.5% (maxErrorRateIncrease), all four checks configured', all, n(alpha === 0.001 ? 2000 : 1000), 11, (checks, rng) => errorRollout(checks, SPEC_STAGES, atLimit, rng)))
  }
  rows.push(countSpace('maxErrorRate alone, canary at exactly 1%', { ...off, maxErrorRate: 0.01, falseRollbackRate: 0.05 }, n(500), 12, (checks, rng) => errorRollout(checks, SPEC_STAGES, atLimit, rng)))
  rows.push(countSpace('maxErrorRateIncrease alone, canary at stable + 0.5 points', { ...off, maxErrorRateIncrease: 0.005, falseRollbackRate: 0.05 }, n(500), 13, (checks, rng) => errorRollout(checks, SPEC_STAGES, atLimit, rng)))
  rows.push(
    countSpace('maxErrorRateIncrease alone, at its limit through shared 1 s bursts (stable 20%, canary 20.5%) every 5 s', { ...off, maxErrorRateIncrease: 0.005, falseRollbackRate: 0.05 }, n(300), 14, (checks, rng) =>
      errorRollout(checks, SPEC_STAGES, { ...atLimit, burst: { everyMs: 5000, forMs: 1000, canaryErrorRate: 0.205, stableErrorRate: 0.2 } }, rng),
    ),
  )
  rows.push(
    countSpace('maxP99Ratio alone, canary latency = g(stable latency) on every rung, host stalls every 7 s', { ...off, maxP99Ratio: 1.5, falseRollbackRate: 0.05 }, n(300), 15, (checks, rng) =>
      latencyRollout(checks, SPEC_STAGES, { stableTail: [0.01, 0.002, 0.0005], stallEvery: 7, stallTail: [0.3, 0.1, 0.02] }, 'ratio', rng),
    ),
  )
  rows.push(countSpace('maxP99 alone, canary exactly 1% over 500 ms', { ...off, maxP99Ms: 500, falseRollbackRate: 0.05 }, n(300), 16, (checks, rng) => latencyRollout(checks, SPEC_STAGES, { stableTail: [0.005], canaryTail: [0.01] }, 'absolute', rng)))
  return rows
}

/** Per-request runs at the threshold, both gates on the same streams (2 s steps and bake, as the real-time healthy runs). */
function perRequestThreshold(quick: boolean): ThresholdRow[] {
  const runs = quick ? 40 : 500
  const scenario: Scenario = {
    key: 'threshold',
    title: 'canary at exactly 1% 5xx, stable 0.5%',
    rate: 1000,
    steps: STEPS,
    stepMs: 2_000,
    bakeMs: 2_000,
    limitMs: 30_000,
    behaviour: (side) => (side === 'canary' ? bad({ errorRatio: 0.01 }) : HEALTHY),
    badFrom: null,
  }
  const rows: ThresholdRow[] = []
  for (const decider of ['new', 'today'] as const) {
    let rolledBack = 0
    const by = new Map<string, number>()
    for (let i = 0; i < runs; i++) {
      const o = simulateRun(scenario, decider, ANALYSIS, FLAGGER, 7_000_000 + i)
      if (o.phase === 'rolled_back') {
        rolledBack++
        const key = `${o.failedChecks.join(' + ') || 'other'} at ${o.weight}%`
        by.set(key, (by.get(key) ?? 0) + 1)
      }
    }
    rows.push({
      title: `${scenario.title}, every 250 ms and 20 ms after each canary error, steps 2 s, bake 2 s`,
      decider: decider === 'new' ? 'new (requests)' : 'today (requests)',
      falseRollbackRate: decider === 'new' ? ANALYSIS.falseRollbackRate : null,
      runs,
      rolledBack,
      looks: 0,
      detail: [...by.entries()].map(([k, v]) => `${k}: ${v}`).join('; '),
    })
  }
  return rows
}

// ---------------------------------------------------------------- figures

function quantiles(values: readonly number[]): { median: number; min: number; max: number } | null {
  if (values.length === 0) return null
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return { median: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! }
}

function fmtMs(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
}

const fmtN = (n: number): string => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')

function spread(values: readonly number[], fmt: (v: number) => string): string {
  const q = quantiles(values)
  if (q === null) return '—'
  return values.length === 1 ? fmt(q.median) : `${fmt(q.median)} (${fmt(q.min)}–${fmt(q.max)})`
}

interface Summary {
  readonly runs: number
  readonly rolledBack: number
  readonly early: number
  readonly succeeded: number
  readonly held: number
  /** First bad response to rollback. */
  readonly detect: readonly number[]
  readonly served: readonly number[]
  readonly duration: readonly number[]
  readonly checks: string
  readonly heldReason: string | null
}

function summarize(outcomes: readonly RunOutcome[]): Summary {
  const rolled = outcomes.filter((o) => o.phase === 'rolled_back')
  const caught = rolled.filter((o) => !o.early && o.firstBadAtMs !== null)
  const tally = new Map<string, number>()
  for (const o of rolled) {
    const key = `${o.failedChecks.length === 0 ? (o.decider === 'flagger' ? '5 failed analyses' : 'other') : o.failedChecks.join(' + ')} at ${o.weight}%`
    tally.set(key, (tally.get(key) ?? 0) + 1)
  }
  const held = outcomes.filter((o) => o.phase === 'under_way')
  return {
    runs: outcomes.length,
    rolledBack: rolled.length,
    early: rolled.filter((o) => o.early).length,
    succeeded: outcomes.filter((o) => o.phase === 'succeeded').length,
    held: held.length,
    detect: caught.map((o) => o.endedAtMs - o.firstBadAtMs!),
    served: caught.map((o) => o.badServed),
    duration: outcomes.filter((o) => o.phase === 'succeeded').map((o) => o.endedAtMs),
    checks: [...tally.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}: ${v}`)
      .join('; '),
    heldReason: held[0]?.reason ?? null,
  }
}

const DECIDERS: readonly { readonly key: DeciderName; readonly label: string }[] = [
  { key: 'new', label: 'sequential checks (new)' },
  { key: 'today', label: 'today’s gate' },
  { key: 'flagger', label: 'Flagger-style' },
]

function caseTable(r: CaseResult): string[] {
  const out = [`#### ${r.c.scenario.title}`, '', '| | rolled back | first bad response → rollback | bad canary requests (blast radius) | succeeded (time) | still under way at the end | rollback reasons |', '|---|---|---|---|---|---|---|']
  for (const d of DECIDERS) {
    const outcomes = r.byDecider.get(d.key) ?? []
    if (outcomes.length === 0) continue
    const s = summarize(outcomes)
    const early = s.early > 0 ? ` (${s.early} before it turned bad)` : ''
    out.push(
      `| ${d.label} | ${s.rolledBack}/${s.runs}${early} | ${r.c.expect === 'rollback' ? spread(s.detect, fmtMs) : '—'} | ${r.c.expect === 'rollback' ? spread(s.served, fmtN) : '—'} | ${s.succeeded}/${s.runs}${s.duration.length > 0 ? ` (${spread(s.duration, fmtMs)})` : ''} | ${s.held}/${s.runs} | ${s.checks === '' ? '—' : s.checks} |`,
    )
  }
  const held = summarize(r.byDecider.get('new') ?? [])
  out.push('')
  if (held.heldReason !== null && held.held > 0) out.push(`New checks, last verdict of a run still under way: “${truncate(held.heldReason, 400)}”.`, '')
  const rolledNew = (r.byDecider.get('new') ?? []).find((o) => o.phase === 'rolled_back' && o.reason !== null)
  if (rolledNew !== undefined) out.push(`New checks, example rollback: “${truncate(rolledNew.reason!, 400)}”.`, '')
  return out
}

function truncate(text: string, n: number): string {
  return text.length <= n ? text : `${text.slice(0, n - 1)}…`
}

function thresholdTable(rows: readonly ThresholdRow[]): string[] {
  const out = ['| case | decider | falseRollbackRate | rollouts | rolled back | 95% upper bound | looks per rollout | where |', '|---|---|---|---|---|---|---|---|']
  for (const r of rows) {
    const upper = binomialUpperBound(r.rolledBack, r.runs, 0.95)
    out.push(`| ${r.title} | ${r.decider} | ${r.falseRollbackRate ?? '— (confidence 0.999)'} | ${fmtN(r.runs)} | ${r.rolledBack} (${((100 * r.rolledBack) / r.runs).toFixed(2)}%) | ${(100 * upper).toFixed(2)}% | ${r.looks > 0 ? fmtN(r.looks) : '—'} | ${r.detail === '' ? '—' : r.detail} |`)
  }
  return out
}

// ---------------------------------------------------------------- the section

export interface ChecksBenchOptions {
  readonly quick: boolean
  readonly log: (line: string) => void
}

/** Runs every simulated case and returns the markdown section. */
export function runChecksBench(options: ChecksBenchOptions): string {
  const started = Date.now()
  const results: CaseResult[] = []
  cases(options.quick).forEach((c, i) => {
    const r = runCase(c, i)
    results.push(r)
    const s = summarize(r.byDecider.get('new') ?? [])
    options.log(`decision bench (sim): ${c.scenario.key}: new ${s.rolledBack}/${s.runs} rolled back, ${s.succeeded} succeeded [${fmtMs(r.ms)}]`)
  })
  const t0 = Date.now()
  const threshold = [...thresholdRows(options.quick), ...perRequestThreshold(options.quick)]
  options.log(`decision bench (sim): threshold runs [${fmtMs(Date.now() - t0)}]`)
  const out: string[] = []
  out.push('### Sequential checks (issue 9), simulated beside today’s gate and a Flagger-style policy')
  out.push('')
  out.push(
    'bench/decision-checks-sim.ts: one simulated request stream per run (1 ms resolution, evenly spaced arrivals, random routing by weight, responses landing after their latency: `scale × (5 ms + Exp(5 ms)) + 0.3 ms`), ' +
      'the same seeds for every decider. **new**: the checks of src/analysis/checks (falseRollbackRate 0.001) over GateInputs built from simulated windows and the real LatencyTallyRing; ' +
      '**today**: src/rollout/gate.ts as it is, on the real SlidingWindow, `confidence: 0.999`, with the controller’s rules (evaluated every 250 ms and 20 ms after a canary error, windows restarted at each weight, stable’s last figures at 100%); ' +
      '**Flagger-style**: scrapes every 15 s, a 1 m analysis every 60 s, the same four thresholds as observed, rollback after 5 failed analyses, one step per passing analysis. ' +
      `minRequests 20, the SPEC example’s thresholds. ${options.quick ? '**Quick mode**: a tenth of the runs, not for the record. ' : ''}The simulations took ${fmtMs(Date.now() - started)}.`,
  )
  out.push('')
  out.push('#### False rollbacks at the threshold itself')
  out.push('')
  out.push(
    '“counts”: bench/lib/threshold-sim.ts, whole rollouts at the SPEC durations (30 s at 5%, 25%, 50%, the 60 s bake) and 1,000 req/s, looked at after every canary error (where the error checks’ e-values rise, the same as after every request) or every 250 ms (latency). ' +
      '“requests”: the per-request simulation above, both gates on the same streams.',
  )
  out.push('')
  out.push(...thresholdTable(threshold))
  out.push('')
  for (const r of results) out.push(...caseTable(r))
  out.push(...targets(results, threshold))
  return `${out.join('\n')}\n`
}

function targets(results: readonly CaseResult[], threshold: readonly ThresholdRow[]): string[] {
  const get = (key: string, d: DeciderName): Summary => summarize(results.find((r) => r.c.scenario.key === key)?.byDecider.get(d) ?? [])
  const lines: string[] = ['#### Targets (issue 9)', '']
  const dead = get('dead-1', 'new')
  lines.push(`- Dead canary rolled back at 1 req/s: **${dead.rolledBack === dead.runs && dead.runs > 0 ? 'met' : 'not met'}** (${dead.rolledBack}/${dead.runs}, after ${spread(dead.detect, fmtMs)}; today’s gate ${get('dead-1', 'today').rolledBack}/${get('dead-1', 'today').runs}).`)
  const first = get('hard-first', 'new')
  const worst = quantiles(first.served)
  lines.push(
    `- Blast radius <= 6 requests for a canary bad from its first request (5% of 1,000 req/s): **${worst !== null && worst.max <= 6 && first.rolledBack === first.runs ? 'met' : 'not met'}** (${spread(first.served, fmtN)} over ${first.runs} runs; today’s gate ${spread(get('hard-first', 'today').served, fmtN)}).`,
  )
  const def = threshold.find((r) => r.falseRollbackRate === 0.001 && r.decider === 'new (counts)')
  if (def !== undefined) {
    const upper = binomialUpperBound(def.rolledBack, def.runs, 0.95)
    const lower = binomialLowerBound(def.rolledBack, def.runs, 0.95)
    lines.push(
      `- False rollbacks <= falseRollbackRate (0.001) at the threshold over >= 1,000 simulated rollouts: **${lower <= 0.001 ? 'met' : 'not met'}** (${def.rolledBack} of ${fmtN(def.runs)}, 95% upper bound ${(100 * upper).toFixed(2)}%; the runs at 0.05 above resolve the bound more sharply).`,
    )
  }
  const softNew = quantiles(get('soft', 'new').detect)
  const softToday = quantiles(get('soft', 'today').detect)
  if (softNew !== null && softToday !== null) {
    const ratio = softNew.median / softToday.median
    lines.push(`- Soft failure (3% vs 0.5%) within 1.5x of today’s time: **${ratio <= 1.5 ? 'met' : 'not met'}** (median ${fmtMs(softNew.median)} against today’s ${fmtMs(softToday.median)} on the same streams: ${ratio.toFixed(2)}x).`)
  }
  const lat = get('latency', 'new')
  const latQ = quantiles(lat.detect)
  lines.push(`- Latency x3 within 3 s: **${latQ !== null && latQ.max <= 3000 && lat.rolledBack === lat.runs ? 'met' : latQ !== null && latQ.median <= 3000 ? 'met at the median, not every run' : 'not met'}** (${spread(lat.detect, fmtMs)}; today’s gate ${spread(get('latency', 'today').detect, fmtMs)}).`)
  const tail = get('tail', 'new')
  lines.push(`- Tail regression (1% +500 ms) caught: ${tail.rolledBack}/${tail.runs} (${spread(tail.detect, fmtMs)}); today’s gate ${get('tail', 'today').rolledBack}/${get('tail', 'today').runs}.`)
  const stalls = get('stalls', 'new')
  lines.push(`- Host stalls, healthy canary: new ${stalls.rolledBack}/${stalls.runs} rolled back, today ${get('stalls', 'today').rolledBack}/${get('stalls', 'today').runs} (simulated; the real-time target with injected stalls needs the checks plugged in).`)
  lines.push('')
  return lines
}
