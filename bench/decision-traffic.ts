/**
 * Worker thread of the decision bench: either the two scripted upstreams or
 * the open-loop load generator (workerData.role), so that neither shares an
 * event loop with the proxy under test. Driven by request/reply messages
 * (decision-harness.ts is the other end).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import { Pool } from 'undici'

/** Epoch milliseconds with sub-millisecond resolution, comparable across the bench's threads. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now()
}

export interface SideBehaviour {
  /** Share of responses answered 503. */
  readonly errorRatio: number
  /** Multiplies every sampled delay (3 = the whole latency distribution, p99 included, three times slower). */
  readonly latencyScale: number
}

/** Each response waits latencyScale * (baseMs + Exp(mean tailMs)) before it is sent, errors included. */
export interface UpstreamPlan {
  readonly baseMs: number
  readonly tailMs: number
  readonly stable: SideBehaviour
  /** The canary before `switch`... */
  readonly canary: SideBehaviour
  /** ...and after it. */
  readonly canaryBad: SideBehaviour
  /** The stable after `switch` (a slowdown shared by both sides); absent: unchanged. */
  readonly stableBad?: SideBehaviour
}

export interface UpstreamReport {
  readonly stableRequests: number
  readonly canaryRequests: number
  /** When the canary turned bad (epoch ms), or null. */
  readonly switchedAt: number | null
  /** When the canary sent its first response under the bad behaviour. */
  readonly firstBadResponseAt: number | null
  /** Arrival time of every canary request received after the switch (each was served by the bad canary). */
  readonly badArrivals: readonly number[]
}

export interface LoadReport {
  readonly sent: number
  readonly completed: number
  /** Responses by status code; 'failed' for requests that got no response. */
  readonly byStatus: Readonly<Record<string, number>>
  readonly durationMs: number
}

export type Command =
  | { readonly type: 'startUpstreams' }
  | { readonly type: 'plan'; readonly plan: UpstreamPlan }
  | { readonly type: 'switch' }
  | { readonly type: 'upstreamReport' }
  | { readonly type: 'startLoad'; readonly url: string; readonly rate: number }
  | { readonly type: 'stopLoad' }
  | { readonly type: 'close' }

export interface Request {
  readonly id: number
  readonly command: Command
}

export interface Reply {
  readonly id: number
  readonly result?: unknown
  readonly error?: string
}

function exponential(mean: number): number {
  return -mean * Math.log(1 - Math.random())
}

class Upstreams {
  #plan: UpstreamPlan = { baseMs: 1, tailMs: 1, stable: { errorRatio: 0, latencyScale: 1 }, canary: { errorRatio: 0, latencyScale: 1 }, canaryBad: { errorRatio: 0, latencyScale: 1 } }
  #stableRequests = 0
  #canaryRequests = 0
  #switchedAt: number | null = null
  #firstBadResponseAt: number | null = null
  #badArrivals: number[] = []
  #servers: Server[] = []

  async start(): Promise<{ stableUrl: string; canaryUrl: string }> {
    const stable = await this.#listen((req, res) => {
      this.#stableRequests++
      const behaviour = this.#switchedAt !== null ? (this.#plan.stableBad ?? this.#plan.stable) : this.#plan.stable
      this.#answer(req, res, behaviour, false)
    })
    const canary = await this.#listen((req, res) => {
      this.#canaryRequests++
      const bad = this.#switchedAt !== null
      if (bad) this.#badArrivals.push(epochMs())
      this.#answer(req, res, bad ? this.#plan.canaryBad : this.#plan.canary, bad)
    })
    return { stableUrl: stable, canaryUrl: canary }
  }

  setPlan(plan: UpstreamPlan): void {
    this.#plan = plan
    this.#stableRequests = 0
    this.#canaryRequests = 0
    this.#switchedAt = null
    this.#firstBadResponseAt = null
    this.#badArrivals = []
  }

  turnBad(): number {
    this.#switchedAt = epochMs()
    return this.#switchedAt
  }

  report(): UpstreamReport {
    return {
      stableRequests: this.#stableRequests,
      canaryRequests: this.#canaryRequests,
      switchedAt: this.#switchedAt,
      firstBadResponseAt: this.#firstBadResponseAt,
      badArrivals: this.#badArrivals,
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          }),
      ),
    )
  }

  #answer(req: IncomingMessage, res: ServerResponse, behaviour: SideBehaviour, bad: boolean): void {
    req.resume()
    const failed = Math.random() < behaviour.errorRatio
    const delay = behaviour.latencyScale * (this.#plan.baseMs + exponential(this.#plan.tailMs))
    setTimeout(() => {
      if (res.destroyed) return
      if (bad && this.#firstBadResponseAt === null) this.#firstBadResponseAt = epochMs()
      const body = failed ? 'unavailable' : 'ok'
      res.writeHead(failed ? 503 : 200, { 'content-type': 'text/plain', 'content-length': body.length })
      res.end(body)
    }, delay)
  }

  async #listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler)
    // Above the proxy's pool idle timeout (4 s), so the proxy closes idle sockets first.
    server.keepAliveTimeout = 10_000
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    this.#servers.push(server)
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
}

/**
 * Open loop: requests are issued on schedule (rate per second since the start)
 * whether or not earlier ones were answered, so a slow proxy cannot slow the
 * offered load down (no coordinated omission).
 */
class Load {
  #pool: Pool | null = null
  #timer: NodeJS.Timeout | null = null
  #inFlight = new Set<Promise<void>>()
  #sent = 0
  #completed = 0
  #byStatus: Record<string, number> = {}
  #startedAt = 0

  start(url: string, rate: number): void {
    const pool = new Pool(url, { connections: 128, pipelining: 1, keepAliveTimeout: 10_000 })
    this.#pool = pool
    this.#sent = 0
    this.#completed = 0
    this.#byStatus = {}
    this.#startedAt = epochMs()
    const tick = (): void => {
      const due = Math.floor(((epochMs() - this.#startedAt) * rate) / 1000)
      while (this.#sent < due) {
        this.#sent++
        this.#fire(pool)
      }
      this.#timer = setTimeout(tick, 1)
    }
    tick()
  }

  async stop(): Promise<LoadReport> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const durationMs = epochMs() - this.#startedAt
    await Promise.race([Promise.allSettled([...this.#inFlight]), new Promise((resolve) => setTimeout(resolve, 1_000))])
    const pool = this.#pool
    this.#pool = null
    if (pool !== null) await pool.destroy()
    return { sent: this.#sent, completed: this.#completed, byStatus: { ...this.#byStatus }, durationMs }
  }

  #fire(pool: Pool): void {
    const done = pool
      .request({ path: '/', method: 'GET' })
      .then(async (res) => {
        await res.body.dump()
        this.#count(String(res.statusCode))
      })
      .catch(() => this.#count('failed'))
      .finally(() => this.#inFlight.delete(done))
    this.#inFlight.add(done)
  }

  #count(key: string): void {
    this.#completed++
    this.#byStatus[key] = (this.#byStatus[key] ?? 0) + 1
  }
}

async function handle(command: Command, upstreams: Upstreams, load: Load): Promise<unknown> {
  switch (command.type) {
    case 'startUpstreams':
      return upstreams.start()
    case 'plan':
      upstreams.setPlan(command.plan)
      return null
    case 'switch':
      return upstreams.turnBad()
    case 'upstreamReport':
      return upstreams.report()
    case 'startLoad':
      load.start(command.url, command.rate)
      return null
    case 'stopLoad':
      return load.stop()
    case 'close':
      await upstreams.close()
      await load.stop()
      return null
  }
}

if (parentPort !== null && (workerData as { decisionBench?: boolean } | null)?.decisionBench === true) {
  const port = parentPort
  const upstreams = new Upstreams()
  const load = new Load()
  port.on('message', (message: Request) => {
    handle(message.command, upstreams, load).then(
      (result) => port.postMessage({ id: message.id, result } satisfies Reply),
      (error: unknown) => port.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) } satisfies Reply),
    )
  })
}
