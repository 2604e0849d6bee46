/**
 * Gate-level Monte Carlo: the real control plane (controller, analysis,
 * backends and their recorders) on a simulated clock, fed one synthetic response per simulated
 * millisecond (1,000 req/s) without any network. What it shows is what the
 * decision logic does on its own, free of the machine's noise, over many more
 * rollouts than real time allows.
 */
import type { Config } from '../src/config/schema.js'
import type { Clock, Timer } from '../src/core/clock.js'
import { buildControlPlane } from '../src/control-plane.js'
import { createLogger } from '../src/log.js'
import { UpstreamPools } from '../src/proxy/upstreams.js'
import type { RolloutState } from '../src/rollout/phase.js'
import type { OutcomeRecorder } from '../src/stats/backend-stats.js'
import { MemoryStateStore } from '../src/state/memory-store.js'
import type { Rng } from './decision-flagger.js'
import { seededRng } from './lib/random.js'

interface SimTimer {
  at: number
  every: number | null
  readonly fn: () => void
  cancelled: boolean
}

/** Timers fire in time order as the simulation advances; nothing real is scheduled. */
class SimClock implements Clock {
  #now: number
  #timers: SimTimer[] = []

  constructor(start: number) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  every(ms: number, fn: () => void): Timer {
    return this.#add(ms, ms, fn)
  }

  after(ms: number, fn: () => void): Timer {
    return this.#add(ms, null, fn)
  }

  advanceTo(end: number): void {
    for (;;) {
      let next: SimTimer | null = null
      for (const t of this.#timers) if (!t.cancelled && t.at <= end && (next === null || t.at < next.at)) next = t
      if (next === null) break
      this.#now = next.at
      if (next.every === null) next.cancelled = true
      else next.at += next.every
      next.fn()
    }
    this.#now = end
    if (this.#timers.some((t) => t.cancelled)) this.#timers = this.#timers.filter((t) => !t.cancelled)
  }

  #add(ms: number, every: number | null, fn: () => void): Timer {
    const entry = { at: this.#now + Math.max(0, ms), every, fn, cancelled: false }
    this.#timers.push(entry)
    return { cancel: () => (entry.cancelled = true) }
  }
}

export interface SimBehaviour {
  readonly errorRatio: number
  readonly latencyScale: number
}

export interface SimScenario {
  readonly stable: SimBehaviour
  readonly canary: SimBehaviour
  /** From this time after the start, the sides behave as below; null: never. */
  readonly changeAtMs: number | null
  readonly stableAfter: SimBehaviour
  readonly canaryAfter: SimBehaviour
  /** Stop here if the rollout has not ended. */
  readonly limitMs: number
}

export interface SimOutcome {
  readonly phase: RolloutState['phase']
  readonly reason: string | null
  /** Weight before the rollout ended. */
  readonly lastWeight: number
  /** Time from the start to the end of the rollout (or the limit). */
  readonly endedAtMs: number
  /** Canary responses under the changed behaviour recorded before weight 0; first such response's time. */
  readonly changedServed: number
  readonly firstChangedAtMs: number | null
}

/** Upstream delay 5 ms + Exp(5 ms), times the scale, plus 0.3 ms for the proxy: the harness' distribution. */
function latencyUs(rng: Rng, scale: number): number {
  return scale * (5 - 5 * Math.log(1 - rng())) * 1000 + 300
}

/** One rollout on the simulated clock with `config` (its rollout and analysis sections matter). */
export async function simulateRollout(config: Config, scenario: SimScenario, seed: number): Promise<SimOutcome> {
  const rng = seededRng(seed)
  const start = 1_750_000_000_000
  const clock = new SimClock(start)
  const pools = new UpstreamPools({ connectTimeoutMs: 1_000 })
  const plane = await buildControlPlane({ config, clock, store: new MemoryStateStore(), pools, log: createLogger('silent') })
  const { controller, backends } = plane
  controller.startTimers()
  const started = await controller.act({ type: 'start', canary: null }, 'sim')
  if (!started.ok) throw new Error(started.conflict)
  // Responses complete after their latency: a ring of pending completions per simulated ms.
  const RING = 8_192
  // Each response is recorded on the backend it was sent to, as an exchange records it.
  const pending: { target: OutcomeRecorder; status: number; us: number; changed: boolean }[][] = Array.from({ length: RING }, () => [])
  let t = 0
  let changedServed = 0
  let firstChangedAtMs: number | null = null
  let lastWeight = controller.state.weight
  const ended = (): boolean => !['progressing', 'paused', 'baking'].includes(controller.state.phase)
  try {
    while (t < scenario.limitMs && !ended()) {
      lastWeight = controller.state.weight
      const changed = scenario.changeAtMs !== null && t >= scenario.changeAtMs
      const toCanary = rng() * 100 < controller.state.weight
      const behaviour = toCanary ? (changed ? scenario.canaryAfter : scenario.canary) : changed ? scenario.stableAfter : scenario.stable
      const us = latencyUs(rng, behaviour.latencyScale)
      const status = rng() < behaviour.errorRatio ? 503 : 200
      if (toCanary && changed) changedServed++
      const snapshot = backends.ref.current
      const target = toCanary && snapshot.canary !== null ? snapshot.canary : snapshot.stable
      pending[(t + Math.ceil(us / 1000)) % RING]!.push({ target: target.stats, status, us, changed: toCanary && changed })
      t++
      clock.advanceTo(start + t)
      const due = pending[t % RING]!
      let errors = false
      for (const r of due) {
        if (r.changed && firstChangedAtMs === null) firstChangedAtMs = t
        r.target.recordResponse(r.status, r.us)
        errors ||= r.status >= 500
      }
      due.length = 0
      // A canary error reaches the control plane as a message: let it be delivered, as the event loop would.
      if (errors) await Promise.resolve()
    }
  } finally {
    controller.stopTimers()
    await pools.close()
  }
  // The windows' histograms live in WebAssembly memory: thousands of rollouts would exhaust it.
  plane.dispose()
  const state = controller.state
  return {
    phase: state.phase,
    reason: state.phase === 'rolled_back' || state.phase === 'succeeded' || state.phase === 'aborted' ? state.reason : null,
    lastWeight,
    endedAtMs: t,
    changedServed,
    firstChangedAtMs,
  }
}

export interface SimCase {
  readonly key: string
  readonly title: string
  readonly config: Config
  readonly scenario: SimScenario
  readonly runs: number
  /** The change is the canary failing (rather than something both sides share). */
  readonly canaryFails: boolean
}

export interface SimResult {
  readonly simCase: SimCase
  readonly outcomes: readonly SimOutcome[]
}

/** Every case, `runs` rollouts each, on seeds of its own (case c, run i: c * 1e6 + i, scrambled): repeatable. */
export async function runSimulations(cases: readonly SimCase[]): Promise<SimResult[]> {
  const results: SimResult[] = []
  for (const [c, simCase] of cases.entries()) {
    const outcomes: SimOutcome[] = []
    for (let i = 0; i < simCase.runs; i++) outcomes.push(await simulateRollout(simCase.config, simCase.scenario, (c + 1) * 1_000_000 + i))
    results.push({ simCase, outcomes })
  }
  return results
}
