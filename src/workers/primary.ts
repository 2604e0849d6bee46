/**
 * WorkerPool: the primary's side of listen.workers. It forks the worker
 * processes (node:cluster; they share the proxy's listening socket), restarts
 * one that dies, and is the controller's DataPlaneLink: every routing table
 * goes to every worker, the window deltas they send feed the primary's
 * analysis, and a scrape of /metrics gathers their registries for
 * prom-client's AggregatorRegistry to sum.
 *
 *     controller --publish(table)--> pool --cpx:table--> each worker (and a new one, in its init)
 *     worker --cpx:deltas (every pushMs; at once after a canary error)--> pool (buffered)
 *     controller --collect(sink)--> pool feeds the buffered deltas of the table's backends
 *
 * A worker's counters survive it: its last scraped figures are kept and added
 * to every later scrape, so a summed counter never goes down when a worker is
 * replaced (Prometheus would read a drop as a reset).
 */
import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'
import type { WindowSink } from '../analysis/analysis.js'
import type { Clock, Timer } from '../core/clock.js'
import type { DataPlaneLink } from '../rollout/ports.js'
import type { RoutingTable } from '../routing/table.js'
import type { SideName } from '../routing/snapshot.js'
import type { WindowDelta } from '../stats/recorder.js'
import { isFromWorker, type FromWorker, type MetricsJSON, type Served, type ToWorker, type WorkerSettings } from './protocol.js'

export interface WorkerPoolOptions {
  readonly count: number
  /** The config file's text, as the primary loaded it: every worker (a restarted one too) runs by the same. */
  readonly configText: string
  readonly settings: WorkerSettings
  /** The script a worker runs and its arguments (the CLI's own `serve …`, or a test's entry). */
  readonly exec: string
  readonly args?: readonly string[]
  readonly clock: Clock
  readonly log: Logger
  /** A worker's answer to a scrape must come within this (default 2000 ms); a silent one is left out of that scrape. */
  readonly scrapeTimeoutMs?: number
}

interface Member {
  readonly worker: Worker
  readonly startedAt: number
  listening: boolean
  served: Served
  /** Its last scraped metrics: what it leaves behind when it dies. */
  lastMetrics: MetricsJSON | null
}

interface Arrived {
  readonly version: number
  readonly deltas: Readonly<Record<string, WindowDelta>>
}

/** Deltas held for the next collect at most; past it the oldest go (a controller that stopped collecting). */
const MAX_ARRIVED = 10_000
const RESTART_MIN_MS = 100
const RESTART_MAX_MS = 5_000
/** A worker that ran this long before dying restarts at once again. */
const STABLE_RUN_MS = 30_000

export class WorkerPool implements DataPlaneLink {
  readonly count: number
  readonly #options: WorkerPoolOptions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #members = new Map<number, Member>()
  #table: RoutingTable | null = null
  #settings: WorkerSettings
  #arrived: Arrived[] = []
  #canaryError: (() => void) | null = null
  #stopping = false
  /** start() resolved: from then on every worker that dies is replaced, even one that died before it was listening. */
  #started = false
  #restartDelayMs = RESTART_MIN_MS
  #restartTimer: Timer | null = null
  /** Deaths not replaced yet. */
  #pendingRestarts = 0
  /** Workers that died (and were replaced), for canary_proxy_worker_restarts_total. */
  restarts = 0
  /** What workers that are gone had served and counted. */
  #retiredServed: Served = { stable: 0, canary: 0 }
  #retiredMetrics: MetricsJSON[] = []
  #scrapeId = 0
  readonly #scrapes = new Map<number, { readonly pending: Set<number>; readonly results: MetricsJSON[]; readonly done: () => void }>()
  /** Where the workers accept (they share one socket; with port 0, one port the primary's cluster picked). */
  url: string | null = null

  constructor(options: WorkerPoolOptions) {
    this.count = options.count
    this.#options = options
    this.#clock = options.clock
    this.#log = options.log
    this.#settings = options.settings
  }

  /** Forks every worker; resolves once each is accepting connections (a worker that fails to start rejects). */
  async start(): Promise<void> {
    cluster.setupPrimary({ exec: this.#options.exec, args: [...(this.#options.args ?? [])] })
    const listening = Array.from({ length: this.count }, () => this.#fork())
    await Promise.all(listening)
    this.#started = true
  }

  /** Workers accepting connections now. */
  get listening(): number {
    let n = 0
    for (const m of this.#members.values()) if (m.listening) n++
    return n
  }

  /** The workers' process ids (for logs and tests). */
  get pids(): number[] {
    return [...this.#members.values()].flatMap((m) => (m.worker.process.pid === undefined ? [] : [m.worker.process.pid]))
  }

  publish(table: RoutingTable): void {
    this.#table = table
    this.#broadcast({ t: 'cpx:table', table })
  }

  collect(sink: WindowSink, table: RoutingTable): void {
    if (this.#arrived.length === 0) return
    const canary = table.canary?.id
    for (const { version, deltas } of this.#arrived) {
      // Measured under an older table (a worker had not taken up the new one yet): not this window's.
      if (version < table.version) continue
      const stable = deltas[table.stable.id]
      if (stable !== undefined) sink.addDelta('stable', stable)
      const c = canary === undefined ? undefined : deltas[canary]
      if (c !== undefined) sink.addDelta('canary', c)
    }
    this.#arrived = []
  }

  onCanaryError(listener: () => void): void {
    this.#canaryError = listener
  }

  /** Requests each side's backends answered, summed over the workers (those gone included). */
  served(side: SideName): number {
    let n = this.#retiredServed[side]
    for (const m of this.#members.values()) n += m.served[side]
    return n
  }

  /** New settings (a reloaded log level or analysis interval) for every worker. */
  configure(settings: WorkerSettings): void {
    this.#settings = settings
    this.#broadcast({ t: 'cpx:settings', settings })
  }

  /**
   * Every listening worker's metrics, plus what the workers that are gone
   * left behind; a worker that does not answer within the scrape timeout is
   * left out of this one (logged).
   */
  async metrics(): Promise<MetricsJSON[]> {
    const id = ++this.#scrapeId
    const targets = [...this.#members.entries()].filter(([, m]) => m.listening)
    const results: MetricsJSON[] = []
    if (targets.length > 0) {
      await new Promise<void>((resolve) => {
        const pending = new Set(targets.map(([wid]) => wid))
        const timer = this.#clock.after(this.#options.scrapeTimeoutMs ?? 2_000, () => {
          this.#log.warn({ workers: [...pending] }, `workers did not answer the scrape within ${this.#options.scrapeTimeoutMs ?? 2_000}ms: their metrics are left out of this one`)
          done()
        })
        const done = (): void => {
          timer.cancel()
          this.#scrapes.delete(id)
          resolve()
        }
        this.#scrapes.set(id, { pending, results, done })
        for (const [, m] of targets) this.#send(m.worker, { t: 'cpx:metrics', id })
      })
    }
    return [...this.#retiredMetrics, ...results]
  }

  /** SIGTERM: every worker drains (listen.drainTimeout) and exits; one still there after `timeoutMs` is killed. */
  async drain(timeoutMs: number): Promise<void> {
    this.#stopping = true
    this.#restartTimer?.cancel()
    const alive = [...this.#members.values()].map((m) => m.worker).filter((w) => !w.isDead())
    if (alive.length === 0) return
    await new Promise<void>((resolve) => {
      let left = alive.length
      const timer = this.#clock.after(timeoutMs, () => {
        for (const w of alive) {
          if (w.isDead()) continue
          this.#log.warn({ worker: w.id, pid: w.process.pid }, `worker ${w.id} still running ${timeoutMs}ms after the drain began: killed`)
          w.process.kill('SIGKILL')
        }
      })
      for (const w of alive) {
        w.once('exit', () => {
          if (--left > 0) return
          timer.cancel()
          resolve()
        })
        this.#send(w, { t: 'cpx:drain' })
      }
    })
  }

  #fork(): Promise<void> {
    const worker = cluster.fork({ CANARY_PROXY_WORKER: '1' })
    const member: Member = { worker, startedAt: this.#clock.now(), listening: false, served: { stable: 0, canary: 0 }, lastMetrics: null }
    this.#members.set(worker.id, member)
    return new Promise((resolve, reject) => {
      let settled = false
      const settle = (error: Error | null): void => {
        if (settled) return
        settled = true
        if (error === null) resolve()
        else reject(error)
      }
      worker.on('message', (message: unknown) => {
        if (!isFromWorker(message)) return
        if (message.t === 'cpx:listening') settle(null)
        if (message.t === 'cpx:fatal') {
          const { code, address, port } = message
          settle(Object.assign(new Error(`worker ${worker.id}: ${message.message}`), { code, address, port }))
        }
        this.#receive(member, message)
      })
      // A worker's channel may fail as it dies (EPIPE); its exit says what happened.
      worker.on('error', (error) => this.#log.debug({ err: error, worker: worker.id }, 'worker channel error'))
      worker.on('exit', (code, signal) => {
        settle(new Error(`worker ${worker.id} exited (${signal ?? `code ${code}`}) before it was listening`))
        this.#exited(member, code, signal)
      })
    })
  }

  #receive(member: Member, message: FromWorker): void {
    switch (message.t) {
      case 'cpx:hello':
        this.#send(member.worker, {
          t: 'cpx:init',
          configText: this.#options.configText,
          // Until the controller publishes, a worker routes by an empty table (all stable): the controller publishes before start.
          table: this.#table as RoutingTable,
          settings: this.#settings,
        })
        break
      case 'cpx:listening':
        member.listening = true
        this.url ??= message.url
        this.#log.debug({ worker: member.worker.id, pid: member.worker.process.pid, url: message.url }, `worker ${member.worker.id} listening`)
        break
      case 'cpx:deltas':
        member.served = message.served
        this.#arrived.push({ version: message.version, deltas: message.deltas })
        if (this.#arrived.length > MAX_ARRIVED) this.#arrived.splice(0, this.#arrived.length - MAX_ARRIVED)
        if (message.canaryError) this.#canaryError?.()
        break
      case 'cpx:metrics': {
        member.lastMetrics = message.metrics
        const scrape = this.#scrapes.get(message.id)
        if (scrape === undefined || !scrape.pending.delete(member.worker.id)) break
        scrape.results.push(message.metrics)
        if (scrape.pending.size === 0) scrape.done()
        break
      }
      case 'cpx:fatal':
        this.#log.error({ worker: member.worker.id }, `worker ${member.worker.id} cannot start: ${message.message}`)
        break
    }
  }

  #exited(member: Member, code: number | null, signal: string | null): void {
    const { worker } = member
    this.#members.delete(worker.id)
    this.#retiredServed = { stable: this.#retiredServed.stable + member.served.stable, canary: this.#retiredServed.canary + member.served.canary }
    if (member.lastMetrics !== null) this.#retiredMetrics = [mergeCounters(this.#retiredMetrics[0] ?? [], member.lastMetrics)]
    for (const [, scrape] of this.#scrapes) if (scrape.pending.delete(worker.id) && scrape.pending.size === 0) scrape.done()
    if (this.#stopping) return
    if (!member.listening && !this.#started) {
      // It never came up at start (bad config, port): restarting would only repeat the failure; serve fails with its reason.
      this.#log.error({ worker: worker.id, code, signal }, `worker ${worker.id} exited before it was listening`)
      return
    }
    // A replacement that dies while booting (killed, out of memory) is replaced in turn, with the growing delay:
    // left alone, the pool would shrink for good, down to no worker and a primary that never proxies again.
    this.restarts++
    const ranMs = this.#clock.now() - member.startedAt
    if (ranMs >= STABLE_RUN_MS) this.#restartDelayMs = RESTART_MIN_MS
    const delay = this.#restartDelayMs
    this.#restartDelayMs = Math.min(RESTART_MAX_MS, this.#restartDelayMs * 2)
    this.#log.warn({ worker: worker.id, pid: worker.process.pid, code, signal }, `worker ${worker.id} exited (${signal ?? `code ${code}`}): its requests in flight are lost; a new worker starts in ${delay}ms`)
    this.#pendingRestarts++
    this.#scheduleRestart(delay)
  }

  #scheduleRestart(delay: number): void {
    if (this.#restartTimer !== null) return
    this.#restartTimer = this.#clock.after(delay, () => {
      this.#restartTimer = null
      if (this.#stopping) return
      const n = this.#pendingRestarts
      this.#pendingRestarts = 0
      for (let i = 0; i < n; i++) this.#fork().catch((error: unknown) => this.#log.error({ err: error }, 'a restarted worker did not come up'))
    })
  }

  #broadcast(message: ToWorker): void {
    for (const m of this.#members.values()) this.#send(m.worker, message)
  }

  #send(worker: Worker, message: ToWorker): void {
    if (!worker.isConnected()) return
    // A worker dying as we send: its exit is handled on its own.
    worker.send(message, (error: Error | null) => {
      if (error !== null) this.#log.debug({ err: error, worker: worker.id }, 'a message to a worker was not delivered')
    })
  }
}

/**
 * Adds the counters of `b` into `a` (both getMetricsAsJSON() lists), keeping
 * only counters and histograms: a dead worker's gauges (its memory, its open
 * connections) are gone with it, its counts are not.
 */
export function mergeCounters(a: MetricsJSON, b: MetricsJSON): MetricsJSON {
  const byName = new Map(a.map((m) => [m.name, m]))
  const out: MetricsJSON = []
  for (const metric of b) {
    // The typings say an enum; getMetricsAsJSON() gives the exposition's own words ('counter', …).
    const type = metric.type as unknown as string
    if (type !== 'counter' && type !== 'histogram') continue
    const before = byName.get(metric.name)
    byName.delete(metric.name)
    if (before === undefined) {
      out.push(metric)
      continue
    }
    const sums = new Map<string, (typeof metric.values)[number]>()
    const keyOf = (v: (typeof metric.values)[number]): string => `${(v as { metricName?: string }).metricName ?? ''}${JSON.stringify(v.labels)}`
    for (const v of before.values) sums.set(keyOf(v), v)
    for (const v of metric.values) {
      const k = keyOf(v)
      const prior = sums.get(k)
      sums.set(k, prior === undefined ? v : { ...v, value: prior.value + v.value })
    }
    out.push({ ...metric, values: [...sums.values()] })
  }
  out.push(...byName.values())
  return out
}
