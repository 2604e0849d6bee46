/** Builds, once from the config, every probe and check whose data comes from elsewhere (resources, custom Prometheus checks, gate webhooks) and the notification webhooks. */
import type { Check } from '../analysis/check.js'
import type { Probe } from '../analysis/probe.js'
import type { Config } from '../config/schema.js'
import type { Clock } from '../core/clock.js'
import { WebhookCounters } from '../webhooks/counters.js'
import { gateCheck, GateWebhookProbe, isGateType, type GateLog } from '../webhooks/gates.js'
import { WebhookNotifier, type NotifierLog } from '../webhooks/notifier.js'
import { ControlPlaneHttp } from './http.js'
import { customCheck, PrometheusQueryProbe } from './prometheus.js'
import { resourceChecks } from './resource-checks.js'
import { ResourceProbe } from './resources.js'

export interface ExternalChecks {
  /** For the ProbeRunner. */
  readonly probes: readonly Probe[]
  /** For the gate, after the built-in checks: resources.*, checks.<name>, webhook.<name> (gates). */
  readonly checks: readonly Check[]
  /** canary_proxy_webhook_calls_total. */
  readonly counters: WebhookCounters
  /** Attach to the event feed: notifier.attach(feed). */
  readonly notifier: WebhookNotifier
  /** Flushes notifications for up to flushMs, then closes the HTTP pool. Stop the runner first. */
  close(flushMs?: number): Promise<void>
}

export interface ExternalChecksDeps {
  readonly clock: Clock
  readonly log?: GateLog & NotifierLog
  /** canary_proxy_webhook_calls_total kept across config reloads (a counter must not fall back to 0 on SIGHUP); default: new ones. */
  readonly counters?: WebhookCounters
  /** Upstream URLs for notification payloads. */
  readonly urls?: () => { readonly stable: string | null; readonly canary: string | null }
}

/** A stable figure stays comparable this long: the CPU check's baseline while stable serves nothing (the bake). */
const BASELINE_KEEP_MS = 10 * 60_000
const MAX_SAMPLES = 2000

export function buildExternalChecks(config: Config, deps: ExternalChecksDeps): ExternalChecks {
  const http = new ControlPlaneHttp()
  const probes: Probe[] = []
  const checks: Check[] = []
  const r = config.analysis.resources
  if (r !== null) {
    const span = Math.max(r.growthWindowMs, (r.consecutive + 1) * r.intervalMs, BASELINE_KEEP_MS)
    const maxSamples = Math.min(MAX_SAMPLES, Math.ceil(span / r.intervalMs) + 2)
    for (const side of ['stable', 'canary'] as const) {
      probes.push(new ResourceProbe({ side, endpoints: r.endpoints[side], intervalMs: r.intervalMs, timeoutMs: r.timeoutMs, maxSamples, http }))
    }
    checks.push(...resourceChecks({ ...r, confidence: config.analysis.confidence }))
  }
  const server = config.analysis.prometheus
  if (server !== null) {
    for (const check of config.analysis.checks) {
      probes.push(new PrometheusQueryProbe(check, server, http))
      checks.push(customCheck(check, server))
    }
  }
  const counters = deps.counters ?? new WebhookCounters()
  counters.track(config.webhooks.map((w) => w.name))
  for (const webhook of config.webhooks) {
    if (!isGateType(webhook.type)) continue
    probes.push(new GateWebhookProbe(webhook, { http, clock: deps.clock, counters, ...(deps.log ? { log: deps.log } : {}) }))
    checks.push(gateCheck(webhook))
  }
  const notifier = new WebhookNotifier({ webhooks: config.webhooks, http, clock: deps.clock, counters, ...(deps.urls ? { urls: deps.urls } : {}), ...(deps.log ? { log: deps.log } : {}) })
  return {
    probes,
    checks,
    counters,
    notifier,
    async close(flushMs = 0) {
      await notifier.close(flushMs)
      await http.close()
    },
  }
}
