/**
 * Gate webhooks (pre-rollout, step, confirm-promotion) as a Probe and a
 * Check each, both with the id `webhook.<name>`. The probe calls the
 * receiver while the gate is due, until it answers 2xx (retrying with
 * doubling backoff); the check holds (`insufficient`) until then and never
 * fails. Because a gate only ever holds, the other checks keep their say
 * while it waits: a breach during a wait rolls back (Flagger #1801 is the
 * opposite).
 *
 * When each gate is due, and what a 2xx opens:
 * - pre-rollout: while a rollout is under way at weight 0 (before its first
 *   step). Asked once per rollout; the first 2xx passes it for the rest of
 *   that rollout. Past weight 0 it no longer applies.
 * - step: at every weight > 0 of a rollout under way (each step, the 100%
 *   the bake runs at, a weight set by an operator). Asked once per weight,
 *   as soon as the weight is set; a 2xx passes that weight.
 * - confirm-promotion: while the rollout is baking. Asked from the start of
 *   the bake, and again after each failure, until a 2xx; the bake cannot end
 *   in success before one. Outside the bake it does not apply.
 * A gate that does not apply passes ("not due"), so it never holds a phase
 * it has no say in.
 */
import type { Check, GateInput } from '../analysis/check.js'
import type { Finding } from '../analysis/finding.js'
import type { Probe, ProbeContext, ProbeRollout } from '../analysis/probe.js'
import type { GateWebhookType, WebhookConfig } from '../config/schema.js'
import type { Clock } from '../core/clock.js'
import { formatDuration } from '../core/duration.js'
import { isUnderWay, type Phase } from '../core/phases.js'
import type { ControlPlaneHttp } from '../probes/http.js'
import { callWebhook, describeWebhook } from './call.js'
import type { WebhookCounters } from './counters.js'
import { gatePayload } from './payload.js'
import { secretsOf } from './redact.js'

/** The gate probe's result: where the gate stands for the rollout as the probe last saw it. */
export interface GateState {
  readonly type: GateWebhookType
  /** not-due: the gate does not apply now; waiting: asked, no 2xx yet; passed: answered 2xx for this scope. */
  readonly state: 'not-due' | 'waiting' | 'passed'
  /** The phase and weight the state is for (a step gate's 2xx at 25% does not pass 50%). */
  readonly phase: string
  readonly weight: number
  readonly attempts: number
  readonly lastStatus: number | null
  /** The last failed call in words (scrubbed of the webhook's secrets). */
  readonly lastProblem: string | null
  readonly nextAttemptAt: number | null
}

export interface GateLog {
  warn(fields: object, message: string): void
  info(fields: object, message: string): void
}

export function isGateType(type: WebhookConfig['type']): type is GateWebhookType {
  return type === 'pre-rollout' || type === 'step' || type === 'confirm-promotion'
}

/** Whether the gate applies to a rollout at this phase and weight (the rules in the header). */
export function gateDue(type: GateWebhookType, phase: string, weight: number): boolean {
  if (!isUnderWay(phase as Phase)) return false
  switch (type) {
    case 'pre-rollout':
      return weight === 0
    case 'step':
      return weight > 0
    case 'confirm-promotion':
      return phase === 'baking'
  }
}

/** What one 2xx passes: the rollout (pre-rollout, confirm-promotion), or one weight of it (step). */
function scopeOf(type: GateWebhookType, rollout: ProbeRollout): string {
  return type === 'step' ? `${rollout.generation}/${rollout.weight}` : `${rollout.generation}/${type}`
}

export class GateWebhookProbe implements Probe<GateState> {
  readonly id: string
  /** The probe looks every `backoff`; whether it calls is its own decision (due, passed, backing off). */
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly runOnTransition = true
  readonly #webhook: WebhookConfig & { readonly type: GateWebhookType }
  readonly #http: ControlPlaneHttp
  readonly #clock: Clock
  readonly #counters: WebhookCounters
  readonly #log: GateLog | undefined
  readonly #secrets: string[]
  #scope = ''
  #passed = false
  #attempts = 0
  #nextAttemptAt = 0
  #lastStatus: number | null = null
  #lastProblem: string | null = null

  constructor(webhook: WebhookConfig, deps: { readonly http: ControlPlaneHttp; readonly clock: Clock; readonly counters: WebhookCounters; readonly log?: GateLog }) {
    if (!isGateType(webhook.type)) throw new Error(`webhook ${webhook.name}: ${webhook.type} is not a gate`)
    this.#webhook = webhook as WebhookConfig & { readonly type: GateWebhookType }
    this.id = `webhook.${webhook.name}`
    this.intervalMs = webhook.backoffMs
    // One call's own timeout, plus a little: the call times itself out first and says so.
    this.timeoutMs = webhook.timeoutMs + 1000
    this.#http = deps.http
    this.#clock = deps.clock
    this.#counters = deps.counters
    this.#log = deps.log
    this.#secrets = secretsOf(webhook)
  }

  async run(context: ProbeContext): Promise<GateState> {
    const { rollout } = context
    const type = this.#webhook.type
    if (!gateDue(type, rollout.phase, rollout.weight)) return this.#state('not-due', rollout)
    const scope = scopeOf(type, rollout)
    if (scope !== this.#scope) {
      this.#scope = scope
      this.#passed = false
      this.#attempts = 0
      this.#nextAttemptAt = 0
      this.#lastStatus = null
      this.#lastProblem = null
    }
    if (this.#passed) return this.#state('passed', rollout)
    const now = context.now()
    if (now < this.#nextAttemptAt) return this.#state('waiting', rollout)
    const outcome = await callWebhook(this.#http, this.#clock, this.#webhook, this.#secrets, gatePayload(this.#webhook, rollout, now), context.signal)
    this.#counters.add(this.#webhook.name, outcome.result)
    this.#attempts++
    this.#lastStatus = outcome.status
    const fields = { webhook: this.#webhook.name, type, result: outcome.result, status: outcome.status, attempt: this.#attempts, phase: rollout.phase, weight: rollout.weight }
    if (outcome.result === 'success') {
      this.#passed = true
      this.#lastProblem = null
      this.#log?.info(fields, `${describeWebhook(this.#webhook)} answered ${outcome.detail}: the gate is open at ${rollout.weight}%`)
      return this.#state('passed', rollout)
    }
    const wait = Math.min(this.#webhook.maxBackoffMs, this.#webhook.backoffMs * 2 ** (this.#attempts - 1))
    this.#nextAttemptAt = this.#clock.now() + wait
    this.#lastProblem = outcome.detail
    this.#log?.warn({ ...fields, retryInMs: wait }, `${describeWebhook(this.#webhook)} did not pass (${outcome.detail}); holding, next try in ${formatDuration(wait)}`)
    return this.#state('waiting', rollout)
  }

  #state(state: GateState['state'], rollout: ProbeRollout): GateState {
    return {
      type: this.#webhook.type,
      state,
      phase: rollout.phase,
      weight: rollout.weight,
      attempts: this.#attempts,
      lastStatus: this.#lastStatus,
      lastProblem: state === 'not-due' ? null : this.#lastProblem,
      nextAttemptAt: state === 'waiting' ? this.#nextAttemptAt : null,
    }
  }
}

/** The check of one gate webhook: pass when not due or answered 2xx for this phase and weight, else insufficient (never fail). */
export function gateCheck(webhook: WebhookConfig): Check {
  if (!isGateType(webhook.type)) throw new Error(`webhook ${webhook.name}: ${webhook.type} is not a gate`)
  const type = webhook.type
  const id = `webhook.${webhook.name}`
  const label = `webhook ${webhook.name} (${type})`
  const finding = (verdict: Finding['verdict'], reason: string, n = 0): Finding => ({ check: id, verdict, observed: null, threshold: null, n, reason: `${label}: ${reason}` })
  return {
    id,
    evaluate(input: GateInput): Finding {
      if (!gateDue(type, input.phase, input.weight)) return finding('pass', notDue(type))
      const result = input.probes.latest<GateState>(id)
      if (result === null || result.value === null) return finding('insufficient', result?.error ? `holding: ${result.error}` : 'holding: not asked yet')
      const s = result.value
      const sameScope = type === 'step' ? s.weight === input.weight : s.state !== 'not-due'
      if (!sameScope) return finding('insufficient', `holding: not asked yet at ${input.weight}%`)
      if (s.state === 'passed') return finding('pass', `answered 2xx${type === 'step' ? ` at ${input.weight}%` : ''}`, s.attempts)
      const next = s.nextAttemptAt === null ? '' : `, next try in ${formatDuration(Math.max(0, s.nextAttemptAt - input.now))}`
      const last = s.lastProblem === null ? 'not answered yet' : `${s.lastProblem} after ${s.attempts} tr${s.attempts === 1 ? 'y' : 'ies'}`
      return finding('insufficient', `holding until it answers 2xx (${last}${next})`, s.attempts)
    },
  }
}

function notDue(type: GateWebhookType): string {
  switch (type) {
    case 'pre-rollout':
      return 'not due (asked before the first step)'
    case 'step':
      return 'not due (asked at each step)'
    case 'confirm-promotion':
      return 'not due (asked during the bake)'
  }
}
