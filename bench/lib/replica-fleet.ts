/** Replicas of the built CLI (`serve`, state.redis) for the scale-out bench, and the redis-server they share: started, polled, killed and restarted by PID. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../src/main.js', import.meta.url))

/** Every process this module started, stopped by PID when the runner exits whatever the path. */
const started = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) tryKill(child.pid, 'SIGKILL')
})

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** `taskset -c cpus command …` when a CPU list is given (taskset execs in place: the PID is the program's). */
function spawnPinned(command: string, args: readonly string[], cpus: string | null, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = cpus === null ? spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env }) : spawn('taskset', ['-c', cpus, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  started.add(child)
  child.once('exit', () => started.delete(child))
  return child
}

export interface RedisServer {
  readonly url: string
  readonly pid: number
  stop(): Promise<void>
}

/** A private redis-server on a loopback port, no persistence, in the foreground (its PID is ours). */
export async function startRedis(cpus: string | null = null): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'canary-proxy-bench-redis-'))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const child = spawnPinned('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], cpus)
    const ok = await new Promise<boolean>((resolve) => {
      let out = ''
      child.stdout!.on('data', (c: Buffer) => {
        out += String(c)
        if (out.includes('Ready to accept connections')) resolve(true)
      })
      child.once('exit', () => resolve(false))
    })
    if (ok) {
      child.stdout!.resume()
      child.stderr!.resume()
      return {
        url: `redis://127.0.0.1:${port}`,
        pid: child.pid!,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((r) => child.once('exit', r))
            tryKill(child.pid!, 'SIGTERM')
            await exited
          }
          rmSync(dir, { recursive: true, force: true })
        },
      }
    }
    if (attempt >= 4) throw new Error(`redis-server did not start on a loopback port (${attempt + 1} attempts)`)
  }
}

export interface StatusView {
  phase: string
  weight: number
  generation: number
  reason: string | null
  lastDecision?: { at: string; verdict: string; reason: string } | null
  stateBackend?: { kind: string; up: boolean; role: string; leader: string | null; replica: string | null; replicas?: number }
}

export interface EventRecord {
  at: string
  actor: string
  action: string
  from: { phase: string; weight: number }
  to: { phase: string; weight: number }
  reason: string | null
}

/** One running CLI replica. */
export class Replica {
  readonly index: number
  readonly pid: number
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly #child: ChildProcess
  readonly exited: Promise<void>

  constructor(index: number, child: ChildProcess, proxyUrl: string, adminUrl: string) {
    this.index = index
    this.pid = child.pid!
    this.#child = child
    this.proxyUrl = proxyUrl
    this.adminUrl = adminUrl
    this.exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()))
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  async status(timeoutMs = 2_000): Promise<StatusView> {
    const res = await fetch(`${this.adminUrl}/api/v1/status`, { signal: AbortSignal.timeout(timeoutMs) })
    if (res.status !== 200) throw new Error(`replica ${this.index}: GET /api/v1/status answered ${res.status}`)
    return (await res.json()) as StatusView
  }

  async events(): Promise<EventRecord[]> {
    const res = await fetch(`${this.adminUrl}/api/v1/events`, { signal: AbortSignal.timeout(5_000) })
    if (res.status !== 200) throw new Error(`replica ${this.index}: GET /api/v1/events answered ${res.status}`)
    return ((await res.json()) as { events: EventRecord[] }).events
  }

  /** An admin action (POST /api/v1/rollout/start, PUT /api/v1/weight …); throws unless it answers 200. */
  async admin(method: string, path: string, body?: unknown): Promise<StatusView> {
    const res = await fetch(`${this.adminUrl}${path}`, {
      method,
      signal: AbortSignal.timeout(5_000),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
    const json = (await res.json()) as StatusView
    if (res.status !== 200) throw new Error(`replica ${this.index}: ${method} ${path} answered ${res.status}: ${JSON.stringify(json)}`)
    return json
  }

  async metrics(): Promise<string> {
    const res = await fetch(`${this.adminUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })
    return res.text()
  }

  /** kill -9 by PID, and wait for the exit. */
  async kill(): Promise<void> {
    if (this.alive) tryKill(this.pid, 'SIGKILL')
    await this.exited
  }

  /** SIGTERM by PID (drain, lease released), SIGKILL after graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive) return
    tryKill(this.pid, 'SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const late = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))])
    clearTimeout(timer)
    if (late) await this.kill()
  }
}

export interface FleetOptions {
  /** null: each replica on its own state file (a control without state.redis). */
  readonly redisUrl: string | null
  readonly prefix: string
  readonly stableUrl: string
  readonly canaryUrl: string
  /** YAML lines beside listen/admin/upstreams/state/audit/log (rollout, analysis, routing). */
  readonly extra: string
  /** CPU list the replicas are pinned to, or null. */
  readonly cpus: string | null
}

/** Replicas of one config (one key prefix); replica i keeps its config file across restarts. */
export class Fleet {
  readonly replicas: Replica[] = []
  readonly #options: FleetOptions
  readonly #dir: string

  constructor(options: FleetOptions) {
    this.#options = options
    this.#dir = mkdtempSync(join(tmpdir(), 'canary-proxy-bench-fleet-'))
    process.on('exit', () => rmSync(this.#dir, { recursive: true, force: true }))
  }

  /** Starts replica `index` (a new one, or again after it was killed) and waits for its listening line. */
  async start(index: number, timeoutMs = 60_000): Promise<Replica> {
    const o = this.#options
    const file = join(this.#dir, `replica-${index}.yaml`)
    writeFileSync(
      file,
      `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: ${o.stableUrl}, canary: ${o.canaryUrl} }
state: { file: ${join(this.#dir, `state-${index}.json`)}${o.redisUrl === null ? '' : `, redis: ${o.redisUrl}, redisKeyPrefix: ${o.prefix}`} }
audit: { file: ${join(this.#dir, `audit-${index}.jsonl`)} }
log: { level: info }
${o.extra}`,
    )
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CANARY_PROXY_')) env[k] = v
    const child = spawnPinned(process.execPath, [CLI, 'serve', '--config', file], o.cpus, env)
    const replica = await new Promise<Replica>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => fail(new Error(`replica ${index} did not start within ${timeoutMs} ms\n${out.slice(-3000)}`)), timeoutMs)
      const fail = (error: Error): void => {
        clearTimeout(timer)
        if (child.pid !== undefined) tryKill(child.pid, 'SIGKILL')
        reject(error)
      }
      const onData = (chunk: Buffer): void => {
        out = (out + String(chunk)).slice(-16_384)
        const line = out.split('\n').find((l) => l.includes('canary-proxy listening on'))
        if (line === undefined) return
        const parsed = JSON.parse(line) as { proxy?: string; admin?: string }
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        child.stderr!.off('data', onData)
        resolve(new Replica(index, child, String(parsed.proxy), String(parsed.admin)))
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code, signal) => fail(new Error(`replica ${index} exited (${String(code ?? signal)}) before it listened\n${out.slice(-3000)}`)))
    })
    // Keep the pipes flowing: a full pipe would block the replica's logging.
    child.stdout!.resume()
    child.stderr!.resume()
    this.replicas[index] = replica
    return replica
  }

  async startAll(count: number): Promise<Replica[]> {
    for (let i = 0; i < count; i++) await this.start(i)
    return this.live()
  }

  live(): Replica[] {
    return this.replicas.filter((r) => r !== undefined && r.alive)
  }

  /** The replica whose status says it leads, or undefined. */
  async leader(): Promise<Replica | undefined> {
    const all = await Promise.all(this.live().map(async (r) => ({ r, s: await r.status().catch(() => null) })))
    return all.find((x) => x.s?.stateBackend?.role === 'leader')?.r
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.live().map((r) => r.stop()))
  }
}

/** Polls `probe` every `everyMs` until it returns something other than undefined; throws `what` at the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === null ? '' : ` (last error: ${String(last)})`}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
