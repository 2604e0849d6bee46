/**
 * `npm run build && node dist/bench/redis-state.js [--url redis://…] [--n 2000]`:
 * what the shared state costs on a Redis: a compare-and-set save, the change
 * reaching another replica, a window delta's size, publishing it, and the
 * leader's read of a whole window of three replicas. Starts its own
 * redis-server on a loopback port (no persistence) unless --url is given.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js'
import { initialState } from '../src/rollout/machine.js'
import type { RolloutState } from '../src/rollout/phase.js'
import { createRedisBackend, type RedisBackend } from '../src/state/redis-backend.js'
import { newLatencyHistogram } from '../src/stats/latency-histogram.js'
import { mulberry32 } from './lib/random.js'

const { values: flags } = parseArgs({ options: { url: { type: 'string' }, n: { type: 'string', default: '2000' } } })
const n = Number(flags.n)

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function startRedis(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'canary-proxy-bench-redis-'))
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => {
    let out = ''
    child.stdout!.on('data', (c: Buffer) => {
      out += String(c)
      if (out.includes('Ready to accept connections')) resolve()
    })
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function quantiles(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(3)
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${s[s.length - 1]!.toFixed(3)} ms (n=${s.length})`
}

const own = flags.url === undefined ? await startRedis() : null
const url = flags.url ?? own!.url
const prefix = `bench-${process.pid}`
const config = { state: { redis: url, redisKeyPrefix: prefix }, analysis: { intervalMs: 1000, windowMs: 30_000 } }
const replicas: RedisBackend<{ requests: number; errors: number; latency: string }>[] = ['a', 'b', 'c'].map((r) => createRedisBackend(config, { replica: `replica-${r}` }))
await Promise.all(replicas.map((r) => r.ready()))
const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]]

// 1. Compare-and-set saves by the leader, and the change reaching replica b.
const base = initialState('http://127.0.0.1:9001', 'http://127.0.0.1:9002', Date.now())
const saves: number[] = []
const deliveries: number[] = []
let sentAt = 0
let waiting: (() => void) | null = null
b.store.watch(() => {
  deliveries.push(performance.now() - sentAt)
  waiting?.()
})
for (let i = 0; i < n; i++) {
  const state: RolloutState = { ...base, phase: 'progressing', weight: 5 + (i % 90), stepIndex: 0, stepStartedAt: Date.now(), generation: 1 }
  const delivered = new Promise<void>((resolve) => (waiting = resolve))
  sentAt = performance.now()
  const saved = await a.store.save(state, i, 1)
  saves.push(performance.now() - sentAt)
  if (!saved.ok) throw new Error(`save ${i} refused: ${saved.reason}`)
  await delivered
}
console.log(`save (CAS + fence + publish script): ${quantiles(saves)}`)
console.log(`change seen by another replica, from the save's call: ${quantiles(deliveries)}`)

// 2. A window delta as a replica would publish it each slot: 1,000 responses, log-normal-ish latencies.
const random = mulberry32(7)
const h = newLatencyHistogram()
for (let i = 0; i < 1000; i++) h.recordValue(Math.round(2_000 * Math.exp(random() * 1.5)))
const latency = encodeIntoCompressedBase64(h)
h.destroy()
const delta = { requests: 1000, errors: 3, latency }
console.log(`window delta JSON (1,000 responses, one side): ${JSON.stringify(delta).length} bytes`)

// 3. Publishing a delta per slot, and the leader reading 30 slots of 3 replicas.
const publishes: number[] = []
for (let slot = 0; slot < 300; slot++) {
  for (const r of replicas) {
    const t0 = performance.now()
    await r.windows.publish(slot, delta)
    publishes.push(performance.now() - t0)
  }
}
console.log(`publish one delta (HSET + PEXPIRE + ZADD, one MULTI): ${quantiles(publishes)}`)
const reads: number[] = []
for (let i = 0; i < 200; i++) {
  const from = i % 270
  const t0 = performance.now()
  const read = await a.windows.read(from, from + 29)
  reads.push(performance.now() - t0)
  if (read.length !== 30 || read[0]!.deltas.length !== 3) throw new Error('short read')
}
console.log(`leader reads 30 slots x 3 replicas (one pipeline, JSON parse): ${quantiles(reads)}`)

for (const r of replicas) await r.close()
own?.stop()
