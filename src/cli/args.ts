/** argv -> a typed Command (node:util parseArgs), with the env fallbacks of the SPEC. */
import { parseArgs } from 'node:util'
import { parseDuration } from '../core/duration.js'

export interface ClientOptions {
  readonly admin: string
  readonly token: string | null
  readonly json: boolean
}

export type Command =
  | { readonly name: 'serve'; readonly config: string }
  | { readonly name: 'validate'; readonly config: string; readonly json: boolean }
  | { readonly name: 'status'; readonly client: ClientOptions }
  | { readonly name: 'start'; readonly client: ClientOptions; readonly canary: string | null }
  | { readonly name: 'set-weight'; readonly client: ClientOptions; readonly weight: number }
  | { readonly name: 'pause' | 'resume' | 'promote'; readonly client: ClientOptions }
  | { readonly name: 'abort'; readonly client: ClientOptions; readonly reason: string | null }
  | { readonly name: 'events'; readonly client: ClientOptions }
  | { readonly name: 'wait'; readonly client: ClientOptions; readonly timeoutMs: number | null; readonly pollMs: number }
  | { readonly name: 'demo'; readonly faulty: boolean; readonly port: number; readonly adminPort: number; readonly durationMs: number | null }
  | { readonly name: 'help'; readonly topic: string | null }
  | { readonly name: 'version' }

export class UsageError extends Error {
  /** Print the whole usage after the message (an unknown command: the user needs the list). */
  readonly showUsage: boolean

  constructor(message: string, options: { showUsage?: boolean } = {}) {
    super(message)
    this.showUsage = options.showUsage ?? false
  }
}

export const DEFAULT_CONFIG = 'config/canary-proxy.yaml'
export const DEFAULT_ADMIN = 'http://127.0.0.1:9901'

const CLIENT_OPTIONS = {
  admin: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

type Env = Readonly<Record<string, string | undefined>>

export function parseCommand(argv: readonly string[], env: Env): Command {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') return { name: 'help', topic: rest[0] ?? null }
  if (name === '--version' || name === '-v' || name === 'version') return { name: 'version' }
  type Values = Record<string, string | boolean | undefined>
  const parse = (options: Record<string, { type: 'string' | 'boolean'; default?: boolean; short?: string }>, positionals = 0, args: readonly string[] = rest): { values: Values; positionals: string[] } | null => {
    let parsed
    try {
      parsed = parseArgs({ args: [...args], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals > 0, strict: true })
    } catch (error) {
      throw new UsageError(`${name}: ${(error as Error).message}`)
    }
    if (parsed.values.help === true) return null
    if (parsed.positionals.length > positionals) throw new UsageError(`${name}: unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`)
    return { values: parsed.values as Values, positionals: parsed.positionals }
  }
  const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined)
  const client = (values: Record<string, unknown>): ClientOptions => {
    const fromFlag = typeof values.admin === 'string'
    const admin = fromFlag ? (values.admin as string) : env.CANARY_PROXY_ADMIN || DEFAULT_ADMIN
    if (!isHttpUrl(admin)) throw new UsageError(`${name}: ${fromFlag ? '--admin' : 'CANARY_PROXY_ADMIN'} must be an http:// or https:// URL such as ${DEFAULT_ADMIN} (got ${JSON.stringify(admin)})`)
    return {
      admin,
      token: typeof values.token === 'string' ? values.token : env.CANARY_PROXY_ADMIN_TOKEN || null,
      json: values.json === true,
    }
  }
  const help: Command = { name: 'help', topic: name }

  switch (name) {
    case 'serve': {
      const p = parse({ config: { type: 'string', short: 'c' } })
      if (p === null) return help
      return { name, config: str(p.values.config) ?? env.CANARY_PROXY_CONFIG ?? DEFAULT_CONFIG }
    }
    case 'validate': {
      const p = parse({ config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false } }, 1)
      if (p === null) return help
      const config = str(p.values.config) ?? p.positionals[0] ?? env.CANARY_PROXY_CONFIG
      if (config === undefined) throw new UsageError('validate: --config FILE is required')
      return { name, config, json: p.values.json === true }
    }
    case 'status':
    case 'pause':
    case 'resume':
    case 'promote':
    case 'events': {
      const p = parse(CLIENT_OPTIONS)
      if (p === null) return help
      return { name, client: client(p.values) }
    }
    case 'start': {
      const p = parse({ ...CLIENT_OPTIONS, canary: { type: 'string' } })
      if (p === null) return help
      return { name, client: client(p.values), canary: str(p.values.canary) ?? null }
    }
    case 'abort': {
      const p = parse({ ...CLIENT_OPTIONS, reason: { type: 'string' } })
      if (p === null) return help
      return { name, client: client(p.values), reason: str(p.values.reason) ?? null }
    }
    case 'set-weight': {
      // A negative number is a weight (out of range: the admin API says so), not an option.
      const negative = rest.findIndex((arg) => /^-\.?\d/.test(arg))
      const p = parse(CLIENT_OPTIONS, negative < 0 ? 1 : 0, negative < 0 ? rest : rest.filter((_, i) => i !== negative))
      if (p === null) return help
      const text = negative < 0 ? p.positionals[0] : rest[negative]
      if (text === undefined) throw new UsageError('set-weight: the weight N (0..100) is required, e.g. canary-proxy set-weight 25')
      const weight = Number(text)
      if (text.trim() === '' || !Number.isFinite(weight)) throw new UsageError(`set-weight: N must be a number from 0 to 100 (got ${JSON.stringify(text)})`)
      return { name, client: client(p.values), weight }
    }
    case 'wait': {
      const p = parse({ ...CLIENT_OPTIONS, timeout: { type: 'string' }, interval: { type: 'string' } })
      if (p === null) return help
      const timeout = str(p.values.timeout)
      const interval = str(p.values.interval)
      const timeoutMs = timeout === undefined ? null : parseDuration(timeout)
      if (timeoutMs === null && timeout !== undefined) throw new UsageError(`wait: --timeout must be a duration such as 90s or 10m (got ${JSON.stringify(timeout)})`)
      const pollMs = interval === undefined ? 500 : parseDuration(interval)
      if (pollMs === null || pollMs <= 0) throw new UsageError(`wait: --interval must be a duration such as 500ms (got ${JSON.stringify(p.values.interval)})`)
      return { name, client: client(p.values), timeoutMs, pollMs }
    }
    case 'demo': {
      const p = parse({ faulty: { type: 'boolean', default: false }, port: { type: 'string' }, 'admin-port': { type: 'string' }, duration: { type: 'string' } })
      if (p === null) return help
      const port = portOption('demo: --port', str(p.values.port), 8080)
      const adminPort = portOption('demo: --admin-port', str(p.values['admin-port']), 9901)
      const duration = str(p.values.duration)
      const durationMs = duration === undefined ? null : parseDuration(duration)
      if (durationMs === null && duration !== undefined) throw new UsageError(`demo: --duration must be a duration such as 2m (got ${JSON.stringify(duration)})`)
      return { name, faulty: p.values.faulty === true, port, adminPort, durationMs }
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(name)}; run canary-proxy help`, { showUsage: true })
  }
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

function portOption(label: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const port = Number(text)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${label} must be a port number 0..65535 (got ${JSON.stringify(text)})`)
  return port
}

export const USAGE = `canary-proxy: a reverse proxy that releases a new version of a service safely

Usage: canary-proxy <command> [options]

Proxy
  serve [--config FILE]          run the proxy (default ${DEFAULT_CONFIG}; env CANARY_PROXY_CONFIG)
  validate --config FILE [--json]
                                 check a config: exit 0 if valid, else 1 and one line per problem
  demo [--faulty] [--port N] [--admin-port N] [--duration D]
                                 sample stable and canary upstreams, generated traffic and a whole
                                 rollout, with live progress (--faulty: the canary starts failing)

Rollout (talk to a running proxy's admin API)
  status                         phase, weight, step and per-side requests / error rate / p50 / p99
  start [--canary URL]           start a rollout towards URL (or the canary already known)
  set-weight N                   set the canary weight to N (0..100, steps of 0.01); pauses automation
  pause | resume | promote       hold the weight | continue | go straight to 100% and success
  abort [--reason TEXT]          weight 0, phase aborted
  events                         the recent transitions and admin actions
  wait [--timeout D] [--interval D]
                                 block until the rollout ends: exit 0 succeeded, 1 rolled back or
                                 aborted, 2 timeout (polls every --interval, default 500ms)

Client options
  --admin URL     admin API (default ${DEFAULT_ADMIN}; env CANARY_PROXY_ADMIN)
  --token T       bearer token (env CANARY_PROXY_ADMIN_TOKEN)
  --json          machine-readable output

Other
  help                           this text (also --help, -h, or COMMAND --help)
  version                        the version (also --version, -v)
`
