/** The status view (GET /api/v1/status, the stream, the CLI): the rollout state and the window figures as the wire schema says. */
import type { SideView, StateBackendView, StatusView } from '../api/wire.js'
import { isEnded } from '../core/phases.js'
import type { RolloutSettings, RolloutState } from '../rollout/phase.js'
import type { SideSummary } from '../stats/side-stats.js'

/** `totals`: each side's outcomes since the process started (SideStats.outcomes), for rates (the dashboard's req/s); `stateBackend`: where the state lives and whether it is reachable. */
export function statusView(
  s: RolloutState,
  settings: RolloutSettings,
  figures: { readonly stable: SideSummary; readonly canary: SideSummary },
  totals?: { readonly stable: number; readonly canary: number },
  stateBackend?: StateBackendView,
): StatusView {
  const side = (url: string, f: SideSummary, total: number | undefined): SideView => ({
    url,
    requests: f.requests,
    errors: f.errors,
    errorRate: f.errorRate,
    p50Ms: f.p50Ms,
    p99Ms: f.p99Ms,
    ...(total === undefined ? {} : { requestsTotal: total }),
  })
  let stepStartedAt: number | null = null
  let stepEndsAt: number | null = null
  if (s.phase === 'progressing') {
    stepStartedAt = s.stepStartedAt
    stepEndsAt = s.stepStartedAt + ((s.stepIndex >= 0 ? settings.stepDurationsMs?.[s.stepIndex] : undefined) ?? settings.stepDurationMs)
  } else if (s.phase === 'baking') {
    stepStartedAt = s.bakeStartedAt
    stepEndsAt = s.bakeStartedAt + settings.bakeMs
  }
  const index = s.phase === 'progressing' || s.phase === 'paused' || s.phase === 'baking' ? s.stepIndex : null
  const d = s.lastDecision
  return {
    phase: s.phase,
    weight: s.weight,
    step: index !== null && index >= 0 ? index : null,
    steps: [...settings.steps],
    stable: side(s.stableUrl, figures.stable, totals?.stable),
    canary: s.canaryUrl === null ? null : side(s.canaryUrl, figures.canary, totals?.canary),
    lastDecision: d === null ? null : { at: iso(d.at), verdict: d.verdict, reason: d.reason, findings: [...d.findings] },
    reason: isEnded(s.phase) && 'reason' in s ? s.reason : null,
    stepStartedAt: stepStartedAt === null ? null : iso(stepStartedAt),
    stepEndsAt: stepEndsAt === null ? null : iso(stepEndsAt),
    generation: s.generation,
    ...(stateBackend === undefined ? {} : { stateBackend }),
  }
}

function iso(t: number): string {
  return new Date(t).toISOString()
}
