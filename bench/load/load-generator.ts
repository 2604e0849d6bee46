/** Bench child: the load generator, closed-loop throughput with autocannon and open-loop fixed-rate latency with a scheduled undici client. */
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { build } from 'hdr-histogram-js'
import { Pool, type Dispatcher } from 'undici'
import { serveCalls } from '../lib/ipc.js'
import { requestList } from '../lib/payload.js'

export interface ClosedParams {
  readonly url: string
  readonly connections: number
  readonly durationS: number
}

export interface ClosedResult {
  readonly requests: number
  readonly durationS: number
  readonly rps: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
}

export interface OpenParams {
  readonly url: string
  readonly rate: number
  readonly durationS: number
  readonly connections: number
}

export interface OpenResult {
  readonly sent: number
  readonly completed: number
  readonly achievedRate: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly p999Ms: number
  readonly maxMs: number
  /** How late the generator sent requests against their schedule (timer granularity, load on its core). */
  readonly lagP99Ms: number
  readonly errors: number
  readonly non2xx: number
}

const requests = requestList()

/** Keep-alive closed loop: each of `connections` sends its next request as soon as the previous response ends. */
async function closed(p: ClosedParams): Promise<ClosedResult> {
  const r = await autocannon({ url: p.url, connections: p.connections, duration: p.durationS, pipelining: 1, timeout: 10, requests })
  return {
    requests: r.requests.total,
    durationS: r.duration,
    rps: r.requests.total / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
  }
}

export interface RateParams {
  /** The same total rate is split evenly across these URLs (one autocannon instance each, run at once). */
  readonly urls: readonly string[]
  readonly rate: number
  readonly connections: number
  readonly durationS: number
}

export interface RateResult {
  readonly requests: number
  readonly ok: number
  readonly durationS: number
  readonly rps: number
  readonly errors: number
}

/** A fixed total rate spread over several proxies (the replicas bench): autocannon's overallRate per URL, the connections shared out. */
async function rate(p: RateParams): Promise<RateResult> {
  const n = p.urls.length
  const runs = await Promise.all(
    p.urls.map((url) => autocannon({ url, connections: Math.max(1, Math.round(p.connections / n)), duration: p.durationS, overallRate: p.rate / n, pipelining: 1, timeout: 10, requests })),
  )
  const total = runs.reduce((s, r) => s + r.requests.total, 0)
  const durationS = Math.max(...runs.map((r) => r.duration))
  return { requests: total, ok: runs.reduce((s, r) => s + r['2xx'], 0), durationS, rps: total / durationS, errors: runs.reduce((s, r) => s + r.errors + r.timeouts + r.non2xx, 0) }
}

function histogram(): ReturnType<typeof build> {
  return build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
}

/**
 * Open loop at a fixed rate (wrk2's idea): request i is due at start + i/rate
 * and is dispatched then whatever is still in flight, so a slow response never
 * delays the next request. A tick (~1ms, Node's timer granularity) sends every
 * request that has come due. Latency runs from dispatch to the last byte of
 * the response; waiting for a free connection in the client pool counts.
 */
async function open(p: OpenParams): Promise<OpenResult> {
  const pool = new Pool(new URL(p.url).origin, { connections: p.connections, pipelining: 1 })
  const latency = histogram()
  const lag = histogram()
  const total = Math.round(p.rate * p.durationS)
  const intervalMs = 1000 / p.rate
  let sent = 0
  let completed = 0
  let errors = 0
  let non2xx = 0
  let finish: () => void = () => {}
  const allDone = new Promise<void>((resolve) => (finish = resolve))
  const settle = (): void => {
    completed++
    if (completed === total) finish()
  }

  const send = (i: number, dueAt: number): void => {
    const req = requests[i % requests.length]!
    const t0 = performance.now()
    lag.recordValue(Math.max(1, Math.round((t0 - dueAt) * 1000)))
    let status = 0
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(_c, statusCode) {
        status = statusCode
      },
      onResponseData() {},
      onResponseEnd() {
        latency.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
        if (status < 200 || status > 299) non2xx++
        settle()
      },
      onResponseError() {
        errors++
        settle()
      },
    }
    pool.dispatch({ path: req.path, method: req.method, headers: req.headers }, handler)
  }

  const start = performance.now()
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now()
      const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1)
      while (sent < due) {
        send(sent, start + sent * intervalMs)
        sent++
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()))
      else resolve()
    }
    tick()
  })
  const elapsedS = (performance.now() - start) / 1000
  let timer: NodeJS.Timeout | undefined
  await Promise.race([allDone, new Promise<void>((resolve) => (timer = setTimeout(resolve, 15_000)))])
  clearTimeout(timer)
  await pool.destroy()
  const ms = (h: ReturnType<typeof build>, q: number): number => h.getValueAtPercentile(q) / 1000
  return {
    sent,
    completed,
    achievedRate: sent / elapsedS,
    p50Ms: ms(latency, 50),
    p90Ms: ms(latency, 90),
    p99Ms: ms(latency, 99),
    p999Ms: ms(latency, 99.9),
    maxMs: latency.maxValue / 1000,
    lagP99Ms: ms(lag, 99),
    errors: errors + (total - completed),
    non2xx,
  }
}

serveCalls({ closed, open, rate })
process.on('SIGTERM', () => process.exit(0))
