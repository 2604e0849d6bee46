/** Replicas of the built CLI sharing one rollout through Redis (state.redis), for the scale-out tests: the fleet, its status, traffic to it. */
import { join } from 'node:path'
import type { Test } from 'tap'
import { Agent, request } from 'undici'
import { admin } from './app.js'
import { serve, tempDir, writeConfig, type Served } from './cli.js'

export interface Status {
  phase: string
  weight: number
  generation: number
  reason: string | null
  stateBackend?: { kind: string; up: boolean; role: string; leader: string | null; replica: string | null; replicas?: number }
}

export const status = async (r: Served): Promise<Status> => (await admin(r.adminUrl, 'GET', '/api/v1/status')).json as unknown as Status

export interface Fleet {
  readonly replicas: Served[]
  /** Starts one more replica on the same config. */
  add(): Promise<Served>
}

/** `count` replicas of one config: its own key prefix, state only in Redis (each replica's state file is never written). */
export async function fleet(t: Test, redisUrl: string, prefix: string, upstreams: { stable: string; canary: string }, extra: string, count: number): Promise<Fleet> {
  const dir = await tempDir()
  let n = 0
  const config = async (): Promise<string> => {
    const i = n++
    return writeConfig(
      dir,
      `replica-${i}.yaml`,
      `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: ${upstreams.stable}, canary: ${upstreams.canary} }
state: { file: ${join(dir, `state-${i}.json`)}, redis: ${redisUrl}, redisKeyPrefix: ${prefix} }
audit: { file: ${join(dir, `audit-${i}.jsonl`)} }
log: { level: info }
${extra}`,
    )
  }
  const replicas: Served[] = []
  const add = async (): Promise<Served> => {
    const served = await serve(t, await config(), { timeoutMs: 60_000 })
    replicas.push(served)
    return served
  }
  for (let i = 0; i < count; i++) await add()
  return { replicas, add }
}

/** Who answers the proxy's requests (the test upstreams name themselves in x-upstream). */
export async function sides(agent: Agent, proxyUrl: string, count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {}
  for (let i = 0; i < count; i++) {
    const res = await request(`${proxyUrl}/s`, { dispatcher: agent })
    await res.body.dump()
    const name = String(res.headers['x-upstream'] ?? res.statusCode)
    seen[name] = (seen[name] ?? 0) + 1
  }
  return seen
}

export const leaderOf = async (replicas: readonly Served[]): Promise<Served | undefined> => {
  for (const r of replicas) if ((await status(r).catch(() => null))?.stateBackend?.role === 'leader') return r
  return undefined
}

/** Traffic to every live replica until stopped, a few requests at a time (loopback, bounded by the test). */
export function steadyTraffic(t: Test, targets: () => readonly Served[]): { stop(): Promise<void> } {
  const agent = new Agent({ connections: 4 })
  let running = true
  const loop = (async () => {
    while (running) {
      await Promise.all(targets().map((r) => request(`${r.proxyUrl}/t`, { dispatcher: agent }).then((res) => res.body.dump(), () => undefined)))
    }
  })()
  let stopped: Promise<void> | null = null
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      running = false
      await loop
      await agent.close()
    })())
  t.teardown(stop)
  return { stop }
}
