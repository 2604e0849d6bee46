/**
 * Bench: proxy throughput with and without what issue 10 adds beside the hot
 * path: resource scraping of both sides every second, three `event` webhooks
 * receiving a transition every second, and a `step` gate. Rounds alternate
 * (plain, with) so drift in the shared machine hits both alike; the ratio of
 * the medians is the figure for bench/RESULTS.md, and each notification's
 * delivery delay (transition to receiver) is reported beside it.
 *
 * Until the controller runs probes itself (issue 8), the ProbeRunner and the
 * notifier are attached to the running app from outside, the way
 * test/helpers/probe-wiring.ts does; after the wiring, build the app with
 * the config's resources and webhooks instead and drop `attach()`.
 *
 *   npm run build && node dist/bench/probes-overhead.js [--rounds 3] [--seconds 8] [--connections 20]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { request } from 'undici'
import { buildApp, type App } from '../src/app.js'
import { configFromObject } from '../src/config/load.js'
import { systemClock } from '../src/core/clock.js'
import { createLogger } from '../src/log.js'
import { buildExternalChecks } from '../src/probes/external-checks.js'
import { ProbeRunner } from '../src/probes/runner.js'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, connections: { type: 'string', default: '20' } } })
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const CHILD = fileURLToPath(new URL('./servers/metrics-upstream.js', import.meta.url))

const children: ChildProcess[] = []
const delays: number[] = []

async function child(mode: 'upstream' | 'receiver'): Promise<string> {
  const proc = spawn(process.execPath, [CHILD], { env: { ...process.env, MODE: mode }, stdio: ['pipe', 'pipe', 'inherit'] })
  children.push(proc)
  return new Promise<string>((resolve, reject) => {
    let out = ''
    let port: number | null = null
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      let newline = out.indexOf('\n')
      while (newline !== -1) {
        const line = JSON.parse(out.slice(0, newline)) as { port?: number; delayMs?: number }
        out = out.slice(newline + 1)
        if (line.port !== undefined && port === null) {
          port = line.port
          resolve(`http://127.0.0.1:${port}`)
        }
        if (line.delayMs !== undefined) delays.push(line.delayMs)
        newline = out.indexOf('\n')
      }
    })
    proc.once('exit', (code) => reject(new Error(`child ${mode} exited (${code})`)))
  })
}

function servedFrom(app: App): (side: 'stable' | 'canary') => number {
  return (side) => {
    const metric = app.registry.getSingleMetric('canary_proxy_requests_total') as unknown as { get(): { values: { labels: { upstream?: string }; value: number }[] } }
    return metric
      .get()
      .values.filter((v) => v.labels.upstream === side)
      .reduce((sum, v) => sum + v.value, 0)
  }
}

/** Probes, gate and notifications attached to the app; returns the detach function. */
function attach(app: App, receivers: readonly string[]): () => Promise<void> {
  const parsed = configFromObject({
    upstreams: { stable: app.config.upstreams.stable },
    analysis: { resources: { interval: '1s', timeout: '800ms', maxCpuPerRequestRatio: 1.5, maxMemoryRatio: 1.5, maxMemory: '1Gi' } },
    webhooks: [...receivers.map((url, i) => ({ name: `event-${i}`, type: 'event', url })), { name: 'gate', type: 'step', url: receivers[0] }],
  })
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error))
  const external = buildExternalChecks(parsed.value, { clock: systemClock })
  const runner = new ProbeRunner({
    clock: systemClock,
    probes: external.probes,
    rollout: () => {
      const s = app.controller.state
      return { phase: s.phase, weight: s.weight, step: null, stableUrl: s.stableUrl, canaryUrl: s.canaryUrl, generation: s.generation }
    },
    servedRequests: servedFrom(app),
  })
  const unsubscribe = [external.notifier.attach(app.events), runner.attach(app.events)]
  runner.start()
  return async () => {
    for (const u of unsubscribe) u()
    await runner.stop()
    await external.close(2000)
  }
}

/** One transition a second (the weight moved by 0.01 and back): every event webhook gets a notification a second. */
function transitions(adminUrl: string): () => void {
  let weight = 50
  const timer = setInterval(() => {
    weight = weight === 50 ? 50.01 : 50
    void request(`${adminUrl}/api/v1/weight`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ weight }) }).then((r) => r.body.dump())
  }, 1000)
  return () => clearInterval(timer)
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

async function main(): Promise<void> {
  const [stable, canary, ...receivers] = await Promise.all([child('upstream'), child('upstream'), child('receiver'), child('receiver'), child('receiver')])
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-bench-probes-'))
  const parsed = configFromObject({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { stable, canary },
    rollout: { steps: [50], stepDuration: '1h' },
    state: { file: join(dir, 'state.json') },
    audit: { file: join(dir, 'audit.jsonl') },
    log: { level: 'silent' },
  })
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error))
  const app = await buildApp({ config: parsed.value, log: createLogger('silent') })
  const { proxyUrl, adminUrl } = await app.listen()
  const plain: number[] = []
  const withProbes: number[] = []
  try {
    await autocannon({ url: proxyUrl, connections, duration: 2 }) // warm-up
    for (let round = 0; round < rounds; round++) {
      plain.push((await autocannon({ url: proxyUrl, connections, duration: seconds })).requests.average)
      const detach = attach(app, receivers)
      const stop = transitions(adminUrl)
      withProbes.push((await autocannon({ url: proxyUrl, connections, duration: seconds })).requests.average)
      stop()
      await detach()
      process.stderr.write(`round ${round + 1}: plain ${plain.at(-1)?.toFixed(0)} req/s, with probes and webhooks ${withProbes.at(-1)?.toFixed(0)} req/s\n`)
    }
  } finally {
    await app.close()
    for (const c of children) c.kill('SIGTERM')
  }
  const sorted = [...delays].sort((a, b) => a - b)
  const p = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
  process.stdout.write(
    [
      `| probes overhead (${rounds} rounds of ${seconds}s, ${connections} connections) | req/s |`,
      '|---|---|',
      `| plain proxy, median | ${median(plain).toFixed(0)} |`,
      `| with resource scraping at 1s, 3 event webhooks and a step gate, median | ${median(withProbes).toFixed(0)} |`,
      `| ratio | ${(median(withProbes) / median(plain)).toFixed(3)} |`,
      `| event deliveries | ${delays.length}, delay p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${sorted.at(-1) ?? 'n/a'} ms |`,
      '',
    ].join('\n'),
  )
}

await main()
