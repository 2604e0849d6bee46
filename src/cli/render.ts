/** Human renderings of status and events for the terminal (--json prints the API's JSON instead). */
import type { SideView, StatusView } from '../api/wire.js'
import type { AuditEvent } from '../state/audit-log.js'

export function renderStatus(s: StatusView): string {
  const lines: string[] = []
  const step = s.step === null ? '' : `   step ${s.step + 1}/${s.steps.length} (${s.steps[s.step] ?? s.weight}%)`
  lines.push(`phase     ${s.phase}   weight ${s.weight}%${step}`)
  lines.push(`stable    ${renderSide(s.stable)}`)
  lines.push(s.canary === null ? 'canary    none' : `canary    ${renderSide(s.canary)}`)
  if (s.stepEndsAt !== null && (s.phase === 'progressing' || s.phase === 'baking')) lines.push(`${s.phase === 'baking' ? 'bake ends' : 'next step'} not before ${s.stepEndsAt}`)
  if (s.lastDecision !== null) lines.push(`decision  ${s.lastDecision.verdict} at ${s.lastDecision.at}: ${s.lastDecision.reason}`)
  if (s.reason !== null) lines.push(`reason    ${s.reason}`)
  return lines.join('\n')
}

export function renderSide(side: SideView): string {
  const ms = (v: number | null): string => (v === null ? '-' : `${v}ms`)
  return `${side.url}   requests ${side.requests}   error rate ${(side.errorRate * 100).toFixed(2)}%   p50 ${ms(side.p50Ms)}   p99 ${ms(side.p99Ms)}`
}

export function renderEvent(e: AuditEvent): string {
  return `${e.at}  ${e.actor.padEnd(8)} ${e.action.padEnd(10)} ${e.from.phase} ${e.from.weight}% -> ${e.to.phase} ${e.to.weight}%  ${e.reason ?? ''}`
}
