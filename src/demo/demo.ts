/**
 * `canary-proxy demo`: sample stable and canary upstreams, steady generated
 * traffic, the proxy, live progress read from its own admin API, and a
 * one-screen summary when the rollout ends (or at Ctrl-C / --duration).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join, relative } from 'node:path'
import { Agent, request } from 'undici'
import type { EventView, StatusView } from '../api/wire.js'
import { buildApp } from '../app.js'
import { AdminClient } from '../cli/admin-client.js'
import { phaseColour, renderFindings, verdictColour } from '../cli/render.js'
import { WIDTH, span, truncate, wrap, type Colors, type Io } from '../cli/terminal.js'
import { configFromObject } from '../config/load.js'
import { renderIssue } from '../config/issues.js'
import { isEnded } from '../core/phases.js'
import { createLogger } from '../log.js'

export interface DemoOptions {
  readonly faulty: boolean
  /** Stay up after the rollout ends, until Ctrl-C. */
  readonly keep: boolean
  readonly port: number
  readonly adminPort: number
  /** Stop after this long even if the rollout goes on (default: when it ends). */
  readonly durationMs: number | null
}

/** The demo's embedded defaults: the whole rollout takes about 35 s. */
const STEPS = [5, 25, 50, 100]
const STEP_MS = 5_000
const BAKE_MS = 10_000
const WINDOW = '10s'
const REQUESTS_PER_SECOND = 200
const USERS = 1_000
const TICK_MS = 1_000
/** The table's header again after this many rows, so its columns stay named on a scrolling terminal. */
const HEADER_EVERY = 20

type Stop = 'ended' | 'signal' | 'duration'

export async function runDemo(options: DemoOptions, io: Io): Promise<number> {
  const c = io.style
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-demo-'))
  // The faulty canary turns bad halfway through the 25% step, however long the 5% step took.
  let weight = 0
  let failFrom = Number.POSITIVE_INFINITY
  const failing = (): boolean => {
    if (options.faulty && failFrom === Number.POSITIVE_INFINITY && weight >= 25) failFrom = Date.now() + STEP_MS / 2
    return Date.now() >= failFrom
  }
  const stable = await sampleUpstream('v1', () => ({ errorRatio: 0.002, delayMs: 2 + Math.random() * 6 }))
  const canary = await sampleUpstream('v2', () => (failing() ? { errorRatio: 0.3, delayMs: 2 + Math.random() * 8 } : { errorRatio: 0.002, delayMs: 2 + Math.random() * 6 }))
  const parsed = configFromObject({
    listen: { host: '127.0.0.1', port: options.port, drainTimeout: '2s' },
    admin: { host: '127.0.0.1', port: options.adminPort },
    upstreams: { stable: stable.url, canary: canary.url },
    routing: { stickyHeader: 'x-user-id', overrideHeader: 'x-canary' },
    rollout: { steps: STEPS, stepDuration: `${STEP_MS}ms`, bake: `${BAKE_MS}ms`, autoStart: true },
    // The latency checks leave room for a busy host (the sample answers in
    // 2-8 ms, so anything slower is the host): on the 2-core development
    // machine at a load average of 30-35, the healthy sample's p99 reached
    // 545ms over 20 responses (maxP99 was 250ms), and 510ms against a stable
    // baseline of 122ms at the start of the bake (maxP99Ratio 2, minP99Delta
    // 5ms); both rolled back a canary that was fine. The faulty one fails on errors.
    analysis: {
      interval: '500ms',
      window: WINDOW,
      minRequests: 20,
      maxErrorRate: 0.02,
      maxErrorRateIncrease: 0.01,
      maxP99: '1s',
      maxP99Ratio: 2,
      minP99Delta: '500ms',
    },
    state: { file: join(dir, 'state.json') },
    audit: { file: join(dir, 'audit.jsonl') },
    log: { level: 'silent' },
  })
  const closeUpstreams = async (): Promise<void> => {
    await Promise.all([stable.close(), canary.close()])
    await rm(dir, { recursive: true, force: true })
  }
  if (!parsed.ok) {
    for (const issue of parsed.error) io.err(renderIssue(issue))
    await closeUpstreams()
    return 1
  }
  const app = await buildApp({ config: parsed.value, log: createLogger('silent') })
  let urls
  try {
    urls = await app.listen()
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { port?: number }
    io.err(`canary-proxy demo: cannot listen${e.port === undefined ? '' : ` on port ${e.port}`}: ${e.code === 'EADDRINUSE' ? 'address already in use (try --port N --admin-port N)' : e.message}`)
    await app.close()
    await closeUpstreams()
    return 1
  }
  // Times in the table and the summary count from here: the rollout starts as the proxy does (autoStart).
  const startedAt = Date.now()
  const self = selfCommand()
  const adminFlag = options.adminPort === 9901 ? '' : ` --admin ${urls.adminUrl}`
  for (const line of intro(options, urls, stable.url, canary.url, `${self} status --watch${adminFlag}`, c)) io.out(line)

  const traffic = startTraffic(urls.proxyUrl)
  const client = new AdminClient({ admin: urls.adminUrl, token: null, json: false })
  let printedEvents = 0
  let rows = 0
  let lastHold = ''
  let last: StatusView | null = null
  let events: EventView[] = []
  let resolveStop: (why: Stop) => void = () => undefined
  const stopped = new Promise<Stop>((resolve) => (resolveStop = resolve))
  let ticking = false
  const tick = async (): Promise<void> => {
    if (ticking) return
    ticking = true
    try {
      const [s, e] = await Promise.all([client.status(), client.events()])
      last = s
      events = e.events
      weight = s.weight
      for (; printedEvents < events.length; printedEvents++) {
        const event = events[printedEvents]
        if (event !== undefined) for (const line of eventLines(event, c)) io.out(line)
      }
      if (rows % HEADER_EVERY === 0) io.out(c.dim(TABLE_HEADER))
      rows++
      io.out(progressRow(s, startedAt, c))
      const hold = s.lastDecision?.verdict === 'insufficient' ? s.lastDecision.reason : ''
      // Say why a step holds once per kind of reason, not on every tick as its counts move.
      const holdKind = hold.replace(/[\d.,]+/g, '#')
      if (hold !== '' && holdKind !== lastHold) for (const line of wrap(hold, WIDTH - 8)) io.out(c.dim(`        ${line}`))
      lastHold = holdKind
      if (isEnded(s.phase)) resolveStop('ended')
    } catch {
      // The admin API is in this process; a failed read is a tick lost, retried on the next one.
    } finally {
      ticking = false
    }
  }
  const progress = setInterval(() => void tick(), TICK_MS)
  void tick()

  const onSignal = (): void => resolveStop('signal')
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const timer = options.durationMs === null ? null : setTimeout(() => resolveStop('duration'), options.durationMs)
  const why = await stopped
  clearInterval(progress)
  if (timer !== null) clearTimeout(timer)
  const final = await client.status().catch(() => last)
  const finalEvents = await client
    .events()
    .then((e) => e.events)
    .catch(() => events)
  for (; printedEvents < finalEvents.length; printedEvents++) {
    const event = finalEvents[printedEvents]
    if (event !== undefined) for (const line of eventLines(event, c)) io.out(line)
  }
  io.out('')
  const totals = { stable: stable.counts(), canary: canary.counts() }
  for (const line of summary(final, finalEvents, why, startedAt, totals, options, { adminUrl: urls.adminUrl, self, adminFlag }, c)) io.out(line)

  if (why === 'ended' && options.keep) {
    io.out('')
    io.out(c.bold(`still up (--keep): proxy ${urls.proxyUrl}, dashboard ${urls.adminUrl}/; Ctrl-C to stop`))
    for (const command of [`try: ${self} status${adminFlag}`, `     ${self} events${adminFlag}`]) for (const line of wrap(`  ${command}`, WIDTH, '         ')) io.out(line)
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve())
      process.once('SIGTERM', () => resolve())
    })
  }
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  await traffic.stop()
  await app.close()
  await closeUpstreams()
  return 0
}

function intro(options: DemoOptions, urls: { proxyUrl: string; adminUrl: string }, stableUrl: string, canaryUrl: string, watch: string, c: Colors): string[] {
  const steps = `${STEPS.join('% -> ')}%`
  const lines = [
    c.bold(`canary-proxy demo${options.faulty ? ' (--faulty: the canary starts failing mid-rollout)' : ''}`),
    `  rollout  v1 (stable) -> v2 (canary): ${steps}, ${STEP_MS / 1000}s each, then a ${BAKE_MS / 1000}s bake`,
    `  proxy    ${urls.proxyUrl}   try: curl ${urls.proxyUrl}/`,
    `  admin    ${urls.adminUrl}   dashboard: open ${urls.adminUrl}/ in a browser`,
    ...wrap(`watch: ${watch}`, WIDTH - 11).map((l) => `           ${l}`),
    `  stable   ${stableUrl} (v1)   canary ${canaryUrl} (v2)`,
    `  traffic  ~${REQUESTS_PER_SECOND} req/s from ${USERS.toLocaleString('en-US')} users, sticky on x-user-id`,
    `  table    each side over the gate's ${WINDOW} window; gate: the last verdict (hold: too little data yet)`,
    `  ends     ${options.keep ? 'stays up after the rollout ends (--keep): Ctrl-C to stop' : 'by itself when the rollout ends (--keep: stay up), or at Ctrl-C'}`,
    '',
  ]
  return lines.map((l) => (l.length > WIDTH ? truncate(l, WIDTH) : l))
}

const SIDE = (name: string): string => `${name.padStart(7)} ${'err'.padStart(6)} ${'p99'.padStart(8)}`
const TABLE_HEADER = `${'time'.padStart(6)}  ${'phase'.padEnd(11)} ${'weight'.padStart(7)} ${'step'.padStart(4)}  | ${SIDE('v1 req')} | ${SIDE('v2 req')} | gate`

function progressRow(s: StatusView, startedAt: number, c: Colors): string {
  const t = `${Math.round((Date.now() - startedAt) / 1000)}s`
  const side = (v: StatusView['stable'] | null): string => {
    if (v === null) return `${'-'.padStart(7)} ${''.padStart(6)} ${''.padStart(8)}`
    const p99 = v.p99Ms === null ? '-' : `${v.p99Ms.toFixed(1)}ms`
    return `${String(v.requests).padStart(7)} ${`${(v.errorRate * 100).toFixed(1)}%`.padStart(6)} ${p99.padStart(8)}`
  }
  const step = s.step === null ? '-' : `${s.step + 1}/${s.steps.length}`
  const verdict = s.lastDecision?.verdict ?? null
  const gate = verdict === null ? '-' : verdict === 'insufficient' ? 'hold' : verdict
  const phase = phaseColour(s.phase, c)(s.phase.padEnd(11))
  return `${t.padStart(6)}  ${phase} ${`${s.weight}%`.padStart(7)} ${step.padStart(4)}  | ${side(s.stable)} | ${side(s.canary)} | ${verdict === null ? gate : verdictColour(verdict, c)(gate)}`
}

function eventLines(e: EventView, c: Colors): string[] {
  const head = `  >> ${e.action}: ${e.from.phase} ${e.from.weight}% -> ${e.to.phase} ${e.to.weight}%`
  const colour = e.action === 'rollback' || e.action === 'abort' ? c.red : e.action === 'succeed' || e.action === 'promote' ? c.green : c.bold
  if (e.reason === null || e.reason === '') return [colour(head)]
  const [first = '', ...more] = wrap(`${head}  ${e.reason}`, WIDTH, '       ')
  return [`${colour(first.slice(0, head.length))}${first.slice(head.length)}`, ...more.map((l) => c.dim(l))]
}

interface Totals {
  readonly stable: { requests: number; errors: number }
  readonly canary: { requests: number; errors: number }
}

/** The one screen at the end: what happened, each step and when, the reason, the checks, requests per side, where to look next. */
interface Where {
  readonly adminUrl: string
  /** How to run this CLI again, and the --admin it needs (none on the default port). */
  readonly self: string
  readonly adminFlag: string
}

function summary(s: StatusView | null, events: readonly EventView[], why: Stop, startedAt: number, totals: Totals, options: DemoOptions, where: Where, c: Colors): string[] {
  const { adminUrl, self, adminFlag } = where
  const elapsed = span(Date.now() - startedAt)
  const phase = s?.phase ?? 'unknown'
  const at = `${s?.weight ?? 0}%`
  const stoppedBy = why === 'signal' ? 'Ctrl-C' : '--duration'
  const because = why === 'ended' ? (s?.reason ?? '') : `stopped by ${stoppedBy} after ${elapsed}, ${phase} at ${at}`
  const head = `demo over: phase ${phase} (`
  // One line whatever the reason's length, so a script can read it; the whole reason follows below.
  const lines = [phaseColour(phase, c)(`${head}${truncate(because, WIDTH - head.length - 1)})`), '']
  const label = (name: string): string => `  ${name.padEnd(15)}`
  const pad = ' '.repeat(17)
  const add = (name: string, text: string): void => {
    for (const [i, line] of wrap(text, WIDTH - pad.length).entries()) lines.push(`${i === 0 ? label(name) : pad}${line}`)
  }
  const last = events.at(-1)
  if (why !== 'ended') add('what happened', `stopped by ${stoppedBy} after ${elapsed}, before the rollout ended: it was ${phase} at ${at}`)
  else if (phase === 'succeeded') add('what happened', `v2 passed every step and the ${BAKE_MS / 1000}s bake in ${elapsed}: it is now the stable and takes all the traffic`)
  else if (phase === 'rolled_back') add('what happened', `v2 failed the checks at ${last?.from.weight ?? '?'}% and was rolled back after ${elapsed}: all traffic is on v1 again`)
  else add('what happened', `the rollout was aborted${last === undefined ? '' : ` by ${last.actor}`} at ${last?.from.weight ?? '?'}% after ${elapsed}: all traffic is on v1 again`)

  const transitions = events.filter((e) => e.from.phase !== e.to.phase || e.from.weight !== e.to.weight)
  for (const [i, e] of transitions.entries()) {
    const t = `${Math.max(0, Math.round((Date.parse(e.at) - startedAt) / 1000))}s`.padStart(4)
    lines.push(`${i === 0 ? label('steps') : pad}${t}  ${e.action.padEnd(9)} ${`${e.from.phase} ${e.from.weight}%`.padEnd(16)} -> ${e.to.phase} ${e.to.weight}%`)
  }
  if (why === 'ended' && s?.reason) add('reason', s.reason)
  const findings = s?.lastDecision?.findings ?? []
  if (findings.length > 0) lines.push(...renderFindings(findings, c, label('checks'), pad))
  const side = (name: string, t: { requests: number; errors: number }): string =>
    `${name} ${t.requests.toLocaleString('en-US')} (${t.requests === 0 ? '0' : ((t.errors / t.requests) * 100).toFixed(1)}% errors)`
  add('requests', `${side('v1 (stable)', totals.stable)}   ${side('v2 (canary)', totals.canary)}   in ${elapsed}`)
  const rerun = process.env.npm_lifecycle_event === 'demo' ? 'npm run demo --' : `${self} demo`
  const next = [
    options.keep ? `the dashboard ${adminUrl}/, ${self} status --watch${adminFlag}, ${self} events${adminFlag}` : `to look around after the end: ${rerun}${options.faulty ? ' --faulty' : ''} --keep (dashboard, status, events)`,
    options.faulty ? null : `a rollback: ${rerun} --faulty`,
    'your own service: config/canary-proxy.yaml, then canary-proxy serve (README "How a rollout goes")',
  ].filter((l) => l !== null)
  for (const [i, l] of next.entries()) for (const [j, line] of wrap(l, WIDTH - pad.length, '  ').entries()) lines.push(`${i === 0 && j === 0 ? label('look next') : pad}${line}`)
  return lines
}

/** How the user can run this CLI again: the bin name when installed, else node and the script they ran. */
function selfCommand(): string {
  const script = process.argv[1] ?? ''
  if (basename(script) === 'canary-proxy') return 'canary-proxy'
  const shown = relative(process.cwd(), script)
  return `node ${shown.startsWith('..') ? script : shown}`
}

interface SampleUpstream {
  readonly url: string
  counts(): { requests: number; errors: number }
  close(): Promise<void>
}

/** A tiny service that answers after a delay, and fails a share of requests with 500; it counts what it served. */
async function sampleUpstream(version: string, behaviour: () => { errorRatio: number; delayMs: number }): Promise<SampleUpstream> {
  let requests = 0
  let errors = 0
  const server: Server = createServer((req, res) => {
    req.resume()
    const { errorRatio, delayMs } = behaviour()
    setTimeout(() => {
      const failed = Math.random() < errorRatio
      requests++
      if (failed) errors++
      const body = JSON.stringify({ version, path: req.url, ok: !failed })
      res.writeHead(failed ? 500 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }, delayMs)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ requests, errors }),
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
