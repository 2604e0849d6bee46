/** What the resource-check tests share: the proxy at 50% between two resource upstreams, their config, steady traffic, a bounded wait. */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { Pool } from 'undici'
import { configFromObject } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { startApp, type Running } from './app.js'
import type { ResourceUpstream } from './resource-upstream.js'

export async function proxyAt50(t: Test, stable: ResourceUpstream, canary: ResourceUpstream): Promise<Running> {
  const running = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { steps: [50], stepDuration: '10m', autoStart: true } })
  t.equal(running.app.controller.state.weight, 50, 'the rollout sits at 50%')
  return running
}

export function externalConfig(running: Running, analysis: Record<string, unknown>): Config {
  const r = configFromObject({ upstreams: { stable: running.config.upstreams.stable }, analysis })
  if (!r.ok) throw new Error(r.error.map((i) => `${i.path}: ${i.message}`).join('; '))
  return r.value
}

/** Steady traffic through the proxy (two clients, ~25 ms apart each) until stopped. */
export function traffic(t: Test, proxyUrl: string): { stop(): Promise<void>; sent(): number } {
  const pool = new Pool(proxyUrl, { connections: 2 })
  let running = true
  let sent = 0
  const worker = async (): Promise<void> => {
    while (running) {
      const res = await pool.request({ method: 'GET', path: '/work' })
      await res.body.dump()
      sent++
      await sleep(25)
    }
  }
  const workers = [worker(), worker()]
  let stopped: Promise<void> | null = null
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      running = false
      await Promise.all(workers)
      await pool.close()
    })())
  t.teardown(stop)
  return { stop, sent: () => sent }
}

export async function until(what: () => boolean, timeoutMs: number): Promise<boolean> {
  for (let waited = 0; waited < timeoutMs; waited += 100) {
    if (what()) return true
    await sleep(100)
  }
  return what()
}
