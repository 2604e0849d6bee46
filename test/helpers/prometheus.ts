/** A real Prometheus and promtool (Debian's `prometheus` package) for tests: a server on a loopback port with a temp config and storage, stopped by its PID. */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { request } from 'undici'
import { stringify } from 'yaml'
import { freePort } from './cli.js'

/** The binaries (PATH by default; `.ci/run` installs the Debian package). */
export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus'
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? 'promtool'

export interface ToolResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `promtool ...args` (stdin from `input` when given); killed by PID after `timeoutMs`. */
export function promtool(args: readonly string[], options: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
      reject(new Error(`promtool ${args.join(' ')} did not finish within ${options.timeoutMs ?? 30_000}ms`))
    }, options.timeoutMs ?? 30_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${PROMTOOL_BIN} (install Debian's prometheus package): ${error.message}`))
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.input ?? '')
  })
}

export interface ScrapeJob {
  readonly job: string
  /** host:port of each target. */
  readonly targets: readonly string[]
  readonly metricsPath?: string
  /** Extra target labels (e.g. a fixed `instance`). */
  readonly labels?: Readonly<Record<string, string>>
}

export interface PrometheusOptions {
  readonly jobs?: readonly ScrapeJob[]
  /** Scrape configs as Prometheus reads them (e.g. taken from an example file), after `jobs`. */
  readonly scrapeConfigs?: readonly Readonly<Record<string, unknown>>[]
  /** Absolute paths of rule files to load (alerting and recording rules). */
  readonly ruleFiles?: readonly string[]
  /** Short, so a test sees a change within a second or two. */
  readonly scrapeInterval?: string
  readonly evaluationInterval?: string
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>
  readonly value: number
}

export interface Alert {
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  readonly state: 'pending' | 'firing' | 'inactive'
  readonly activeAt?: string
  readonly value: string
}

export interface RuleGroup {
  readonly name: string
  readonly file: string
  readonly rules: readonly { readonly name: string; readonly type: string; readonly health: string; readonly state?: string; readonly lastError?: string; readonly query: string }[]
}

export interface Target {
  readonly labels: Readonly<Record<string, string>>
  readonly health: 'up' | 'down' | 'unknown'
  readonly lastError: string
  readonly scrapeUrl: string
}

export interface RunningPrometheus {
  readonly url: string
  readonly pid: number
  /** The temp directory holding its config and TSDB. */
  readonly dir: string
  /** An instant query; rejects with Prometheus' own error (a bad expression says why). */
  query(expr: string): Promise<Sample[]>
  alerts(): Promise<Alert[]>
  rules(): Promise<RuleGroup[]>
  targets(): Promise<Target[]>
  /** What the server printed (warnings and errors only), for failure messages. */
  log(): string
  stop(): Promise<void>
}

/**
 * Starts Prometheus on a free loopback port with a config made from `options`
 * and an empty TSDB in a temp directory; resolves once /-/ready answers 200.
 * Stopped (SIGTERM, then SIGKILL by PID) and its directory removed at teardown.
 */
export async function startPrometheus(t: Test, options: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-prometheus-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const scrapeInterval = options.scrapeInterval ?? '500ms'
  const config = {
    global: { scrape_interval: scrapeInterval, scrape_timeout: scrapeInterval, evaluation_interval: options.evaluationInterval ?? '500ms' },
    rule_files: [...(options.ruleFiles ?? [])],
    scrape_configs: [
      ...(options.jobs ?? []).map((j) => ({
        job_name: j.job,
        metrics_path: j.metricsPath ?? '/metrics',
        static_configs: [{ targets: [...j.targets], ...(j.labels === undefined ? {} : { labels: { ...j.labels } }) }],
      })),
      ...(options.scrapeConfigs ?? []),
    ],
  }
  const configFile = join(dir, 'prometheus.yml')
  await writeFile(configFile, stringify(config))
  // A port free a moment ago may be taken by the time Prometheus binds it: try another.
  let lastLog = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await launch(t, configFile, join(dir, `data-${attempt}`), await freePort(), dir)
    if ('url' in started) return started
    lastLog = started.portTaken
  }
  throw new Error(`prometheus did not start: ${lastLog}`)
}

async function launch(t: Test, configFile: string, dataDir: string, port: number, dir: string): Promise<RunningPrometheus | { portTaken: string }> {
  const args = [`--config.file=${configFile}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--storage.tsdb.retention.time=1h']
  const child = spawn(PROMETHEUS_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  if (child.pid === undefined) {
    await new Promise((resolve) => child.once('error', resolve))
    throw new Error(`cannot run ${PROMETHEUS_BIN} (install Debian's prometheus package)`)
  }
  const pid = child.pid
  let log = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => (log += c))
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once('close', () => {
      exited = true
      resolve()
    }),
  )
  const stop = async (): Promise<void> => {
    if (exited) return
    process.kill(pid, 'SIGTERM')
    const killed = await Promise.race([exit.then(() => true), sleep(5_000).then(() => false)])
    if (!killed && !exited) {
      process.kill(pid, 'SIGKILL')
      await exit
    }
  }
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (exited) {
      if (/address already in use/.test(log)) return { portTaken: log }
      throw new Error(`prometheus exited at start-up: ${log}`)
    }
    try {
      const res = await request(`${url}/-/ready`)
      await res.body.dump()
      if (res.statusCode === 200) break
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`prometheus not ready within 30s: ${log}`)
    }
    await sleep(100)
  }
  t.teardown(stop)
  const api = async <T>(path: string): Promise<T> => {
    const res = await request(`${url}${path}`)
    const body = (await res.body.json()) as { status: string; data: T; error?: string; errorType?: string }
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.errorType ?? ''} ${body.error ?? res.statusCode}`)
    return body.data
  }
  return {
    url,
    pid,
    dir,
    async query(expr) {
      const data = await api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] | [number, string] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)
      if (data.resultType === 'scalar') return [{ metric: {}, value: Number((data.result as [number, string])[1]) }]
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
    },
    alerts: async () => (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts,
    rules: async () => (await api<{ groups: RuleGroup[] }>('/api/v1/rules')).groups,
    targets: async () => (await api<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets,
    log: () => log,
    stop,
  }
}
