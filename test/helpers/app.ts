/** Builds and starts the real app on loopback port 0 with a test config; closes it when the test ends. */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request } from 'undici'
import { buildApp, type App } from '../../src/app.js'
import { configFromObject } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import type { Clock } from '../../src/core/clock.js'
import type { Random } from '../../src/core/random.js'
import { createLogger } from '../../src/log.js'

export type ConfigInput = Record<string, unknown>

/** Deep-merges overrides into a config with loopback ports 0, a temp state dir and quiet logs. */
export async function testConfig(t: Test, overrides: ConfigInput, dir?: string): Promise<{ config: Config; dir: string }> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'canary-proxy-test-')))
  const base: ConfigInput = {
    listen: { host: '127.0.0.1', port: 0, drainTimeout: '2s' },
    admin: { host: '127.0.0.1', port: 0 },
    state: { file: join(where, 'state.json') },
    audit: { file: join(where, 'audit.jsonl') },
    log: { level: 'silent' },
  }
  const result = configFromObject(merge(base, overrides))
  if (!result.ok) throw new Error(`test config invalid: ${result.error.map((i) => `${i.path}: ${i.message}`).join('; ')}`)
  return { config: result.value, dir: where }
}

export interface Running {
  readonly app: App
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly dir: string
  readonly config: Config
}

export async function startApp(t: Test, overrides: ConfigInput, options: { clock?: Clock; random?: Random; dir?: string } = {}): Promise<Running> {
  const { config, dir } = await testConfig(t, overrides, options.dir)
  const app = await buildApp({ config, log: createLogger('silent'), ...(options.clock ? { clock: options.clock } : {}), ...(options.random ? { random: options.random } : {}) })
  const { proxyUrl, adminUrl } = await app.listen()
  t.teardown(() => app.close())
  return { app, proxyUrl, adminUrl, dir, config }
}

/** JSON call to the admin API. */
export async function admin(base: string, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await request(`${base}${path}`, { method, headers, body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body) })
  const text = await res.body.text()
  return { status: res.statusCode, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }
}

export function merge(base: ConfigInput, over: ConfigInput): ConfigInput {
  const out: ConfigInput = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const current = out[key]
    out[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) && current !== null && typeof current === 'object' && !Array.isArray(current)
        ? merge(current as ConfigInput, value as ConfigInput)
        : value
  }
  return out
}
