/**
 * One run of the decision bench: the real app (buildApp) between scripted
 * loopback upstreams and an open-loop load generator, both in worker threads;
 * records when the canary turned bad, when the weight was published as 0, what
 * the bad canary served, and (optionally) the proxy's Prometheus counters every
 * second.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { buildApp, type App } from '../src/app.js'
import { configFromObject } from '../src/config/load.js'
import { createLogger } from '../src/log.js'
import type { Phase } from '../src/rollout/phase.js'
import type { RoutingSnapshot } from '../src/routing/snapshot.js'
import { DURATION_BUCKETS_SECONDS } from '../src/stats/side-stats.js'
import { epochMs, type Command, type LoadReport, type Reply, type UpstreamPlan, type UpstreamReport } from './decision-traffic.js'

/** A worker thread of decision-traffic.ts, called with request/reply messages. */
export class TrafficWorker {
  readonly #worker: Worker
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  #next = 0

  constructor() {
    this.#worker = new Worker(new URL('./decision-traffic.js', import.meta.url), { workerData: { decisionBench: true } })
    this.#worker.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id)
      if (waiter === undefined) return
      this.#pending.delete(reply.id)
      if (reply.error !== undefined) waiter.reject(new Error(reply.error))
      else waiter.resolve(reply.result)
    })
    this.#worker.on('error', (error) => {
      for (const waiter of this.#pending.values()) waiter.reject(error)
      this.#pending.clear()
    })
  }

  call<T>(command: Command): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.#worker.postMessage({ id, command })
    })
  }

  async close(): Promise<void> {
    await this.call<null>({ type: 'close' }).catch(() => undefined)
    await this.#worker.terminate()
  }
}

/** The two traffic workers, started once and reused by every run. */
export interface Traffic {
  readonly upstreams: TrafficWorker
  readonly load: TrafficWorker
  readonly stableUrl: string
  readonly canaryUrl: string
}

export async function startTraffic(): Promise<Traffic> {
  const upstreams = new TrafficWorker()
  const load = new TrafficWorker()
  const { stableUrl, canaryUrl } = await upstreams.call<{ stableUrl: string; canaryUrl: string }>({ type: 'startUpstreams' })
  return { upstreams, load, stableUrl, canaryUrl }
}

export async function stopTraffic(traffic: Traffic): Promise<void> {
  await Promise.all([traffic.upstreams.close(), traffic.load.close()])
}

/** Cumulative counters of one side as a Prometheus scrape of the proxy's /metrics would read them. */
export interface SideCounters {
  readonly requests: number
  readonly errors: number
  /** Cumulative canary_proxy_request_duration_seconds_bucket, one per DURATION_BUCKETS_SECONDS bound, then +Inf. */
  readonly buckets: readonly number[]
}

export interface Scrape {
  readonly at: number
  readonly weight: number
  readonly stable: SideCounters
  readonly canary: SideCounters
}

export interface RunPlan {
  readonly upstream: UpstreamPlan
  /** Offered load, requests per second. */
  readonly rate: number
  /** The config's rollout and analysis sections (autoStart is forced off: the run starts the rollout itself). */
  readonly rollout: Record<string, unknown>
  readonly analysis: Record<string, unknown>
  /** Stable-only traffic before the rollout starts (warm connections, a stable reference in the window). */
  readonly leadInMs: number
  /** The canary turns bad this long after the rollout started; null: it never does. */
  readonly badAfterMs: number | null
  /** Stop this long after the switch even if the rollout goes on (recording runs); null: at the rollout's end. */
  readonly stopAfterBadMs: number | null
  /** Give up this long after the rollout started. */
  readonly timeoutMs: number
  /** Read the proxy's Prometheus counters every this many ms; null: not at all. */
  readonly scrapeEveryMs: number | null
}

export interface Publish {
  readonly at: number
  readonly weight: number
}

export interface RunResult {
  readonly phase: Phase
  readonly reason: string | null
  readonly rolloutStartedAt: number
  readonly endedAt: number
  /** Every routing snapshot the controller published after the start, in order. */
  readonly publishes: readonly Publish[]
  /** When the controller judged the canary failed (the fail verdict's `at`, ms resolution), or null. */
  readonly detectedAt: number | null
  /** When a snapshot with canary weight 0 was published, or null. */
  readonly zeroAt: number | null
  readonly upstream: Omit<UpstreamReport, 'badArrivals'>
  /** Canary requests that reached the bad canary: all of them, and those that arrived by the time weight 0 was published. */
  readonly badServed: number
  readonly badServedByZero: number
  readonly load: LoadReport
  readonly scrapes: readonly Scrape[]
  /** The proxy's window figures when the run ended (before the load stopped), and the last verdict. */
  readonly final: { readonly stableP50Ms: number | null; readonly stableP99Ms: number | null; readonly canaryP50Ms: number | null; readonly canaryP99Ms: number | null; readonly lastDecision: string | null }
  /** How noisy the machine was: the proxy thread's event-loop delay over the run, and the 1-minute load average at its end. */
  readonly loopDelayP99Ms: number
  readonly loopDelayMaxMs: number
  readonly loadAverage: number
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export async function runRollout(traffic: Traffic, plan: RunPlan): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-decision-'))
  const parsed = configFromObject({
    listen: { host: '127.0.0.1', port: 0, drainTimeout: '2s' },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { stable: traffic.stableUrl, canary: traffic.canaryUrl },
    rollout: { ...plan.rollout, autoStart: false },
    analysis: plan.analysis,
    state: { file: join(dir, 'state.json') },
    audit: { file: join(dir, 'audit.jsonl') },
    log: { level: 'silent' },
  })
  if (!parsed.ok) throw new Error(`decision bench config invalid: ${parsed.error.map((i) => `${i.path}: ${i.message}`).join('; ')}`)
  const app = await buildApp({ config: parsed.value, log: createLogger('silent') })
  const scrapes: Scrape[] = []
  let scraper: NodeJS.Timeout | null = null
  const loopDelay = monitorEventLoopDelay({ resolution: 5 })
  try {
    const { proxyUrl } = await app.listen()
    const publishes: Publish[] = []
    const ref = app.backends.ref
    const publish = ref.publish.bind(ref)
    ref.publish = (next: RoutingSnapshot): void => {
      publish(next)
      publishes.push({ at: epochMs(), weight: next.weight })
    }

    await traffic.upstreams.call<null>({ type: 'plan', plan: plan.upstream })
    await traffic.load.call<null>({ type: 'startLoad', url: proxyUrl, rate: plan.rate })
    if (plan.scrapeEveryMs !== null) {
      const every = plan.scrapeEveryMs
      scraper = setInterval(() => void scrape(app).then((s) => scrapes.push(s)), every)
    }
    await sleep(plan.leadInMs)
    loopDelay.enable()
    const rolloutStartedAt = epochMs()
    const started = await app.controller.act({ type: 'start', canary: null }, 'bench')
    if (!started.ok) throw new Error(`cannot start the rollout: ${started.conflict}`)

    let switchedAt: number | null = null
    const ended = (): boolean => {
      const phase = app.controller.state.phase
      return phase === 'succeeded' || phase === 'rolled_back' || phase === 'aborted'
    }
    for (;;) {
      const now = epochMs()
      if (switchedAt === null && plan.badAfterMs !== null && now - rolloutStartedAt >= plan.badAfterMs) {
        switchedAt = await traffic.upstreams.call<number>({ type: 'switch' })
      }
      if (ended()) break
      if (switchedAt !== null && plan.stopAfterBadMs !== null && now - switchedAt >= plan.stopAfterBadMs) break
      if (now - rolloutStartedAt >= plan.timeoutMs) break
      await sleep(5)
    }
    const endedAt = epochMs()
    loopDelay.disable()
    const status = app.status()
    // Let what is in flight finish at the new weight, then stop the load and read what the upstreams saw.
    await sleep(200)
    if (scraper !== null) clearInterval(scraper)
    scraper = null
    const load = await traffic.load.call<LoadReport>({ type: 'stopLoad' })
    const { badArrivals, ...upstream } = await traffic.upstreams.call<UpstreamReport>({ type: 'upstreamReport' })
    const state = app.controller.state
    const zero = publishes.find((p) => p.weight === 0) ?? null
    const failed = state.phase === 'rolled_back' && state.lastDecision !== null && state.lastDecision.verdict === 'fail' ? state.lastDecision : null
    return {
      phase: state.phase,
      reason: state.phase === 'succeeded' || state.phase === 'rolled_back' || state.phase === 'aborted' ? state.reason : null,
      rolloutStartedAt,
      endedAt,
      publishes,
      detectedAt: failed === null ? null : failed.at,
      zeroAt: zero === null ? null : zero.at,
      upstream,
      badServed: badArrivals.length,
      badServedByZero: zero === null ? badArrivals.length : badArrivals.filter((t) => t <= zero.at).length,
      load,
      scrapes,
      final: {
        stableP50Ms: status.stable.p50Ms,
        stableP99Ms: status.stable.p99Ms,
        canaryP50Ms: status.canary?.p50Ms ?? null,
        canaryP99Ms: status.canary?.p99Ms ?? null,
        lastDecision: status.lastDecision === null ? null : `${status.lastDecision.verdict}: ${status.lastDecision.reason}`,
      },
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
      loadAverage: loadavg()[0] ?? 0,
    }
  } finally {
    loopDelay.disable()
    if (scraper !== null) clearInterval(scraper)
    await app.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const REQUESTS = 'canary_proxy_requests_total'
const DURATION = 'canary_proxy_request_duration_seconds'

interface MetricValue {
  readonly value: number
  readonly labels: Readonly<Record<string, string | number | undefined>>
  readonly metricName?: string
}

/** Reads the two metrics Flagger's built-in checks query, as Prometheus would scrape them from the admin /metrics. */
async function scrape(app: App): Promise<Scrape> {
  const at = epochMs()
  const weight = app.controller.state.weight
  const requests = app.registry.getSingleMetric(REQUESTS)
  const duration = app.registry.getSingleMetric(DURATION)
  if (requests === undefined || duration === undefined) throw new Error(`metrics ${REQUESTS} / ${DURATION} not registered`)
  const counted = (await requests.get()).values as readonly MetricValue[]
  const timed = (await duration.get()).values as readonly MetricValue[]
  const side = (upstream: string): SideCounters => {
    let total = 0
    let errors = 0
    for (const v of counted) {
      if (v.labels.upstream !== upstream) continue
      total += v.value
      if (v.labels.status_class === '5xx' || v.labels.status_class === 'error') errors += v.value
    }
    const buckets = DURATION_BUCKETS_SECONDS.map((le) => timed.find((v) => v.metricName === `${DURATION}_bucket` && v.labels.upstream === upstream && Number(v.labels.le) === le)?.value ?? 0)
    buckets.push(timed.find((v) => v.metricName === `${DURATION}_bucket` && v.labels.upstream === upstream && v.labels.le === '+Inf')?.value ?? 0)
    return { requests: total, errors, buckets }
  }
  return { at, weight, stable: side('stable'), canary: side('canary') }
}
