/**
 * Until the lead wires probes into the controller (issue 8): a ProbeRunner
 * attached to a running app from the outside, reading the rollout from the
 * controller and the per-side request counts from the app's own
 * canary_proxy_requests_total, plus a small gate loop that evaluates checks
 * the way the gate will (every finding, every tick) and keeps what it saw.
 */
import type { Check, GateInput, SideInput, WindowView } from '../../src/analysis/check.js'
import type { Finding } from '../../src/analysis/finding.js'
import type { Probe, ProbeRollout } from '../../src/analysis/probe.js'
import type { App } from '../../src/app.js'
import { systemClock, type Clock, type Timer } from '../../src/core/clock.js'
import { ProbeRunner } from '../../src/probes/runner.js'

/** The requests the proxy has sent each side, from its own counter (all status classes). */
export function servedFrom(app: App): (side: 'stable' | 'canary') => number {
  return (side) => {
    const metric = app.registry.getSingleMetric('canary_proxy_requests_total') as unknown as { get(): { values: { labels: { upstream?: string }; value: number }[] } }
    return metric
      .get()
      .values.filter((v) => v.labels.upstream === side)
      .reduce((sum, v) => sum + v.value, 0)
  }
}

export function rolloutFrom(app: App): () => ProbeRollout {
  return () => {
    const s = app.controller.state
    return { phase: s.phase, weight: s.weight, step: 'stepIndex' in s ? s.stepIndex : null, stableUrl: s.stableUrl, canaryUrl: s.canaryUrl, generation: s.generation }
  }
}

export function attachRunner(app: App, probes: readonly Probe[], clock: Clock = systemClock): ProbeRunner {
  return new ProbeRunner({ clock, probes, rollout: rolloutFrom(app), servedRequests: servedFrom(app) })
}

const EMPTY_WINDOW: WindowView = { requests: 0, errors: 0, latencyCount: 0, quantileUs: () => null, countAbove: () => 0, slowestSlot: () => ({ above: 0, count: 0 }), slotMs: 1000 }
const EMPTY_SIDE: SideInput = { window: EMPTY_WINDOW, step: { requests: 0, errors: 0 } }

/** A GateInput carrying only what probe-fed checks read (time, phase, weight, probes). */
export function probeGateInput(now: number, rollout: ProbeRollout, probes: GateInput['probes']): GateInput {
  return { now, phase: rollout.phase, weight: rollout.weight, canary: EMPTY_SIDE, stable: EMPTY_SIDE, stableBaseline: null, probes }
}

/** Evaluates the checks every `everyMs` and keeps every finding, newest last. */
export class GateLoop {
  readonly findings: Finding[] = []
  readonly #timer: Timer

  constructor(checks: readonly Check[], runner: ProbeRunner, rollout: () => ProbeRollout, everyMs: number, clock: Clock = systemClock) {
    this.#timer = clock.every(everyMs, () => {
      const input = probeGateInput(clock.now(), rollout(), runner)
      for (const check of checks) this.findings.push(check.evaluate(input))
    })
  }

  of(check: string): Finding[] {
    return this.findings.filter((f) => f.check === check)
  }

  first(check: string, verdict: Finding['verdict']): Finding | undefined {
    return this.findings.find((f) => f.check === check && f.verdict === verdict)
  }

  stop(): void {
    this.#timer.cancel()
  }
}
