/** What webhooks receive: Flagger-like JSON for gates and notifications, or `{text}` for chat (format: slack). */
import type { Finding } from '../analysis/finding.js'
import type { ProbeRollout } from '../analysis/probe.js'
import type { WebhookConfig } from '../config/schema.js'
import type { AuditRecord } from '../events/feed.js'

/** Sent to gates (pre-rollout, step, confirm-promotion). */
export interface GatePayload {
  /** The webhook's own name (as in the `webhook` label of canary_proxy_webhook_calls_total). */
  readonly name: string
  readonly type: WebhookConfig['type']
  readonly phase: string
  readonly weight: number
  readonly step: number | null
  readonly stable: string
  readonly canary: string | null
  /** Increases with every rollout: a receiver can tell a new rollout from a retry. */
  readonly generation: number
  readonly metadata: Readonly<Record<string, string>>
  /** ISO 8601. */
  readonly at: string
}

/** Sent to notifications (event, post-rollout, rollback) for every transition they take. */
export interface EventPayload {
  readonly name: string
  readonly type: WebhookConfig['type']
  /** The transition: start, advance, pause, resume, set-weight, promote, abort, rollback, succeed, recover, config, … */
  readonly action: string
  readonly actor: string
  /** Where the rollout is after the transition. */
  readonly phase: string
  readonly weight: number
  readonly from: { readonly phase: string; readonly weight: number }
  readonly reason: string | null
  readonly findings: readonly Finding[]
  readonly generation: number
  readonly stable: string | null
  readonly canary: string | null
  readonly metadata: Readonly<Record<string, string>>
  readonly at: string
}

export function gatePayload(webhook: WebhookConfig, rollout: ProbeRollout, at: number): GatePayload {
  return {
    name: webhook.name,
    type: webhook.type,
    phase: rollout.phase,
    weight: rollout.weight,
    step: rollout.step,
    stable: rollout.stableUrl,
    canary: rollout.canaryUrl,
    generation: rollout.generation,
    metadata: webhook.metadata,
    at: new Date(at).toISOString(),
  }
}

export function eventPayload(webhook: WebhookConfig, record: AuditRecord, generation: number, findings: readonly Finding[], urls: { readonly stable: string | null; readonly canary: string | null }): EventPayload {
  return {
    name: webhook.name,
    type: webhook.type,
    action: record.action,
    actor: record.actor,
    phase: record.to.phase,
    weight: record.to.weight,
    from: { phase: record.from.phase, weight: record.from.weight },
    reason: record.reason,
    findings,
    generation,
    stable: urls.stable,
    canary: urls.canary,
    metadata: webhook.metadata,
    at: new Date(record.at).toISOString(),
  }
}

/** One line for a chat channel: what happened, from where to where, and why. */
export function slackText(payload: EventPayload): string {
  const move = payload.from.phase === payload.phase && payload.from.weight === payload.weight ? `${payload.phase} at ${payload.weight}%` : `${payload.from.phase} ${payload.from.weight}% -> ${payload.phase} ${payload.weight}%`
  const failed = payload.findings.filter((f) => f.verdict === 'fail').map((f) => f.reason)
  const why = failed.length > 0 ? failed.join('; ') : payload.reason
  return `canary-proxy ${payload.action}: ${move}${payload.canary === null ? '' : ` (canary ${payload.canary})`}${why === null || why === '' ? '' : ` — ${why}`}`
}

export function formatted(webhook: WebhookConfig, payload: EventPayload): unknown {
  return webhook.format === 'slack' ? { text: slackText(payload) } : payload
}
