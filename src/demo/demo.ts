/** `canary-proxy demo`: sample stable and canary upstreams, steady generated traffic, the proxy, and live progress until Ctrl-C. */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join, relative } from 'node:path'
import { Agent, request } from 'undici'
import { buildApp } from '../app.js'
import { configFromObject } from '../config/load.js'
import { renderIssue } from '../config/issues.js'
import type { Io } from '../cli/commands.js'
import { createLogger } from '../log.js'
import type { StatusView } from '../api/wire.js'

export interface DemoOptions {
  readonly faulty: boolean
  readonly port: number
  readonly adminPort: number
  /** Stop by itself after this long (default: run until Ctrl-C). */
  readonly durationMs: number | null
}

/** The demo's embedded defaults: the whole rollout takes about 35 s. */
const STEP_MS = 5_000
const BAKE_MS = 10_000
const REQUESTS_PER_SECOND = 200
const USERS = 1_000

export async function runDemo(options: DemoOptions, io: Io): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-demo-'))
  const startedAt = Date.now()
  // The faulty canary turns bad halfway through the 25% step, however long the 5% step took.
  let weight = (): number => 0
  let failFrom = Number.POSITIVE_INFINITY
  const failing = (): boolean => {
    if (options.faulty && failFrom === Number.POSITIVE_INFINITY && weight() >= 25) failFrom = Date.now() + STEP_MS / 2
    return Date.now() >= failFrom
  }
  const stable = await sampleUpstream('v1', () => ({ errorRatio: 0.002, delayMs: 2 + Math.random() * 6 }))
  const canary = await sampleUpstream('v2', () => (failing() ? { errorRatio: 0.3, delayMs: 2 + Math.random() * 8 } : { errorRatio: 0.002, delayMs: 2 + Math.random() * 6 }))
  const parsed = configFromObject({
    listen: { host: '127.0.0.1', port: options.port, drainTimeout: '2s' },
    admin: { host: '127.0.0.1', port: options.adminPort },
    upstreams: { stable: stable.url, canary: canary.url },
    routing: { stickyHeader: 'x-user-id', overrideHeader: 'x-canary' },
    rollout: { steps: [5, 25, 50, 100], stepDuration: `${STEP_MS}ms`, bake: `${BAKE_MS}ms`, autoStart: true },
    analysis: { interval: '500ms', window: '10s', minRequests: 20, maxErrorRate: 0.02, maxErrorRateIncrease: 0.01, maxP99: '250ms', maxP99Ratio: 2 },
    state: { file: join(dir, 'state.json') },
    audit: { file: join(dir, 'audit.jsonl') },
    log: { level: 'silent' },
  })
  if (!parsed.ok) {
    for (const issue of parsed.error) io.err(renderIssue(issue))
    return 1
  }
  const app = await buildApp({ config: parsed.value, log: createLogger('silent') })
  weight = () => app.controller.state.weight
  let urls
  try {
    urls = await app.listen()
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { port?: number }
    io.err(`canary-proxy demo: cannot listen${e.port === undefined ? '' : ` on port ${e.port}`}: ${e.code === 'EADDRINUSE' ? 'address already in use (try --port N --admin-port N)' : e.message}`)
    await Promise.all([app.close(), stable.close(), canary.close()])
    await rm(dir, { recursive: true, force: true })
    return 1
  }
  io.out(`canary-proxy demo${options.faulty ? ' (--faulty: the canary starts failing mid-rollout)' : ''}`)
  io.out(`  proxy   ${urls.proxyUrl}   (try: curl ${urls.proxyUrl}/)`)
  io.out(`  admin   ${urls.adminUrl}   (try: ${selfCommand()} status${options.adminPort === 9901 ? '' : ` --admin ${urls.adminUrl}`}, or open ${urls.adminUrl}/ in a browser)`)
  io.out(`  stable  ${stable.url} (v1)   canary ${canary.url} (v2)`)
  io.out(`  steps 5% -> 25% -> 50% -> 100%, ${STEP_MS / 1000}s each, bake ${BAKE_MS / 1000}s; ~${REQUESTS_PER_SECOND} req/s from ${USERS} users (sticky on x-user-id)`)
  io.out('')

  const traffic = startTraffic(urls.proxyUrl)
  let printedEvents = 0
  const progress = setInterval(() => {
    const events = app.auditEvents()
    for (; printedEvents < events.length; printedEvents++) {
      const e = events[printedEvents]
      if (e !== undefined) io.out(`  >> ${e.action}: ${e.from.phase} ${e.from.weight}% -> ${e.to.phase} ${e.to.weight}%  ${e.reason ?? ''}`)
    }
    io.out(progressLine(app.status(), startedAt))
  }, 1_000)

  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
    if (options.durationMs !== null) setTimeout(resolve, options.durationMs).unref()
  })
  await stop
  clearInterval(progress)
  await traffic.stop()
  const final = app.status()
  io.out('')
  io.out(`demo over: phase ${final.phase}${final.reason === null ? '' : ` (${final.reason})`}`)
  await app.close()
  await Promise.all([stable.close(), canary.close()])
  await rm(dir, { recursive: true, force: true })
  return 0
}

/** How the user can run this CLI again: the bin name when installed, else node and the script they ran. */
function selfCommand(): string {
  const script = process.argv[1] ?? ''
  if (basename(script) === 'canary-proxy') return 'canary-proxy'
  const shown = relative(process.cwd(), script)
  return `node ${shown.startsWith('..') ? script : shown}`
}

function progressLine(s: StatusView, startedAt: number): string {
  const t = `${String(Math.round((Date.now() - startedAt) / 1000)).padStart(3)}s`
  const side = (v: StatusView['stable'] | null): string =>
    v === null ? 'none' : `${String(v.requests).padStart(5)} req ${(v.errorRate * 100).toFixed(1).padStart(5)}% err p99 ${v.p99Ms === null ? '   -  ' : `${v.p99Ms.toFixed(1).padStart(5)}ms`}`
  const step = s.step === null ? '' : ` step ${s.step + 1}/${s.steps.length}`
  const holding = s.lastDecision !== null && s.lastDecision.verdict === 'insufficient' ? `  (${s.lastDecision.reason})` : ''
  return `${t}  ${s.phase.padEnd(11)} ${String(s.weight).padStart(3)}%${step.padEnd(12)} stable ${side(s.stable)} | canary ${side(s.canary)}${holding}`
}

interface SampleUpstream {
  readonly url: string
  close(): Promise<void>
}

/** A tiny service that answers after a delay, and fails a share of requests with 500. */
async function sampleUpstream(version: string, behaviour: () => { errorRatio: number; delayMs: number }): Promise<SampleUpstream> {
  const server: Server = createServer((req, res) => {
    req.resume()
    const { errorRatio, delayMs } = behaviour()
    setTimeout(() => {
      const failed = Math.random() < errorRatio
      const body = JSON.stringify({ version, path: req.url, ok: !failed })
      res.writeHead(failed ? 500 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }, delayMs)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Steady open-loop traffic through the proxy, from USERS distinct users. */
function startTraffic(proxyUrl: string): { stop(): Promise<void> } {
  const agent = new Agent({ connections: 32, keepAliveTimeout: 10_000 })
  const perTick = REQUESTS_PER_SECOND / 50
  let carry = 0
  const timer = setInterval(() => {
    carry += perTick
    for (; carry >= 1; carry--) {
      const user = `user-${Math.floor(Math.random() * USERS)}`
      request(`${proxyUrl}/demo`, { dispatcher: agent, headers: { 'x-user-id': user } })
        .then((r) => r.body.dump())
        .catch(() => undefined)
    }
  }, 20)
  return {
    async stop() {
      clearInterval(timer)
      await agent.close()
    },
  }
}
