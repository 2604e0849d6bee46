/**
 * A real Prometheus (Debian's `prometheus`) for tests: loopback port, a temp
 * config scraping the given targets every second, temp storage; stopped by
 * PID when the test ends. (Helper B writes test/helpers/prometheus.ts at the
 * same time; the two are to be merged.)
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { request } from 'undici'
import { closedPort } from './upstreams.js'

export interface PrometheusServer {
  readonly url: string
  readonly pid: number
  /** Instant query through the HTTP API; the `data` of the answer. */
  query(promql: string): Promise<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>
}

export async function startPrometheus(t: Test, targets: readonly string[], options: { readonly scrapeInterval?: string } = {}): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-prometheus-'))
  const interval = options.scrapeInterval ?? '1s'
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: upstreams',
    `    scrape_timeout: ${interval}`,
    '    static_configs:',
    `      - targets: [${targets.map((x) => JSON.stringify(x)).join(', ')}]`,
    '',
  ].join('\n')
  await writeFile(join(dir, 'prometheus.yml'), config)
  // A port picked free, then bound by Prometheus: another process may take it in between, so a few tries.
  for (let attempt = 1; ; attempt++) {
    const port = await closedPort()
    const child = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--storage.tsdb.retention.time=1h'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)))
    const pid = child.pid
    if (pid === undefined) throw new Error('prometheus did not start (is the Debian package installed?)')
    let exited = false
    child.once('exit', () => (exited = true))
    const stop = (): Promise<void> =>
      new Promise<void>((resolve) => {
        if (exited) return resolve()
        child.once('exit', () => resolve())
        process.kill(pid, 'SIGTERM')
      })
    const url = `http://127.0.0.1:${port}`
    const ready = await waitReady(url, () => exited)
    if (!ready) {
      await stop()
      if (attempt < 3) continue
      throw new Error(`prometheus did not become ready: ${stderr}`)
    }
    t.teardown(async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    })
    const server: PrometheusServer = {
      url,
      pid,
      async query(promql) {
        const res = await request(`${url}/api/v1/query?${new URLSearchParams({ query: promql }).toString()}`)
        const body = (await res.body.json()) as { status: string; data: Awaited<ReturnType<PrometheusServer['query']>> }
        if (body.status !== 'success') throw new Error(`query ${promql}: ${JSON.stringify(body)}`)
        return body.data
      },
    }
    // Ready means serving; every target scraped at least once means the data tests need is there.
    for (let i = 0; i < 200; i++) {
      const up = await server.query('up == 1')
      if (up.result.length >= targets.length) return server
      await sleep(100)
    }
    throw new Error(`prometheus did not scrape every target: ${JSON.stringify(await server.query('up'))}`)
  }
}

async function waitReady(url: string, exited: () => boolean): Promise<boolean> {
  for (let i = 0; i < 150 && !exited(); i++) {
    try {
      const res = await request(`${url}/-/ready`)
      await res.body.dump()
      if (res.statusCode === 200) return true
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  return false
}
